package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"
)

// What every command shares, applied to the whole command tree in one
// place (finish): the global flags, accepted before or after the
// subcommand; one-line errors for bad or missing flags instead of a help
// dump; and the range of every numeric and duration flag.

// globalFlags are accepted before the subcommand and after it.
func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error", EnvVars: []string{"FRAMEHUB_LOG_LEVEL"}},
		&cli.StringFlag{Name: "log-format", Value: "text", Usage: "text or json", EnvVars: []string{"FRAMEHUB_LOG_FORMAT"}},
	}
}

// global returns a global flag's value wherever it was given: after the
// subcommand wins over before it, either over the environment and the
// default.
func global(c *cli.Context, name string) string {
	for _, cc := range c.Lineage() { // the subcommand's context first
		if flagSetHere(cc, name) {
			return cc.String(name)
		}
	}
	return c.String(name)
}

// flagSetHere reports whether name was given on this context's own command
// line (not a parent's, not the environment).
func flagSetHere(c *cli.Context, name string) bool {
	for _, n := range c.LocalFlagNames() {
		if n == name {
			return true
		}
	}
	return false
}

// rng is the allowed range of a numeric or duration flag.
type rng struct {
	min, max float64 // durations in seconds
	hint     string  // what the values mean, for the error
}

// flagRanges lists the flags whose range is narrower than "not negative",
// by command ("" for every command). Every other numeric and duration flag
// must not be negative.
var flagRanges = map[string]map[string]rng{
	"": {
		"quality":         {1, 100, ""},
		"width":           {0, 16384, "pixels; 0 keeps the source's"},
		"height":          {0, 16384, "pixels; 0 keeps the source's"},
		"credit":          {0, 8, "frames in flight; 0 is off"},
		"fps":             {0, 1000, "frames per second; 0 is the source's"},
		"connect-timeout": {0, 86400, "seconds; 0 retries forever"},
	},
	"hub":  hubRanges,
	"demo": hubRanges,
	"process": {
		"workers": {1, 16, "frames processed at once"},
		"credit":  {1, 8, "frames in flight"},
	},
	"bench": {
		"fps":         {0.1, 1000, "frames per second"},
		"subscribers": {0, 1e6, ""},
		"slow-fps":    {0.1, 1000, "frames per second"},
		"channels":    {1, 10000, ""},
		"width":       {16, 16384, "pixels"},
		"height":      {16, 16384, "pixels"},

		"publisher-frames": {1, 100000, ""},
		"publisher-runs":   {1, 99, ""},
		"publisher-cpu":    {-1, 4095, "a core; -1 picks the last"},
	},
}

// hubRanges are the hub flags' ranges, for hub and demo.
var hubRanges = map[string]rng{
	"send-buffer": {-1, 1 << 30, "bytes; -1 leaves the OS default"},
}

// checkRanges returns a one-line error for the first numeric or duration
// flag of c's command outside its range.
func checkRanges(c *cli.Context) error {
	for _, f := range c.Command.Flags {
		name := f.Names()[0]
		var v float64
		isDur := false
		switch underlying(f).(type) {
		case *cli.IntFlag:
			v = float64(c.Int(name))
		case *cli.Int64Flag:
			v = float64(c.Int64(name))
		case *cli.Uint64Flag:
			v = float64(c.Uint64(name))
		case *cli.Float64Flag:
			v = c.Float64(name)
		case *cli.DurationFlag:
			v, isDur = c.Duration(name).Seconds(), true
		default:
			continue
		}
		r, ok := flagRanges[c.Command.Name][name]
		if !ok {
			r, ok = flagRanges[""][name]
		}
		if !ok {
			r = rng{0, math.Inf(1), ""}
		}
		if !math.IsNaN(v) && v >= r.min && v <= r.max {
			continue
		}
		show := func(x float64) string {
			if isDur {
				return time.Duration(x * float64(time.Second)).String()
			}
			return fmt.Sprint(x)
		}
		var want string
		switch {
		case math.IsInf(r.max, 1) && r.min == 0:
			want = "must not be negative"
		case math.IsInf(r.max, 1):
			want = "must be at least " + show(r.min)
		default:
			want = "must be " + show(r.min) + " to " + show(r.max)
		}
		if r.hint != "" {
			want += " (" + r.hint + ")"
		}
		return fmt.Errorf("--%s %s: %s", name, show(v), want)
	}
	return nil
}

// usageError turns a flag parsing error into one line with a pointer to
// the help, instead of the whole help text.
func usageError(c *cli.Context, err error, _ bool) error {
	cmd := "framehub"
	if c.Command != nil && c.Command.Name != "" {
		cmd += " " + c.Command.Name
	}
	return fmt.Errorf("%w (see '%s --help')", err, cmd)
}

// finish applies what every command shares to cmds: global flags, one-line
// usage errors, required flags checked with a one-line error, and flag
// ranges.
func finish(cmds []*cli.Command) {
	for _, cmd := range cmds {
		cmd.Flags = append(cmd.Flags, globalFlags()...)
		cmd.OnUsageError = usageError
		var required []string
		for _, f := range cmd.Flags {
			switch f := f.(type) {
			case *cli.StringFlag:
				if f.Required {
					f.Required = false
					required = append(required, f.Name)
				}
			case *cli.StringSliceFlag:
				if f.Required {
					f.Required = false
					required = append(required, f.Name)
				}
			}
		}
		loadConfig := func(*cli.Context) error { return nil }
		if slices.Contains(configCommands, cmd.Name) {
			loadConfig = withConfig(cmd)
		}
		before := cmd.Before
		cmd.Before = func(c *cli.Context) error {
			if _, err := newLogger(c); err != nil {
				return err
			}
			if err := loadConfig(c); err != nil {
				return err
			}
			for _, name := range required {
				if !c.IsSet(name) {
					return fmt.Errorf("--%s is required (see 'framehub %s --help')", name, c.Command.Name)
				}
			}
			if err := checkRanges(c); err != nil {
				return err
			}
			if before != nil {
				return before(c)
			}
			return nil
		}
	}
}

// underlying returns the cli flag inside a flag wrapped for --config.
func underlying(f cli.Flag) cli.Flag {
	switch f := f.(type) {
	case *altsrc.StringFlag:
		return f.StringFlag
	case *altsrc.StringSliceFlag:
		return f.StringSliceFlag
	case *altsrc.IntFlag:
		return f.IntFlag
	case *altsrc.Int64Flag:
		return f.Int64Flag
	case *altsrc.Uint64Flag:
		return f.Uint64Flag
	case *altsrc.Float64Flag:
		return f.Float64Flag
	case *altsrc.DurationFlag:
		return f.DurationFlag
	case *altsrc.BoolFlag:
		return f.BoolFlag
	}
	return f
}

// needsOpenCV stands in, in a build without cgo, for a command that needs
// OpenCV, so that asking for it says so instead of "No help topic".
func needsOpenCV(name, usage string) *cli.Command {
	return &cli.Command{
		Name:            name,
		Usage:           usage + " (needs the OpenCV build)",
		SkipFlagParsing: true,
		Action: func(*cli.Context) error {
			return errors.New("framehub " + name + " needs OpenCV, and this binary was built without it (CGO_ENABLED=0): " +
				"build with cgo and libopencv-dev (bash scripts/setup.sh; go build ./cmd/framehub)")
		},
	}
}

// isTerminal reports whether w is a terminal, where a status line can be
// rewritten in place.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// statusLine writes one-second status lines: rewritten in place on a
// terminal, one per line otherwise (a log file, a pipe).
type statusLine struct {
	w    any
	tty  bool
	used bool
}

func newStatusLine(w any) *statusLine { return &statusLine{w: w, tty: isTerminal(w)} }

func (s *statusLine) show(line string) {
	w, ok := s.w.(interface{ Write([]byte) (int, error) })
	if !ok {
		return
	}
	if s.tty {
		fmt.Fprintf(w, "\r\x1b[K%s", line)
		s.used = true
		return
	}
	fmt.Fprintln(w, line)
}

// showEverySecond writes line(now) to c's stderr once a second, unless
// --quiet, until the returned stop is called; stop waits for the writer
// and ends the line.
func showEverySecond(c *cli.Context, line func(now time.Time) string) (stop func()) {
	status := newStatusLine(c.App.ErrWriter)
	if c.Bool("quiet") {
		return func() {}
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case now := <-t.C:
				status.show(line(now))
			}
		}
	}()
	return func() {
		close(quit)
		<-done
		status.done()
	}
}

// done ends an in-place line so what follows starts on its own line.
func (s *statusLine) done() {
	if w, ok := s.w.(interface{ Write([]byte) (int, error) }); ok && s.used {
		fmt.Fprintln(w)
		s.used = false
	}
}
