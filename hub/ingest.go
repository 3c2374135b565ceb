package hub

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"framehub/protocol"
)

// Uploads: publishing over plain HTTP, for sources that are not WebSocket
// clients. POST /channels/{channel}/stream.mjpeg carries any number of
// JPEGs for as long as the request lasts (ffmpeg -f mpjpeg or -f mjpeg,
// GStreamer, a camera); POST /channels/{channel}/snapshot.jpg carries one
// (curl). An upload is a publisher like any other: it claims its channel
// (503 past MaxChannels), takes it over from the publisher before it and
// is ended when a newer one takes over, counts in the publisher counters,
// and its frames meet every check a WebSocket publisher's do (the same
// limits, the memory budget, the frame-rate cap). Each JPEG becomes a
// frame built exactly as a WebSocket frame is (a protocol header in front
// of the JPEG, in one buffer with room for the WebSocket header, validated
// by protocol.ParseMessage), so subscribers cannot tell the two apart.
//
// The body is split as it streams (protocol.MJPEGReader): the hub holds
// the JPEG being read, in a buffer charged to the budget as bytes arrive,
// never the upload and never what a Content-Length declares. A read that
// waits PongWait for a byte ends the upload (stalled). A body whose HTTP
// framing is broken (net/http's chunked decoder refuses it) is a
// malformed upload, refused; a body cut short by the connection is a
// client that left, not a refusal (see connectionFailure). A refusal is
// answered with its status and a line saying why, counted, logged, and
// the channel keeps its last good frame.

// uploadDrain bounds reading what a refused client still sends, so that it
// reads the refusal before the connection closes (see wsConn.drain).
const (
	uploadDrainWait  = time.Second
	uploadDrainBytes = 4 << 20
)

// upload is one HTTP upload publishing a channel.
type upload struct {
	// Static after construction.
	h *Hub
	localPart
	channel string
	remote  string
	via     string // "stream.mjpeg" or "snapshot.jpg"
	rc      *http.ResponseController
	body    *uploadBody

	ended atomic.Pointer[ending] // why the hub ended it (replaced, shut down), if it did
	mu    sync.Mutex             // orders end against finish
	done  bool                   // the handler is answering: the connection is no longer the upload's to end
}

func (u *upload) local() *localPart  { return &u.localPart }
func (u *upload) remoteAddr() string { return u.remote }

// replacedOn ends an upload that a newer publisher on another hub took
// over, as replaced does.
func (u *upload) replacedOn(hubName string) {
	u.end(ending{kind: endReplaced, detail: "on hub " + hubName})
}

// replaced ends an upload that a newer publisher took over: its read
// fails at once, and it is answered 409.
func (u *upload) replaced() {
	u.h.counters.Replaced.Add(1)
	u.h.logs.Log(slog.LevelInfo, "replaced:"+u.channel, "publisher replaced by a newer one",
		slog.String("channel", u.channel), slog.String("remote", u.remote), slog.String("via", "http "+u.via))
	u.end(ending{kind: endReplaced})
}

// end makes the upload's reads fail from now on, unless its handler is
// already answering. Safe from any goroutine.
func (u *upload) end(why ending) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.done {
		return
	}
	// The reader checks ended after arming its deadline, so one of the
	// two sees the other: either it stops, or this deadline is the last.
	u.ended.CompareAndSwap(nil, &why)
	_ = u.rc.SetReadDeadline(time.Now())
}

// finish tells end that the connection is the handler's again.
func (u *upload) finish() {
	u.mu.Lock()
	u.done = true
	u.mu.Unlock()
}

// uploadBody is an upload's request body: each read may wait PongWait for
// a byte, and fails once the hub has ended the upload. A failure of the
// connection (it broke, stalled, or the client ended it mid-body) comes
// back as readError; a body whose transfer framing net/http refuses (a
// chunk-size line that is not a size, too long, a chunk not ended by CRLF,
// a bad trailer…) comes back wrapped in errBadBody, a malformed upload;
// io.EOF comes back as it is.
type uploadBody struct {
	r     io.Reader
	rc    *http.ResponseController
	wait  time.Duration
	u     *upload // nil before the upload is admitted
	armed time.Time
	n     int64 // bytes read
}

func (b *uploadBody) Read(p []byte) (int, error) {
	// Moving the deadline costs a timer update: do it when an eighth of
	// the wait has passed, so a read waits between 7/8 and all of it.
	if now := time.Now(); now.Sub(b.armed) > b.wait/8 {
		_ = b.rc.SetReadDeadline(now.Add(b.wait))
		b.armed = now
	}
	if b.u != nil && b.u.ended.Load() != nil {
		return 0, readError{errUploadEnded}
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	switch {
	case err == nil || err == io.EOF:
	case connectionFailure(err):
		err = readError{err}
	default:
		err = fmt.Errorf("%w: %w", errBadBody, err)
	}
	return n, err
}

var (
	errUploadEnded = errors.New("upload ended by the hub")
	errBadBody     = errors.New("malformed request body")
)

// connectionFailure tells a body read that failed because of the
// connection from one that failed because of the bytes. The connection:
// a network error (a reset, a timeout, a closed socket) or the bytes
// ending before the body does (io.ErrUnexpectedEOF, as net/http reports a
// connection closed mid-chunk or before the Content-Length). The bytes:
// everything else net/http's body reader returns, which are the errors of
// its chunked decoder and trailer parser; the hub serves HTTP/1.1 only
// (its TLS offers no h2), so those are all it can meet.
func connectionFailure(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// serveUpload serves a POST to /channels/{rawName}/{file}.
func (h *Hub) serveUpload(w http.ResponseWriter, r *http.Request, rawName, file string) {
	rc := http.NewResponseController(w)
	body := &uploadBody{r: r.Body, rc: rc, wait: h.cfg.PongWait}
	// A refusal may be answered before the body is read, and the client
	// then reads it while still sending (see drainUpload); by default
	// net/http would first read up to 256 KiB of body, without a deadline.
	_ = rc.EnableFullDuplex()
	_ = rc.SetReadDeadline(time.Now().Add(h.cfg.PongWait))
	body.armed = time.Now()
	name, ok := h.channelFromPath(w, r, rawName)
	if !ok || !h.authorize(w, r, name, RightPublish, true) {
		drainUpload(r, rc, body)
		return
	}
	only, ok := h.renditionFromQuery(w, r) // ?rendition=320: this upload is that rendition of the channel
	if !ok {
		drainUpload(r, rc, body)
		return
	}
	opt, err := protocol.ParseMJPEGContentType(r.Header.Get("Content-Type"))
	if err == nil && file == protocol.UploadSnapshot {
		if opt.Boundary != "" {
			err = fmt.Errorf("%w: a snapshot is one JPEG (Content-Type: image/jpeg), not %s", protocol.ErrNotJPEG, r.Header.Get("Content-Type"))
		}
		opt.Bare, opt.Single = true, true
	}
	if err != nil {
		h.refuseUpload(w, r, rc, body, name, err, protocol.UploadResult{})
		return
	}
	var capture int64
	if v := r.Header.Get(protocol.HeaderCaptureTime); v != "" && file == protocol.UploadSnapshot {
		if capture, err = strconv.ParseInt(v, 10, 64); err != nil || capture <= 0 {
			h.refuseUpload(w, r, rc, body, name, fmt.Errorf("%w: %s %q: want Unix nanoseconds", protocol.ErrMJPEG,
				protocol.HeaderCaptureTime, truncate(v, 40)), protocol.UploadResult{})
			return
		}
	}
	if !h.track(w, r) {
		drainUpload(r, rc, body)
		return
	}
	defer h.handlers.Done()
	ch, ok := h.admitPublisher(w, r, name)
	if !ok {
		drainUpload(r, rc, body)
		return
	}
	defer h.table.unclaim(ch)
	u := &upload{h: h, localPart: localPart{ch: ch, rend: renditionPart{only: only}}, channel: name, remote: r.RemoteAddr,
		via: file, rc: rc, body: body}
	body.u = u
	h.runUpload(w, r, u, opt, capture)
}

// runUpload publishes an admitted upload's frames until its body ends or
// something ends it, then answers.
func (h *Hub) runUpload(w http.ResponseWriter, r *http.Request, u *upload, opt protocol.MJPEGOptions, capture int64) {
	start := time.Now()
	leave, err := h.takeChannel(u)
	if err != nil {
		u.finish()
		end := h.refuseUpload(w, r, u.rc, u.body, u.channel, err, protocol.UploadResult{Channel: u.channel})
		h.logs.Log(slog.LevelInfo, "left:"+u.channel, "publisher left", append([]slog.Attr{slog.String("channel", u.channel),
			slog.String("remote", u.remote), slog.String("via", "http "+u.via)}, end.attrs()...)...)
		return
	}
	defer h.registerStream(&stream{channel: u.channel, token: requestToken(r, true), right: RightPublish,
		cancel: func() { u.end(ending{kind: endRevoked}) }})()
	h.logs.Log(slog.LevelInfo, "connected:"+u.channel, "publisher connected",
		slog.String("channel", u.channel), slog.String("remote", u.remote), slog.String("via", "http "+u.via))

	// Shutdown ends the upload like a takeover does; the watcher stops
	// when the upload does.
	stop := make(chan struct{})
	var watchWG sync.WaitGroup
	watchWG.Add(1)
	go func() {
		defer watchWG.Done()
		select {
		case <-h.done:
			u.end(ending{kind: endShutdown})
		case <-stop:
		}
	}()
	res, err := h.readUpload(u, opt, capture)
	close(stop)
	watchWG.Wait()
	leave()
	u.finish()

	var end ending
	switch {
	case err == nil && opt.Single && res.Frames == 0:
		end = ending{kind: endPeerClosed, detail: "frame dropped: over the frame-rate cap"}
		writeUploadText(w, u.rc, http.StatusTooManyRequests, fmt.Sprintf(
			"frame dropped: snapshots of channel %s come faster than the hub's cap of %g per second (--max-fps-per-publisher)",
			u.channel, h.cfg.MaxFPSPerPublisher))
	case err == nil:
		end = ending{kind: endPeerClosed}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(res)
	default:
		end = h.uploadEnded(w, r, u, err, res)
	}
	attrs := append([]slog.Attr{slog.String("channel", u.channel), slog.String("remote", u.remote),
		slog.String("via", "http "+u.via), slog.Uint64("frames", res.Frames), slog.Uint64("dropped", res.Dropped),
		slog.Int64("bytes_read", u.body.n), slog.Float64("seconds", round2(time.Since(start).Seconds()))}, end.attrs()...)
	h.logs.Log(slog.LevelInfo, "left:"+u.channel, "publisher left", attrs...)
}

// uploadEnded answers an upload that did not end well, and says how it
// ended.
func (h *Hub) uploadEnded(w http.ResponseWriter, r *http.Request, u *upload, err error, res protocol.UploadResult) ending {
	var rerr readError
	if !errors.As(err, &rerr) {
		return h.refuseUpload(w, r, u.rc, u.body, u.channel, err, res)
	}
	if e := u.ended.Load(); e != nil {
		status, text := http.StatusConflict, "replaced by a newer publisher of channel "+u.channel
		switch e.kind {
		case endShutdown:
			status, text = http.StatusServiceUnavailable, "hub shutting down"
		case endRevoked:
			status, text = http.StatusForbidden, "forbidden: the token no longer grants publishing on channel "+u.channel+" (the hub's tokens were reloaded)"
		}
		writeUploadText(w, u.rc, status, fmt.Sprintf("%s (frames published: %d)", text, res.Frames))
		drainConn(u.rc)
		return *e
	}
	var ne interface{ Timeout() bool }
	if errors.As(rerr.err, &ne) && ne.Timeout() {
		h.refuse(reasonStalledUpload, u.remote, "upload stalled", slog.String("channel", u.channel),
			slog.Duration("pong_wait", h.cfg.PongWait), slog.Int64("bytes_read", u.body.n))
		text := fmt.Sprintf("upload stalled: no bytes for %v (the hub's --pong-wait); frames published: %d", h.cfg.PongWait, res.Frames)
		writeUploadText(w, u.rc, http.StatusRequestTimeout, text)
		return ending{kind: endRefused, refused: reasonStalledUpload, detail: text}
	}
	// The client went away mid-body. That is no refusal; a client that
	// only closed its sending half still reads an answer, and it must not
	// be 200 (which net/http would send if the handler wrote nothing).
	writeUploadText(w, u.rc, http.StatusBadRequest, fmt.Sprintf(
		"upload cut short: the connection ended inside the body (%v); frames published: %d", rerr.err, res.Frames))
	return ending{kind: endLost, detail: rerr.err.Error()}
}

// refuseUpload answers an upload the hub refuses, counts and logs the
// refusal, and returns how the upload ended.
func (h *Hub) refuseUpload(w http.ResponseWriter, r *http.Request, rc *http.ResponseController, body *uploadBody,
	channel string, err error, res protocol.UploadResult) ending {
	why := refusalOf(err, reasonBadUpload)
	h.refuse(why, r.RemoteAddr, "upload refused: "+refusals[why].text, slog.String("channel", channel), slog.String("error", err.Error()))
	text := "upload refused: " + err.Error()
	if res.Frames > 0 {
		text += fmt.Sprintf(" (frames published before: %d)", res.Frames)
	}
	switch why {
	case reasonTooBig:
		text += fmt.Sprintf(" (the hub's --max-frame-bytes is %d, including a %d-byte header)", h.cfg.MaxFrameBytes, protocol.HeaderLen)
	case reasonMediaType:
		text += " (send Content-Type: image/jpeg, or multipart/x-mixed-replace with a boundary, or none)"
	}
	writeUploadText(w, rc, refusals[why].status, text)
	drainUpload(r, rc, body)
	return ending{kind: endRefused, refused: why, detail: text}
}

// writeUploadText writes a complete plain-text answer (its length stated,
// so the client need not wait for the connection to end) that closes the
// connection, and sends it at once.
func writeUploadText(w http.ResponseWriter, rc *http.ResponseController, status int, text string) {
	hd := w.Header()
	hd.Set("Content-Type", "text/plain; charset=utf-8")
	hd.Set("Connection", "close")
	if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
		hd.Set("Retry-After", "1")
	}
	text = strings.TrimSpace(text) + "\n"
	hd.Set("Content-Length", strconv.Itoa(len(text)))
	w.WriteHeader(status)
	_, _ = io.WriteString(w, text)
	_ = rc.Flush()
}

// drainUpload reads and discards, for a moment, what a client answered
// before its body was read is still sending: closing a socket with unread
// input makes the kernel send a reset, which can destroy the answer before
// the client reads it. A client that waits for 100 Continue before sending
// its body has nothing to drain.
func drainUpload(r *http.Request, rc *http.ResponseController, body *uploadBody) {
	_ = rc.Flush()
	if body.n > 0 || !strings.EqualFold(r.Header.Get("Expect"), "100-continue") {
		_ = rc.SetReadDeadline(time.Now().Add(uploadDrainWait))
		_, _ = io.CopyN(io.Discard, body.r, uploadDrainBytes)
	}
	// net/http would read up to 256 KiB more, looking for the body's end
	// to keep the connection: it is closed instead.
	_ = rc.SetReadDeadline(time.Now())
}

// drainConn is drainUpload for a body whose read has failed (net/http
// then returns the same error for good): the answer, complete and sent, is
// followed by draining the connection itself, which is then closed. Over
// HTTP/2, which cannot be hijacked, the stream just ends.
func drainConn(rc *http.ResponseController) {
	nc, brw, err := rc.Hijack()
	if err != nil {
		return
	}
	defer nc.Close()
	_ = nc.SetReadDeadline(time.Now().Add(uploadDrainWait))
	_, _ = io.CopyN(io.Discard, brw, uploadDrainBytes)
}

// readUpload publishes an upload's JPEGs as they arrive. It returns what
// was published and nil when the body ended well, or the error that ended
// the upload: a readError (the connection failed, stalled, or the hub
// ended the upload), errMemory, or a protocol error.
func (h *Hub) readUpload(u *upload, opt protocol.MJPEGOptions, capture int64) (protocol.UploadResult, error) {
	res := protocol.UploadResult{Channel: u.channel}
	opt.MaxJPEG = h.cfg.MaxFrameBytes - protocol.HeaderLen
	opt.Charge = func(d int64) error {
		if d < 0 {
			h.mem.release(-d)
		} else if !h.mem.reserve(d) {
			return errMemory
		}
		return nil
	}
	mr := protocol.NewMJPEGReader(u.body, opt)
	defer mr.Close()
	var seq uint64 // counted by the hub, on from the newest frame of the channel's rendition
	if f := u.ch.newestOf(u.rend.only); f != nil {
		seq = f.hdr.Seq
	}
	rateCap := frameRateCap(h.cfg.MaxFPSPerPublisher)
	for {
		h.retire(u.ch.retirePrev())
		p, err := mr.Next()
		if err == io.EOF {
			return res, nil
		}
		if err != nil {
			return res, err
		}
		now := time.Now()
		seq++
		allowed := false
		if opt.Single {
			allowed = u.ch.allowPost(now, h.cfg.MaxFPSPerPublisher)
		} else {
			allowed = rateCap.Allow(now)
		}
		if !allowed {
			h.dropped(u.ch, u.remote, "http "+u.via)
			res.Dropped++
			continue
		}
		at := p.CaptureTime
		if at == 0 {
			at = capture
		}
		if at == 0 {
			at = now.UnixNano()
		}
		f, err := h.uploadFrame(p.JPEG, seq, at, u.rend.only, now)
		if err != nil {
			return res, err
		}
		old, ok, err := h.publishFrame(u, f)
		h.retire(old)
		if err != nil {
			return res, err // the upload's one rendition: refused (bad_rendition)
		}
		if !ok { // replaced: the JPEGs still buffered go nowhere
			u.end(ending{kind: endReplaced}) // if the takeover has not yet said so
			return res, readError{errUploadEnded}
		}
		h.counters.FramesIn.Add(1)
		res.Frames++
		res.Seq, res.Width, res.Height = seq, f.hdr.Width, f.hdr.Height
		res.Bytes += uint64(len(f.payload))
	}
}

// uploadFrame makes an uploaded JPEG a frame as a WebSocket publisher
// would have sent it: a header stating the JPEG's own size, then the JPEG,
// in one buffer with wsRoom free bytes in front, charged to the budget and
// checked by protocol.ParseMessage like every frame.
func (h *Hub) uploadFrame(jpg []byte, seq uint64, capture int64, r protocol.Rendition, now time.Time) (*frame, error) {
	w, ht, err := protocol.JPEGSize(jpg)
	if err != nil {
		return nil, err
	}
	size := wsRoom + protocol.HeaderLen + len(jpg)
	if !h.mem.reserve(int64(size)) {
		return nil, errMemory
	}
	buf := make([]byte, size)
	protocol.PutHeader(buf[wsRoom:], protocol.Header{Codec: protocol.CodecJPEG, Flags: protocol.FlagKey,
		Width: uint32(w), Height: uint32(ht), Seq: seq, CaptureTime: capture, PayloadLen: uint32(len(jpg)), Rendition: r})
	copy(buf[wsRoom+protocol.HeaderLen:], jpg)
	pf, err := protocol.ParseMessage(buf[wsRoom:], h.limits)
	if err != nil {
		h.mem.release(int64(size))
		if errors.Is(err, protocol.ErrSize) {
			// The header states the JPEG's own size: a side past the
			// hub's limit is a picture too big, not a broken frame.
			err = fmt.Errorf("%w: %w", protocol.ErrPixels, err)
		}
		return nil, err
	}
	return newFrame(buf, pf, now), nil
}

// allowPost applies the frame-rate cap to a snapshot POST. Each POST is a
// publisher of its own, so the cap is the channel's, shared by all of
// them: a client posting snapshots in a loop is capped as a WebSocket
// publisher is.
func (c *channel) allowPost(now time.Time, rate float64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.postCap == nil {
		b := frameRateCap(rate)
		c.postCap = &b
	}
	return c.postCap.Allow(now)
}
