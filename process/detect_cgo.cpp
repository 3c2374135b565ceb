//go:build cgo

#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>

#include "detect_cgo.h"

static char *fh_strdup(const char *s) {
	size_t n = strlen(s);
	char *p = (char *)malloc(n + 1);
	if (p != NULL) {
		memcpy(p, s, n + 1);
	}
	return p;
}

static fhDetections fh_error(const char *what) {
	fhDetections d = {NULL, 0, fh_strdup(what)};
	return d;
}

static fhDetections fh_result(const std::vector<cv::Rect> &rects, const std::vector<double> &weights) {
	fhDetections d = {NULL, 0, NULL};
	if (rects.empty()) {
		return d;
	}
	d.items = (fhDetection *)malloc(sizeof(fhDetection) * rects.size());
	if (d.items == NULL) {
		return fh_error("out of memory");
	}
	for (size_t i = 0; i < rects.size(); i++) {
		const cv::Rect &r = rects[i];
		d.items[i].x = r.x;
		d.items[i].y = r.y;
		d.items[i].w = r.width;
		d.items[i].h = r.height;
		d.items[i].weight = i < weights.size() ? weights[i] : 0;
	}
	d.n = (int)rects.size();
	return d;
}

// fh_check returns an error for a picture the detectors cannot take.
static const char *fh_check(const cv::Mat &m) {
	if (m.empty()) {
		return "empty picture";
	}
	if (m.depth() != CV_8U || (m.channels() != 1 && m.channels() != 3 && m.channels() != 4)) {
		return "picture is not 8-bit gray, BGR or BGRA";
	}
	return NULL;
}

fhHOG fh_hog_new(char **err) {
	try {
		cv::HOGDescriptor *h = new cv::HOGDescriptor();
		h->setSVMDetector(cv::HOGDescriptor::getDefaultPeopleDetector());
		return h;
	} catch (const std::exception &e) {
		*err = fh_strdup(e.what());
		return NULL;
	} catch (...) {
		*err = fh_strdup("unknown exception");
		return NULL;
	}
}

void fh_hog_free(fhHOG h) { delete (cv::HOGDescriptor *)h; }

fhDetections fh_hog_detect(fhHOG h, void *mat, double hit_threshold, int stride, int padding, double scale,
		double group_threshold) {
	try {
		const cv::Mat &in = *(cv::Mat *)mat;
		if (const char *bad = fh_check(in)) {
			return fh_error(bad);
		}
		cv::HOGDescriptor *hog = (cv::HOGDescriptor *)h;
		if (in.cols < hog->winSize.width || in.rows < hog->winSize.height) {
			// No person fits. And OpenCV 4.6's detectMultiScale writes out
			// of bounds on such pictures (300x111, 47x300, 1x1: the heap is
			// corrupted, the process aborts or crashes; no exception to
			// catch), so it is never called with one.
			return fh_result(std::vector<cv::Rect>(), std::vector<double>());
		}
		cv::Mat img = in;
		if (in.channels() == 4) {
			cv::cvtColor(in, img, cv::COLOR_BGRA2BGR);
		}
		std::vector<cv::Rect> rects;
		std::vector<double> weights;
		hog->detectMultiScale(img, rects, weights, hit_threshold, cv::Size(stride, stride), cv::Size(padding, padding),
				scale, group_threshold, false);
		return fh_result(rects, weights);
	} catch (const std::exception &e) {
		return fh_error(e.what());
	} catch (...) {
		return fh_error("unknown exception");
	}
}

fhCascade fh_cascade_new(const char *path, char **err) {
	cv::CascadeClassifier *c = NULL;
	try {
		c = new cv::CascadeClassifier();
		if (c->load(path) && !c->empty()) {
			return c;
		}
	} catch (const std::exception &e) {
		// OpenCV's reason ("Input file is invalid"), not its whole report.
		std::string what = e.what(), line;
		size_t at = what.find("error: ");
		line = what.substr(at == std::string::npos ? 0 : at + 7);
		line = line.substr(0, line.find('\n'));
		delete c;
		*err = fh_strdup(("cannot load it as a cascade classifier: " + line).c_str());
		return NULL;
	} catch (...) {
		delete c;
		*err = fh_strdup("cannot load it as a cascade classifier");
		return NULL;
	}
	delete c;
	*err = fh_strdup("cannot load it as a cascade classifier");
	return NULL;
}

void fh_cascade_free(fhCascade c) { delete (cv::CascadeClassifier *)c; }

fhDetections fh_cascade_detect(fhCascade c, void *mat, double scale, int min_neighbors, int min_size) {
	try {
		const cv::Mat &in = *(cv::Mat *)mat;
		if (const char *bad = fh_check(in)) {
			return fh_error(bad);
		}
		cv::Mat gray;
		if (in.channels() == 1) {
			gray = in;
		} else {
			cv::cvtColor(in, gray, in.channels() == 4 ? cv::COLOR_BGRA2GRAY : cv::COLOR_BGR2GRAY);
		}
		// No histogram equalisation: on OpenCV's sample data it finds the
		// same faces, plus false ones around them.
		std::vector<cv::Rect> rects;
		std::vector<int> levels;
		std::vector<double> weights;
		// With outputRejectLevels, OpenCV reports for each detection the
		// sum of its last stage: how far past the threshold it passed.
		((cv::CascadeClassifier *)c)
			->detectMultiScale(gray, rects, levels, weights, scale, min_neighbors, 0, cv::Size(min_size, min_size),
				cv::Size(), true);
		return fh_result(rects, weights);
	} catch (const std::exception &e) {
		return fh_error(e.what());
	} catch (...) {
		return fh_error("unknown exception");
	}
}

void fh_detections_free(fhDetections d) {
	free(d.items);
	free(d.err);
}
