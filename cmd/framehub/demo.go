//go:build cgo

package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"framehub/hub"
	"framehub/process"
	"framehub/publisher"
)

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:   "demo",
		Usage:  "run a hub and a publisher in one process and print the URL to open",
		Flags:  demoFlags(),
		Action: runDemo,
	}
}

// demoFlags are the hub's and the publisher's flags, with demo defaults
// for the channel and the source.
func demoFlags() []cli.Flag {
	flags := append(hubFlags(), authFlags()...)
	for _, f := range publishFlags() {
		switch f.Names()[0] {
		case "channel", "source", "renditions":
			continue // redefined below with demo defaults
		}
		flags = append(flags, f)
	}
	return append(flags,
		&cli.StringFlag{Name: "channel", Value: "demo", Usage: "channel name", EnvVars: []string{"FRAMEHUB_CHANNEL"}},
		&cli.StringFlag{Name: "source", Usage: "source (default: camera 0 if there is one, else the test pattern)", EnvVars: []string{"FRAMEHUB_SOURCE"}},
		&cli.StringFlag{Name: "renditions", Value: demoRenditions, Usage: "also send smaller copies of each frame at these even widths, for the grid's tiles (\"\": none); a width not narrower than the picture is not sent", EnvVars: []string{"FRAMEHUB_RENDITIONS"}},
	)
}

// runDemo starts the hub, then its publisher and, when it can, a
// processing worker, prints where to look, and runs until the hub or the
// publisher stops (Ctrl-C stops both).
func runDemo(c *cli.Context) error {
	quietOpenCV(c)
	hcfg, tlsConf, err := demoHubConfig(c)
	if err != nil {
		return err
	}
	started, stopSide, err := sideListeners(c, &hcfg)
	if err != nil {
		return err
	}
	defer stopSide()
	ctx, cancel := context.WithCancel(c.Context)
	defer cancel()
	addr, hubErr, err := startDemoHub(ctx, c, hcfg, tlsConf, started)
	if err != nil {
		return err
	}
	scheme := "http"
	if tlsConf != nil {
		scheme = "https"
	}
	base := strings.TrimSuffix(openURLs(scheme, addr)[0], "/")
	// The demo's own clients reach their hub on loopback.
	local := scheme + "://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(addr.(*net.TCPAddr).Port))
	pcfg, err := demoPublisherConfig(c, local, hcfg.Auth, tlsConf)
	if err != nil {
		cancel()
		<-hubErr
		return err
	}
	ch := c.String("channel")
	proc, perr := demoProcessor(c, local, ch, pcfg.Source, hcfg.Auth, pcfg.Sender.TLS)
	if perr != nil {
		hcfg.Logger.Warn("demo: no processed channel", "error", perr.Error())
	}
	prog := programName()
	fmt.Fprintf(c.App.Writer, `
framehub demo: publishing %s to channel %q

  open in a browser   %s/
                      %s/view/%s
  watch in terminal   %s watch --hub %s --channel %s
  native window       %s view --hub %s --channel %s
  any MJPEG player    ffplay %s/channels/%s/stream.mjpeg
%s
Ctrl-C stops.

`, pcfg.Source, ch, base, base, ch, prog, base, ch, prog, base, ch, base, ch, demoProcessorLine(base, proc))
	return runDemoClients(ctx, cancel, c, pcfg, proc, hubErr, hcfg)
}

// demoHubConfig is the hub's configuration and TLS, checked as `framehub
// hub` checks them.
func demoHubConfig(c *cli.Context) (hub.Config, *tls.Config, error) {
	hcfg, err := hubConfig(c)
	if err != nil {
		return hcfg, nil, err
	}
	if hcfg.Auth, err = hubAuth(c, hcfg.Logger); err != nil {
		return hcfg, nil, err
	}
	if err := checkExposure(c.String("listen"), hcfg.Auth, c.Bool("insecure"), hcfg.Logger); err != nil {
		return hcfg, nil, err
	}
	tlsConf, err := hubTLS(c)
	return hcfg, tlsConf, err
}

// startDemoHub runs the hub until ctx ends and returns its address once it
// listens; hubErr then says how it ended.
func startDemoHub(ctx context.Context, c *cli.Context, hcfg hub.Config, tlsConf *tls.Config,
	started func(*hub.Hub, net.Addr)) (addr net.Addr, hubErr <-chan error, err error) {
	ready := make(chan net.Addr, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- runHub(ctx, hcfg, c.String("listen"), tlsConf, c.Duration("shutdown-timeout"), func(h *hub.Hub, a net.Addr) {
			started(h, a)
			ready <- a
		})
	}()
	select {
	case addr = <-ready:
		return addr, errc, nil
	case err := <-errc:
		return nil, nil, err
	}
}

// demoPublisherConfig is the demo's publisher: it reaches its hub at local
// (loopback), with a publish token the hub signed for its channel when
// tokens are on, and, over TLS, pinning the very certificate the hub
// serves (it dials 127.0.0.1, a name the certificate need not carry)
// instead of verifying a chain.
func demoPublisherConfig(c *cli.Context, local string, auth *hub.Auth, tlsConf *tls.Config) (publisher.Config, error) {
	pcfg, err := publisherConfig(c, local)
	if err != nil {
		return pcfg, err
	}
	if auth != nil && auth.Open()&hub.RightPublish == 0 {
		tok, err := auth.Sign(c.String("channel"), hub.RightPublish, time.Now().Add(hub.MaxSignedTTL))
		if err != nil {
			return pcfg, err
		}
		pcfg.Sender.Header = http.Header{"Authorization": {"Bearer " + tok}}
	}
	if tlsConf != nil {
		leaf := tlsConf.Certificates[0].Certificate[0]
		pcfg.Sender.TLS = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true,
			VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
				if len(raw) == 0 || !bytes.Equal(raw[0], leaf) {
					return errors.New("demo: the hub's certificate is not the one it was given")
				}
				return nil
			}}
	}
	pcfg.Source = demoSource(c.String("source"))
	return pcfg, nil
}

// runDemoClients runs the publisher and the processing worker (proc may
// be nil) until the publisher or the hub stops, then stops the rest and
// returns the first error (none for Ctrl-C).
func runDemoClients(ctx context.Context, cancel context.CancelFunc, c *cli.Context, pcfg publisher.Config,
	proc *process.Processor, hubErr <-chan error, hcfg hub.Config) error {
	var wg sync.WaitGroup
	if proc != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer proc.Close()
			if err := proc.Run(ctx); err != nil {
				hcfg.Logger.Warn("demo: processing stopped", "error", err.Error())
			}
		}()
	}
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
}

// demoRenditions are the widths the demo publishes besides the main
// picture: a grid tile's and a small player's.
const demoRenditions = "640,320"

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
