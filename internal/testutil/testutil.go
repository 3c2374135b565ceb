// Package testutil holds what the tests of several packages share: the
// end-of-run leak check and finding the external tools the setup script
// installs. Only _test files import it.
package testutil

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"testing"

	"go.uber.org/goleak"
)

// Check is for TestMain: given m.Run's exit code, it fails a passing run
// if a goroutine outlived the tests or any extra check reports something,
// and returns the code to exit with. Idle keep-alive connections of the
// shared HTTP client are closed first: they belong to the client, not to
// the code under test.
func Check(code int, extra ...func() error) int {
	http.DefaultClient.CloseIdleConnections()
	if code != 0 {
		return code
	}
	if err := goleak.Find(); err != nil {
		fmt.Fprintln(os.Stderr, "goroutine leak:", err)
		code = 1
	}
	for _, check := range extra {
		if err := check(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	return code
}

// RequireTool finds a command. On a developer's machine without it the
// test is skipped; in CI, where scripts/setup.sh installs it, it fails.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not installed (scripts/setup.sh installs it)", name)
		}
		t.Skipf("%s not installed; run scripts/setup.sh", name)
	}
	return p
}
