//go:build linux && cgo

package monitor

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-containers/berth/internal/testutil"
)

// initCmd returns the test binary run under the name berth-init.
func initCmd(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	link := filepath.Join(t.TempDir(), "berth-init")
	if err := os.Symlink(os.Args[0], link); err != nil {
		t.Fatal(err)
	}
	return exec.Command(link, args...)
}

// startBounded starts cmd and kills it, and waits for it, at cleanup.
func startBounded(t *testing.T, cmd *exec.Cmd) chan error {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case err := <-done:
			done <- err
		case <-time.After(10 * time.Second):
			t.Errorf("berth-init %d not gone", cmd.Process.Pid)
		}
	})
	return done
}

func waitDone(t *testing.T, done chan error, limit time.Duration) {
	t.Helper()
	select {
	case err := <-done:
		done <- err
	case <-time.After(limit):
		t.Fatalf("berth-init still running after %v", limit)
	}
}

func TestInitExitCodes(t *testing.T) {
	noexec := filepath.Join(t.TempDir(), "noexec")
	if err := os.WriteFile(noexec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"zero", []string{"--", "/bin/sh", "-c", "echo ok"}, 0, ""},
		{"three", []string{"/bin/sh", "-c", "exit 3"}, 3, ""},
		{"killed", []string{"/bin/sh", "-c", "kill -9 $$"}, 137, ""},
		{"not found", []string{"no-such-command-berth"}, 127, "berth-init: exec no-such-command-berth: No such file or directory\n"},
		{"not executable", []string{noexec}, 126, "berth-init: exec " + noexec + ": Permission denied\n"},
		{"no command", []string{"--"}, 2, "berth-init: no command given"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := initCmd(t, tt.args...)
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			waitDone(t, startBounded(t, cmd), 20*time.Second)
			if got := cmd.ProcessState.ExitCode(); got != tt.code {
				t.Errorf("exit code %d, want %d (stderr %q)", got, tt.code, stderr.String())
			}
			if !strings.HasPrefix(stderr.String(), tt.stderr) || (tt.stderr == "" && stderr.Len() > 0) {
				t.Errorf("stderr %q, want %q", stderr.String(), tt.stderr)
			}
			if tt.code == 0 && stdout.String() != "ok\n" {
				t.Errorf("stdout %q", stdout.String())
			}
		})
	}
}

func TestInitForwardsSignals(t *testing.T) {
	// The child's mask and dispositions are reset: its trap works.
	cmd := initCmd(t, "/bin/sh", "-c", `trap 'echo got; exit 42' TERM; echo ready; i=0; while [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done`)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	done := startBounded(t, cmd)
	rd := bufio.NewReader(out)
	if line, err := rd.ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("child said %q, %v", line, err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	rest, _ := rd.ReadString('\n')
	waitDone(t, done, 10*time.Second)
	if code := cmd.ProcessState.ExitCode(); code != 42 || rest != "got\n" {
		t.Errorf("exit %d, output %q; want 42 and the trap's output", code, rest)
	}
}

// children lists the children of pid.
func children(pid int) []int {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	var out []int
	for _, f := range strings.Fields(string(data)) {
		n, _ := strconv.Atoi(f)
		out = append(out, n)
	}
	return out
}

// procState is the state letter of /proc/<pid>/stat.
func procState(pid int) string {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	s := string(data)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2 : i+3]
	}
	return ""
}

func TestInitReapsOrphans(t *testing.T) {
	testutil.RequiresRoot(t)
	// As pid 1 of a new pid namespace, as in a container: the orphaned
	// sleep becomes its child and must not stay a zombie.
	cmd := initCmd(t, "/bin/sh", "-c", `(sleep 0.5 &); exec sleep 5`)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
	done := startBounded(t, cmd)
	pid := cmd.Process.Pid
	sawOrphan := false
	for deadline := time.Now().Add(4 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		kids := children(pid)
		if len(kids) == 2 {
			sawOrphan = true
		}
		zombies := 0
		for _, k := range kids {
			if procState(k) == "Z" {
				zombies++
			}
		}
		if sawOrphan && len(kids) == 1 && zombies == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("children of berth-init %v (zombies %d, saw the orphan %v)", kids, zombies, sawOrphan)
		}
	}
	_ = cmd.Process.Signal(syscall.SIGTERM) // forwarded: sleep dies of it
	waitDone(t, done, 10*time.Second)
	if code := cmd.ProcessState.ExitCode(); code != 128+int(syscall.SIGTERM) {
		t.Errorf("exit code %d, want %d", code, 128+int(syscall.SIGTERM))
	}
}
