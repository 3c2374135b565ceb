// Package python_test runs the Python client's unittest suite
// (clients/python/tests) against a framehub binary built from this tree, so
// that `go test ./...`, which CI runs, covers the Python client too.
package python_test

import (
	"context"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"framehub/internal/testutil"
)

func TestMain(m *testing.M) { os.Exit(testutil.Check(m.Run())) }

// python is Debian's own interpreter, the one apt's python3-numpy,
// python3-opencv and python3-websockets install into; a python3 earlier on
// PATH (pyenv, a venv) does not see them.
const python = "/usr/bin/python3"

// suiteTimeout bounds the whole Python suite (about 30 s on two busy
// cores); past it the suite and every process it started are killed.
const suiteTimeout = 3 * time.Minute

func TestPythonClient(t *testing.T) {
	py := testutil.RequireTool(t, python)
	if out, err := exec.Command(py, "-c", "import numpy, cv2, websockets").CombinedOutput(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s lacks numpy, cv2 or websockets (scripts/setup.sh installs them): %v\n%s", py, err, out)
		}
		t.Skipf("%s lacks numpy, cv2 or websockets; run scripts/setup.sh: %s", py, out)
	}
	// The suite runs `framehub publish`, which needs OpenCV: build with cgo
	// whatever this test was built with.
	bin := testutil.Framehub(t, true)

	ctx, cancel := context.WithTimeout(context.Background(), suiteTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "-m", "unittest", "discover", "-s", "tests", "-v")
	cmd.Env = append(os.Environ(), "FRAMEHUB_BIN="+bin, "PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1")
	// The suite stops every hub and client it starts by PID. If it hangs,
	// its process group goes with it: the interpreter and its children.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("python suite took %.1f s:\n%s", time.Since(start).Seconds(), out)
	if ctx.Err() != nil {
		t.Fatalf("python suite did not finish within %v", suiteTimeout)
	}
	if err != nil {
		t.Fatalf("python suite failed: %v", err)
	}
}
