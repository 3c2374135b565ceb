//go:build cgo

package main

import (
	"crypto/tls"
	"net/http"
	"strconv"
	"time"

	"github.com/urfave/cli/v2"

	"framehub/hub"
	"framehub/process"
)

// demoProcessor makes the processing worker the demo runs on its channel,
// so that the grid shows a processed channel, with boxes, next to the
// original: faces when the source is a camera, motion otherwise (the test
// pattern's ball moves). It publishes to CHANNEL-faces or CHANNEL-motion.
// With tokens on, it gets tokens its hub signed: view on the channel,
// publish on its own.
func demoProcessor(c *cli.Context, hubURL, channel, source string, auth *hub.Auth, tlsConf *tls.Config) (*process.Processor, error) {
	step := "motion"
	if _, err := strconv.Atoi(source); err == nil {
		step = "faces"
	}
	out := channel
	if len(out) > 64-len(step)-1 {
		out = out[:64-len(step)-1]
	}
	out += "-" + step
	cfg := process.Config{Hub: hubURL, In: channel, Out: out, TLS: tlsConf, Logger: logger(c)}
	if auth != nil {
		for _, s := range []struct {
			right   hub.Right
			channel string
			header  *http.Header
		}{{hub.RightView, channel, &cfg.Header}, {hub.RightPublish, out, &cfg.OutHeader}} {
			if auth.Open()&s.right != 0 {
				continue
			}
			tok, err := auth.Sign(s.channel, s.right, time.Now().Add(hub.MaxSignedTTL))
			if err != nil {
				return nil, err
			}
			*s.header = http.Header{"Authorization": {"Bearer " + tok}}
		}
	}
	steps, err := process.ParseSteps([]string{step}, process.StepOptions{})
	if err != nil {
		return nil, err
	}
	cfg.Steps = steps
	p, err := process.New(cfg)
	if err != nil {
		for _, s := range steps {
			if cl, ok := s.(interface{ Close() error }); ok {
				cl.Close()
			}
		}
		return nil, err
	}
	return p, nil
}

// demoProcessorLine is the demo's line about its processed channel.
func demoProcessorLine(base string, p *process.Processor) string {
	if p == nil {
		return ""
	}
	return "  processed channel   " + base + "/view/" + p.Out() + " (boxes found by framehub process)\n"
}
