package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// The framehub binaries a test process builds, once each: the full one
// (cgo, with OpenCV) and the static one (CGO_ENABLED=0, as a lean hub is
// deployed). They live in one temporary directory, removed by Check.
var builds struct {
	mu   sync.Mutex
	dir  string
	bins map[bool]string // by cgo
	errs map[bool]error
}

// BuildFramehub builds the framehub command, with cgo or without, the
// first time it is asked for in this test process, and returns its path.
// For TestMain, which has no *testing.T; tests call Framehub.
func BuildFramehub(cgo bool) (string, error) {
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if bin, ok := builds.bins[cgo]; ok {
		return bin, builds.errs[cgo]
	}
	if builds.dir == "" {
		dir, err := os.MkdirTemp("", "framehub-bin")
		if err != nil {
			return "", err
		}
		builds.dir = dir
		builds.bins, builds.errs = map[bool]string{}, map[bool]error{}
	}
	name, env := "framehub-nocgo", "CGO_ENABLED=0"
	if cgo {
		name, env = "framehub", "CGO_ENABLED=1"
	}
	bin := filepath.Join(builds.dir, name)
	cmd := exec.Command("go", "build", "-o", bin, "framehub/cmd/framehub")
	cmd.Env = append(os.Environ(), env)
	var err error
	if out, e := cmd.CombinedOutput(); e != nil {
		err = fmt.Errorf("go build framehub (%s): %w\n%s", env, e, out)
	}
	builds.bins[cgo], builds.errs[cgo] = bin, err
	return bin, err
}

// Framehub is BuildFramehub for a test: it fails the test if the build
// fails.
func Framehub(t testing.TB, cgo bool) string {
	t.Helper()
	bin, err := BuildFramehub(cgo)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// removeBuilds deletes the binaries built so far.
func removeBuilds() {
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
		builds.dir, builds.bins, builds.errs = "", nil, nil
	}
}
