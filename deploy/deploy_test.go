// Package deploy holds the files that run framehub as a service: systemd
// units, a Dockerfile for the static hub, example settings and a Grafana
// dashboard. Its tests install them into a scratch root and check them
// with the tools that will read them.
package deploy

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"framehub/internal/testutil"
)

func TestMain(m *testing.M) { os.Exit(testutil.Check(m.Run())) }

// staticBinary builds the CGO_ENABLED=0 framehub, as the Dockerfile does.
func staticBinary(t *testing.T) string { return testutil.Framehub(t, false) }

// TestInstallAndVerifyUnits installs into a scratch root and checks the
// units with systemd-analyze, the example settings with framehub itself.
func TestInstallAndVerifyUnits(t *testing.T) {
	analyze := testutil.RequireTool(t, "systemd-analyze")
	bin := staticBinary(t)
	root := t.TempDir()
	cmd := exec.Command("bash", "../scripts/install.sh", "--destdir", root, "--binary", bin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("install.sh: %v\n%s", err, out)
	}
	for _, f := range []string{"usr/local/bin/framehub", "etc/systemd/system/framehub-hub.service",
		"etc/systemd/system/framehub-publish@.service", "etc/framehub/hub.yaml", "etc/framehub/publish-example.yaml",
		"etc/framehub/tokens.example"} {
		st, err := os.Stat(filepath.Join(root, f))
		if err != nil {
			t.Fatalf("install.sh left no %s: %v", f, err)
		}
		if strings.HasPrefix(f, "etc/framehub/") && st.Mode().Perm()&0o007 != 0 {
			t.Errorf("%s is readable by anyone (%v); want it for root and the framehub group", f, st.Mode().Perm())
		}
	}
	installed := filepath.Join(root, "usr/local/bin/framehub")
	for _, unit := range []string{"framehub-hub.service", "framehub-publish@.service"} {
		b, err := os.ReadFile(filepath.Join(root, "etc/systemd/system", unit))
		if err != nil {
			t.Fatal(err)
		}
		// systemd-analyze checks that ExecStart's program exists: point it
		// at the installed one.
		name := unit
		if strings.HasSuffix(unit, "@.service") {
			name = strings.Replace(unit, "@.service", "@front-door.service", 1)
		}
		check := filepath.Join(t.TempDir(), name)
		text := strings.ReplaceAll(string(b), "/usr/local/bin/framehub", installed)
		if err := os.WriteFile(check, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(analyze, "verify", check).CombinedOutput()
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, out)
		}
		for _, want := range []string{"DynamicUser=yes", "Restart=on-failure", "NoNewPrivileges=yes", "ProtectSystem=strict", "--config /etc/framehub/"} {
			if !strings.Contains(text, want) && !strings.Contains(string(b), want) {
				t.Errorf("%s lacks %q", unit, want)
			}
		}
	}
	// The example hub settings load and serve (the command line's --listen
	// wins over the file's, so the test takes a free port).
	hub := exec.Command(installed, "hub", "--config", filepath.Join(root, "etc/framehub/hub.yaml"), "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0")
	stderr, _ := hub.StderrPipe()
	if err := hub.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { hub.Process.Kill(); hub.Wait() }() // by PID: the hub this test started
	addrRE := regexp.MustCompile(`msg="hub listening" addr=(\S+)`)
	sc := bufio.NewScanner(stderr)
	found := make(chan string, 1)
	go func() {
		for sc.Scan() {
			if m := addrRE.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	select {
	case addr := <-found:
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("hub from the example settings: %v %v", err, resp)
		}
		resp.Body.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("the hub did not start from the example settings")
	}
	// The example publisher settings name only publish's flags: the static
	// build answers that publish needs OpenCV, not that a key is unknown.
	out, _ := exec.Command(installed, "publish", "--config", filepath.Join(root, "etc/framehub/publish-example.yaml")).CombinedOutput()
	if strings.Contains(string(out), "unknown key") {
		t.Errorf("publish-example.yaml: %s", out)
	}
}

// exported are the series package metrics exports, and the prefixes of the
// Go and process collectors'.
var exported = []string{"framehub_frames_in_total", "framehub_frames_out_total", "framehub_frames_skipped_total",
	"framehub_frames_dropped_total", "framehub_bytes_out_total", "framehub_subscribers", "framehub_publishers",
	"framehub_frame_age_seconds_bucket", "framehub_refusals_total", "framehub_evictions_total", "framehub_frame_memory_bytes",
	"process_resident_memory_bytes", "go_goroutines"}

// TestDashboardUsesOnlyExportedSeries: every query in the Grafana
// dashboard names series the hub exports.
func TestDashboardUsesOnlyExportedSeries(t *testing.T) {
	b, err := os.ReadFile("grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
		Templating struct{ List []struct{ Query any } }
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	series := regexp.MustCompile(`\b(framehub_[a-z_]+|process_[a-z_]+|go_[a-z_]+)\b`)
	n := 0
	check := func(where, expr string) {
		for _, s := range series.FindAllString(expr, -1) {
			n++
			found := false
			for _, e := range exported {
				found = found || s == e
			}
			if !found {
				t.Errorf("%s: %q is not a series the hub exports", where, s)
			}
		}
	}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			check(p.Title, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if q, ok := v.Query.(string); ok {
			check("variable", q)
		}
	}
	if len(d.Panels) < 6 || n < 10 {
		t.Fatalf("%d panels and %d series references; want a dashboard", len(d.Panels), n)
	}
}
