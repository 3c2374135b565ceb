package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"framehub/internal/dial"
	"framehub/protocol"
	"framehub/subscriber"
)

// clientFlags are the flags every client shares.
func clientFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "hub", Value: "http://127.0.0.1:8080", Usage: "hub address: http://, https://, ws://, wss:// or host:port", EnvVars: []string{"FRAMEHUB_HUB"}},
		&cli.DurationFlag{Name: "connect-timeout", Value: dial.DefaultConnectTimeout, Usage: "give up if the hub cannot be reached for this long at start (0: keep trying); once connected, reconnects never give up", EnvVars: []string{"FRAMEHUB_CONNECT_TIMEOUT"}},
	}, clientSecurityFlags()...)
}

// maxWidthFlag is --max-width, for the clients that receive frames.
func maxWidthFlag() cli.Flag {
	return &cli.IntFlag{Name: "max-width", Usage: "receive the channel's rendition that fits this width in pixels: the narrowest at least that wide, else the widest (0: the main picture)", EnvVars: []string{"FRAMEHUB_MAX_WIDTH"}}
}

// clientConfig maps the client flags to a subscriber.Config for channel.
func clientConfig(c *cli.Context, channel string) (subscriber.Config, error) {
	hd, tlsConf, err := clientAuth(c)
	if err != nil {
		return subscriber.Config{}, err
	}
	w := c.Int("max-width")
	if w < 0 || w > protocol.MaxRenditionWidth {
		return subscriber.Config{}, fmt.Errorf("--max-width %d: want a width from 1 to %d pixels (0: the main picture)", w, protocol.MaxRenditionWidth)
	}
	return subscriber.Config{Hub: c.String("hub"), Channel: channel, Header: hd, TLS: tlsConf, Want: protocol.RenditionWant{MaxWidth: w},
		ConnectTimeout: connectTimeout(c), Logger: logger(c)}, nil
}

// connectTimeout is --connect-timeout as the dial package takes it (0 on
// the command line means forever).
func connectTimeout(c *cli.Context) time.Duration {
	if d := c.Duration("connect-timeout"); d > 0 {
		return d
	}
	return -1
}

func watchCommand() *cli.Command {
	return &cli.Command{
		Name:      "watch",
		Usage:     "subscribe to a channel from the terminal: live stats, optional saving",
		UsageText: "framehub watch --hub URL --channel NAME [--duration 10s] [--count N] [--json] [--save DIR]",
		Flags: append(clientFlags(), maxWidthFlag(),
			&cli.StringFlag{Name: "channel", Required: true, Usage: "channel to watch", EnvVars: []string{"FRAMEHUB_CHANNEL"}},
			&cli.DurationFlag{Name: "duration", Usage: "stop after this long (0: until Ctrl-C)", EnvVars: []string{"FRAMEHUB_DURATION"}},
			&cli.IntFlag{Name: "count", Usage: "stop after this many frames (0: no limit)", EnvVars: []string{"FRAMEHUB_COUNT"}},
			&cli.BoolFlag{Name: "json", Usage: "print the summary as one JSON object on stdout", EnvVars: []string{"FRAMEHUB_JSON"}},
			&cli.StringFlag{Name: "save", Usage: "write each received frame to this directory (JPEG as .jpg, raw as .png)", EnvVars: []string{"FRAMEHUB_SAVE"}},
			&cli.IntFlag{Name: "credit", Usage: "ask for acknowledged delivery with this many frames in flight (0: off)", EnvVars: []string{"FRAMEHUB_CREDIT"}},
			&cli.BoolFlag{Name: "quiet", Usage: "no status line each second", EnvVars: []string{"FRAMEHUB_QUIET"}},
			&cli.BoolFlag{Name: "print-meta", Usage: "print each frame's metadata on stdout, one JSON line per frame: {\"seq\",\"capture_time_ns\",\"meta\"}", EnvVars: []string{"FRAMEHUB_PRINT_META"}},
		),
		Action: runWatch,
	}
}

func runWatch(c *cli.Context) error {
	log := logger(c)
	dur, count, dir := c.Duration("duration"), c.Int("count"), c.String("save")
	if dur < 0 || count < 0 {
		return fmt.Errorf("--duration and --count must not be negative")
	}
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("--save: %w", err)
		}
	}
	ccfg, err := clientConfig(c, c.String("channel"))
	if err != nil {
		return err
	}
	ccfg.Credit, ccfg.Logger = c.Int("credit"), log
	cl, err := subscriber.New(ccfg)
	if err != nil {
		return err
	}
	ctx := c.Context
	if dur > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, dur)
		defer cancel()
	}
	start := time.Now()
	stats := subscriber.NewStats(start)

	stopStatus := showEverySecond(c, func(now time.Time) string {
		state := ""
		if !cl.Connected() {
			state = "  (not connected)"
		}
		return fmt.Sprintf("%s  %s%s", c.String("channel"), stats.Status(now), state)
	})
	n := 0
	var unsaved int
	var lastUnsavedLog time.Time
	err = cl.Run(ctx, func(f *subscriber.Frame) error {
		stats.Observe(f)
		if c.Bool("print-meta") {
			if err := printMeta(c.App.Writer, f); err != nil {
				return err
			}
		}
		if dir != "" {
			err := saveFrame(dir, c.String("channel"), f)
			if errors.Is(err, errNotSaved) {
				// The frame's fault, not the disk's: skip it and go on.
				unsaved++
				if now := time.Now(); now.Sub(lastUnsavedLog) >= 10*time.Second {
					lastUnsavedLog = now
					log.Warn("frame not saved", "error", err.Error(), "unsaved_so_far", unsaved)
				}
			} else if err != nil {
				return err
			}
		}
		n++
		if count > 0 && n >= count {
			return subscriber.ErrStop
		}
		return nil
	})
	stopStatus()
	if unsaved > 0 {
		log.Warn("frames not saved", "count", unsaved)
	}
	if err != nil && n == 0 && !c.Bool("json") {
		return err // refused before any frame: the error says it all, a zero summary adds noise
	}
	sum := stats.Summary(time.Now())
	sum.Channel = c.String("channel")
	sum.Reconnects = cl.Reconnects()
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		if e := enc.Encode(sum); e != nil {
			return e
		}
	} else {
		fmt.Fprintf(c.App.ErrWriter, "%s: %d frames in %.1f s (%.1f fps, %.0f kbps), %dx%d %s, age p50 %.1f ms p99 %.1f ms max %.1f ms, skipped %d, reconnects %d, first frame after %.0f ms\n",
			sum.Channel, sum.Frames, sum.Seconds, sum.FPS, sum.KBPS, sum.Width, sum.Height, sum.Codec,
			sum.AgeP50MS, sum.AgeP99MS, sum.AgeMaxMS, sum.Skipped, sum.Reconnects, sum.FirstFrameMS)
		fmt.Fprint(c.App.ErrWriter, boxesLine(sum.Channel, sum.Boxes))
		fmt.Fprint(c.App.ErrWriter, eventsLine(sum.Channel, sum.Events))
	}
	if err != nil {
		return err
	}
	interrupted := errors.Is(c.Context.Err(), context.Canceled)
	if n == 0 && !interrupted {
		return fmt.Errorf("no frames in %v: is anyone publishing channel %q? (framehub publish --hub %s --channel %s …)",
			dur, c.String("channel"), cl.HubURL(), c.String("channel"))
	}
	if count > 0 && n < count && !interrupted {
		return fmt.Errorf("got %d of %d frames before --duration ran out", n, count)
	}
	return nil
}

// errNotSaved marks a frame saveFrame refuses: past the pixel limit,
// malformed, or raw of a kind PNG cannot hold. Other errors are the file
// system's.
var errNotSaved = errors.New("frame not saved")

// saveFrame writes a frame under dir: JPEG payloads as they came, raw
// 8-bit frames as PNG. It checks the picture's size against the decoders'
// pixel limit first (a saved JPEG is decoded by whoever opens it, and the
// PNG encoder allocates a copy of the picture).
func saveFrame(dir, channel string, f *subscriber.Frame) error {
	if _, _, err := subscriber.PictureSize(&f.Frame, protocol.DefaultMaxPixels); err != nil {
		return fmt.Errorf("%w: %w", errNotSaved, err)
	}
	base := filepath.Join(dir, fmt.Sprintf("%s-%010d", channel, f.Seq))
	if f.Codec == protocol.CodecJPEG {
		if err := os.WriteFile(base+".jpg", f.Payload, 0o644); err != nil {
			return fmt.Errorf("save frame: %w", err)
		}
		return nil
	}
	img, err := protocol.RawImage(f.Header, f.Payload)
	if err != nil {
		return fmt.Errorf("%w: frame %d: %w", errNotSaved, f.Seq, err)
	}
	out, err := os.Create(base + ".png")
	if err != nil {
		return fmt.Errorf("save frame: %w", err)
	}
	if err := png.Encode(out, img); err != nil {
		out.Close()
		return fmt.Errorf("save frame: %w", err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("save frame: %w", err)
	}
	return nil
}
