package hooks

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// script writes an executable /bin/sh script with body into dir.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func testState() *specs.State {
	return &specs.State{
		Version: specs.Version,
		ID:      "c1",
		Status:  specs.StateCreated,
		Pid:     1234,
		Bundle:  "/bundles/c1",
	}
}

func intp(i int) *int { return &i }

func TestRunPassesStateArgsEnv(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "state.json")
	env := filepath.Join(dir, "env")
	h := script(t, dir, "hook", `cat > "$1"; echo "$FOO" > "$2"`)
	err := Run(context.Background(), []specs.Hook{{
		Path:    h,
		Args:    []string{h, out, env},
		Env:     []string{"FOO=bar"},
		Timeout: intp(10),
	}}, testState())
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var got specs.State
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("hook stdin is not state JSON: %v: %s", err, data)
	}
	if got.ID != "c1" || got.Pid != 1234 || got.Bundle != "/bundles/c1" || got.Status != specs.StateCreated {
		t.Fatalf("state = %+v", got)
	}
	e, err := os.ReadFile(env)
	if err != nil {
		t.Fatal(err)
	}
	if string(e) != "bar\n" {
		t.Fatalf("hook saw FOO=%q, want bar", e)
	}
}

func TestRunArgv0(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "cmdline")
	// /bin/sh run with argv[0] "custom-name": its own cmdline shows it.
	err := Run(context.Background(), []specs.Hook{{
		Path: "/bin/sh",
		Args: []string{"custom-name", "-c", `tr '\0' ' ' < /proc/$$/cmdline > "$0.out"; true`, out},
	}}, testState())
	if err == nil {
		// $0 inside -c is the first operand: out.
		var data []byte
		data, err = os.ReadFile(out + ".out")
		if err == nil && !strings.HasPrefix(string(data), "custom-name -c ") {
			t.Fatalf("cmdline = %q, want argv[0] custom-name", data)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestRunNoArgsUsesPath(t *testing.T) {
	dir := t.TempDir()
	h := script(t, dir, "hook", `echo "$0" > "$(dirname "$0")/argv0"`)
	if err := Run(context.Background(), []specs.Hook{{Path: h}}, testState()); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "argv0"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(data)) != h {
		t.Fatalf("$0 = %q, want %s", data, h)
	}
}

func TestRunFailureStopsChain(t *testing.T) {
	dir := t.TempDir()
	first := script(t, dir, "first", `touch "$(dirname "$0")/first.ran"`)
	bad := script(t, dir, "bad", `echo noise >&2; echo "boom: no network" >&2; exit 3`)
	third := script(t, dir, "third", `touch "$(dirname "$0")/third.ran"`)
	err := Run(context.Background(), []specs.Hook{{Path: first}, {Path: bad}, {Path: third}}, testState())
	if err == nil {
		t.Fatal("Run succeeded, want the second hook's failure")
	}
	for _, want := range []string{bad, "exit status 3", "boom: no network"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "first.ran")); err != nil {
		t.Errorf("first hook did not run: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "third.ran")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("third hook ran after a failure (stat: %v)", err)
	}
}

func TestRunTimeoutKillsHookAndChildren(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	h := script(t, dir, "slow", `sleep 60 & echo $! > "$1"; echo waiting >&2; wait`)
	start := time.Now()
	err := Run(context.Background(), []specs.Hook{{Path: h, Args: []string{h, pidFile}, Timeout: intp(1)}}, testState())
	elapsed := time.Since(start)
	if err == nil {
		t.Fatal("Run succeeded, want a timeout")
	}
	if !strings.Contains(err.Error(), "timed out") || !strings.Contains(err.Error(), h) {
		t.Fatalf("error %q does not say %s timed out", err, h)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %q does not wrap context.DeadlineExceeded", err)
	}
	if elapsed > 10*time.Second {
		t.Fatalf("Run took %s, want about 1s", elapsed)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	// The orphaned sleep is reaped by init, perhaps slowly: a zombie
	// counts as dead. Bounded wait.
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the hook's child %d survived the timeout", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRunContextCancel(t *testing.T) {
	dir := t.TempDir()
	h := script(t, dir, "slow", `exec sleep 60`)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := Run(ctx, []specs.Hook{{Path: h}}, testState())
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's deadline", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("Run took %s after the context ended", time.Since(start))
	}
}

func TestRunStderrTail(t *testing.T) {
	dir := t.TempDir()
	h := script(t, dir, "loud", `i=0; while [ $i -lt 500 ]; do echo "line $i of noise" >&2; i=$((i+1)); done; echo LAST >&2; exit 1`)
	err := Run(context.Background(), []specs.Hook{{Path: h}}, testState())
	if err == nil {
		t.Fatal("Run succeeded, want failure")
	}
	if !strings.Contains(err.Error(), "LAST") || strings.Contains(err.Error(), "line 0 of") {
		t.Fatalf("error does not hold just the tail of stderr: %q", err)
	}
	if len(err.Error()) > stderrTail+len(h)+100 {
		t.Fatalf("error is %d bytes, want it bounded", len(err.Error()))
	}
}

func TestRunInvalid(t *testing.T) {
	tests := []struct {
		name string
		hook specs.Hook
		want string
	}{
		{"relative path", specs.Hook{Path: "bin/true"}, "not absolute"},
		{"zero timeout", specs.Hook{Path: "/bin/true", Timeout: intp(0)}, "not positive"},
		{"missing program", specs.Hook{Path: "/nonexistent/hook"}, "/nonexistent/hook"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Run(context.Background(), []specs.Hook{tt.hook}, testState())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestRunEmpty(t *testing.T) {
	if err := Run(context.Background(), nil, testState()); err != nil {
		t.Fatal(err)
	}
}

func TestTail(t *testing.T) {
	tl := &tail{max: 4}
	_, _ = tl.Write([]byte("ab"))
	if tl.String() != "ab" {
		t.Fatalf("tail = %q, want ab", tl.String())
	}
	_, _ = tl.Write([]byte("cdef"))
	if tl.String() != "...cdef" {
		t.Fatalf("tail = %q, want ...cdef", tl.String())
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	i := strings.LastIndexByte(string(data), ')')
	return i < 0 || i+2 >= len(data) || data[i+2] != 'Z'
}

func TestEnv(t *testing.T) {
	own := []string{"A=1"}
	if got := env(own, []string{"B=2"}); len(got) != 1 || got[0] != "A=1" {
		t.Errorf("own env replaced: %v", got)
	}
	got := env(nil, []string{"PATH=/bin", "_BERTH_INIT=3", "HOME=/root", "_BERTH_NSENTER_ERRFD=4"})
	if strings.Join(got, " ") != "PATH=/bin HOME=/root" {
		t.Errorf("inherited env = %v, want PATH and HOME only", got)
	}
	if got := env(nil, []string{"_BERTH_INIT=3"}); got == nil || len(got) != 0 {
		t.Errorf("env = %#v, want empty and non-nil (nil would inherit again)", got)
	}
}

func TestRunInheritsEnvWithoutBerthVars(t *testing.T) {
	t.Setenv("BERTH_HOOK_TEST_VAR", "inherited")
	t.Setenv("_BERTH_INIT", "5")
	dir := t.TempDir()
	out := filepath.Join(dir, "env")
	h := script(t, dir, "hook", `echo "$BERTH_HOOK_TEST_VAR ${_BERTH_INIT:-unset}" > "$1"`)
	if err := Run(context.Background(), []specs.Hook{{Path: h, Args: []string{h, out}}}, testState()); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != "inherited unset\n" {
		t.Fatalf("hook saw %q, want %q", data, "inherited unset\n")
	}
}
