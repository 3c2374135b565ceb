package process

import (
	"os"
	"testing"

	"framehub/internal/matleak"
	"framehub/internal/testutil"
)

func TestMain(m *testing.M) {
	os.Setenv("OPENCV_LOG_LEVEL", "ERROR")
	os.Exit(testutil.Check(m.Run(), matleak.Check))
}
