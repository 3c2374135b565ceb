package static_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"framehub/hub"
	"framehub/protocol"
)

// TestSkippedFramesAgreeWithGo: the page counts skipped frames by every
// shared case of protocol/testdata/skipped.json as Go's
// protocol.SkippedFrames does (and the Python client's skipped_frames), so
// a sequence number jumping to 2^64−1 makes no viewer report 1.8e19
// skipped frames.
func TestSkippedFramesAgreeWithGo(t *testing.T) {
	s := startHub(t, "127.0.0.1:0", hub.Config{})
	ctx := browser(t)
	navigate(t, ctx, s.url()+"/view/none")
	raw, err := os.ReadFile(filepath.Join("..", "protocol", "testdata", "skipped.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Cases []struct {
			Name      string `json:"name"`
			Prev      string `json:"prev"`
			Seq       string `json:"seq"`
			ElapsedMS int64  `json:"elapsed_ms"`
			Want      string `json:"want"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	cases, _ := json.Marshal(doc.Cases)
	got := eval[[]string](t, ctx, `(`+string(cases)+`).map((c) => String(FH.skippedFrames(BigInt(c.prev), BigInt(c.seq), c.elapsed_ms)))`)
	for i, c := range doc.Cases {
		if i >= len(got) || got[i] != c.Want {
			t.Errorf("%s: the page counts %v skipped; want %s (Go)", c.Name, got[min(i, len(got)-1)], c.Want)
		}
	}
	consts := eval[[]int](t, ctx, `[FH.MAX_CAPTURE_FPS, FH.SKIP_SLACK]`)
	if len(consts) != 2 || consts[0] != protocol.MaxCaptureFPS || consts[1] != protocol.SkipSlack {
		t.Errorf("page constants %v; want %d, %d", consts, protocol.MaxCaptureFPS, protocol.SkipSlack)
	}
}
