// Command framehub moves live camera frames from the machines that capture
// them to everyone who watches, newest frame first. It is one binary with a
// subcommand per role: hub, watch, record, publish (Motion JPEG from stdin
// or a URL in every build; cameras, files and processing when built with
// cgo and OpenCV), and with OpenCV view and demo.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newApp(os.Stdout, os.Stderr).RunContext(ctx, os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "framehub:", err)
		stop()
		os.Exit(1)
	}
}

// newApp builds the command-line application; tests run it in-process.
func newApp(stdout, stderr io.Writer) *cli.App {
	cmds := []*cli.Command{hubCommand(), watchCommand(), recordCommand(), tokenCommand(), benchCommand(), benchRawTCPCommand()}
	cmds = append(cmds, cgoCommands()...)
	finish(cmds)
	return &cli.App{
		Name:  "framehub",
		Usage: "live camera frames from many machines to many eyes, newest frame always wins",
		Description: "Run a hub, publish a camera to it, and watch channels in a browser " +
			"(http://HUB/), natively (view) or from the terminal (watch).",
		Writer:         stdout,
		ErrWriter:      stderr,
		Flags:          globalFlags(),
		Commands:       cmds,
		Before:         func(c *cli.Context) error { _, err := newLogger(c); return err },
		OnUsageError:   usageError,
		ExitErrHandler: func(*cli.Context, error) {}, // main reports errors and exits
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return fmt.Errorf("no command %q (see 'framehub --help')", c.Args().First())
			}
			return cli.ShowAppHelp(c)
		},
	}
}

// newLogger builds the logger the global flags ask for, writing to stderr.
func newLogger(c *cli.Context) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(global(c, "log-level"))); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", global(c, "log-level"))
	}
	opts := &slog.HandlerOptions{Level: level}
	w := c.App.ErrWriter
	switch strings.ToLower(global(c, "log-format")) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use text or json", global(c, "log-format"))
}

// logger returns the logger for a command; Before has already checked the
// flags, so the error cannot happen here.
func logger(c *cli.Context) *slog.Logger {
	l, err := newLogger(c)
	if err != nil {
		return slog.New(slog.NewTextHandler(c.App.ErrWriter, nil))
	}
	return l
}
