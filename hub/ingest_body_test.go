package hub

import (
	"bytes"
	"fmt"
	"image/color"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"framehub/internal/testutil"
	"framehub/protocol"
)

// A broken request body told apart from a client that left: the bytes
// net/http's chunked reader refuses are a malformed upload (400
// bad_upload, counted), while a connection that ends mid-body is a client
// that left (not counted as a refusal, and told so if it still listens).

// TestUploadMalformedTransfer sends, by hand on a TCP connection, uploads
// whose transfer framing is broken after a good frame (and before any):
// each is answered 400 and counted under bad_upload, and the channel keeps
// the good frame.
func TestUploadMalformedTransfer(t *testing.T) {
	h, base := testHub(t, Config{})
	jpg := testJPEG(t, 32, 24, color.RGBA{200, 20, 20, 255})
	good := fmt.Sprintf("%x\r\n%s\r\n", len(part(jpg)), part(jpg))
	// Where a case carries data, it is the start of a boundary line, so
	// that the MJPEG reader waits for more instead of refusing it first.
	ext := "1;" + strings.Repeat("e", 3000) + "\r\n-\r\n"
	for _, c := range []struct{ name, bad string }{
		{"size_of_40_hex_digits", strings.Repeat("f", 40) + "\r\n"},
		{"negative_size", "-5\r\n--ffm\r\n"},
		{"size_of_10KB_line", strings.Repeat("0", 10<<10) + "1\r\n-\r\n"},
		{"extension_of_10KB", "1;" + strings.Repeat("x", 10<<10) + "\r\n-\r\n"},
		{"size_not_hex", "zz\r\n--ffm\r\n"},
		{"empty_size", "\r\n--ffm\r\n"},
		{"bare_LF", "5\n--ffm\r\n"},
		{"CR_inside_line", "5\r;x\r\n--ffm\r\n"},
		{"data_longer_than_size", "5\r\n--ffmpeg\r\n"},
		{"extensions_outweigh_data", strings.Repeat(ext, 8)},
		{"malformed_trailer", "0\r\nnot a header line\r\n\r\n"},
		{"endless_trailer", "0\r\nX-A: " + strings.Repeat("a", 8<<10)},
	} {
		for _, after := range []bool{true, false} {
			name := c.name
			if after {
				name += "_after_a_frame"
			}
			t.Run(name, func(t *testing.T) {
				channel := "bad"
				if !after {
					channel = "fresh"
				}
				before := h.Stats().Refused["bad_upload"]
				frames := channelInfo(h, channel).Frames
				up := startUpload(t, base, "/channels/"+channel+"/stream.mjpeg")
				if after {
					if _, err := io.WriteString(up.c, good); err != nil {
						t.Fatal(err)
					}
					frames++
					testutil.Eventually(t, 5*time.Second, "the good frame", func() bool { return channelInfo(h, channel).Frames == frames })
				}
				// The client may get its answer (and a reset) before it has
				// written everything: a write error is fine.
				_ = up.c.SetWriteDeadline(time.Now().Add(3 * time.Second))
				_, _ = io.WriteString(up.c, c.bad)
				a := up.wait(t, 5*time.Second)
				if a.status != http.StatusBadRequest || !strings.Contains(a.body, "malformed request body") {
					t.Fatalf("answered %d %q (%v); want 400 saying the body is malformed", a.status, a.body, a.err)
				}
				if n := h.Stats().Refused["bad_upload"]; n != before+1 {
					t.Fatalf("refused[bad_upload] = %d; want %d", n, before+1)
				}
				if after {
					if code, got := snapshotBody(t, base, channel); code != 200 || !bytes.Equal(got, jpg) {
						t.Fatalf("snapshot: %d, %d bytes; want the good frame", code, len(got))
					}
				}
				if n := channelInfo(h, channel).Frames; n != frames {
					t.Fatalf("channel has %d frames; want %d: nothing of the broken chunk is published", n, frames)
				}
			})
		}
	}
	hubWait(t, h, "every upload to leave", func(st protocol.Stats) bool { return st.Publishers == 0 })
}

// TestUploadCutShort: a client that stops mid-body (its connection ends
// inside a chunk, or before its Content-Length) left; that is not a
// refusal. If it only half-closed, it reads 400 saying the body was cut
// short, never 200.
func TestUploadCutShort(t *testing.T) {
	h, base := testHub(t, Config{})
	jpg := testJPEG(t, 32, 24, color.RGBA{20, 20, 200, 255})
	for _, c := range []struct {
		name, file string
		headers    []string
		body       string
	}{
		{"inside_a_chunk", "stream.mjpeg", nil, fmt.Sprintf("%x\r\n%s\r\n100\r\nabc", len(part(jpg)), part(jpg))},
		{"inside_a_size_line", "stream.mjpeg", nil, "1"},
		{"before_content_length", "snapshot.jpg", []string{"Content-Type: image/jpeg", fmt.Sprintf("Content-Length: %d", len(jpg))}, string(jpg[:len(jpg)/2])},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := h.Stats().Refused
			up := startUpload(t, base, "/channels/cut/"+c.file, c.headers...)
			if _, err := io.WriteString(up.c, c.body); err != nil {
				t.Fatal(err)
			}
			if err := up.c.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			a := up.wait(t, 5*time.Second)
			if a.status != http.StatusBadRequest || !strings.Contains(a.body, "cut short") {
				t.Fatalf("answered %d %q (%v); want 400 saying the body was cut short", a.status, a.body, a.err)
			}
			hubWait(t, h, "the upload to leave", func(st protocol.Stats) bool { return st.Publishers == 0 })
			for r, n := range h.Stats().Refused {
				if n != before[r] {
					t.Errorf("refused[%s] went from %d to %d; a client that left is not a refusal", r, before[r], n)
				}
			}
		})
	}
}
