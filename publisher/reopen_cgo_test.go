//go:build cgo

package publisher

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"framehub/internal/testcam"
	"framehub/internal/testutil"
	"gocv.io/x/gocv"
)

// TestOpenCVCameraReturnsWithItsFirstKeyFrame: an RTSP camera read
// through OpenCV is stopped and started again; the first frame read after
// it returns is from the first key frame interval of its new stream (none
// thrown away while opening, none dropped as stale because its stream time
// started again), and the reopen is logged at debug level with its time.
func TestOpenCVCameraReturnsWithItsFirstKeyFrame(t *testing.T) {
	cam := testutil.Camera(t, testcam.Options{Size: "320x180", FPS: 10, Timecode: true})
	var logs testutil.LockedBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := newHealth(log, nil, time.Second)
	src, err := OpenSource(cam.URL(), SourceOptions{Logger: log, health: h})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	m := gocv.NewMat()
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// madeAfter reads until a frame made after since, and returns when
	// it was made.
	madeAfter := func(since time.Time) time.Time {
		t.Helper()
		for {
			if err := src.Read(ctx, &m); err != nil {
				t.Fatalf("read: %v (health: %s)", err, logs.String())
			}
			img, err := m.ToImage()
			if err != nil {
				t.Fatal(err)
			}
			if at, ok := testcam.Timecode(img); ok && at.After(since) {
				return at
			}
		}
	}
	madeAfter(time.Now())

	cam.Stop()
	stopped := time.Now()
	// The reader finds the camera gone within its socket timeout; it comes
	// back once the camera answers.
	go func() {
		time.Sleep(time.Second)
		if err := cam.Start(); err != nil {
			t.Error(err)
		}
	}()
	firstKept(t, madeAfter(stopped), cam)
	if !strings.Contains(logs.String(), `msg="source open" took_s=`) {
		t.Errorf("the reopen was not logged at debug level:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "dropped a frame") {
		t.Errorf("a frame of the new stream was dropped as stale:\n%s", logs.String())
	}
}
