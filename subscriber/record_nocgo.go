//go:build !cgo

package subscriber

import "errors"

// haveOpenCV says whether this build can write .avi and .mp4 files.
const haveOpenCV = false

// newOpenCVFiles is never reached in a build without OpenCV: formatFor
// refuses the formats that need it first.
func newOpenCVFiles(string, float64, uint64, bool) (videoWriter, error) {
	return nil, errors.New("this build has no OpenCV")
}
