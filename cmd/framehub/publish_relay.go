package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"framehub/protocol"
	"framehub/publisher"
)

// publish in both builds. Sources that need no OpenCV (- for a Motion JPEG
// stream on stdin, an http(s) MJPEG URL) are relayed: their JPEGs go to
// the hub as they are, without decoding. A camera stream (rtsp://, and an
// http(s) URL that is not MJPEG) is decoded by ffmpeg into Motion JPEG and
// relayed the same way when the build has no OpenCV, or when ffmpeg is
// asked for. Every other source, and the processing only OpenCV does,
// needs the OpenCV build (publish.go); the build without it says so in one
// line.

func publishFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "channel", Required: true, Usage: "channel to publish to", EnvVars: []string{"FRAMEHUB_CHANNEL"}},
		&cli.StringFlag{Name: "source", Value: "0", Usage: "camera index (0), video file, rtsp/http(s) URL, gst:PIPELINE, test[:WxH], or - (MJPEG on stdin)", EnvVars: []string{"FRAMEHUB_SOURCE"}},
		&cli.BoolFlag{Name: "loop", Usage: "repeat a video file", EnvVars: []string{"FRAMEHUB_LOOP"}},
		&cli.Float64Flag{Name: "fps", Usage: "cap frames sent per second (0: the source's rate; test pattern: 30)", EnvVars: []string{"FRAMEHUB_FPS"}},
		&cli.IntFlag{Name: "width", Usage: "resize to this width (alone: keep aspect)", EnvVars: []string{"FRAMEHUB_WIDTH"}},
		&cli.IntFlag{Name: "height", Usage: "resize to this height (alone: keep aspect)", EnvVars: []string{"FRAMEHUB_HEIGHT"}},
		&cli.StringFlag{Name: "flip", Usage: "h, v or both", EnvVars: []string{"FRAMEHUB_FLIP"}},
		&cli.IntFlag{Name: "rotate", Usage: "0, 90, 180 or 270 degrees clockwise", EnvVars: []string{"FRAMEHUB_ROTATE"}},
		&cli.StringSliceFlag{Name: "filter", Usage: "processing steps in order: gray, blur=K, edges[=LO:HI], overlay (repeat or comma-separate)", EnvVars: []string{"FRAMEHUB_FILTER"}},
		&cli.IntFlag{Name: "quality", Value: 80, Usage: "JPEG quality, 1 to 100", EnvVars: []string{"FRAMEHUB_QUALITY"}},
		&cli.StringFlag{Name: "codec", Value: "jpeg", Usage: "jpeg, or raw (uncompressed BGR/gray pixels)", EnvVars: []string{"FRAMEHUB_CODEC"}},
		&cli.DurationFlag{Name: "duration", Usage: "stop after this long (0: until Ctrl-C or the end of a file)", EnvVars: []string{"FRAMEHUB_DURATION"}},
		&cli.BoolFlag{Name: "quiet", Usage: "no status line each second", EnvVars: []string{"FRAMEHUB_QUIET"}},
		&cli.StringFlag{Name: "renditions", Usage: "also send smaller copies of each frame at these even widths (e.g. 640,320), made from the frame as sent, aspect kept; viewers ask for them with max-width. Needs the OpenCV build", EnvVars: []string{"FRAMEHUB_RENDITIONS"}},
		&cli.StringFlag{Name: "rendition", Value: "main", Usage: "publish this source as one rendition of the channel, a width (e.g. 320: frames exactly that wide), beside another publisher's main picture", EnvVars: []string{"FRAMEHUB_RENDITION"}},
		&cli.BoolFlag{Name: "on-demand", Usage: "capture and encode only while someone watches the channel (a camera or stream is released meanwhile); needs the OpenCV build", EnvVars: []string{"FRAMEHUB_ON_DEMAND"}},
		&cli.DurationFlag{Name: "on-demand-hold", Value: publisher.DefaultOnDemandHold, Usage: "with --on-demand: keep capturing this long after the last viewer leaves before releasing the source (0: at once)", EnvVars: []string{"FRAMEHUB_ON_DEMAND_HOLD"}},
		&cli.DurationFlag{Name: "source-timeout", Usage: "a source that sends no frame for this long is stalled (told to the hub and logged); 0: ten frame intervals, 1s to 3s", EnvVars: []string{"FRAMEHUB_SOURCE_TIMEOUT"}},
		&cli.StringFlag{Name: "decoder", Value: "auto", Usage: "who decodes rtsp:// and other camera streams: ffmpeg (a child process), opencv, or auto (" + autoDecoder + ")", EnvVars: []string{"FRAMEHUB_DECODER"}},
		&cli.StringFlag{Name: "ffmpeg", Value: "ffmpeg", Usage: "the ffmpeg binary that decodes camera streams", EnvVars: []string{"FRAMEHUB_FFMPEG"}},
	}
}

func publishCommand() *cli.Command {
	usage := "capture a camera, file, stream or test pattern, process it and publish it to a hub channel"
	if !openCVBuild {
		usage = "publish a Motion JPEG stream (stdin, or an http(s) MJPEG URL) to a hub channel, as it is"
	}
	return &cli.Command{
		Name:  "publish",
		Usage: usage,
		UsageText: "framehub publish --hub URL --channel NAME --source S [--width W] [--filter gray,overlay] [--quality 80]\n" +
			"   ffmpeg ... -f mjpeg - | framehub publish --hub URL --channel NAME --source -",
		Flags:  append(clientFlags(), publishFlags()...),
		Action: publishAction,
	}
}

// processingFlags are the publish flags that need frames decoded.
var processingFlags = []string{"width", "height", "flip", "rotate", "filter", "quality", "codec", "on-demand", "renditions"}

// parseWidths reads a list of rendition widths: "640,320".
func parseWidths(s string) ([]int, error) {
	var widths []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		r, err := protocol.ParseRendition(f)
		if err != nil || r == protocol.RenditionMain {
			return nil, fmt.Errorf("%q: want widths in pixels, e.g. 640,320", s)
		}
		widths = append(widths, int(r))
	}
	return widths, nil
}

// renditionFlags reads --renditions (a list of widths) and --rendition.
func renditionFlags(c *cli.Context) (widths []int, one protocol.Rendition, err error) {
	if one, err = protocol.ParseRendition(c.String("rendition")); err != nil {
		return nil, 0, fmt.Errorf("--rendition: %w", err)
	}
	if widths, err = parseWidths(c.String("renditions")); err != nil {
		return nil, 0, fmt.Errorf("--renditions: %w", err)
	}
	if len(widths) > 0 && one != protocol.RenditionMain {
		return nil, 0, errors.New("--renditions and --rendition: a publisher of one rendition makes no others")
	}
	return widths, one, nil
}

// ffmpegFlags are the processing flags ffmpeg does when it decodes a
// camera stream.
var ffmpegFlags = []string{"width", "height", "quality"}

// publishAction relays what needs no OpenCV and hands the rest to it.
func publishAction(c *cli.Context) error {
	src := c.String("source")
	useFFmpeg, err := decodeWithFFmpeg(c)
	if err != nil {
		return err
	}
	if useFFmpeg && publisher.IsFFmpegSource(src) {
		return runFFmpegRelay(c)
	}
	if !publisher.IsRelaySource(src) {
		if !openCVBuild {
			return fmt.Errorf("--source %s needs OpenCV, and this binary was built without it (CGO_ENABLED=0): it publishes "+
				"only --source - (MJPEG on stdin) and http(s) MJPEG URLs; build with cgo and libopencv-dev (bash scripts/setup.sh; go build ./cmd/framehub)",
				protocol.RedactURL(src))
		}
		return runOpenCVPublish(c)
	}
	for _, name := range processingFlags {
		if !c.IsSet(name) || (name == "codec" && strings.EqualFold(c.String(name), "jpeg")) {
			continue
		}
		if openCVBuild {
			return runOpenCVPublish(c) // decode, process, encode
		}
		return fmt.Errorf("--%s needs OpenCV, and this binary was built without it (CGO_ENABLED=0): it publishes the JPEGs of "+
			"--source %s as they are, without decoding them; drop --%s, or build with cgo and libopencv-dev", name, shortSource(src), name)
	}
	if c.IsSet("loop") {
		return fmt.Errorf("--loop repeats a video file; --source %s is a stream", shortSource(src))
	}
	err = runRelay(c)
	if src != "-" && errors.Is(err, protocol.ErrNotJPEG) {
		// Not MJPEG (an MP4 or HLS URL, say): OpenCV's FFmpeg or ffmpeg
		// reads it.
		if useFFmpeg {
			logger(c).Info("the source is not an MJPEG stream; decoding it with ffmpeg", "source", protocol.RedactURL(src))
			return runFFmpegRelay(c)
		}
		logger(c).Info("the source is not an MJPEG stream; reading it with OpenCV", "source", protocol.RedactURL(src))
		return runOpenCVPublish(c)
	}
	return err
}

// decodeWithFFmpeg says whether camera streams go through ffmpeg: when
// --decoder says so, or for auto in the build without OpenCV.
func decodeWithFFmpeg(c *cli.Context) (bool, error) {
	switch d := strings.ToLower(c.String("decoder")); d {
	case "ffmpeg":
		return true, nil
	case "opencv":
		if !openCVBuild {
			return false, errors.New("--decoder opencv needs the build with OpenCV; this one was built without it (CGO_ENABLED=0)")
		}
		return false, nil
	case "auto":
		return !openCVBuild, nil
	default:
		return false, fmt.Errorf("--decoder %q: use ffmpeg, opencv or auto", d)
	}
}

// onlyFFmpegFlags reports whether every processing flag set is one that
// ffmpeg does.
func onlyFFmpegFlags(c *cli.Context) bool {
	for _, name := range processingFlags {
		if c.IsSet(name) && !slices.Contains(ffmpegFlags, name) && !(name == "codec" && strings.EqualFold(c.String(name), "jpeg")) {
			return false
		}
	}
	return true
}

// runFFmpegRelay publishes a camera stream that ffmpeg decodes into
// Motion JPEG at the chosen quality, size and rate.
func runFFmpegRelay(c *cli.Context) error {
	if !onlyFFmpegFlags(c) {
		for _, name := range processingFlags {
			if c.IsSet(name) && !slices.Contains(ffmpegFlags, name) && !(name == "codec" && strings.EqualFold(c.String(name), "jpeg")) {
				return fmt.Errorf("--%s needs OpenCV: ffmpeg decodes --source %s here and does only --width, --height, --quality and --fps; "+
					"drop --%s, or use the build with OpenCV (--decoder opencv)", name, shortSource(c.String("source")), name)
			}
		}
	}
	if c.IsSet("loop") {
		return fmt.Errorf("--loop repeats a video file; --source %s is a stream", shortSource(c.String("source")))
	}
	return runRelayWith(c, &publisher.FFmpegConfig{Path: c.String("ffmpeg"), Quality: c.Int("quality"),
		Width: c.Int("width"), Height: c.Int("height"), FPS: c.Float64("fps")})
}

func shortSource(src string) string {
	if src == "-" {
		return "-"
	}
	return protocol.RedactURL(src)
}

// runRelay publishes a relay source. An http(s) source is opened before
// anything else, so an error that says it is not MJPEG comes first.
func runRelay(c *cli.Context) error { return runRelayWith(c, nil) }

// runRelayWith publishes a relay source, decoded by ffmpeg when ff is set.
func runRelayWith(c *cli.Context, ff *publisher.FFmpegConfig) error {
	hd, tlsConf, err := clientAuth(c)
	if err != nil {
		return err
	}
	_, one, err := renditionFlags(c)
	if err != nil {
		return err
	}
	log := logger(c)
	cfg := publisher.RelayConfig{Source: c.String("source"), FFmpeg: ff, FPS: c.Float64("fps"), Logger: log,
		SourceTimeout: c.Duration("source-timeout"),
		Sender: publisher.SenderConfig{Hub: c.String("hub"), Channel: c.String("channel"), Header: hd, TLS: tlsConf,
			ConnectTimeout: connectTimeout(c), Rendition: one}}
	if tlsConf != nil {
		// --ca trusts a private CA for the source too (another hub, say).
		cfg.Client = &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConf.Clone(), Proxy: http.ProxyFromEnvironment}}
	}
	ctx := c.Context
	if d := c.Duration("duration"); d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	r, err := publisher.NewRelay(ctx, cfg)
	if err != nil {
		return err
	}
	defer r.Close()
	return runWithStatus(ctx, c, cfg.Sender, log, r)
}

// publishing is what runWithStatus needs: a Publisher or a Relay.
type publishing interface {
	Run(ctx context.Context) error
	Stats() publisher.Stats
	Connected() bool
	Source() string
}

// runWithStatus runs p with a status line each second on stderr.
func runWithStatus(ctx context.Context, c *cli.Context, sc publisher.SenderConfig, log *slog.Logger, p publishing) error {
	log.Info("publishing", "source", protocol.RedactURL(p.Source()), "channel", sc.Channel, "hub", sc.Hub)
	prev, at := p.Stats(), time.Now()
	stopStatus := showEverySecond(c, func(now time.Time) string {
		cur := p.Stats()
		line := sc.Channel + "  " + publisher.Status(prev, cur, now.Sub(at), p.Connected())
		prev, at = cur, now
		return line
	})
	err := p.Run(ctx)
	stopStatus()
	s := p.Stats()
	log.Info("publisher stopped", "captured", s.Captured, "sent", s.Sent, "skipped", s.Skipped,
		"failed", s.Failed, "renditions_sent", s.RenditionsSent, "bytes", s.Bytes, "reconnects", s.Reconnects)
	if errors.Is(err, context.DeadlineExceeded) {
		return nil // --duration ran out
	}
	return err
}
