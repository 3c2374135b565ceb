package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"framehub/internal/testutil"
)

// TestDependencyRules keeps the layout the README describes: protocol and
// the small shared packages use only the standard library; each package
// imports only the framehub packages its README arrows name (layers, no
// cycles); the hub builds without cgo and knows nothing of OpenCV, the
// page, the CLI or the bus client; the test helpers are imported by tests
// only; only this command imports the CLI library and the page, and wires
// packages together; nothing imports the command. Imports are read with
// cgo off and on, since cgo files import more.
func TestDependencyRules(t *testing.T) {
	goBin := testutil.RequireTool(t, "go")
	type pkg struct {
		ImportPath string
		Standard   bool
		Imports    []string
	}
	pkgs := map[string]pkg{}
	for _, cgo := range []string{"0", "1"} {
		cmd := exec.Command(goBin, "list", "-deps", "-json=ImportPath,Standard,Imports", "framehub/...")
		cmd.Dir = "../.."
		cmd.Env = append(os.Environ(), "CGO_ENABLED="+cgo)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list (CGO_ENABLED=%s): %v", cgo, err)
		}
		dec := json.NewDecoder(strings.NewReader(string(out)))
		for dec.More() {
			var p pkg
			if err := dec.Decode(&p); err != nil {
				t.Fatal(err)
			}
			if q, ok := pkgs[p.ImportPath]; ok {
				p.Imports = append(q.Imports, p.Imports...)
				slices.Sort(p.Imports)
				p.Imports = slices.Compact(p.Imports)
			}
			pkgs[p.ImportPath] = p
		}
	}
	// deps returns every package path reaches, itself excluded.
	deps := func(path string) map[string]bool {
		seen := map[string]bool{}
		var walk func(string)
		walk = func(p string) {
			for _, d := range pkgs[p].Imports {
				if !seen[d] {
					seen[d] = true
					walk(d)
				}
			}
		}
		walk(path)
		return seen
	}
	for _, path := range []string{"protocol", "internal/ratelimit", "internal/newest", "internal/backoff"} {
		for d := range deps("framehub/" + path) {
			if !pkgs[d].Standard && d != "C" { // cgo: the standard library's net and os/user use it
				t.Errorf("%s depends on %s; it must use the standard library only", path, d)
			}
		}
	}
	for d := range deps("framehub/hub") {
		for _, banned := range []string{"gocv.io/", "framehub/static", "github.com/urfave/cli", "github.com/nats-io/", "framehub/cmd"} {
			if strings.HasPrefix(d, banned) {
				t.Errorf("hub depends on %s", d)
			}
		}
	}
	// The README's arrows: the framehub packages each package may import.
	// A new package, or a new arrow, goes here and in the README's layout.
	allowed := map[string][]string{
		"protocol":           nil,
		"internal/backoff":   nil,
		"internal/ratelimit": nil,
		"internal/newest":    nil,
		"internal/procstat":  nil,
		"internal/testcam":   nil,
		"internal/dial":      {"protocol", "internal/backoff"},
		"hub":                {"protocol", "internal/ratelimit", "internal/newest"},
		"cluster":            {"hub", "protocol", "internal/ratelimit"},
		"metrics":            {"hub", "protocol"},
		"publisher":          {"protocol", "internal/dial", "internal/backoff", "internal/newest"},
		"subscriber":         {"protocol", "internal/dial", "internal/newest"},
		"process":            {"protocol", "subscriber", "publisher", "internal/dial", "internal/ratelimit"},
		"bench":              {"protocol", "subscriber", "internal/backoff", "internal/procstat", "internal/testcam"},
		"static":             nil,
		"deploy":             nil,
		"clients/python":     nil,
		"tools/soak":         {"protocol", "subscriber", "internal/procstat", "internal/testcam"},
		// Test helpers: imported by tests only (below).
		"internal/testutil": {"internal/procstat", "internal/testcam"},
		"internal/hubtest":  {"hub", "protocol", "internal/testutil"},
		"internal/natstest": nil,
		"internal/matleak":  nil,
	}
	testOnly := map[string]bool{"internal/testutil": true, "internal/hubtest": true, "internal/natstest": true, "internal/matleak": true}
	for path, p := range pkgs {
		name, ok := strings.CutPrefix(path, "framehub/")
		if !ok || name == "cmd/framehub" {
			continue
		}
		may, known := allowed[name]
		if !known {
			t.Errorf("framehub/%s is not in TestDependencyRules' table: add it, with what it may import, and to the README's layout", name)
			continue
		}
		for _, d := range p.Imports {
			dn, ok := strings.CutPrefix(d, "framehub/")
			switch {
			case strings.HasPrefix(d, "github.com/urfave/cli") || d == "framehub/static" || d == "framehub/cmd/framehub":
				t.Errorf("%s imports %s: only cmd/framehub wires the CLI and the page", path, d)
			case ok && testOnly[dn] && !testOnly[name]:
				t.Errorf("%s imports the test helper %s", path, d)
			case ok && !slices.Contains(may, dn):
				t.Errorf("%s imports %s; the layout allows it %v", path, d, may)
			}
		}
	}
	for _, d := range pkgs["framehub/cmd/framehub"].Imports {
		if dn, ok := strings.CutPrefix(d, "framehub/"); ok && testOnly[dn] {
			t.Errorf("cmd/framehub imports the test helper %s", d)
		}
	}
}
