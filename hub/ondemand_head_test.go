package hub

import (
	"net/http"
	"testing"
	"time"

	"framehub/internal/testutil"
	"framehub/protocol"
)

// TestHeadDoesNotWakeOnDemand: a HEAD of an idle on-demand channel's
// snapshot (how the page checks its token before it subscribes) or MJPEG
// stream is answered at once from what the hub holds, and its publisher
// is told of no viewer: before, each such request woke the camera (opened
// the device) and let it go again.
func TestHeadDoesNotWakeOnDemand(t *testing.T) {
	_, base := testHub(t, Config{})
	pub := dial(t, base, protocol.PathPublish, "cam?on_demand=1")
	counts := viewerCounts(t, pub)
	nextCount(t, counts, 0)
	for _, c := range []struct {
		path, seq string
		status    int
	}{
		{"/channels/cam/snapshot.jpg", "", http.StatusNotFound}, // no frame yet
		{"/channels/cam/stream.mjpeg", "", http.StatusOK},
	} {
		start := time.Now()
		resp, err := http.Head(base + c.path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Fatalf("HEAD %s: %d; want %d", c.path, resp.StatusCode, c.status)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("HEAD %s took %v; want an answer at once", c.path, d)
		}
	}
	send(t, pub, frameMsg(7, 8, 8, fakeJPEG(8, 8, 7, 200), nil))
	testutil.Eventually(t, 5*time.Second, "the frame", func() bool {
		resp, err := http.Head(base + "/channels/cam/snapshot.jpg")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK && resp.Header.Get("X-Frame-Seq") == "7"
	})
	select {
	case n := <-counts:
		t.Fatalf("the publisher was told of %d viewers by HEAD requests; want none", n)
	case <-time.After(300 * time.Millisecond):
	}
	// A GET still wakes it (TestOnDemandSnapshotWaitsForAFreshFrame).
	go func() {
		resp, err := http.Get(base + "/channels/cam/snapshot.jpg")
		if err == nil {
			resp.Body.Close()
		}
	}()
	nextCount(t, counts, 1)
}
