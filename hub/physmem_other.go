//go:build !linux && !darwin && !freebsd && !netbsd && !openbsd && !dragonfly

package hub

// physicalMemory is unknown here: DefaultMaxMemory falls back to its
// fixed default.
func physicalMemory() int64 { return 0 }
