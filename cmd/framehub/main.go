// Command framehub moves live camera frames from the machines that capture
// them to everyone who watches, newest frame first. It is one binary with a
// subcommand per role: hub, watch, record, and (when built with cgo and
// OpenCV) publish, view and demo.
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
	return &cli.App{
		Name:  "framehub",
		Usage: "live camera frames from many machines to many eyes, newest frame always wins",
		Description: "Run a hub, publish a camera to it, and watch channels in a browser " +
			"(http://HUB/), natively (view) or from the terminal (watch).",
		Writer:    stdout,
		ErrWriter: stderr,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error", EnvVars: []string{"FRAMEHUB_LOG_LEVEL"}},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "text or json", EnvVars: []string{"FRAMEHUB_LOG_FORMAT"}},
		},
		Commands:       cmds,
		Before:         func(c *cli.Context) error { _, err := newLogger(c); return err },
		ExitErrHandler: func(*cli.Context, error) {}, // main reports errors and exits
	}
}

// newLogger builds the logger the global flags ask for, writing to stderr.
func newLogger(c *cli.Context) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", c.String("log-level"))
	}
	opts := &slog.HandlerOptions{Level: level}
	w := c.App.ErrWriter
	switch strings.ToLower(c.String("log-format")) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use text or json", c.String("log-format"))
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
