package subscriber

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"framehub/internal/hubtest"
	"framehub/protocol"
)

// pushFrames publishes frames to channel at one per interval, numbering
// them from 1 and stamping the capture time of those that have none with
// the time of sending. It returns when all are sent or ctx ends.
func pushFrames(t *testing.T, ctx context.Context, addr, channel string, interval time.Duration, frames []protocol.Frame) {
	t.Helper()
	hubtest.Publish(t, ctx, addr, channel, interval, frames)
}

// waitSubscribers waits until the hub at addr counts n subscribers.
func waitSubscribers(t *testing.T, addr string, n int) {
	t.Helper()
	hubtest.WaitSubscribers(t, addr, n, 15*time.Second)
}

// resetPeakRSS makes the kernel forget this process's peak resident size
// (VmHWM), so that peakRSS measures from now on.
func resetPeakRSS(t *testing.T) {
	t.Helper()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Skipf("cannot reset the peak RSS on this system: %v", err)
	}
}

// peakRSS returns a process's peak resident size in bytes, from
// /proc/PID/status ("self" for this one). The kernel's counts are
// approximate, so a difference of two may be slightly negative.
func peakRSS(t *testing.T, pid string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatalf("peak RSS: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmHWM:" {
			kb, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				t.Fatalf("peak RSS: %q", line)
			}
			return int64(kb << 10)
		}
	}
	t.Fatalf("no VmHWM in /proc/%s/status", pid)
	return 0
}
