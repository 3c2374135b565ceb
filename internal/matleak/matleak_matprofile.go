//go:build cgo && matprofile

package matleak

import (
	"fmt"
	"strings"

	"gocv.io/x/gocv"
)

// Check reports the Mats still open, with where each was created.
func Check() error {
	if gocv.MatProfile.Count() == 0 {
		return nil
	}
	var b strings.Builder
	gocv.MatProfile.WriteTo(&b, 1)
	return fmt.Errorf("%d gocv Mats left open:\n%s", gocv.MatProfile.Count(), b.String())
}
