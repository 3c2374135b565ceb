//go:build !unix

package subscriber

import (
	"errors"
	"io/fs"
	"os"
)

const oNoFollow = 0

func lockFile(*os.File) error {
	return errors.New("retention (--keep, --max-size) needs a Unix system")
}

func fileID(fs.FileInfo) (dev, ino uint64, ok bool) { return 0, 0, false }

func freeBytes(string) (int64, bool) { return 0, false }
