package hub

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"framehub/internal/testutil"
)

// limitServer serves a hub through its own Server and Listener, as the
// framehub command does.
func limitServer(t *testing.T, cfg Config) (*Hub, string) {
	t.Helper()
	h := New(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := h.Server()
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(h.Listener(ln)) }()
	t.Cleanup(func() {
		h.Close()
		srv.Close()
		<-done
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	})
	return h, ln.Addr().String()
}

// TestSlowloris opens more sockets than one address may have and trickles
// header bytes into all of them: the ones over the limit get 429 at once,
// the rest are cut at the header timeout, the hub's goroutines return to
// where they were, and the address may connect again afterwards.
func TestSlowloris(t *testing.T) {
	const limit, attackers = 40, 100
	h, addr := limitServer(t, Config{MaxConnsPerIP: limit, ConnRatePerIP: 10000, LimitLoopback: true,
		ReadHeaderTimeout: time.Second})
	base := runtime.NumGoroutine()

	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range attackers {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		c.Write([]byte("GET /api/channels HTTP/1.1\r\nHost: x\r\n"))
	}
	// Trickle a header line into every socket every 200 ms for 3 s, and
	// note which ones the hub has closed or refused.
	refused, cut := 0, 0
	state := make([]string, len(conns))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(time.Now().Add(4 * time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			mu.Lock()
			defer mu.Unlock()
			switch {
			case strings.HasPrefix(line, "HTTP/1.1 429"):
				state[i] = "refused"
			case err != nil && !strings.Contains(err.Error(), "timeout"):
				state[i] = "cut"
			default:
				state[i] = "open: " + line
			}
		}()
	}
	for range 15 {
		for _, c := range conns {
			c.Write([]byte("X-Slow: 1\r\n"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	wg.Wait()
	for _, s := range state {
		switch {
		case s == "refused":
			refused++
		case s == "cut":
			cut++
		default:
			t.Errorf("a trickling socket is still %s", s)
		}
	}
	if refused != attackers-limit || cut != limit {
		t.Fatalf("%d refused with 429 and %d cut at the header timeout; want %d and %d", refused, cut, attackers-limit, limit)
	}
	if n := h.Stats().Refused["too_many_connections_per_ip"]; n != attackers-limit {
		t.Fatalf("counted %d refusals, want %d", n, attackers-limit)
	}
	testutil.Eventually(t, 5*time.Second, "goroutines back to the baseline", func() bool { return runtime.NumGoroutine() <= base+2 })
	// The address may connect again once its sockets are gone.
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz after the attack: %v %v", err, resp)
	}
	resp.Body.Close()
}

func TestConnectionRatePerIP(t *testing.T) {
	h, addr := limitServer(t, Config{MaxConnsPerIP: 1000, ConnRatePerIP: 5, LimitLoopback: true})
	ok, refused := 0, 0
	for range 40 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		switch {
		case strings.HasPrefix(line, "HTTP/1.1 200"):
			ok++
		case strings.HasPrefix(line, "HTTP/1.1 429"):
			refused++
		default:
			t.Fatalf("unexpected answer %q", line)
		}
	}
	t.Logf("%d served, %d refused with 429", ok, refused)
	// A burst of 10, then about 5 per second: 40 quick connections mostly fail.
	if ok < 10 || ok > 20 || refused < 20 {
		t.Fatalf("%d served, %d refused; want the burst (10) and a few more served", ok, refused)
	}
	if n := h.Stats().Refused["connection_rate_per_ip"]; n != uint64(refused) {
		t.Fatalf("counted %d, refused %d", n, refused)
	}
}

func TestLoopbackIsExemptByDefault(t *testing.T) {
	_, addr := limitServer(t, Config{MaxConnsPerIP: 5, ConnRatePerIP: 1})
	// Twenty connections held open at once: past both the count (5) and
	// the burst (10) that would apply to any other address.
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range 20 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if line, _ := bufio.NewReader(c).ReadString('\n'); !strings.HasPrefix(line, "HTTP/1.1 200") {
			t.Fatalf("loopback connection %d answered %q", i+1, line)
		}
	}
}

func TestIPLimiterSweep(t *testing.T) {
	l := newIPLimiter(2, 10)
	now := time.Now()
	ip := mustAddr("192.0.2.1")
	for range 2 {
		if ok, _ := l.acquire(ip, now); !ok {
			t.Fatal("refused under the limit")
		}
	}
	if ok, why := l.acquire(ip, now); ok || why != reasonTooManyConnsPerIP {
		t.Fatalf("third connection: %v %v", ok, why)
	}
	l.release(ip)
	l.release(ip)
	l.sweep(now.Add(10 * time.Second))
	if len(l.ips) != 0 {
		t.Fatalf("idle address kept: %d entries", len(l.ips))
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// sockstatTCPMem reads the kernel's TCP buffer memory, in pages, from
// /proc/net/sockstat (the whole machine: other tests add noise).
func sockstatTCPMem(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/net/sockstat")
	if err != nil {
		t.Skipf("no /proc/net/sockstat: %v", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "TCP:" {
			for i := 1; i+1 < len(f); i += 2 {
				if f[i] == "mem" {
					n, _ := strconv.Atoi(f[i+1])
					return n
				}
			}
		}
	}
	t.Fatalf("no TCP mem in %s", b)
	return 0
}

// portSockets reads /proc/net/tcp for the TCP sockets of the loopback
// server on port and its clients: hubConns counts the established ones on
// the server's side, hubSendQ sums their send queues, and queued sums the
// send and receive queues of every socket with port at either end, in
// bytes: what this server and its clients hold, whatever other processes
// on the machine do.
func portSockets(t *testing.T, port string) (hubConns, hubSendQ, queued int) {
	t.Helper()
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Skipf("no /proc/net/tcp: %v", err)
	}
	p, _ := strconv.Atoi(port)
	suffix := fmt.Sprintf(":%04X", p)
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		local, remote := strings.HasSuffix(f[1], suffix), strings.HasSuffix(f[2], suffix)
		if !local && !remote {
			continue
		}
		txs, rxs, _ := strings.Cut(f[4], ":")
		tx, _ := strconv.ParseInt(txs, 16, 64)
		rx, _ := strconv.ParseInt(rxs, 16, 64)
		queued += int(tx + rx)
		if local && f[3] == "01" { // established
			hubConns++
			hubSendQ += int(tx)
		}
	}
	return hubConns, hubSendQ, queued
}
