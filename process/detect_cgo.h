//go:build cgo

// The detectors framehub runs through OpenCV's C++ API directly: gocv
// v0.31.0 (the newest that builds against Debian 12's OpenCV 4.6) hands
// HOGDescriptor a default people detector that points at freed memory,
// and neither of its detectors returns a confidence. Every function
// catches every C++ exception (OpenCV's, std::bad_alloc, any other) and
// returns it as an error string, so a frame that makes OpenCV fail costs
// that frame, not the process (an exception crossing into Go aborts it).
#ifndef FRAMEHUB_DETECT_H
#define FRAMEHUB_DETECT_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
	int x, y, w, h;
	double weight; // the detector's own confidence (SVM margin, cascade stage sum)
} fhDetection;

// fhDetections is a result: items (n of them) or err, both malloc'd;
// free with fh_detections_free.
typedef struct {
	fhDetection *items;
	int n;
	char *err;
} fhDetections;

typedef void *fhHOG;
typedef void *fhCascade;

// fh_hog_new returns a HOG descriptor with OpenCV's default people
// detector (64x128 window), or NULL with *err set (malloc'd).
fhHOG fh_hog_new(char **err);
void fh_hog_free(fhHOG h);
// fh_hog_detect finds people in mat (a cv::Mat*, 8-bit, 1, 3 or 4 channels);
// none in a picture smaller than the window.
fhDetections fh_hog_detect(fhHOG h, void *mat, double hit_threshold, int stride, int padding, double scale, double group_threshold);

// fh_cascade_new loads a cascade classifier from path, or returns NULL
// with *err set (malloc'd).
fhCascade fh_cascade_new(const char *path, char **err);
void fh_cascade_free(fhCascade c);
// fh_cascade_detect finds objects in mat (a cv::Mat*, 8-bit, 1, 3 or 4
// channels), after converting it to gray.
fhDetections fh_cascade_detect(fhCascade c, void *mat, double scale, int min_neighbors, int min_size);

void fh_detections_free(fhDetections d);

#ifdef __cplusplus
}
#endif

#endif
