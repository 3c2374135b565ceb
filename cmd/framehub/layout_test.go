package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"framehub/internal/testutil"
)

// TestDependencyRules keeps the layout the README describes: protocol uses
// only the standard library; the hub builds without cgo and knows nothing
// of OpenCV, the page, the CLI or the bus client; only this command imports
// the CLI library and the page, and wires packages together; nothing
// imports the command.
func TestDependencyRules(t *testing.T) {
	goBin := testutil.RequireTool(t, "go")
	cmd := exec.Command(goBin, "list", "-deps", "-json=ImportPath,Standard,Imports", "framehub/...")
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	type pkg struct {
		ImportPath string
		Standard   bool
		Imports    []string
	}
	pkgs := map[string]pkg{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs[p.ImportPath] = p
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
	for d := range deps("framehub/protocol") {
		if !pkgs[d].Standard {
			t.Errorf("protocol depends on %s; it must use the standard library only", d)
		}
	}
	for d := range deps("framehub/internal/ratelimit") {
		if !pkgs[d].Standard {
			t.Errorf("internal/ratelimit depends on %s; every package imports it, so it must use the standard library only", d)
		}
	}
	for d := range deps("framehub/hub") {
		for _, banned := range []string{"gocv.io/", "framehub/static", "github.com/urfave/cli", "github.com/nats-io/", "framehub/cmd"} {
			if strings.HasPrefix(d, banned) {
				t.Errorf("hub depends on %s", d)
			}
		}
	}
	for path, p := range pkgs {
		if !strings.HasPrefix(path, "framehub/") || strings.HasPrefix(path, "framehub/cmd/") {
			continue
		}
		for _, d := range p.Imports {
			if strings.HasPrefix(d, "github.com/urfave/cli") || d == "framehub/static" || strings.HasPrefix(d, "framehub/cmd") {
				t.Errorf("%s imports %s: only cmd/framehub wires the CLI and the page", path, d)
			}
		}
	}
}
