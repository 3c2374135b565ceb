package main

import (
	"encoding/json"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"framehub/internal/hubtest"
	"framehub/internal/testutil"
	"framehub/protocol"
)

// vmHWM returns a process's peak resident memory, from /proc.
func vmHWM(t *testing.T, pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/PID/status")
	return 0
}

// TestUploadOfAGigabyteStaysBounded uploads 1 GiB of 4 MiB JPEGs in one
// POST to a hub process, with a subscriber watching, and samples the
// hub's frame memory and heap throughout: they stay a few frames' worth,
// whatever the upload's length, since the hub holds the JPEG being read
// and the channel's newest, never the upload.
func TestUploadOfAGigabyteStaysBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("uploads 1 GiB")
	}
	const frameSize, n = 4 << 20, 256
	hp, addr := startHub(t, nocgoBin)
	_, in := hubtest.Subscribe(t, addr, "big", "")
	var (
		mu                sync.Mutex
		peakMem, peakHeap uint64
		samples           int
	)
	stop := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for {
			if st, err := hubtest.Stats(addr); err == nil {
				mu.Lock()
				peakMem, peakHeap = max(peakMem, st.FrameMemoryBytes), max(peakHeap, st.HeapBytes)
				samples++
				mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	start := time.Now()
	resp, err := http.Post("http://"+addr+"/channels/big/stream.mjpeg", "image/jpeg",
		testutil.Repeat(testutil.FakeJPEG(1920, 1080, 7, frameSize), n))
	if err != nil {
		t.Fatal(err)
	}
	var res protocol.UploadResult
	err = json.NewDecoder(resp.Body).Decode(&res)
	resp.Body.Close()
	elapsed := time.Since(start)
	close(stop)
	<-polled
	if resp.StatusCode != 200 || err != nil || res.Frames+res.Dropped != n || res.Seq == 0 {
		t.Fatalf("upload answered %d %+v %v; want 200 and all %d frames", resp.StatusCode, res, err, n)
	}
	var last protocol.Frame
	for f := hubtest.Next(t, in, 5*time.Second); ; f = hubtest.Next(t, in, 5*time.Second) {
		if last = f; f.Seq == res.Seq {
			break
		}
	}
	if len(last.Payload) != frameSize || last.Width != 1920 {
		t.Fatalf("the subscriber's last frame: %d bytes, %dx%d", len(last.Payload), last.Width, last.Height)
	}
	rss := vmHWM(t, hp.cmd.Process.Pid)
	mib := func(b uint64) float64 { return float64(b) / (1 << 20) }
	t.Logf("1 GiB in %v (%.0f MB/s, %.0f frames/s; %d relayed, %d dropped): peak frame memory %.1f MiB, peak heap %.1f MiB, hub peak RSS %.1f MiB (%d samples)",
		elapsed.Round(time.Millisecond), float64(n*frameSize)/1e6/elapsed.Seconds(), float64(n)/elapsed.Seconds(),
		res.Frames, res.Dropped, mib(peakMem), mib(peakHeap), mib(rss), samples)
	if samples < 10 {
		t.Fatalf("only %d samples of the hub's stats during the upload", samples)
	}
	// What the budget counts: the read buffer (at most twice a JPEG plus
	// slack, briefly the old one too) and the newest frames: about 6
	// frames at the worst moment.
	if peakMem > 8*frameSize {
		t.Errorf("peak frame memory %.1f MiB during a 1 GiB upload; want at most 8 frames (32 MiB)", mib(peakMem))
	}
	if peakHeap > 24*frameSize || rss > 40*frameSize {
		t.Errorf("peak heap %.1f MiB, RSS %.1f MiB during a 1 GiB upload; want them bounded by a few frames, far below the upload", mib(peakHeap), mib(rss))
	}
}
