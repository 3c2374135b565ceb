package hub

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/color"
	"image/jpeg"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"framehub/internal/testutil"
	"framehub/protocol"
)

// Uploads (ingest.go): publishing over HTTP, driven as ffmpeg, curl and
// cameras drive it.

// post sends one upload with net/http and returns the status and body.
func post(t *testing.T, u, contentType string, body []byte, hd http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hd {
		req.Header[k] = v
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// rawUpload is an upload written by hand on a TCP connection, chunk by
// chunk, as ffmpeg sends it (chunked, and no Content-Type unless given),
// so a test controls every byte and when it goes.
type rawUpload struct {
	c      net.Conn
	answer chan uploadAnswer
}

type uploadAnswer struct {
	status int
	body   string
	err    error
}

func startUpload(t *testing.T, base, path string, headers ...string) *rawUpload {
	t.Helper()
	u, _ := url.Parse(base)
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	req := "POST " + path + " HTTP/1.1\r\nHost: " + u.Host + "\r\n"
	chunked := true
	for _, h := range headers {
		req += h + "\r\n"
		chunked = chunked && !strings.HasPrefix(strings.ToLower(h), "content-length:")
	}
	if chunked {
		req += "Transfer-Encoding: chunked\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	r := &rawUpload{c: c, answer: make(chan uploadAnswer, 1)}
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			r.answer <- uploadAnswer{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		r.answer <- uploadAnswer{status: resp.StatusCode, body: string(b)}
	}()
	t.Cleanup(func() { c.Close() })
	return r
}

// send writes b as one chunk.
func (r *rawUpload) send(b []byte) error {
	_ = r.c.SetWriteDeadline(time.Now().Add(3 * time.Second))
	_, err := r.c.Write(fmt.Appendf(nil, "%x\r\n%s\r\n", len(b), b))
	return err
}

// end writes the last chunk.
func (r *rawUpload) end() error {
	_, err := io.WriteString(r.c, "0\r\n\r\n")
	return err
}

// wait returns the hub's answer, failing the test if none comes within d.
func (r *rawUpload) wait(t *testing.T, d time.Duration) uploadAnswer {
	t.Helper()
	select {
	case a := <-r.answer:
		return a
	case <-time.After(d):
		t.Fatalf("no answer to the upload within %v", d)
	}
	return uploadAnswer{}
}

// part is one part as ffmpeg's mpjpeg writes it, boundary line included.
func part(jpg []byte) []byte {
	return fmt.Appendf(nil, "--ffmpeg\r\nContent-type: image/jpeg\r\nContent-length: %d\r\n\r\n%s\r\n", len(jpg), jpg)
}

func channelInfo(h *Hub, name string) protocol.ChannelInfo {
	for _, c := range h.Channels() {
		if c.Name == name {
			return c
		}
	}
	return protocol.ChannelInfo{}
}

// TestUploadFFmpeg has real ffmpeg publish a 3 s test pattern at 30 fps,
// as multipart (-f mpjpeg, POSTed chunked with no Content-Type) and as
// bare concatenated JPEGs (-f mjpeg), each to a channel with a subscriber
// watching: every frame is published, and the subscriber sees 640x360
// JPEGs that decode, numbered by the hub in order.
func TestUploadFFmpeg(t *testing.T) {
	ffmpeg := testutil.RequireTool(t, "ffmpeg")
	h, base := testHub(t, Config{})
	formats := []string{"mpjpeg", "mjpeg"}
	// Each subscriber is read while ffmpeg runs, until frame 90 comes.
	got := map[string]*[]protocol.Frame{}
	collected := make(chan struct{}, len(formats))
	for _, f := range formats {
		in := frames(t, dial(t, base, protocol.PathSubscribe, f))
		dst := new([]protocol.Frame)
		got[f] = dst
		go func() {
			defer func() { collected <- struct{}{} }()
			deadline := time.After(40 * time.Second)
			for {
				select {
				case fr, ok := <-in:
					if !ok {
						return
					}
					*dst = append(*dst, fr)
					if fr.Seq >= 90 {
						return
					}
				case <-deadline:
					return
				}
			}
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errs := make(chan error, len(formats))
	start := time.Now()
	for _, f := range formats {
		go func() {
			out, err := exec.CommandContext(ctx, ffmpeg, "-v", "error", "-re", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
				"-t", "3", "-f", f, base+"/channels/"+f+"/stream.mjpeg").CombinedOutput()
			if err != nil {
				err = fmt.Errorf("ffmpeg -f %s: %v\n%s", f, err, out)
			}
			errs <- err
		}()
	}
	for range formats {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for range formats {
		<-collected
	}
	elapsed := time.Since(start)
	for _, f := range formats {
		in := channelInfo(h, f)
		if in.Frames != 90 || in.Dropped != 0 || in.Width != 640 || in.Height != 360 || in.Seq != 90 {
			t.Errorf("-f %s: channel has %d frames (%d dropped) of %dx%d, seq %d; want all 90 of 640x360", f, in.Frames, in.Dropped, in.Width, in.Height, in.Seq)
		}
		got := *got[f]
		var prev uint64
		for _, fr := range got {
			if fr.Seq <= prev || fr.Width != 640 || fr.Height != 360 || fr.Codec != protocol.CodecJPEG {
				t.Fatalf("-f %s: frame seq %d (after %d), %dx%d codec %v; want increasing seqs of 640x360 JPEG", f, fr.Seq, prev, fr.Width, fr.Height, fr.Codec)
			}
			prev = fr.Seq
		}
		if len(got) < 80 || prev != 90 {
			t.Fatalf("-f %s: subscriber got %d frames, the last %d; want nearly all 90, ending with 90", f, len(got), prev)
		}
		if cfg, err := jpeg.DecodeConfig(bytes.NewReader(got[len(got)-1].Payload)); err != nil || cfg.Width != 640 || cfg.Height != 360 {
			t.Fatalf("-f %s: the last frame does not decode as a 640x360 JPEG: %v %+v", f, err, cfg)
		}
		t.Logf("ffmpeg -f %s: 90 frames published in %v, subscriber got %d", f, elapsed.Round(time.Millisecond), len(got))
	}
	if st := h.Stats(); st.PublishersTotal != 2 || st.Publishers != 0 || st.FramesIn != 180 {
		t.Errorf("stats: %d publishers in all, %d now, %d frames in; want 2, 0, 180", st.PublishersTotal, st.Publishers, st.FramesIn)
	}
}

// TestUploadSnapshot posts single JPEGs as curl does: a later GET returns
// exactly the bytes posted, subscribers get an ordinary frame, and
// sequence numbers go on from one POST to the next.
func TestUploadSnapshot(t *testing.T) {
	curl := testutil.RequireTool(t, "curl")
	h, base := testHub(t, Config{})
	sub := frames(t, dial(t, base, protocol.PathSubscribe, "cam"))
	file := filepath.Join(t.TempDir(), "frame.jpg")
	for i, c := range []color.RGBA{{255, 0, 0, 255}, {0, 0, 255, 255}} {
		jpg := testJPEG(t, 320, 240, c)
		if err := os.WriteFile(file, jpg, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(curl, "-sS", "-X", "POST", "--data-binary", "@"+file, "-H", "Content-Type: image/jpeg",
			"-w", "\n%{http_code}", base+"/channels/cam/snapshot.jpg").Output()
		if err != nil || !strings.HasSuffix(string(out), "\n200") {
			t.Fatalf("curl: %v %s", err, out)
		}
		var res protocol.UploadResult
		if err := json.Unmarshal(bytes.TrimSuffix(out, []byte("\n200")), &res); err != nil || res.Frames != 1 ||
			res.Seq != uint64(i+1) || res.Width != 320 || res.Height != 240 || res.Bytes != uint64(len(jpg)) {
			t.Fatalf("curl's answer %s: %+v %v", out, res, err)
		}
		code, got := snapshotBody(t, base, "cam")
		if code != 200 || !bytes.Equal(got, jpg) {
			t.Fatalf("GET snapshot: %d, %d bytes; want 200 and exactly the %d bytes posted", code, len(got), len(jpg))
		}
		f := <-sub
		if f.Seq != uint64(i+1) || f.Width != 320 || f.Height != 240 || f.Flags != protocol.FlagKey || f.Meta != nil || !bytes.Equal(f.Payload, jpg) {
			t.Fatalf("subscriber got seq %d %dx%d flags %v, %d bytes; want the posted JPEG as frame %d", f.Seq, f.Width, f.Height, f.Flags, len(f.Payload), i+1)
		}
		if age := time.Since(time.Unix(0, f.CaptureTime)); age < 0 || age > 5*time.Second {
			t.Fatalf("capture time %v ago; want the time it arrived", age)
		}
	}
	// A capture time given by the sender is kept; no Content-Type is fine.
	jpg := testJPEG(t, 16, 16, color.RGBA{0, 255, 0, 255})
	code, body := post(t, base+"/channels/cam/snapshot.jpg", "", jpg, http.Header{protocol.HeaderCaptureTime: {"1700000000123456789"}})
	if f := <-sub; code != 200 || f.CaptureTime != 1700000000123456789 || f.Seq != 3 {
		t.Fatalf("POST with X-Capture-Time: %d %s; frame %d captured %d", code, body, f.Seq, f.CaptureTime)
	}
	if st := h.Stats(); st.PublishersTotal != 3 || st.FramesIn != 3 {
		t.Fatalf("stats: %d publishers, %d frames; want 3, 3", st.PublishersTotal, st.FramesIn)
	}
	if in := channelInfo(h, "cam"); in.Live {
		t.Fatalf("channel live after its snapshot POSTs ended: %+v", in)
	}
}

// TestUploadBadInput sends each kind of bad upload to a channel that has
// a good frame: each gets its status, is counted under its reason, and
// the channel keeps its frame.
func TestUploadBadInput(t *testing.T) {
	h, base := testHub(t, Config{MaxFrameBytes: 256 << 10})
	good := testJPEG(t, 64, 48, color.RGBA{10, 200, 30, 255})
	if code, body := post(t, base+"/channels/cam/snapshot.jpg", "image/jpeg", good, nil); code != 200 {
		t.Fatalf("good snapshot: %d %s", code, body)
	}
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR")
	noSOF := cat(fakeJPEG(8, 8, 1, 40)[:2], []byte{0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 63, 0, 1, 2, 3, 0xFF, 0xD9})
	huge := fakeJPEG(600, 600, 1, 300<<10)
	for _, c := range []struct {
		name, file, ctype string
		body              []byte
		status            int
		reason, says      string
	}{
		{"png_as_jpeg", "snapshot.jpg", "image/jpeg", png, 415, "unsupported_media_type", "not a JPEG"},
		{"text_type", "stream.mjpeg", "text/plain", good, 415, "unsupported_media_type", "text/plain"},
		{"curl_form_default", "snapshot.jpg", "application/x-www-form-urlencoded", good, 415, "unsupported_media_type", "Content-Type: image/jpeg"},
		{"multipart_snapshot", "snapshot.jpg", "multipart/x-mixed-replace; boundary=x", good, 415, "unsupported_media_type", "one JPEG"},
		{"part_without_soi", "stream.mjpeg", "", []byte("--ffmpeg\r\nContent-length: 5\r\n\r\nhello\r\n--ffmpeg\r\n"), 415, "unsupported_media_type", "SOI"},
		{"part_without_eoi", "stream.mjpeg", "", part(good[:len(good)-2]), 400, "bad_upload", "no EOI"},
		{"stream_cut_in_a_jpeg", "stream.mjpeg", "image/jpeg", cat(good, good[:500]), 400, "bad_upload", "no EOI"},
		{"multipart_without_boundary", "stream.mjpeg", "multipart/x-mixed-replace", part(good), 400, "bad_upload", "boundary"},
		{"two_jpegs_as_snapshot", "snapshot.jpg", "image/jpeg", cat(good, good), 400, "bad_upload", "one JPEG"},
		{"empty", "snapshot.jpg", "image/jpeg", nil, 400, "bad_upload", "empty"},
		{"no_sof", "snapshot.jpg", "image/jpeg", noSOF, 422, "bad_jpeg", "SOF"},
		{"dimension_bomb", "stream.mjpeg", "", part(testutil.BombJPEG(16384, 16384)), 422, "too_many_pixels", "pixel limit"},
		{"part_over_max_frame_bytes", "stream.mjpeg", "", part(huge), 413, "too_big", "--max-frame-bytes"},
		{"jpeg_over_max_frame_bytes", "snapshot.jpg", "image/jpeg", huge, 413, "too_big", "exceeds limit"},
		{"bad_capture_time_part", "stream.mjpeg", "", []byte("--B\r\nX-Capture-Time: noon\r\n\r\n"), 400, "bad_upload", "X-Capture-Time"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := h.Stats().Refused[c.reason]
			code, body := post(t, base+"/channels/cam/"+c.file, c.ctype, c.body, nil)
			if code != c.status || !strings.Contains(body, c.says) {
				t.Fatalf("%d %q; want %d saying %q", code, body, c.status, c.says)
			}
			if n := h.Stats().Refused[c.reason]; n != before+1 {
				t.Fatalf("refused[%s] = %d; want %d", c.reason, n, before+1)
			}
			if code, got := snapshotBody(t, base, "cam"); code != 200 || !bytes.Equal(got, good) {
				t.Fatalf("snapshot after the refusal: %d, %d bytes; want the last good frame", code, len(got))
			}
		})
	}
	hubWait(t, h, "every upload to leave", func(st protocol.Stats) bool { return st.Publishers == 0 && st.FrameMemoryBytes < 1<<20 })
	// The good frames: the snapshot, and the stream's JPEG before the cut.
	if in := channelInfo(h, "cam"); in.Frames != 2 {
		t.Fatalf("channel has %d frames; want only the 2 good ones", in.Frames)
	}
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func hubWait(t *testing.T, h *Hub, what string, cond func(protocol.Stats) bool) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, what, func() bool { return cond(h.Stats()) })
}

// TestUploadStalled: an upload that stops sending mid-frame is ended
// after the pong wait, answered 408 and counted; the frames it published
// stay.
func TestUploadStalled(t *testing.T) {
	h, base := testHub(t, Config{PingInterval: 100 * time.Millisecond, PongWait: 400 * time.Millisecond})
	jpg := testJPEG(t, 32, 32, color.RGBA{1, 2, 3, 255})
	up := startUpload(t, base, "/channels/cam/stream.mjpeg")
	if err := up.send(cat(part(jpg), part(jpg)[:100])); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	a := up.wait(t, 5*time.Second)
	if a.status != http.StatusRequestTimeout || !strings.Contains(a.body, "stalled") || !strings.Contains(a.body, "frames published: 1") {
		t.Fatalf("stalled upload answered %d %q (%v); want 408", a.status, a.body, a.err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("stalled upload ended after %v; want about the 400 ms pong wait", d)
	}
	hubWait(t, h, "the stall counted and the upload gone", func(st protocol.Stats) bool {
		return st.Refused["stalled_upload"] == 1 && st.Publishers == 0
	})
	if code, got := snapshotBody(t, base, "cam"); code != 200 || !bytes.Equal(got, jpg) {
		t.Fatalf("snapshot: %d; want the frame published before the stall", code)
	}
	// A client that sends headers and never a byte of body is ended too.
	idle := startUpload(t, base, "/channels/idle/snapshot.jpg", "Content-Type: image/jpeg")
	if a := idle.wait(t, 5*time.Second); a.status != http.StatusRequestTimeout {
		t.Fatalf("upload with no body bytes: %d %q", a.status, a.body)
	}
}

// TestUploadTokens: the publish right, as a bearer token or a signed
// token in the URL, with the same 401/403 as WebSocket publishing.
func TestUploadTokens(t *testing.T) {
	pubTok, viewTok := "publish-token-0123456789", "view-token-0123456789ab"
	auth, err := NewAuth([]Grant{{Token: pubTok, Rights: RightPublish, Channels: []string{"*"}},
		{Token: viewTok, Rights: RightView, Channels: []string{"*"}}}, []byte("signing-key-0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	h, base := testHub(t, Config{Auth: auth, DenyDelay: -1})
	exp := time.Now().Add(time.Minute)
	signedPub, _ := auth.Sign("cam", RightPublish, exp)
	signedView, _ := auth.Sign("cam", RightView, exp)
	signedOther, _ := auth.Sign("other", RightPublish, exp)
	expired, _ := auth.Sign("cam", RightPublish, time.Now().Add(-time.Second))
	jpg := testJPEG(t, 16, 16, color.RGBA{9, 9, 9, 255})
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	for _, c := range []struct {
		name   string
		query  string
		hd     http.Header
		status int
	}{
		{"no_token", "", nil, 401},
		{"wrong_token", "", bearer("not-a-token-at-all-xx"), 401},
		{"view_token", "", bearer(viewTok), 403},
		{"publish_token", "", bearer(pubTok), 200},
		{"signed_in_url", "?token=" + signedPub, nil, 200},
		{"signed_view_in_url", "?token=" + signedView, nil, 403},
		{"signed_for_another_channel", "?token=" + signedOther, nil, 403},
		{"expired_in_url", "?token=" + expired, nil, 401},
		{"configured_token_in_url", "?token=" + pubTok, nil, 401},
	} {
		for _, file := range []string{"snapshot.jpg", "stream.mjpeg"} {
			code, body := post(t, base+"/channels/cam/"+file+c.query, "image/jpeg", jpg, c.hd)
			if code != c.status {
				t.Errorf("%s %s: %d %q; want %d", c.name, file, code, body, c.status)
			}
		}
	}
	st := h.Stats()
	if st.FramesIn != 4 || st.Refused["unauthorized"] != 8 || st.Refused["forbidden"] != 6 {
		t.Fatalf("frames %d, unauthorized %d, forbidden %d; want 4, 8, 6", st.FramesIn, st.Refused["unauthorized"], st.Refused["forbidden"])
	}
}

// TestUploadTakeover: an upload takes over from a WebSocket publisher,
// which is closed with 4001; a WebSocket publisher takes over from an
// upload, which is answered 409 and whose connection is closed; an upload
// takes over from an upload.
func TestUploadTakeover(t *testing.T) {
	h, base := testHub(t, Config{})
	sub := frames(t, dial(t, base, protocol.PathSubscribe, "cam"))
	next := func(want string) protocol.Frame {
		t.Helper()
		select {
		case f := <-sub:
			return f
		case <-time.After(3 * time.Second):
			t.Fatalf("no frame from %s", want)
		}
		return protocol.Frame{}
	}
	jpg := func(i int) []byte { return testJPEG(t, 24, 24, color.RGBA{uint8(i * 40), 0, 0, 255}) }

	ws := dial(t, base, protocol.PathPublish, "cam")
	send(t, ws, frameMsg(1, 24, 24, jpg(1), nil))
	next("the websocket publisher")
	up := startUpload(t, base, "/channels/cam/stream.mjpeg")
	if err := up.send(part(jpg(2))); err != nil {
		t.Fatal(err)
	}
	if code, text := closeCode(t, ws); code != protocol.CloseReplaced || !strings.Contains(text, "replaced") {
		t.Fatalf("websocket publisher closed with %d %q; want 4001", code, text)
	}
	if f := next("the upload"); f.Seq != 2 || !bytes.Equal(f.Payload, jpg(2)) {
		t.Fatalf("after the takeover the subscriber got seq %d; want the upload's frame, numbered on from 1 as 2", f.Seq)
	}

	// A WebSocket publisher takes the channel back while the upload is
	// still sending; the upload reads its answer, then its connection is
	// closed, within the drain's bounds.
	sending := make(chan error, 1)
	before := h.Stats().FramesIn
	go func() {
		for {
			if err := up.send(part(jpg(3))); err != nil {
				sending <- err
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	hubWait(t, h, "the upload publishing again", func(st protocol.Stats) bool { return st.FramesIn > before })
	ws2 := dial(t, base, protocol.PathPublish, "cam")
	a := up.wait(t, 3*time.Second)
	if a.status != http.StatusConflict || !strings.Contains(a.body, "replaced by a newer publisher") {
		t.Fatalf("replaced upload answered %d %q (%v); want 409", a.status, a.body, a.err)
	}
	select {
	case <-sending:
	case <-time.After(5 * time.Second):
		t.Fatal("the replaced upload's connection stayed open")
	}
	send(t, ws2, frameMsg(100, 24, 24, jpg(4), nil))
	for f := next("the new websocket publisher"); f.Seq != 100; f = next("the new websocket publisher") {
		if !bytes.Equal(f.Payload, jpg(3)) {
			t.Fatalf("subscriber got seq %d; want the upload's last frames, then the new publisher's 100", f.Seq)
		}
	}

	// An upload takes over from an upload.
	first := startUpload(t, base, "/channels/cam/stream.mjpeg", "Content-Type: image/jpeg")
	if err := first.send(jpg(5)); err != nil {
		t.Fatal(err)
	}
	closeCode(t, ws2)
	next("the first upload")
	second := startUpload(t, base, "/channels/cam/stream.mjpeg", "Content-Type: image/jpeg")
	if err := second.send(jpg(6)); err != nil {
		t.Fatal(err)
	}
	if a := first.wait(t, 3*time.Second); a.status != http.StatusConflict {
		t.Fatalf("first upload answered %d %q; want 409", a.status, a.body)
	}
	next("the second upload")
	if err := second.end(); err != nil {
		t.Fatal(err)
	}
	if a := second.wait(t, 3*time.Second); a.status != 200 || !strings.Contains(a.body, `"frames":1`) {
		t.Fatalf("second upload answered %d %q; want 200", a.status, a.body)
	}
	if st := h.Stats(); st.Replaced != 4 {
		t.Fatalf("replaced = %d; want 4", st.Replaced)
	}
}

// TestUploadLimits: the frame-rate cap drops and counts (one stream, and
// snapshot POSTs in a loop), the channel limit answers 503, the memory
// budget 503, and shutdown ends an upload with 503.
func TestUploadLimits(t *testing.T) {
	jpg := testJPEG(t, 16, 16, color.RGBA{5, 5, 5, 255})
	t.Run("frame_rate_stream", func(t *testing.T) {
		h, base := testHub(t, Config{MaxFPSPerPublisher: 10})
		code, body := post(t, base+"/channels/cam/stream.mjpeg", "image/jpeg", bytes.Repeat(jpg, 100), nil)
		var res protocol.UploadResult
		if err := json.Unmarshal([]byte(body), &res); code != 200 || err != nil || res.Frames+res.Dropped != 100 || res.Frames > 10 {
			t.Fatalf("100 JPEGs at once with a cap of 10 fps: %d %s", code, body)
		}
		if in := channelInfo(h, "cam"); in.Dropped != res.Dropped || h.Stats().FramesDropped != res.Dropped || in.Frames != res.Frames {
			t.Fatalf("channel relayed %d, dropped %d, stats dropped %d; want %d and %d", in.Frames, in.Dropped, h.Stats().FramesDropped, res.Frames, res.Dropped)
		}
	})
	t.Run("frame_rate_snapshots", func(t *testing.T) {
		h, base := testHub(t, Config{MaxFPSPerPublisher: 5})
		got := map[int]int{}
		for range 30 {
			code, _ := post(t, base+"/channels/cam/snapshot.jpg", "image/jpeg", jpg, nil)
			got[code]++
		}
		if got[200] == 0 || got[429] == 0 || got[200]+got[429] != 30 || h.Stats().FramesDropped != uint64(got[429]) {
			t.Fatalf("30 snapshot POSTs in a loop, cap 5 fps: %v, %d dropped; want some 200 and the rest 429", got, h.Stats().FramesDropped)
		}
	})
	t.Run("channels", func(t *testing.T) {
		h, base := testHub(t, Config{MaxChannels: 1})
		dial(t, base, protocol.PathPublish, "a")
		hubWait(t, h, "the publisher of a", func(st protocol.Stats) bool { return st.Publishers == 1 })
		if code, body := post(t, base+"/channels/b/snapshot.jpg", "image/jpeg", jpg, nil); code != 503 || h.Stats().Refused["too_many_channels"] != 1 {
			t.Fatalf("upload to a second channel on a hub for one: %d %q; want 503", code, body)
		}
	})
	t.Run("memory", func(t *testing.T) {
		h, base := testHub(t, Config{MaxMemory: 1 << 20})
		big := fakeJPEG(64, 64, 1, 700<<10)
		code, body := post(t, base+"/channels/cam/snapshot.jpg", "image/jpeg", big, nil)
		if code != 503 || !strings.Contains(body, "memory") || h.Stats().Refused["over_memory_budget"] != 1 {
			t.Fatalf("upload past the memory budget: %d %q; want 503", code, body)
		}
		hubWait(t, h, "nothing left charged", func(st protocol.Stats) bool { return st.FrameMemoryBytes == 0 })
	})
	t.Run("shutdown", func(t *testing.T) {
		h := New(Config{})
		srv := newTestServer(t, h)
		up := startUpload(t, srv, "/channels/cam/stream.mjpeg")
		if err := up.send(part(jpg)); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 3*time.Second, "the frame", func() bool { return h.Stats().FramesIn == 1 })
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown with an upload open: %v", err)
		}
		if a := up.wait(t, 3*time.Second); a.status != 503 || !strings.Contains(a.body, "shutting down") {
			t.Fatalf("upload at shutdown answered %d %q", a.status, a.body)
		}
	})
}

// newTestServer serves h on a loopback port; the test shuts h down itself.
func newTestServer(t *testing.T, h *Hub) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { h.Close(); srv.Close(); <-done; http.DefaultTransport.(*http.Transport).CloseIdleConnections() })
	return "http://" + ln.Addr().String()
}

// TestUploadMethods: the channel URLs take GET, HEAD and POST only.
func TestUploadMethods(t *testing.T) {
	_, base := testHub(t, Config{})
	req, _ := http.NewRequest(http.MethodPut, base+"/channels/cam/snapshot.jpg", strings.NewReader("x"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD, POST" {
		t.Fatalf("PUT: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	if code, _ := post(t, base+"/channels/a%2Fb/snapshot.jpg", "image/jpeg", nil, nil); code != 400 {
		t.Fatalf("POST to a bad channel name: %d; want 400", code)
	}
	if code, _ := post(t, base+"/channels/cam/other.jpg", "image/jpeg", nil, nil); code != 404 {
		t.Fatalf("POST to another file: %d; want 404", code)
	}
	// A web page elsewhere cannot make its visitors' browsers publish.
	jpg := testJPEG(t, 8, 8, color.RGBA{1, 1, 1, 255})
	if code, _ := post(t, base+"/channels/cam/snapshot.jpg", "image/jpeg", jpg, http.Header{"Origin": {"http://evil.example"}}); code != 403 {
		t.Fatalf("cross-origin POST: %d; want 403", code)
	}
	if code, _ := post(t, base+"/channels/cam/snapshot.jpg", "image/jpeg", jpg, http.Header{"Origin": {base}}); code != 200 {
		t.Fatalf("POST from the hub's own origin: %d; want 200", code)
	}
}

// TestUploadDeclaredLengthIsNotAllocated: 40 uploads each declare a
// 15 MiB part and send 4 KB of it: the hub holds what arrived, in its
// first read buffer each, not what they declared.
func TestUploadDeclaredLengthIsNotAllocated(t *testing.T) {
	h, base := testHub(t, Config{MaxFrameBytes: 16 << 20})
	const n = 40
	declared := fmt.Appendf(nil, "--ffmpeg\r\nContent-type: image/jpeg\r\nContent-length: %d\r\n\r\n", 15<<20)
	head := cat(declared, fakeJPEG(8, 8, 1, 8192)[:4096]) // the start of a 15 MiB JPEG
	for i := range n {
		up := startUpload(t, base, fmt.Sprintf("/channels/s%d/stream.mjpeg", i))
		if err := up.send(head); err != nil {
			t.Fatal(err)
		}
	}
	// Every upload reading holds its first buffer: wait until all do (then
	// nothing more arrives to make any of them grow), not until one does.
	hubWait(t, h, "every upload reading", func(st protocol.Stats) bool {
		return st.Publishers == n && st.FrameMemoryBytes >= n*64<<10
	})
	if used := h.Stats().FrameMemoryBytes; used > n*64<<10 {
		t.Fatalf("%d uploads declaring 15 MiB each hold %d bytes; want at most their first 64 KiB buffers", n, used)
	}
	t.Logf("%d uploads declaring 15 MiB each hold %.1f MiB in all", n, float64(h.Stats().FrameMemoryBytes)/(1<<20))
}

// TestUploadExpectContinue: curl sends bodies over 1 MiB only after the
// hub's 100 Continue. A big snapshot goes through; a refused one is
// answered at once, its body never sent.
func TestUploadExpectContinue(t *testing.T) {
	curl := testutil.RequireTool(t, "curl")
	auth, err := NewAuth([]Grant{{Token: "publish-token-0123456789", Rights: RightPublish, Channels: []string{"*"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, base := testHub(t, Config{Auth: auth, DenyDelay: -1})
	big := fakeJPEG(1920, 1080, 3, 3<<20)
	file := filepath.Join(t.TempDir(), "big.jpg")
	if err := os.WriteFile(file, big, 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(token string) (string, time.Duration) {
		args := []string{"-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "--data-binary", "@" + file, "-H", "Content-Type: image/jpeg"}
		if token != "" {
			args = append(args, "-H", "Authorization: Bearer "+token)
		}
		start := time.Now()
		out, err := exec.Command(curl, append(args, base+"/channels/cam/snapshot.jpg")...).CombinedOutput()
		if err != nil {
			t.Fatalf("curl: %v %s", err, out)
		}
		return string(out), time.Since(start)
	}
	if code, _ := run("publish-token-0123456789"); code != "200" {
		t.Fatalf("3 MiB snapshot with Expect: 100-continue: %s; want 200", code)
	}
	if code, got := snapshotBody(t, base, "cam"); code != 401 && !bytes.Equal(got, big) {
		t.Fatalf("snapshot: %d", code)
	}
	code, took := run("")
	if code != "401" || took > 900*time.Millisecond {
		t.Fatalf("3 MiB snapshot without a token: %s after %v; want 401 at once (no 1 s drain, no body sent)", code, took)
	}
}

// BenchmarkPublishPaths publishes the same real 640x360 JPEG (about
// 13 KB) as fast as one client can, through each way in: WebSocket
// frames, an upload of ffmpeg-style multipart parts, an upload of bare
// JPEGs. It reports frames/s and MB/s into the hub (no subscriber).
func BenchmarkPublishPaths(b *testing.B) {
	jpg := testutil.JPEG(640, 360, 1)
	for _, path := range []string{"websocket", "upload_mpjpeg", "upload_bare"} {
		b.Run(path, func(b *testing.B) {
			h := New(Config{MaxFPSPerPublisher: 1e9})
			srv := httptest.NewServer(h)
			defer func() { h.Close(); srv.Close() }()
			b.SetBytes(int64(len(jpg)))
			b.ResetTimer()
			switch path {
			case "websocket":
				c, _, err := websocket.DefaultDialer.Dial(wsURL(srv.URL, protocol.PathPublish, "cam"), nil)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				msg := frameMsg(1, 640, 360, jpg, nil)
				for range b.N {
					if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
						b.Fatal(err)
					}
				}
				for h.Stats().FramesIn < uint64(b.N) {
					time.Sleep(time.Millisecond)
				}
			default:
				unit, ctype := part(jpg), ""
				if path == "upload_bare" {
					unit, ctype = jpg, "image/jpeg"
				}
				resp, err := http.Post(srv.URL+"/channels/cam/stream.mjpeg", ctype, testutil.Repeat(unit, b.N))
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != 200 || h.Stats().FramesIn != uint64(b.N) {
					b.Fatalf("upload: %d, %d frames of %d", resp.StatusCode, h.Stats().FramesIn, b.N)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
		})
	}
}

// TestUploadPaddingIsNotDeclaredIntoMemory: a part that declares 16 MB
// but holds a small JPEG followed by spaces is refused once its JPEG ends
// (at most 1 KiB may follow the EOI), before the hub sizes a buffer by the
// declared length; its memory goes back to the budget.
func TestUploadPaddingIsNotDeclaredIntoMemory(t *testing.T) {
	h, base := testHub(t, Config{MaxFrameBytes: 16 << 20})
	up := startUpload(t, base, "/channels/pad/stream.mjpeg")
	head := fmt.Appendf(nil, "--b\r\nContent-Length: %d\r\n\r\n", 16_000_000)
	if err := up.send(cat(head, fakeJPEG(8, 8, 1, 300), bytes.Repeat([]byte{' '}, 64<<10))); err != nil {
		t.Fatal(err)
	}
	a := up.wait(t, 5*time.Second)
	if a.status != http.StatusBadRequest || !strings.Contains(a.body, "declares 16000000 bytes") {
		t.Fatalf("padded part: %d %q (%v); want 400 naming the declared length", a.status, a.body, a.err)
	}
	hubWait(t, h, "the upload's memory released", func(st protocol.Stats) bool { return st.FrameMemoryBytes == 0 })
	if n := h.Stats().Refused["bad_upload"]; n != 1 {
		t.Fatalf("bad_upload refusals: %d; want 1", n)
	}
}
