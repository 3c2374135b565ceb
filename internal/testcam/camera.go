// Package testcam is a test IP camera: Debian's GStreamer RTSP server
// (python3-gi, gir1.2-gst-rtsp-server-1.0, GStreamer's base, good and ugly
// plugins; scripts/setup.sh installs them) serving H.264 from a short
// Python script run by Debian's /usr/bin/python3. A test or the soak starts
// it, stops it (the camera drops), pauses it (the camera goes silent but
// its connections stay open, as when a cable is pulled) and starts it again
// on the same port. With Timecode, every frame carries the wall-clock time
// it was made (Timecode reads it back from a decoded picture), so a reader
// can measure a frame's age from the camera itself.
//
// The camera runs as a child process started and stopped by its PID only;
// on Linux it is also killed if the process that started it dies.
package testcam

import (
	"bufio"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

//go:embed rtspcam.py
var script string

// Python is the interpreter the camera needs: Debian's own, which has the
// GObject bindings (another python3 may come first on PATH).
const Python = "/usr/bin/python3"

// Options describe a camera.
type Options struct {
	Port     int    // 0: a free port, chosen at the first start and kept
	Size     string // WxH, default 640x360
	FPS      int    // default 30
	Timecode bool   // frames carry their time (see Timecode) instead of videotestsrc's ball
}

// Camera is a running (or stopped) test camera. Its methods are safe for
// concurrent use.
type Camera struct {
	opt Options

	first atomic.Int64 // see FirstFrame

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	logs *tail
}

// Available reports why the camera cannot run here, or nil.
func Available() error {
	if _, err := os.Stat(Python); err != nil {
		return fmt.Errorf("%s: %w", Python, err)
	}
	out, err := exec.Command(Python, "-c",
		"import gi; gi.require_version('Gst','1.0'); gi.require_version('GstRtspServer','1.0'); "+
			"from gi.repository import Gst, GstRtspServer; Gst.init(None); "+
			"import sys; sys.exit(0 if Gst.ElementFactory.find('x264enc') and Gst.ElementFactory.find('rtph264pay') else 3)").CombinedOutput()
	if err != nil {
		return fmt.Errorf("GStreamer's RTSP server or its H.264 plugins are missing (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Start starts a camera and waits until it accepts connections.
func Start(opt Options) (*Camera, error) {
	if opt.Size == "" {
		opt.Size = "640x360"
	}
	if opt.FPS <= 0 {
		opt.FPS = 30
	}
	c := &Camera{opt: opt}
	if err := c.Start(); err != nil {
		return nil, err
	}
	return c, nil
}

// URL is the camera's stream, rtsp://127.0.0.1:PORT/cam.
func (c *Camera) URL() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprintf("rtsp://127.0.0.1:%d/cam", c.opt.Port)
}

// Port is the camera's TCP port.
func (c *Camera) Port() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.opt.Port
}

// FirstFrame is when the camera (in timecode mode) made the first frame of
// the stream it serves now, as its picture says: a stream starts with a
// key frame, so a reader that comes back after a restart and shows frames
// from this time on lost none. Zero before the first stream.
func (c *Camera) FirstFrame() time.Time {
	ms := c.first.Load()
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// FPS is the camera's frame rate.
func (c *Camera) FPS() int { return c.opt.FPS }

// Start starts the camera again after Stop, on the same port; it does
// nothing if it runs. A port still held for a moment by the camera just
// stopped is retried for up to 5 s.
func (c *Camera) Start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd != nil {
		return nil
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := c.startLocked()
		if err == nil || c.opt.Port == 0 || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *Camera) startLocked() error {
	args := []string{"-c", script, "--port", strconv.Itoa(c.opt.Port), "--size", c.opt.Size, "--fps", strconv.Itoa(c.opt.FPS)}
	if c.opt.Timecode {
		args = append(args, "--timecode")
	}
	c.first.Store(0)
	cmd := exec.Command(Python, args...)
	cmd.SysProcAttr = sysProcAttr()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	logs := &tail{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the test camera: %w", err)
	}
	done := make(chan struct{})
	ready := make(chan int, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if p, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
				if n, err := strconv.Atoi(p); err == nil {
					ready <- n
				}
			}
			if p, ok := strings.CutPrefix(sc.Text(), "first "); ok {
				if ms, err := strconv.ParseInt(p, 10, 64); err == nil {
					c.first.Store(ms)
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
		close(done)
	}()
	select {
	case port := <-ready:
		c.cmd, c.done, c.logs, c.opt.Port = cmd, done, logs, port
		return nil
	case <-done:
		return fmt.Errorf("the test camera did not start: %s", strings.TrimSpace(logs.String()))
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return errors.New("the test camera did not start within 20 s")
	}
}

// Stop kills the camera (its clients see their connections closed) and
// waits for it to exit. It does nothing if the camera is stopped.
func (c *Camera) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGCONT) // a paused camera cannot die of SIGKILL until it runs
	_ = c.cmd.Process.Kill()
	<-c.done
	c.cmd = nil
}

// Pause stops the camera's process without closing anything: its clients
// keep open connections on which nothing arrives, and new ones connect
// but get no answer, as when a camera hangs or its cable is pulled.
func (c *Camera) Pause() error { return c.signal(syscall.SIGSTOP) }

// Resume lets a paused camera go on.
func (c *Camera) Resume() error { return c.signal(syscall.SIGCONT) }

func (c *Camera) signal(s syscall.Signal) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return errors.New("the test camera is not running")
	}
	return c.cmd.Process.Signal(s)
}

// Running reports whether the camera's process is alive (paused or not).
func (c *Camera) Running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return false
	}
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// PID is the camera's process ID, 0 when it is stopped.
func (c *Camera) PID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return 0
	}
	return c.cmd.Process.Pid
}

// Logs returns the end of the camera's stderr.
func (c *Camera) Logs() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.logs == nil {
		return ""
	}
	return c.logs.String()
}

// tail keeps the last 8 KiB written to it.
type tail struct {
	mu sync.Mutex
	b  []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > 8<<10 {
		t.b = append(t.b[:0], t.b[len(t.b)-8<<10:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
