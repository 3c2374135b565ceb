package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"framehub/hub"
	"framehub/internal/testutil"
	"framehub/protocol"
	"framehub/publisher"
	"framehub/subscriber"
)

func writeSecret(t *testing.T, dir, name, val string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(val+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTokensEndToEnd runs the hub with token files, publishes and watches
// with the right tokens, is refused with the wrong ones, opens a snapshot
// with a token minted by `framehub token`, and finally searches all the
// output of every process for the secrets.
func TestTokensEndToEnd(t *testing.T) {
	const pub, view, key = "pub-token-3f9a8b7c6d5e", "view-token-1a2b3c4d5e6f", "signing-key-0f1e2d3c4b5a6978"
	dir := t.TempDir()
	pubF, viewF, keyF := writeSecret(t, dir, "pub", pub), writeSecret(t, dir, "view", view), writeSecret(t, dir, "key", key)
	hp := start(t, nocgoBin, []string{"FRAMEHUB_LOG_LEVEL=debug"}, "hub", "--listen", "127.0.0.1:0",
		"--publish-token-file", pubF, "--view-token-file", viewF, "--token-secret-file", keyF)
	addr := hp.waitLog(t, listenRE, 10*time.Second)[1]

	w := start(t, nocgoBin, nil, "watch", "--hub", "http://"+addr, "--channel", "cam1", "--count", "10",
		"--duration", "20s", "--json", "--token-file", viewF)
	hp.waitLog(t, regexp.MustCompile(`subscriber connected`), 10*time.Second) // debug log: /api/stats needs a token here
	if err := sendFramesAs(addr, "cam1", 1, 1, 500, nil, nil); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("publishing without a token: %v, want 401", err)
	}
	if err := sendFramesAs(addr, "cam1", 1, 30, 500, http.Header{"Authorization": {"Bearer " + pub}}, nil); err != nil {
		t.Fatalf("publishing with the token: %v", err)
	}
	if err := w.wait(t, 20*time.Second); err != nil {
		t.Fatalf("watch with the view token: %v", err)
	}
	var sum subscriber.Summary
	if err := json.Unmarshal([]byte(w.outText()), &sum); err != nil || sum.Frames != 10 {
		t.Fatalf("watch summary %q: %v", w.outText(), err)
	}

	// Wrong and missing tokens: watch fails at once with a clear error.
	for _, args := range [][]string{{}, {"--token", "not-the-view-token-at-all"}, {"--token-file", pubF}} {
		cmd := exec.Command(nocgoBin, append([]string{"watch", "--hub", "http://" + addr, "--channel", "cam1", "--duration", "10s"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err == nil || !regexp.MustCompile(`hub refused: 40[13]`).Match(out) {
			t.Errorf("watch %v: %v %s; want a 401/403 refusal", args, err, out)
		}
		if bytes.Contains(out, []byte(pub)) || bytes.Contains(out, []byte("not-the-view-token")) {
			t.Errorf("watch %v echoed its token: %s", args, out)
		}
	}

	// A short-lived token for an <img> URL.
	out, err := exec.Command(nocgoBin, "token", "--token-secret-file", keyF, "--channel", "cam1", "--ttl", "30s").Output()
	if err != nil {
		t.Fatalf("framehub token: %v", err)
	}
	minted := strings.TrimSpace(string(out))
	for _, c := range []struct {
		url  string
		want int
	}{
		{"/channels/cam1/snapshot.jpg?token=" + minted, 200},
		{"/channels/cam1/snapshot.jpg", 401},
		{"/channels/cam2/snapshot.jpg?token=" + minted, 403},
	} {
		resp, err := http.Get("http://" + addr + c.url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s: %d, want %d", c.url, resp.StatusCode, c.want)
		}
	}
	hp.cmd.Process.Signal(syscall.SIGTERM)
	if err := hp.wait(t, 10*time.Second); err != nil {
		t.Fatalf("hub exit: %v", err)
	}
	all := hp.errText() + w.errText() + w.outText()
	if !strings.Contains(all, "unauthorized") {
		t.Fatalf("the hub logged no refusal; the search below would prove nothing:\n%s", hp.errText())
	}
	for _, s := range []string{pub, view, key, minted} {
		if strings.Contains(all, s) {
			t.Errorf("secret %q… appears in the logs", s[:6])
		}
	}
}

func TestHubRefusesOpenNetworkListen(t *testing.T) {
	// The check runs before the hub binds, so this test opens no socket.
	out, err := exec.Command(nocgoBin, "hub", "--listen", "0.0.0.0:0").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--insecure") || !strings.Contains(string(out), "no token protects") {
		t.Fatalf("hub on 0.0.0.0 without tokens: %v %s", err, out)
	}
	out, err = exec.Command(nocgoBin, "hub", "--listen", "0.0.0.0:0", "--publish-token", "only-publishing-is-protected").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "view") {
		t.Fatalf("hub on 0.0.0.0 with only a publish token: %v %s", err, out)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--view-token", "short"}, "at least 16"},
		{[]string{"--view-token", "x", "--view-token-file", "/etc/hostname"}, "not both"},
		{[]string{"--tokens-file", "/nonexistent/tokens"}, "no such file"},
		{[]string{"--tls-cert", "/nonexistent.pem"}, "go together"},
		{[]string{"--allowed-origins", "example.com"}, "scheme://host"},
		{[]string{"--token-secret", "lonely-secret-without-tokens"}, "no token is"},
	} {
		out, err := exec.Command(nocgoBin, append([]string{"hub", "--listen", "127.0.0.1:0"}, c.args...)...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("hub %v: %v %s; want %q", c.args, err, out, c.want)
		}
	}
	// --insecure lets it start, with a warning naming the open rights.
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	if err := checkExposure("0.0.0.0:8080", nil, true, log); err != nil || !strings.Contains(buf.String(), "INSECURE") {
		t.Fatalf("--insecure: %v %q", err, buf.String())
	}
	a, _ := hub.NewAuth([]hub.Grant{{Token: "view-and-publish-token", Rights: hub.RightView | hub.RightPublish, Channels: []string{"*"}}}, nil)
	if err := checkExposure("0.0.0.0:8080", a, false, log); err != nil {
		t.Fatalf("fully protected hub refused: %v", err)
	}
	if err := checkExposure("[::1]:8080", nil, false, log); err != nil {
		t.Fatalf("loopback refused: %v", err)
	}
}

// testCA makes a private CA and a certificate for 127.0.0.1 signed by it,
// and writes ca.pem, cert.pem and key.pem under dir.
func testCA(t *testing.T, dir string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "framehub test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	for name, block := range map[string]*pem.Block{
		"ca.pem": {Type: "CERTIFICATE", Bytes: caDER}, "cert.pem": {Type: "CERTIFICATE", Bytes: der},
		"key.pem": {Type: "EC PRIVATE KEY", Bytes: kb},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTLSHubAndClients(t *testing.T) {
	dir := t.TempDir()
	testCA(t, dir)
	hp, addr := startHub(t, nocgoBin, "--tls-cert", filepath.Join(dir, "cert.pem"), "--tls-key", filepath.Join(dir, "key.pem"))
	if !strings.Contains(hp.errText(), "https://"+addr) {
		t.Fatalf("hub did not announce an https URL:\n%s", hp.errText())
	}
	w := start(t, nocgoBin, nil, "watch", "--hub", "https://"+addr, "--channel", "cam1", "--count", "5",
		"--duration", "20s", "--json", "--ca", filepath.Join(dir, "ca.pem"))
	pemCA, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemCA)
	w.waitLog(t, regexp.MustCompile(`msg=connected`), 10*time.Second)
	if err := sendFramesAs("wss://"+addr, "cam1", 1, 20, 500, nil, &tls.Config{RootCAs: pool}); err != nil {
		t.Fatalf("publish over wss: %v", err)
	}
	if err := w.wait(t, 20*time.Second); err != nil {
		t.Fatalf("watch over https with --ca: %v", err)
	}
	// Without the CA the certificate is not trusted, and watch says so.
	out, err := exec.Command(nocgoBin, "watch", "--hub", "https://"+addr, "--channel", "cam1", "--count", "1", "--duration", "2s").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "certificate") {
		t.Fatalf("watch without --ca: %v %s; want a certificate error", err, out)
	}
	// Plain HTTP to a TLS hub does not work.
	if resp, err := http.Get("http://" + addr + "/healthz"); err == nil && resp.StatusCode == 200 {
		resp.Body.Close()
		t.Fatal("plain HTTP reached the TLS hub")
	} else if err == nil {
		resp.Body.Close()
	}
}

// TestHubRestartReconnectTimes: 50 subscribers and 2 publishers (the
// library clients every command uses) on a hub process that is stopped
// with SIGTERM and started again on the same address. The old hub drains
// within 2 s; every subscriber sees frames again within 3 s of the new
// hub listening. The reconnect times are logged for docs/SECURITY.md.
func TestHubRestartReconnectTimes(t *testing.T) {
	const subs, fps = 50, 30
	hp, addr := startHub(t, nocgoBin)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	channels := []string{"cam0", "cam1"}
	for _, ch := range channels {
		s, err := publisher.NewSender(publisher.SenderConfig{Hub: "http://" + addr, Channel: ch})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.Close()
			payload := testutil.FakeJPEG(320, 240, 1, 20_000)
			tick := time.NewTicker(time.Second / fps)
			defer tick.Stop()
			var buf []byte
			for seq := uint64(1); ctx.Err() == nil; seq++ {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				f := protocol.Frame{Header: protocol.Header{Codec: protocol.CodecJPEG, Width: 320, Height: 240, Seq: seq,
					CaptureTime: time.Now().UnixNano()}, Payload: payload}
				buf = protocol.AppendFrame(buf[:0], &f)
				_ = s.Send(ctx, buf) // on error the next Send reconnects, with backoff
			}
		}()
	}
	var last [subs]atomic.Int64 // unix nanos of each subscriber's newest frame
	for i := range subs {
		cl, err := subscriber.New(subscriber.Config{Hub: "http://" + addr, Channel: channels[i%2]})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = cl.Run(ctx, func(f *subscriber.Frame) error { last[i].Store(f.Received.UnixNano()); return nil })
		}()
	}
	waitAll := func(after time.Time, d time.Duration) []time.Duration {
		t.Helper()
		deadline := time.Now().Add(d)
		for {
			var got []time.Duration
			for i := range last {
				if ts := last[i].Load(); ts > after.UnixNano() {
					got = append(got, time.Duration(ts-after.UnixNano()))
				}
			}
			if len(got) == subs {
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d subscribers got a frame within %v", len(got), subs, d)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitAll(time.Now(), 15*time.Second)

	// Twice: a quick restart, then one with the hub down for 4 s, long
	// enough for every client's backoff to reach its cap.
	for _, down := range []time.Duration{0, 4 * time.Second} {
		stop := time.Now()
		hp.cmd.Process.Signal(syscall.SIGTERM)
		if err := hp.wait(t, 5*time.Second); err != nil {
			t.Fatalf("hub exit after SIGTERM: %v", err)
		}
		drain := time.Since(stop)
		if drain > 2*time.Second {
			t.Errorf("SIGTERM took %v to drain; want at most 2 s", drain)
		}
		time.Sleep(down)
		for try := 0; ; try++ { // the port may need a moment to be free again
			hp = start(t, nocgoBin, nil, "hub", "--listen", addr)
			if try == 50 || hp.waitLogOrExit(regexp.MustCompile(`hub listening`), 5*time.Second) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		up := time.Now()
		times := waitAll(up, 3*time.Second)
		slices.Sort(times)
		p := func(q float64) time.Duration { return times[int(q*float64(len(times)-1))].Round(time.Millisecond) }
		t.Logf("SIGTERM drain %v; hub down %v; first frame after restart: p50 %v p95 %v max %v over %d subscribers",
			drain.Round(time.Millisecond), up.Sub(stop).Round(time.Millisecond), p(0.5), p(0.95), p(1), subs)
	}
}

// waitLogOrExit waits for a stderr line matching re; false if the process
// exits first or d passes.
func (p *proc) waitLogOrExit(re *regexp.Regexp, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if re.MatchString(p.errText()) {
			return true
		}
		select {
		case <-p.done:
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
	return false
}

// TestClientErrorsSayWhatToDo: each way a new user's first command can
// fail ends with a non-zero exit, the cause, and what to do, instead of
// retrying silently and exiting 0 with 0 frames.
func TestClientErrorsSayWhatToDo(t *testing.T) {
	dir := t.TempDir()
	testCA(t, dir)
	_, tlsAddr := startHub(t, nocgoBin, "--tls-cert", filepath.Join(dir, "cert.pem"), "--tls-key", filepath.Join(dir, "key.pem"))
	viewF := filepath.Join(dir, "view.token")
	os.WriteFile(viewF, []byte("view-token-for-this-test-1234\n"), 0o600)
	keyF := filepath.Join(dir, "signing.key")
	os.WriteFile(keyF, []byte("signing-key-for-this-test-5678\n"), 0o600)
	_, authAddr := startHub(t, nocgoBin, "--view-token-file", viewF, "--token-secret-file", keyF)
	_, openAddr := startHub(t, nocgoBin)
	free := func() string {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		defer ln.Close()
		return ln.Addr().String()
	}()
	expired := filepath.Join(dir, "expired.token")
	// A signed token that expired: the hub calls it unknown or expired.
	a, _ := hub.NewAuth(nil, []byte("signing-key-for-this-test-5678"))
	tok, _ := a.Sign("cam1", hub.RightView, time.Now().Add(-time.Minute))
	os.WriteFile(expired, []byte(tok), 0o600)

	for _, c := range []struct {
		name string
		args []string
		want []string // in stderr
		max  time.Duration
	}{
		{"hub not running", []string{"watch", "--hub", free, "--channel", "cam1", "--connect-timeout", "1s"},
			[]string{"connection refused", "is the hub running", "framehub hub"}, 8 * time.Second},
		{"unknown host", []string{"watch", "--hub", "http://no-such-hub.invalid:8080", "--channel", "cam1"},
			[]string{"no such host", "check the host name in --hub"}, 3 * time.Second},
		{"private CA", []string{"watch", "--hub", "https://" + tlsAddr, "--channel", "cam1"},
			[]string{"certificate", "--ca FILE"}, 3 * time.Second},
		{"no token", []string{"watch", "--hub", authAddr, "--channel", "cam1"},
			[]string{"401", "needs a token", "--token-file"}, 3 * time.Second},
		{"wrong token", []string{"watch", "--hub", authAddr, "--channel", "cam1", "--token", "not-the-view-token-at-all"},
			[]string{"401", "unknown or expired", "--token"}, 3 * time.Second},
		{"expired token", []string{"watch", "--hub", authAddr, "--channel", "cam1", "--token-file", expired},
			[]string{"401", "wrong, or expired"}, 3 * time.Second},
		{"nobody publishing", []string{"watch", "--hub", openAddr, "--channel", "empty", "--duration", "1s"},
			[]string{"no frames in 1s", `is anyone publishing channel "empty"`}, 8 * time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			cmd := exec.Command(nocgoBin, c.args...)
			out, err := cmd.CombinedOutput()
			took := time.Since(start)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("exit: %v; want status 1\n%s", err, out)
			}
			for _, w := range c.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if took > c.max {
				t.Errorf("took %v; want at most %v", took, c.max)
			}
		})
	}
}

// TestSIGHUPReloadsTokens: a hub reloads its tokens file on SIGHUP. The
// connection of a token taken out is closed with 4003; a publisher whose
// token stayed keeps publishing to a viewer whose token stayed; the old
// token is refused and a new one accepted; a reload of a broken file keeps
// the tokens in force and says why.
func TestSIGHUPReloadsTokens(t *testing.T) {
	dir := t.TempDir()
	const pub, keep, old, fresh = "publisher-token-0123456789", "kept-viewer-token-0123456", "old-viewer-token-0123456", "new-viewer-token-0123456"
	tokens := filepath.Join(dir, "tokens")
	write := func(s string) {
		if err := os.WriteFile(tokens, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(pub + " publish *\n" + keep + " view cam\n" + old + " view *\n")
	hp, addr := startHub(t, nocgoBin, "--tokens-file", tokens)
	dialAs := func(endpoint, tok string) (*websocket.Conn, int) {
		u, _ := protocol.ChannelURL(addr, endpoint, "cam")
		c, resp, err := websocket.DefaultDialer.Dial(u, http.Header{"Authorization": {"Bearer " + tok}})
		if err != nil {
			if resp == nil {
				t.Fatal(err)
			}
			return nil, resp.StatusCode
		}
		t.Cleanup(func() { c.Close() })
		return c, 101
	}
	publisher, _ := dialAs(protocol.PathPublish, pub)
	kept, _ := dialAs(protocol.PathSubscribe, keep)
	revoked, _ := dialAs(protocol.PathSubscribe, old)

	write(pub + " publish *\n" + keep + " view cam\n" + fresh + " view *\n")
	hp.cmd.Process.Signal(syscall.SIGHUP) // by PID: the hub this test started
	revoked.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := revoked.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			if ce.Code != protocol.CloseRevoked {
				t.Fatalf("revoked viewer closed with %d %q; want 4003", ce.Code, ce.Text)
			}
			break
		}
		if err != nil {
			t.Fatalf("revoked viewer: %v; want close 4003", err)
		}
	}
	hp.waitLog(t, regexp.MustCompile(`msg="access reloaded"`), 5*time.Second)
	// The kept publisher and viewer go on.
	f := protocol.Frame{Header: protocol.Header{Codec: protocol.CodecJPEG, Width: 8, Height: 8, Seq: 9, CaptureTime: time.Now().UnixNano()},
		Payload: testutil.FakeJPEG(8, 8, 9, 100)}
	if err := publisher.WriteMessage(websocket.BinaryMessage, protocol.AppendFrame(nil, &f)); err != nil {
		t.Fatalf("kept publisher: %v", err)
	}
	kept.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, msg, err := kept.ReadMessage(); err != nil {
		t.Fatalf("kept viewer after the reload: %v", err)
	} else if pf, _ := protocol.ParseMessage(msg, protocol.DefaultLimits); pf.Seq != 9 {
		t.Fatalf("kept viewer got seq %d; want 9", pf.Seq)
	}
	if _, st := dialAs(protocol.PathSubscribe, old); st != http.StatusUnauthorized {
		t.Errorf("old token after reload: %d; want 401", st)
	}
	if _, st := dialAs(protocol.PathSubscribe, fresh); st != 101 {
		t.Errorf("new token after reload: %d; want 101", st)
	}
	// A broken file: the reload fails, the tokens in force stay.
	write("this is not a tokens file\n")
	hp.cmd.Process.Signal(syscall.SIGHUP)
	hp.waitLog(t, regexp.MustCompile(`msg="reload failed; the settings in force stay".*line 1`), 5*time.Second)
	if _, st := dialAs(protocol.PathSubscribe, fresh); st != 101 {
		t.Errorf("after a failed reload the new token got %d; want 101", st)
	}
	if strings.Contains(hp.errText(), fresh) || strings.Contains(hp.errText(), old) {
		t.Errorf("a token appeared in the hub's log:\n%s", hp.errText())
	}
}

// TestSIGHUPReloadsOriginsFromConfig: allowed origins set in the --config
// file are read again on SIGHUP, and taking the key out of the file takes
// the origin away (it does not fall back to what the file said at start).
func TestSIGHUPReloadsOriginsFromConfig(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "hub.yaml")
	write := func(s string) {
		if err := os.WriteFile(conf, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("allowed-origins: [https://app.example]\n")
	hp, addr := startHub(t, nocgoBin, "--config", conf)
	status := func() int {
		u, _ := protocol.ChannelURL(addr, protocol.PathSubscribe, "cam")
		c, resp, err := websocket.DefaultDialer.Dial(u, http.Header{"Origin": {"https://app.example"}})
		if err == nil {
			c.Close()
			return 101
		}
		if resp == nil {
			t.Fatal(err)
		}
		return resp.StatusCode
	}
	if st := status(); st != 101 {
		t.Fatalf("origin from the config file: %d; want 101", st)
	}
	write("# allowed-origins removed\n")
	hp.cmd.Process.Signal(syscall.SIGHUP) // by PID: the hub this test started
	hp.waitLog(t, regexp.MustCompile(`msg="access reloaded".* origins=0`), 5*time.Second)
	if st := status(); st != http.StatusForbidden {
		t.Fatalf("origin after its key left the config file: %d; want 403", st)
	}
}
