package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"framehub/hub"
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
	time.Sleep(200 * time.Millisecond)
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
		if err == nil || !regexp.MustCompile(`hub refused the connection: 40[13]`).Match(out) {
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
	time.Sleep(200 * time.Millisecond)
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
