package publisher

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"framehub/protocol"
)

// FFmpegConfig says how a Relay has ffmpeg decode a camera or stream
// (RTSP, or an http(s) URL that is not Motion JPEG) into the JPEGs it
// publishes: ffmpeg runs as a child process, reads the source over TCP
// with its low-delay flags, and writes Motion JPEG to a pipe at the chosen
// quality, size and rate.
type FFmpegConfig struct {
	// Path is the ffmpeg binary ("": ffmpeg on PATH).
	Path string
	// Quality is the JPEG quality, 1 to 100 (default 80), mapped to
	// ffmpeg's -q:v.
	Quality int
	// Width and Height scale the picture (0: keep; one alone keeps the
	// aspect ratio).
	Width, Height int
	// FPS caps the frames ffmpeg encodes per second (0: every frame).
	FPS float64
}

// IsFFmpegSource reports whether a Relay reads source through ffmpeg: a
// URL of a camera protocol (rtsp, rtsps, rtmp, srt, udp, rtp), which
// neither a plain HTTP client nor the MJPEG splitter can read.
func IsFFmpegSource(source string) bool {
	scheme, _, ok := strings.Cut(strings.ToLower(source), "://")
	if !ok {
		return false
	}
	switch scheme {
	case "rtsp", "rtsps", "rtmp", "rtmps", "srt", "udp", "rtp":
		return true
	}
	return false
}

// LookFFmpeg returns the ffmpeg binary to run, or an error that says how
// to get one.
func LookFFmpeg(path string) (string, error) {
	if path == "" {
		path = "ffmpeg"
	}
	p, err := exec.LookPath(path)
	if err != nil {
		return "", fmt.Errorf("this source needs ffmpeg to decode it, and %s was not found (install it: apt install ffmpeg), "+
			"or use the build with OpenCV", path)
	}
	return p, nil
}

// ffmpegQScale maps a JPEG quality (1 to 100, as libjpeg and OpenCV take
// it) to ffmpeg's MJPEG -q:v (1 best to 31): libjpeg scales its tables by
// 5000/Q % below 50 and 200-2Q % above; ffmpeg's qscale scales them by
// about 12.5 % a step, which makes files of about the same size as
// libjpeg's (measured on testsrc2 at 1280x720: quality 80 and -q:v 3,
// quality 70 and -q:v 5, quality 50 and -q:v 6 to 7).
func ffmpegQScale(quality int) int {
	q := min(max(quality, 1), 100)
	scale := 200.0 - 2*float64(q)
	if q < 50 {
		scale = 5000 / float64(q)
	}
	return min(max(int(math.Round(scale/12.5)), 1), 31)
}

// FFmpegArgs returns the arguments a Relay runs ffmpeg with to read url
// (the first attempt: without probing), for comparisons with ffmpeg alone.
func FFmpegArgs(url string, c FFmpegConfig) []string {
	if c.Quality == 0 {
		c.Quality = 80
	}
	return ffmpegArgs(url, c, firstFrameWait, false)
}

// ffmpegArgs are ffmpeg's arguments to read url and write Motion JPEG on
// stdout. ioTimeout ends ffmpeg's own wait for a silent source; probe asks
// for ffmpeg's usual stream probing, for sources whose session
// description does not give the picture size.
func ffmpegArgs(url string, c FFmpegConfig, ioTimeout time.Duration, probe bool) []string {
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error"}
	scheme, _, _ := strings.Cut(strings.ToLower(url), "://")
	us := strconv.FormatInt(ioTimeout.Microseconds(), 10)
	switch scheme {
	case "rtsp", "rtsps":
		args = append(args, "-rtsp_transport", "tcp", "-timeout", us)
	case "http", "https":
		// A file or HLS over HTTP: paced to its own rate, and probed (its
		// container, not a session description, says what it holds).
		args = append(args, "-rw_timeout", us, "-re")
		probe = true
	}
	// Low delay: no frame-threaded decoding (which holds frames back),
	// and, unless asked, no probing: the packets read while probing would
	// stay queued ahead of every later frame. Not "-fflags nobuffer": with
	// probing cut to a packet or two it saves nothing, and it throws away
	// the packets probing read, a camera's first key frame among them, so
	// that every (re)open waited for the next key frame (measured against
	// the test camera, one key frame a second: first frame 1.4-1.6 s after
	// ffmpeg started with it, 0.4-0.7 s without; same age afterwards).
	args = append(args, "-flags", "low_delay")
	if !probe {
		args = append(args, "-probesize", "32", "-analyzeduration", "0")
	}
	args = append(args, "-i", url, "-map", "0:v:0", "-an", "-sn", "-dn")
	switch {
	case c.Width > 0 && c.Height > 0:
		args = append(args, "-vf", fmt.Sprintf("scale=%d:%d", c.Width, c.Height))
	case c.Width > 0:
		args = append(args, "-vf", fmt.Sprintf("scale=%d:-2", c.Width))
	case c.Height > 0:
		args = append(args, "-vf", fmt.Sprintf("scale=-2:%d", c.Height))
	}
	if c.FPS > 0 {
		// vfr with an output rate drops frames that come too soon and
		// never repeats one.
		args = append(args, "-fps_mode", "vfr", "-r", strconv.FormatFloat(c.FPS, 'f', -1, 64))
	} else {
		// Every frame as it comes, stamped in the source's own time base
		// (the encoder's default, 1/rate, makes close frames collide).
		args = append(args, "-fps_mode", "passthrough", "-enc_time_base", "-1")
	}
	return append(args, "-c:v", "mjpeg", "-q:v", strconv.Itoa(ffmpegQScale(c.Quality)), "-qmin", "1",
		"-flush_packets", "1", "-f", "mjpeg", "pipe:1")
}

// ffmpegProc is one running ffmpeg: its stdout is the Motion JPEG, its
// stderr lines go to a callback. It runs in its own process group, killed
// as a whole by stop, and on Linux it is killed too if the publisher dies.
type ffmpegProc struct {
	cmd    *exec.Cmd
	stdout *os.File      // the pipe, for read deadlines
	out    *bufio.Reader // reads stdout
	probe  bool          // started with probing
	done   chan struct{} // stderr read to its end and the process waited for

	mu       sync.Mutex
	lastLine string
	err      error // the exit status
	killed   string
}

// startFFmpeg starts ffmpeg with args. Each stderr line, with url's
// credentials redacted, goes to onLine.
func startFFmpeg(path string, args []string, url string, onLine func(string)) (*ffmpegProc, error) {
	cmd := exec.Command(path, args...)
	cmd.SysProcAttr = childProcAttr()
	cmd.Stdin = nil
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = pw
	se, err := cmd.StderrPipe()
	if err != nil {
		pr.Close()
		pw.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	pw.Close() // the child holds its own copy: stdout ends when ffmpeg does
	p := &ffmpegProc{cmd: cmd, stdout: pr, out: bufio.NewReaderSize(pr, 64<<10), done: make(chan struct{})}
	redact := redactor(url)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(se)
		sc.Buffer(make([]byte, 4096), 64<<10)
		for sc.Scan() {
			line := strings.TrimSpace(redact(sc.Text()))
			if line == "" {
				continue
			}
			p.mu.Lock()
			p.lastLine = line
			p.mu.Unlock()
			onLine(line)
		}
		_, _ = io.Copy(io.Discard, se) // a line too long for the scanner
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
	}()
	return p, nil
}

// redactor returns a function that hides url's credentials in ffmpeg's
// lines (ffmpeg prints the URL as it was given).
func redactor(url string) func(string) string {
	safe := protocol.RedactURL(url)
	if safe == url {
		return func(s string) string { return s }
	}
	var userinfo string
	if _, rest, ok := strings.Cut(url, "://"); ok {
		if at := strings.IndexByte(rest, '@'); at >= 0 && at < strings.IndexAny(rest+"/", "/?") {
			userinfo = rest[:at]
		}
	}
	return func(s string) string {
		s = strings.ReplaceAll(s, url, safe)
		if userinfo != "" {
			s = strings.ReplaceAll(s, userinfo, "REDACTED")
		}
		return s
	}
}

// kill ends ffmpeg's whole process group at once; why is kept for stop's
// error. It may be called from any goroutine, more than once.
func (p *ffmpegProc) kill(why string) {
	p.mu.Lock()
	if p.killed == "" {
		p.killed = why
	}
	p.mu.Unlock()
	killGroup(p.cmd.Process.Pid)
}

// stop kills ffmpeg if it still runs, waits for it, closes its stdout and
// returns why it ended: the reason given to kill, else its last error
// line, else its exit status (nil for a clean exit).
func (p *ffmpegProc) stop() error {
	select {
	case <-p.done:
	default:
		p.kill("")
		<-p.done
	}
	p.stdout.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.killed != "" && p.lastLine != "":
		return fmt.Errorf("%s (ffmpeg's last line: %s)", p.killed, p.lastLine)
	case p.killed != "":
		return errors.New(p.killed)
	case p.lastLine != "":
		return fmt.Errorf("ffmpeg: %s", p.lastLine)
	case p.err != nil:
		return fmt.Errorf("ffmpeg: %w", p.err)
	}
	return nil
}

// needsProbe reports whether ffmpeg's last line says it could not tell
// the stream's picture size without probing.
func (p *ffmpegProc) needsProbe() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return needsProbe(p.lastLine)
}

// needsProbe reports whether an FFmpeg error line says the stream must be
// probed to know its picture size.
func needsProbe(line string) bool {
	return strings.Contains(line, "unspecified size") || strings.Contains(line, "Could not find codec parameters")
}

// exited reports whether ffmpeg has ended.
func (p *ffmpegProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}
