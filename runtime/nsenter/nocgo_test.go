//go:build !(linux && cgo)

package nsenter

import (
	"strings"
	"testing"
)

func TestWithoutCgoRefuses(t *testing.T) {
	cmd := reporter(envVar + "=net:/proc/self/ns/net")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runBounded(cmd)
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("child exit %v, want 1", cmd.ProcessState)
	}
	if !strings.Contains(stderr.String(), "built without cgo") || stdout.Len() != 0 {
		t.Fatalf("stderr %q stdout %q", stderr.String(), stdout.String())
	}
}
