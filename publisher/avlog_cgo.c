//go:build cgo

// FFmpeg's log lines, as OpenCV's FFmpeg backend makes them, handed to Go
// (avlog_cgo.go) instead of printed on stderr.
#include <stdarg.h>
#include <string.h>
#include <libavutil/log.h>

#include "_cgo_export.h"

static void framehub_av_log(void *avcl, int level, const char *fmt, va_list vl) {
	static __thread int print_prefix = 1;
	char line[512];
	if (level > av_log_get_level()) {
		return;
	}
	av_log_format_line2(avcl, level, fmt, vl, line, sizeof line, &print_prefix);
	framehubAVLogLine(level, line);
}

void framehub_av_log_install(void) { av_log_set_callback(framehub_av_log); }
