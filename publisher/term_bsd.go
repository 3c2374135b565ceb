//go:build darwin || freebsd || netbsd || openbsd || dragonfly

package publisher

import "golang.org/x/sys/unix"

// isTerminal reports whether fd is a terminal (not /dev/null, which is a
// character device too).
func isTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TIOCGETA)
	return err == nil
}
