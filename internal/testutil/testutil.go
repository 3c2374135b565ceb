// Package testutil holds what the tests of several packages share: the
// end-of-run leak check and finding the external tools the setup script
// installs. Only _test files import it.
package testutil

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"framehub/internal/procstat"
	"framehub/internal/testcam"
)

// Check is for TestMain: given m.Run's exit code, it fails a passing run
// if a goroutine outlived the tests or any extra check reports something,
// and returns the code to exit with. It removes the binaries
// BuildFramehub made. Idle keep-alive connections of the
// shared HTTP client are closed first: they belong to the client, not to
// the code under test.
func Check(code int, extra ...func() error) int { return check(code, nil, extra) }

// CheckServer is Check for a package whose code under test makes no HTTP
// requests (the hub): goroutines of the tests' own HTTP client connections
// are not counted, since only the tests could have made them. (A dial the
// client's transport finished after its request had been served by
// another connection can go idle after the last cleanup closed the idle
// ones; the hub tests met that now and then.)
func CheckServer(code int, extra ...func() error) int {
	return check(code, []goleak.Option{
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	}, extra)
}

// CheckIgnoring is Check that also allows goroutines whose top function
// is one of lasting: goroutines the code under test keeps for the life
// of the process by design (the viewer's GUI thread).
func CheckIgnoring(code int, lasting []string, extra ...func() error) int {
	var opts []goleak.Option
	for _, f := range lasting {
		opts = append(opts, goleak.IgnoreTopFunction(f))
	}
	return check(code, opts, extra)
}

func check(code int, opts []goleak.Option, extra []func() error) int {
	removeBuilds()
	http.DefaultClient.CloseIdleConnections()
	if code != 0 {
		return code
	}
	err := goleak.Find(opts...)
	if err != nil && strings.Contains(err.Error(), "persistConn") {
		// A keep-alive connection a test's last request left may only now
		// have gone back to the pool: close idle ones again and look once more.
		http.DefaultClient.CloseIdleConnections()
		err = goleak.Find(opts...)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "goroutine leak:", err)
		code = 1
	}
	for _, check := range extra {
		if err := check(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	return code
}

// RequireTool finds a command. On a developer's machine without it the
// test is skipped; in CI, where scripts/setup.sh installs it, it fails.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not installed (scripts/setup.sh installs it)", name)
		}
		t.Skipf("%s not installed; run scripts/setup.sh", name)
	}
	return p
}

// RequireFile checks that a file the setup script installs (test data
// from Debian's opencv-doc or opencv-data) exists, and returns its path. On
// a developer's machine without it the test is skipped; in CI it fails.
func RequireFile(t testing.TB, path string) string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s: %v (scripts/setup.sh installs it)", path, err)
		}
		t.Skipf("%s: %v; run scripts/setup.sh", path, err)
	}
	return path
}

// FakeJPEG returns a size-byte payload that passes every check the hub
// makes on a JPEG without decoding it: SOI, a baseline frame header (SOF0)
// stating w×h, a scan header, then filler bytes derived from seed (so a
// test can tell frames apart by content). It is not decodable. size is
// raised to the 31 bytes of markers if smaller.
func FakeJPEG(w, h int, seed uint64, size int) []byte {
	head := []byte{0xFF, 0xD8,
		0xFF, 0xC0, 0x00, 0x0B, 0x08, byte(h >> 8), byte(h), byte(w >> 8), byte(w), 0x01, 0x01, 0x11, 0x00,
		0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00}
	b := make([]byte, max(size, len(head)+2))
	n := copy(b, head)
	for i := n; i < len(b)-2; i++ {
		b[i] = byte(seed+uint64(i)) & 0x7F // never 0xFF: no marker inside the filler
	}
	b[len(b)-2], b[len(b)-1] = 0xFF, 0xD9
	return b
}

// BombJPEG returns a JPEG of a few hundred bytes that decoders accept and
// that states a w×h picture in its frame header: a 16×16 gray picture
// with its size rewritten. libjpeg (and so OpenCV) allocates the whole
// picture, warns about the missing data and fills it in; Go's decoder
// fails after reading the header. Unlike FakeJPEG, it is what a hostile
// publisher would send to make viewers allocate.
func BombJPEG(w, h int) []byte {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, image.NewGray(image.Rect(0, 0, 16, 16)), nil); err != nil {
		panic(err) // encoding to memory does not fail
	}
	b := buf.Bytes()
	for i := 2; i+9 < len(b); i++ {
		if b[i] == 0xFF && b[i+1] == 0xC0 { // SOF0: length(2) precision(1) height(2) width(2)
			b[i+5], b[i+6], b[i+7], b[i+8] = byte(h>>8), byte(h), byte(w>>8), byte(w)
			return b
		}
	}
	panic("testutil: Go's JPEG encoder wrote no SOF0")
}

// JPEG returns a real, decodable JPEG of w×h, as a camera would send: a
// gradient with a white bar whose position, and a background level, depend
// on i, so consecutive frames differ.
func JPEG(w, h, i int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	bar := (i * 7) % max(w, 1)
	for y := range h {
		for x := range w {
			c := color.RGBA{byte(x * 255 / max(w, 1)), byte(y * 255 / max(h, 1)), byte(40 + (i*9)%160), 255}
			if x >= bar && x < bar+max(w/16, 1) {
				c = color.RGBA{255, 255, 255, 255}
			}
			img.SetRGBA(x, y, c)
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 85}); err != nil {
		panic(err) // encoding to memory does not fail
	}
	return b.Bytes()
}

// LockedBuffer collects output (a logger's, a child process's) written
// from several goroutines.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns what was written so far.
func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Repeat returns a reader that yields b n times, like a stream of unknown
// length (an upload body, ffmpeg's -f mjpeg on stdin), without holding n
// copies.
func Repeat(b []byte, n int) io.Reader { return &repeatReader{b: b, n: n} }

type repeatReader struct {
	b    []byte
	n, i int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	k := copy(p, r.b[r.i:])
	if r.i += k; r.i == len(r.b) {
		r.i, r.n = 0, r.n-1
	}
	return k, nil
}

// Camera starts a test IP camera (package testcam) and stops it when the
// test ends. Without GStreamer's RTSP server the test is skipped; in CI,
// where scripts/setup.sh installs it, it fails.
func Camera(t testing.TB, opt testcam.Options) *testcam.Camera {
	t.Helper()
	if err := testcam.Available(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("test camera: %v (scripts/setup.sh installs it)", err)
		}
		t.Skipf("test camera: %v; run scripts/setup.sh", err)
	}
	c, err := testcam.Start(opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Stop()
		if t.Failed() {
			t.Logf("test camera stderr:\n%s", c.Logs())
		}
	})
	return c
}

// Children returns the IDs of the running processes whose parent is ppid
// and whose command name is comm (Linux; elsewhere none).
func Children(ppid int, comm string) []int { return procstat.Children(ppid, comm) }

// Alive reports whether process pid runs (Linux: it exists and is not a
// zombie waiting to be reaped).
func Alive(pid int) bool { return procstat.Alive(pid) }

// Median returns the median of xs (the upper one of an even count), or 0
// for none. It sorts a copy: xs keeps its order.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// Eventually polls cond every 10 ms until it holds, and fails the test
// with what it was waiting for if d passes first. It is the one way tests
// wait for something to happen: on a state or a counter, never on a sleep
// that guesses how long it takes.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
