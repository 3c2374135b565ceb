//go:build !unix

package subscriber

import "errors"

// writeFailureCause cannot look at file systems or limits on this system.
func writeFailureCause(string) error {
	return errors.New("cause unknown: OpenCV reports no write errors")
}
