//go:build cgo

package publisher

/*
#cgo pkg-config: libavutil
void framehub_av_log_install(void);
*/
import "C"

import (
	"os"
	"strings"
	"sync"
)

// FFmpeg, inside OpenCV, prints its errors on stderr ("[tcp @ 0x…]
// Connection to tcp://… failed: Connection refused", once per attempt).
// While an OpenCV source is open they go instead to its health, which logs
// them as structured lines at a bounded rate and tells the hub the last
// one. FFmpeg has one log callback per process, so the lines go to every
// source open at the time; with none open they go to stderr, FFmpeg's default.
// OPENCV_FFMPEG_DEBUG or OPENCV_FFMPEG_LOGLEVEL in the environment leave
// FFmpeg's logging to OpenCV, as its documentation says.

var avLog struct {
	once  sync.Once
	mu    sync.Mutex
	sinks map[*health]func(string) string // the redaction of each source's URL
}

// captureAVLog sends FFmpeg's log lines to h (redacted) until release.
func captureAVLog(h *health, redact func(string) string) (release func()) {
	if os.Getenv("OPENCV_FFMPEG_DEBUG") != "" || os.Getenv("OPENCV_FFMPEG_LOGLEVEL") != "" {
		return func() {}
	}
	avLog.once.Do(func() { C.framehub_av_log_install() })
	avLog.mu.Lock()
	if avLog.sinks == nil {
		avLog.sinks = map[*health]func(string) string{}
	}
	avLog.sinks[h] = redact
	avLog.mu.Unlock()
	return func() {
		avLog.mu.Lock()
		delete(avLog.sinks, h)
		avLog.mu.Unlock()
	}
}

//export framehubAVLogLine
func framehubAVLogLine(level C.int, line *C.char) {
	text := strings.TrimSpace(C.GoString(line))
	if text == "" {
		return
	}
	avLog.mu.Lock()
	defer avLog.mu.Unlock()
	if len(avLog.sinks) == 0 {
		os.Stderr.WriteString(text + "\n")
		return
	}
	for h, redact := range avLog.sinks {
		h.libError(redact(text))
	}
}
