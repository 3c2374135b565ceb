package protocol

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// skippedCase is one of testdata/skipped.json, which the page's and the
// Python client's tests read too.
type skippedCase struct {
	Name      string `json:"name"`
	Prev      string `json:"prev"`
	Seq       string `json:"seq"`
	ElapsedMS int64  `json:"elapsed_ms"`
	Want      string `json:"want"`
}

func TestSkippedFrames(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "skipped.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Cases []skippedCase }
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	num := func(s string) uint64 {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, c := range doc.Cases {
		if got := SkippedFrames(num(c.Prev), num(c.Seq), time.Duration(c.ElapsedMS)*time.Millisecond); got != num(c.Want) {
			t.Errorf("%s: SkippedFrames(%s, %s, %d ms) = %d; want %s", c.Name, c.Prev, c.Seq, c.ElapsedMS, got, c.Want)
		}
	}
}
