//go:build unix

package subscriber

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lowSpace is the free space below which a file system counts as full.
const lowSpace = 1 << 20

// writeFailureCause names the likeliest reason why a file whose writer
// reports no errors (OpenCV's) lost data: its file system is full, or the
// file reached the process's file size limit (ulimit -f). The error wraps
// the errno a plain write would have returned (ENOSPC, EFBIG).
func writeFailureCause(name string) error {
	var fs syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(name), &fs); err == nil {
		if free := uint64(fs.Bavail) * uint64(fs.Bsize); free < lowSpace {
			return fmt.Errorf("%w (%d bytes free where it is)", syscall.ENOSPC, free)
		}
	}
	var lim syscall.Rlimit
	if st, err := os.Stat(name); err == nil && syscall.Getrlimit(syscall.RLIMIT_FSIZE, &lim) == nil &&
		lim.Cur < 1<<62 && uint64(st.Size())+lowSpace >= uint64(lim.Cur) {
		return fmt.Errorf("%w (this process may write files of up to %d bytes)", syscall.EFBIG, lim.Cur)
	}
	return errors.New("cause unknown: OpenCV reports no write errors")
}
