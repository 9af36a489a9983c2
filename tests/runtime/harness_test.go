// Package runtime_test drives the berth binary's runtime commands the way
// a user or a tool like containerd does, and checks what the kernel shows.
package runtime_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-containers/berth/internal/testutil"
)

// harness runs `berth runtime --root <private dir> ...` and deletes every
// container it made when the test ends, whatever happened.
type harness struct {
	t    *testing.T
	bin  string
	root string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	testutil.RequiresRoot(t)
	testutil.RequiresBusybox(t)
	h := &harness{t: t, bin: testutil.BerthBinary(t), root: t.TempDir()}
	t.Cleanup(h.cleanup)
	return h
}

func (h *harness) cleanup() {
	out, _, _ := h.exec("list", "-q")
	for _, id := range strings.Fields(out) {
		if _, stderr, code := h.exec("delete", "--force", id); code != 0 {
			h.t.Errorf("cleanup: delete %s: %s", id, stderr)
		}
	}
}

var seq atomic.Int64

// id returns a container id unique to this test run.
func (h *harness) id() string {
	name := strings.NewReplacer("/", "-", " ", "-").Replace(h.t.Name())
	return fmt.Sprintf("%s-%d-%d", name, os.Getpid(), seq.Add(1))
}

// exec runs a runtime command and returns stdout, stderr and exit code.
func (h *harness) exec(args ...string) (string, string, int) {
	return h.execIn(nil, args...)
}

func (h *harness) execIn(stdin []byte, args ...string) (string, string, int) {
	h.t.Helper()
	full := append([]string{"runtime", "--root", h.root}, args...)
	return runBounded(h.t, exec.Command(h.bin, full...), stdin)
}

// runBounded runs cmd for at most a minute and returns its stdout, stderr
// and exit code. Output goes to files, not pipes: a detached container
// inherits them and would keep a pipe open, so waiting for its end would
// wait for the container.
func runBounded(t *testing.T, cmd *exec.Cmd, stdin []byte) (string, string, int) {
	t.Helper()
	outF, errF := tempFile(t), tempFile(t)
	defer outF.Close()
	defer errF.Close()
	cmd.Stdout, cmd.Stderr = outF, errF
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", cmd.Args, err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("%v: %v", cmd.Args, err)
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		werr := <-done
		t.Fatalf("%v: timed out (%v); stderr: %s", cmd.Args, werr, readAll(errF))
	}
	return readAll(outF), readAll(errF), cmd.ProcessState.ExitCode()
}

func tempFile(t *testing.T) *os.File {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func readAll(f *os.File) string {
	data, err := os.ReadFile(f.Name())
	if err != nil {
		return fmt.Sprintf("<read %s: %v>", f.Name(), err)
	}
	return string(data)
}

// must runs a command that has to succeed and returns its stdout.
func (h *harness) must(args ...string) string {
	h.t.Helper()
	out, stderr, code := h.exec(args...)
	if code != 0 {
		h.t.Fatalf("berth runtime %s: exit %d: %s", strings.Join(args, " "), code, stderr)
	}
	return out
}

// runOut runs a container in the foreground to completion and returns its
// stdout, stderr and exit code.
func (h *harness) runOut(bundle string) (string, string, int) {
	h.t.Helper()
	return h.exec("run", "--bundle", bundle, h.id())
}

// bundle makes a busybox bundle whose process runs sh -c script.
func (h *harness) bundle(script string, edit func(*specs.Spec)) string {
	h.t.Helper()
	b, _ := testutil.BusyboxBundle(h.t, []string{"sh", "-c", script}, edit)
	return b
}

func (h *harness) state(id string) specs.State {
	h.t.Helper()
	var st specs.State
	if err := json.Unmarshal([]byte(h.must("state", id)), &st); err != nil {
		h.t.Fatalf("parse state: %v", err)
	}
	return st
}

// waitStatus polls until the container reaches status, for at most 10s.
func (h *harness) waitStatus(id string, status specs.ContainerState) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if h.state(id).Status == status {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.t.Fatalf("container %s never became %s (now %s)", id, status, h.state(id).Status)
}

// waitStatusFromAbsent is waitStatus for a container another goroutine is
// still creating: it may not exist yet.
func (h *harness) waitStatusFromAbsent(id string, status specs.ContainerState) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		out, _, code := h.exec("state", id)
		var st specs.State
		if code == 0 && json.Unmarshal([]byte(out), &st) == nil && st.Status == status {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.t.Fatalf("container %s never became %s", id, status)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return string(data)
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func rootfsOf(bundle string) string { return filepath.Join(bundle, "rootfs") }

// cmd returns an unstarted command for berth runtime args, for tests that
// need to set its fds themselves.
func (h *harness) cmd(args ...string) *exec.Cmd {
	return exec.Command(h.bin, append([]string{"runtime", "--root", h.root}, args...)...)
}
