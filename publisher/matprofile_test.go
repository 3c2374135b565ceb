//go:build cgo && matprofile

package publisher

import (
	"strings"

	"gocv.io/x/gocv"
)

// matLeaks reports the Mats still open, with where each was created. Built
// only with -tags matprofile, where gocv records every Mat it creates.
func matLeaks() (int, string) {
	var b strings.Builder
	gocv.MatProfile.WriteTo(&b, 1)
	return gocv.MatProfile.Count(), b.String()
}
