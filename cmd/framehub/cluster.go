package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"framehub/cluster"
)

// natsFlags are the hub's scale-out flags: with --nats, hubs that share
// NATS servers and a subject prefix act as one (package cluster).
func natsFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "nats", Usage: "join the hubs of a cluster through these NATS servers (nats://HOST:4222, comma-separated); off by default", EnvVars: []string{"FRAMEHUB_NATS"}},
		&cli.StringFlag{Name: "nats-creds", Usage: "NATS credentials file (user JWT and seed)", EnvVars: []string{"FRAMEHUB_NATS_CREDS"}},
		&cli.StringFlag{Name: "nats-token", Usage: "NATS token (prefer the -file form or the environment variable)", EnvVars: []string{"FRAMEHUB_NATS_TOKEN"}},
		&cli.StringFlag{Name: "nats-token-file", Usage: "file holding the NATS token", EnvVars: []string{"FRAMEHUB_NATS_TOKEN_FILE"}},
		&cli.StringFlag{Name: "nats-tls-ca", Usage: "CA certificates (PEM) that sign the NATS servers' certificates; implies TLS", EnvVars: []string{"FRAMEHUB_NATS_TLS_CA"}},
		&cli.StringFlag{Name: "nats-subject-prefix", Value: cluster.DefaultPrefix, Usage: "prefix of the NATS subjects; the hubs of one cluster share it, clusters on one NATS differ", EnvVars: []string{"FRAMEHUB_NATS_SUBJECT_PREFIX"}},
		&cli.StringFlag{Name: "nats-hub-name", Usage: "this hub's name in channel listings (default: host name and --listen port)", EnvVars: []string{"FRAMEHUB_NATS_HUB_NAME"}},
	}
}

// natsBus returns the bus the --nats flags ask for, or nil without --nats.
// The hub it is given to closes it.
func natsBus(c *cli.Context, log *slog.Logger) (*cluster.Bus, error) {
	var servers []string
	for _, s := range c.StringSlice("nats") {
		for _, u := range strings.Split(s, ",") {
			if u = strings.TrimSpace(u); u != "" {
				servers = append(servers, u)
			}
		}
	}
	if len(servers) == 0 {
		for _, f := range []string{"nats-creds", "nats-token", "nats-token-file", "nats-tls-ca", "nats-hub-name"} {
			if c.IsSet(f) {
				return nil, fmt.Errorf("--%s needs --nats", f)
			}
		}
		return nil, nil
	}
	token, err := readSecret(c, "nats-token", log)
	if err != nil {
		return nil, err
	}
	name := c.String("nats-hub-name")
	if name == "" {
		name = defaultHubName(c.String("listen"))
	}
	if len(name) > 128 || strings.ContainsAny(name, "\r\n") {
		return nil, errors.New("--nats-hub-name: at most 128 characters on one line")
	}
	return cluster.New(cluster.Config{
		Servers: servers, CredsFile: c.String("nats-creds"), Token: token, TLSCAFile: c.String("nats-tls-ca"),
		Prefix: c.String("nats-subject-prefix"), Name: name, Logger: log.With("component", "cluster"),
	})
}

// defaultHubName is the host name and the listen port, or a random suffix
// when the port is chosen at start.
func defaultHubName(listen string) string {
	host, _ := os.Hostname()
	if host == "" {
		host = "hub"
	}
	if _, port, err := net.SplitHostPort(listen); err == nil && port != "0" && port != "" {
		return host + ":" + port
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}
