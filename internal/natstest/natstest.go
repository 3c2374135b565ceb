// Package natstest runs a real NATS server (nats-server/v2, embedded) in a
// test process, on loopback, for the tests of the cluster, the command and
// the benchmark. It is its own package so that only their test binaries
// link the server.
package natstest

import (
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options says what differs from a default server: its port (0: any free
// one), its largest message (0: the server's default) and whether it
// serves its HTTP monitoring endpoints (on any free loopback port).
type Options struct {
	Port       int
	MaxPayload int32
	Monitor    bool
}

// Start runs a NATS server on 127.0.0.1, waits until it accepts
// connections, and shuts it down when the test ends.
func Start(t testing.TB, o Options) *server.Server {
	t.Helper()
	opts := &server.Options{Host: "127.0.0.1", Port: o.Port, NoLog: true, NoSigs: true, MaxPayload: o.MaxPayload}
	if o.Port == 0 {
		opts.Port = -1
	}
	if o.Monitor {
		opts.HTTPHost, opts.HTTPPort = "127.0.0.1", -1
	}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	if !s.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats server not ready within 5 s")
	}
	return s
}

// Port returns the port s listens on for clients.
func Port(s *server.Server) int { return s.Addr().(*net.TCPAddr).Port }
