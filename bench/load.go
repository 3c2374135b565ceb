package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"framehub/protocol"
)

// publisherWriteBuffer is the WebSocket write buffer of the load's
// publishers: framehub publish's (publisher.Sender), so that the hub reads
// frames in the pieces a real publisher sends them in.
const publisherWriteBuffer = 64 << 10

// reader is one measured subscriber. Its figures count only while the run
// is measuring.
type reader struct {
	slow     bool
	channel  int
	progress atomic.Uint64 // frames since the last progress line
	first    atomic.Int64  // UnixNano of the first frame, 0 before

	mu      sync.Mutex
	frames  uint64
	bytes   uint64
	skipped uint64
	lastSeq uint64
	ages    []float64 // ms
}

// record notes a frame; it reports nothing outside the measured window but
// keeps the sequence number, so the first measured frame is not a gap.
func (rd *reader) record(r *run, seq uint64, capture int64, size int, now time.Time) {
	rd.progress.Add(1)
	if rd.first.Load() == 0 {
		rd.first.CompareAndSwap(0, now.UnixNano())
	}
	rd.mu.Lock()
	defer rd.mu.Unlock()
	if r.measuring.Load() {
		rd.frames++
		rd.bytes += uint64(size)
		if rd.lastSeq != 0 && seq > rd.lastSeq+1 {
			rd.skipped += seq - rd.lastSeq - 1
		}
		rd.ages = append(rd.ages, float64(now.UnixNano()-capture)/1e6)
	}
	rd.lastSeq = seq
}

// figures returns a copy of the reader's counts, safe while it still reads.
func (rd *reader) figures() (frames, bytes, skipped uint64, ages []float64) {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	return rd.frames, rd.bytes, rd.skipped, append([]float64(nil), rd.ages...)
}

// pace makes a slow reader wait for its next turn.
func (r *run) pace(rd *reader, next *time.Time) bool {
	if !rd.slow {
		return true
	}
	interval := time.Duration(float64(time.Second) / r.cfg.SlowFPS)
	now := time.Now()
	if next.IsZero() {
		// A viewer's clock has nothing to do with the camera's: each slow
		// reader starts at a random phase of its interval. Started in step
		// with the frames, every reader would sample one phase of the
		// frame interval (10 fps against 30 fps is every third frame, at
		// the same instant of it) and its ages would say only that.
		*next = now.Add(rand.N(interval))
	} else {
		*next = maxTime(next.Add(interval), now)
	}
	t := time.NewTimer(next.Sub(now))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.stop:
		return false
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// startReader connects one measured subscriber and reads in a goroutine
// until the run stops, with the lean clients of lean.go.
func (r *run) startReader(ctx context.Context, rd *reader) error {
	var lr *wsLean
	var err error
	switch {
	case r.target.baseline():
		lr, err = dialRawLean(r.addr, r.credit)
	case r.cfg.Mode == "mjpeg":
		return r.startMJPEG(ctx, rd)
	default:
		path := protocol.PathSubscribe + channelName(rd.channel)
		if r.credit > 0 {
			// Credit mode from the first frame.
			path += "?" + protocol.QueryWindow + "=" + strconv.Itoa(r.credit)
		}
		lr, err = dialWSLean(r.addr, path)
	}
	if err != nil {
		return err
	}
	r.track(lr.c)
	r.goLoop(func() {
		var next time.Time
		for {
			seq, capture, size, err := lr.next()
			if err != nil {
				return
			}
			rd.record(r, seq, capture, size, time.Now())
			// A slow reader takes its time over the frame first; like a
			// real viewer, it acknowledges a frame once it has consumed
			// it, so the next one the hub sends is the newest.
			if !r.pace(rd, &next) {
				return
			}
			if r.credit > 0 && lr.ack(seq) != nil {
				return
			}
		}
	})
	return nil
}

// discard reads r to its end through buf and returns the byte count.
func discard(r io.Reader, buf []byte) (int, error) {
	n := 0
	for {
		k, err := r.Read(buf)
		n += k
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// startMJPEG reads the channel's multipart MJPEG stream.
func (r *run) startMJPEG(ctx context.Context, rd *reader) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.addr+"/channels/"+channelName(rd.channel)+"/stream.mjpeg", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil {
		return err
	}
	_, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || params["boundary"] == "" {
		resp.Body.Close()
		return fmt.Errorf("mjpeg stream without a boundary: %q", resp.Header.Get("Content-Type"))
	}
	r.track(resp.Body)
	r.goLoop(func() {
		mr := multipart.NewReader(resp.Body, params["boundary"])
		buf := make([]byte, 64<<10)
		var next time.Time
		for {
			p, err := mr.NextPart()
			if err != nil {
				return
			}
			seq, _ := strconv.ParseUint(p.Header.Get("X-Frame-Seq"), 10, 64)
			capture, _ := strconv.ParseInt(p.Header.Get("X-Capture-Time"), 10, 64)
			n, err := discard(p, buf)
			if err != nil {
				return
			}
			rd.record(r, seq, capture, n, time.Now())
			if !r.pace(rd, &next) {
				return
			}
		}
	})
	return nil
}

// startStalled connects a subscriber that never reads after its handshake,
// on a socket with a tiny receive buffer.
func (r *run) startStalled(channel int) error {
	d := net.Dialer{Timeout: 10 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	c, err := d.Dial("tcp", r.addr)
	if err != nil {
		return err
	}
	name := channelName(channel)
	switch {
	case r.target.baseline():
		_, err = c.Write([]byte{rawSubscriber})
	case r.cfg.Mode == "mjpeg":
		_, err = fmt.Fprintf(c, "GET /channels/%s/stream.mjpeg HTTP/1.1\r\nHost: %s\r\n\r\n", name, r.addr)
	default:
		_, err = fmt.Fprintf(c, "GET %s%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", protocol.PathSubscribe, name, r.addr)
		if err == nil {
			// Read just the handshake response, then never again.
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReaderSize(c, 512)
			var line string
			if line, err = br.ReadString('\n'); err == nil && len(line) > 12 && line[9:12] != "101" {
				err = fmt.Errorf("stalled subscriber's handshake: %q", line)
			}
			for err == nil && line != "\r\n" {
				line, err = br.ReadString('\n')
			}
		}
	}
	if err != nil {
		c.Close()
		return err
	}
	r.track(c)
	return nil
}

// startIdle connects a subscriber to a channel no one publishes to.
func (r *run) startIdle(ctx context.Context) error {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 1024, WriteBufferSize: 1024}
	c, _, err := d.DialContext(ctx, "ws://"+r.addr+protocol.PathSubscribe+"idle", nil)
	if err != nil {
		return err
	}
	r.track(c.NetConn())
	r.goLoop(func() {
		for {
			if _, _, err := c.NextReader(); err != nil {
				return
			}
		}
	})
	return nil
}

// startPublisher publishes the pre-encoded frames to a channel at the
// configured rate, stamping each with its sequence number and send time.
func (r *run) startPublisher(ctx context.Context, channel int) error {
	var send func(msg []byte) error
	if r.target.baseline() {
		c, err := net.DialTimeout("tcp", r.addr, 10*time.Second)
		if err != nil {
			return err
		}
		if _, err := c.Write([]byte{rawPublisher}); err != nil {
			c.Close()
			return err
		}
		r.track(c)
		send = func(msg []byte) error { _, err := c.Write(msg); return err }
	} else {
		// The write buffer of framehub publish (publisher.Sender): with
		// gorilla's default 4 KiB a client sends a 100 KB frame as 25
		// fragments, one write each, and the hub reads and wakes for each,
		// which neither a real publisher nor the baselines' one write asks
		// of it.
		d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, WriteBufferSize: publisherWriteBuffer}
		c, _, err := d.DialContext(ctx, "ws://"+r.addr+protocol.PathPublish+channelName(channel), nil)
		if err != nil {
			return err
		}
		r.track(c.NetConn())
		r.goLoop(func() { // answer pings, notice the end
			for {
				if _, _, err := c.NextReader(); err != nil {
					return
				}
			}
		})
		send = func(msg []byte) error { return c.WriteMessage(websocket.BinaryMessage, msg) }
	}
	r.goLoop(func() {
		t := time.NewTicker(time.Duration(float64(time.Second) / r.cfg.FPS))
		defer t.Stop()
		var buf []byte
		for seq := uint64(1); ; seq++ {
			select {
			case <-r.stop:
				return
			case <-t.C:
			}
			f := protocol.Frame{Header: protocol.Header{Codec: protocol.CodecJPEG, Flags: protocol.FlagKey,
				Width: uint32(r.cfg.Width), Height: uint32(r.cfg.Height), Seq: seq, CaptureTime: time.Now().UnixNano()},
				Payload: r.frames[int(seq)%len(r.frames)]}
			buf = protocol.AppendFrame(buf[:0], &f)
			if send(buf) != nil {
				return
			}
			r.sent[channel].Add(1)
			if r.measuring.Load() {
				r.published[channel].Add(1)
			}
		}
	})
	return nil
}

// churn starts short-lived subscribers at the configured rate: each
// connects, reads three frames (or gives up after 2 s) and leaves.
func (r *run) churn(ctx context.Context, stop <-chan struct{}) {
	t := time.NewTicker(time.Second / time.Duration(r.cfg.Churn))
	defer t.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-stop:
			return
		case <-r.stop:
			return
		case <-t.C:
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, _, err := websocket.DefaultDialer.DialContext(ctx, "ws://"+r.addr+protocol.PathSubscribe+channelName(0), nil)
			if err != nil {
				return
			}
			defer c.Close()
			r.churned.Add(1)
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			for range 3 {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
			}
			c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		}()
	}
}

// goLoop runs f in a goroutine the run waits for.
func (r *run) goLoop(f func()) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		f()
	}()
}

func parseHub(hub string) (string, string, error) {
	h, _, err := protocol.HubURL(hub)
	if err != nil {
		return "", "", err
	}
	return h.Host, h.Scheme, nil
}

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }
