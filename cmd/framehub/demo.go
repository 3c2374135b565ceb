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
	"framehub/publisher"
)

func demoCommand() *cli.Command {
	flags := append(hubFlags(), authFlags()...)
	for _, f := range publishFlags() {
		switch f.Names()[0] {
		case "channel", "source", "renditions":
			continue // redefined below with demo defaults
		}
		flags = append(flags, f)
	}
	flags = append(flags,
		&cli.StringFlag{Name: "channel", Value: "demo", Usage: "channel name", EnvVars: []string{"FRAMEHUB_CHANNEL"}},
		&cli.StringFlag{Name: "source", Usage: "source (default: camera 0 if there is one, else the test pattern)", EnvVars: []string{"FRAMEHUB_SOURCE"}},
		&cli.StringFlag{Name: "renditions", Value: demoRenditions, Usage: "also send smaller copies of each frame at these even widths, for the grid's tiles (\"\": none); a width not narrower than the picture is not sent", EnvVars: []string{"FRAMEHUB_RENDITIONS"}},
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
			if hcfg.Auth, err = hubAuth(c, hcfg.Logger); err != nil {
				return err
			}
			if err := checkExposure(c.String("listen"), hcfg.Auth, c.Bool("insecure"), hcfg.Logger); err != nil {
				return err
			}
			tlsConf, err := hubTLS(c)
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
			ready := make(chan net.Addr, 1)
			hubErr := make(chan error, 1)
			go func() {
				hubErr <- runHub(ctx, hcfg, c.String("listen"), tlsConf, c.Duration("shutdown-timeout"), func(h *hub.Hub, a net.Addr) {
					started(h, a)
					ready <- a
				})
			}()
			var addr net.Addr
			select {
			case addr = <-ready:
			case err := <-hubErr:
				return err
			}
			scheme := "http"
			if tlsConf != nil {
				scheme = "https"
			}
			base := strings.TrimSuffix(openURLs(scheme, addr)[0], "/")
			// The demo's own publisher reaches its hub on loopback, with a
			// publish token the hub signed for its channel when tokens are on.
			local := scheme + "://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(addr.(*net.TCPAddr).Port))
			pcfg, err := publisherConfig(c, local)
			if err == nil && hcfg.Auth != nil && hcfg.Auth.Open()&hub.RightPublish == 0 {
				var tok string
				tok, err = hcfg.Auth.Sign(c.String("channel"), hub.RightPublish, time.Now().Add(hub.MaxSignedTTL))
				pcfg.Sender.Header = http.Header{"Authorization": {"Bearer " + tok}}
			}
			if tlsConf != nil {
				// The demo's publisher pins the very certificate its hub
				// serves (it dials 127.0.0.1, a name the certificate need
				// not carry), instead of verifying a chain.
				leaf := tlsConf.Certificates[0].Certificate[0]
				pcfg.Sender.TLS = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true,
					VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
						if len(raw) == 0 || !bytes.Equal(raw[0], leaf) {
							return errors.New("demo: the hub's certificate is not the one it was given")
						}
						return nil
					}}
			}
			if err != nil {
				cancel()
				<-hubErr
				return err
			}
			pcfg.Source = demoSource(c.String("source"))
			ch := c.String("channel")
			prog := programName()
			proc, perr := demoProcessor(c, local, ch, pcfg.Source, hcfg.Auth, pcfg.Sender.TLS)
			if perr != nil {
				hcfg.Logger.Warn("demo: no processed channel", "error", perr.Error())
			}
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
		},
	}
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
