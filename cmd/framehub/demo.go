//go:build cgo

package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"

	"github.com/urfave/cli/v2"

	"framehub/publisher"
)

func demoCommand() *cli.Command {
	flags := hubFlags()
	for _, f := range publishFlags() {
		switch f.Names()[0] {
		case "channel", "source":
			continue // redefined below with demo defaults
		}
		flags = append(flags, f)
	}
	flags = append(flags,
		&cli.StringFlag{Name: "channel", Value: "demo", Usage: "channel name", EnvVars: []string{"FRAMEHUB_CHANNEL"}},
		&cli.StringFlag{Name: "source", Usage: "source (default: camera 0 if there is one, else the test pattern)", EnvVars: []string{"FRAMEHUB_SOURCE"}},
		&cli.BoolFlag{Name: "insecure", Usage: "allow a non-loopback --listen (the demo has no tokens)", EnvVars: []string{"FRAMEHUB_INSECURE"}},
	)
	return &cli.Command{
		Name:  "demo",
		Usage: "run a hub and a publisher in one process and print the URL to open",
		Flags: flags,
		Action: func(c *cli.Context) error {
			quietOpenCV(c)
			hcfg, err := hubConfig(c)
			if err != nil {
				return err
			}
			if err := checkExposure(c.String("listen"), nil, c.Bool("insecure"), hcfg.Logger); err != nil {
				return err
			}
			ctx, cancel := context.WithCancel(c.Context)
			defer cancel()
			ready := make(chan net.Addr, 1)
			hubErr := make(chan error, 1)
			go func() {
				hubErr <- runHub(ctx, hcfg, c.String("listen"), nil, c.Duration("shutdown-timeout"), func(a net.Addr) { ready <- a })
			}()
			var addr net.Addr
			select {
			case addr = <-ready:
			case err := <-hubErr:
				return err
			}
			base := "http://" + addr.String()
			pcfg, err := publisherConfig(c, base)
			if err != nil {
				cancel()
				<-hubErr
				return err
			}
			pcfg.Source = demoSource(c.String("source"))
			ch := c.String("channel")
			prog := programName()
			fmt.Fprintf(c.App.Writer, `
framehub demo: publishing %s to channel %q

  open in a browser   %s/
                      %s/view/%s
  watch in terminal   %s watch --hub %s --channel %s
  native window       %s view --hub %s --channel %s
  any MJPEG player    ffplay %s/channels/%s/stream.mjpeg

Ctrl-C stops.

`, pcfg.Source, ch, base, base, ch, prog, base, ch, prog, base, ch, base, ch)
			var wg sync.WaitGroup
			pubErr := make(chan error, 1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				pubErr <- runPublisher(ctx, c, pcfg)
			}()
			var first error
			select {
			case first = <-pubErr:
				cancel()
				if err := <-hubErr; first == nil {
					first = err
				}
			case first = <-hubErr:
				cancel()
				if err := <-pubErr; first == nil {
					first = err
				}
			}
			wg.Wait()
			if errors.Is(first, context.Canceled) {
				first = nil
			}
			return first
		},
	}
}

// programName is how to run this binary again, as the user ran it
// ("bin/framehub" after scripts/demo.sh), or "framehub" for a go run
// build or one found on the PATH.
func programName() string {
	p := os.Args[0]
	if !strings.ContainsRune(p, os.PathSeparator) || strings.Contains(p, "go-build") {
		return "framehub"
	}
	return p
}

// demoSource picks camera 0 when one is there and the test pattern
// otherwise, unless the user named a source.
func demoSource(s string) string {
	if s != "" {
		return s
	}
	if _, err := os.Stat("/dev/video0"); err == nil {
		if src, err := publisher.OpenSource("0", publisher.SourceOptions{}); err == nil {
			src.Close()
			return "0"
		}
	}
	return "test"
}
