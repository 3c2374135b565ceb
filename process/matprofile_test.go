//go:build cgo && matprofile

package process

import (
	"fmt"
	"strings"

	"gocv.io/x/gocv"
)

// matLeakCheck reports the Mats still open, with where each was created.
// Built only with -tags matprofile, where gocv records every Mat it creates.
func matLeakCheck() error {
	if gocv.MatProfile.Count() == 0 {
		return nil
	}
	var b strings.Builder
	gocv.MatProfile.WriteTo(&b, 1)
	return fmt.Errorf("%d gocv Mats left open:\n%s", gocv.MatProfile.Count(), b.String())
}
