package containers_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRunForeground(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	out, errOut, code := s.run(nil, "run", "--rm", "bb", "sh", "-c", "echo to-out; echo to-err >&2; exit 3")
	if code != 3 || out != "to-out\n" || errOut != "to-err\n" {
		t.Fatalf("run: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	if ids := strings.Fields(s.must("ps", "-aq")); len(ids) != 0 {
		t.Fatalf("--rm left containers: %v", ids)
	}
	out, _, code = s.run([]byte("from stdin\n"), "run", "--rm", "-i", "bb", "cat")
	if code != 0 || out != "from stdin\n" {
		t.Fatalf("run -i: code %d, stdout %q", code, out)
	}
	// Without -i the container's stdin is empty.
	out, _, code = s.run([]byte("ignored\n"), "run", "--rm", "bb", "cat")
	if code != 0 || out != "" {
		t.Fatalf("run without -i: code %d, stdout %q", code, out)
	}
}

func TestRunExitCodes(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	cases := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"run", "--rm", "bb", "nosuchcommand"}, 127, "executable file not found"},
		{[]string{"run", "--rm", "bb", "/etc/passwd"}, 126, "permission denied"},
		{[]string{"run", "--rm", "--pull", "never", "nosuchimage"}, 125, "no such image"},
		{[]string{"run", "--rm", "-m", "lots", "bb", "true"}, 125, "invalid argument"},
		{[]string{"run", "--rm", "--restart", "always", "bb", "true"}, 125, "conflicting options"},
		{[]string{"run", "--rm", "-v", "relative:dir", "bb", "true"}, 125, ""},
		{[]string{"run", "--rm", "--name", "bad name", "bb", "true"}, 125, "invalid container name"},
	}
	for _, c := range cases {
		errOut := s.fails(c.code, c.args...)
		if !strings.Contains(errOut, c.msg) {
			t.Errorf("berth %v: stderr %q lacks %q", c.args, errOut, c.msg)
		}
		if strings.Count(strings.TrimSpace(errOut), "\n") > 1 {
			t.Errorf("berth %v: error takes more than a line or two: %q", c.args, errOut)
		}
	}
	// Failures leave nothing behind: the --rm ones removed, none created.
	if ids := strings.Fields(s.must("ps", "-aq")); len(ids) != 0 {
		t.Fatalf("failed runs left containers: %v", ids)
	}
	if vols := strings.Fields(s.must("volume", "ls", "-q")); len(vols) != 0 {
		t.Fatalf("failed runs left volumes: %v", vols)
	}
}

func TestNameTaken(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	s.must("create", "--name", "web", "bb")
	errOut := s.fails(125, "create", "--name", "web", "bb")
	if !strings.Contains(errOut, `the container name "/web" is already in use`) {
		t.Fatalf("stderr %q", errOut)
	}
	if n := len(strings.Fields(s.must("ps", "-aq"))); n != 1 {
		t.Fatalf("%d containers after a refused create, want 1", n)
	}
}

func TestDetachedSurvivesAndLogs(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	id := strings.TrimSpace(s.must("run", "-d", "--name", "logger", "bb", "sh", "-c",
		"echo first; echo oops >&2; sleep 0.3; echo second; sleep 600"))
	if len(id) != 64 {
		t.Fatalf("run -d printed %q, want a 64-hex id", id)
	}
	// The CLI has exited; the container runs on under its monitor.
	s.waitFor(10*time.Second, "the second line", func() bool {
		out, _, _ := s.run(nil, "logs", "logger")
		return strings.Contains(out, "second")
	})
	out, errOut, _ := s.run(nil, "logs", "logger")
	if out != "first\nsecond\n" || errOut != "oops\n" {
		t.Fatalf("logs: stdout %q, stderr %q", out, errOut)
	}
	if got := s.must("logs", "--tail", "1", "logger"); got != "second\n" {
		t.Fatalf("logs --tail 1: %q", got)
	}
	ts := s.must("logs", "-t", "logger")
	if !strings.HasPrefix(ts, time.Now().UTC().Format("2006-01-02T")) {
		t.Fatalf("logs -t: %q", ts)
	}
	if st := s.field("logger", "{{.State.Status}}"); st != "running" {
		t.Fatalf("status %q", st)
	}
	ps := s.must("ps")
	if !strings.Contains(ps, id[:12]) || !strings.Contains(ps, "Up ") || !strings.Contains(ps, "logger") {
		t.Fatalf("ps:\n%s", ps)
	}
	if len(s.monitors()) != 1 {
		t.Fatalf("monitors: %v", s.monitors())
	}
	start := time.Now()
	s.must("stop", "-t", "1", "logger")
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("stop -t 1 took %s", d)
	}
	if st := s.field("logger", "{{.State.Status}} {{.State.ExitCode}}"); st != "exited 137" {
		t.Fatalf("after stop: %q", st)
	}
	if !strings.Contains(s.must("ps", "-a"), "Exited (137)") {
		t.Fatal("ps -a does not show the exit")
	}
	// Logs outlive the run, and a restart appends.
	s.must("start", "logger")
	s.waitFor(10*time.Second, "the restarted output", func() bool {
		return strings.Count(s.must("logs", "logger"), "first") == 2
	})
}

func TestStopSignalAndTimeout(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	s.must("run", "-d", "--name", "trap", "bb", "sh", "-c", "trap 'exit 42' TERM; while true; do sleep 0.1; done")
	time.Sleep(300 * time.Millisecond)
	s.must("stop", "trap")
	if st := s.field("trap", "{{.State.ExitCode}}"); st != "42" {
		t.Fatalf("exit code after stop: %s, want the trap's 42", st)
	}
	s.must("run", "-d", "--name", "usr1", "--stop-signal", "USR1", "bb", "sh", "-c", "trap 'exit 7' USR1; while true; do sleep 0.1; done")
	time.Sleep(300 * time.Millisecond)
	s.must("stop", "usr1")
	if st := s.field("usr1", "{{.State.ExitCode}}"); st != "7" {
		t.Fatalf("--stop-signal USR1: exit %s, want 7", st)
	}
	// A shell as pid 1 ignores TERM; with --init, the init passes it on.
	s.must("run", "-d", "--init", "--name", "kk", "bb", "sleep", "600")
	s.must("kill", "-s", "TERM", "kk")
	s.waitFor(10*time.Second, "the kill", func() bool { return s.field("kk", "{{.State.Status}}") == "exited" })
	if code := s.field("kk", "{{.State.ExitCode}}"); code != "143" {
		t.Fatalf("killed by TERM: exit %s, want 143", code)
	}
	s.fails(1, "kill", "kk")
}

func TestRemoveForceCleansEverything(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	id := strings.TrimSpace(s.must("run", "-d", "bb", "sleep", "600"))
	errOut := s.fails(1, "rm", id)
	if !strings.Contains(errOut, "container is running") {
		t.Fatalf("rm of a running container: %q", errOut)
	}
	s.must("rm", "-f", id)
	assertGone(t, s, id)
}

// assertGone checks that nothing of a container is left: record,
// directory, mounts, monitor, cgroups, processes.
func assertGone(t *testing.T, s *store, id string) {
	t.Helper()
	if out, _, _ := s.run(nil, "inspect", id); !strings.Contains(out, "[]") {
		t.Errorf("container %s still inspects", id)
	}
	if _, err := os.Stat(filepath.Join(s.root, "containers", id)); !os.IsNotExist(err) {
		t.Errorf("container directory of %s remains: %v", id, err)
	}
	if ms := s.mounts(); len(ms) > 0 {
		t.Errorf("mounts remain: %v", ms)
	}
	if pids := s.monitors(); len(pids) > 0 {
		t.Errorf("monitors remain: %v", pids)
	}
	matches, _ := filepath.Glob("/sys/fs/cgroup/*/berth/" + id)
	more, _ := filepath.Glob("/sys/fs/cgroup/berth/" + id)
	if all := append(matches, more...); len(all) > 0 {
		t.Errorf("cgroups remain: %v", all)
	}
}

func TestTwentyParallelRuns(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	const n = 20
	ids := make([]string, n)
	errs := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, errOut, code := s.run(nil, "run", "-d", "bb", "sleep", "600")
			if code != 0 {
				errs[i] = errOut
				return
			}
			ids[i] = strings.TrimSpace(out)
		}()
	}
	wg.Wait()
	for i, e := range errs {
		if e != "" {
			t.Fatalf("run %d failed: %s", i, e)
		}
	}
	listed := map[string]bool{}
	for _, id := range strings.Fields(s.must("ps", "-q", "--no-trunc")) {
		listed[id] = true
	}
	for _, id := range ids {
		if !listed[id] {
			t.Fatalf("ps does not list %s", id)
		}
	}
	if len(listed) != n {
		t.Fatalf("ps lists %d containers, want %d", len(listed), n)
	}
	names := map[string]bool{}
	for _, name := range strings.Fields(s.must("ps", "--format", "{{.Names}}")) {
		names[name] = true
	}
	if len(names) != n {
		t.Fatalf("%d distinct names for %d containers", len(names), n)
	}
	s.must(append([]string{"rm", "-f"}, ids...)...)
	for _, id := range ids {
		assertGone(t, s, id)
	}
}

func TestRestartCommandAndPause(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	s.must("run", "-d", "--name", "pp", "bb", "sh", "-c", "while true; do date +%s%N; sleep 0.05; done")
	s.must("pause", "pp")
	if st := s.field("pp", "{{.State.Status}} {{.State.Paused}}"); st != "paused true" {
		t.Fatalf("after pause: %q", st)
	}
	if !strings.Contains(s.must("ps"), "(Paused)") {
		t.Fatal("ps does not show (Paused)")
	}
	before := len(s.must("logs", "pp"))
	time.Sleep(300 * time.Millisecond)
	if after := len(s.must("logs", "pp")); after != before {
		t.Fatalf("a paused container wrote logs (%d -> %d bytes)", before, after)
	}
	s.fails(1, "exec", "pp", "true")
	s.must("unpause", "pp")
	s.restart("pp", "1")
	s.must("rename", "pp", "qq")
	if st := s.field("qq", "{{.Name}}"); st != "/qq" {
		t.Fatalf("after rename: %q", st)
	}
	s.fails(1, "inspect", "pp")
}

// TestRestartKeepsRemoveOnExit: restart of a --rm container starts it
// again, as Docker's does, with its writable layer (mounted volatile, as
// nobody keeps it) intact; the next stop removes it.
func TestRestartKeepsRemoveOnExit(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	s.must("run", "-d", "--rm", "--name", "rr", "bb", "sh", "-c", "echo kept > /mark; trap 'exit 3' TERM; while true; do sleep 0.05; done")
	rootfs := filepath.Join(s.root, "containers", s.field("rr", "{{.ID}}"), "rootfs")
	if opts := mountVFSOptions(t, rootfs); !strings.Contains(opts, "volatile") {
		t.Fatalf("a --rm container's root filesystem is mounted without volatile: %s", opts)
	}
	s.restart("rr", "5")
	if out := s.must("exec", "rr", "sh", "-c", "read l < /mark; echo $l"); out != "kept\n" {
		t.Fatalf("the writable layer after restart: %q", out)
	}
	s.must("stop", "-t", "5", "rr")
	s.waitFor(10*time.Second, "the stopped --rm container to go", func() bool {
		return strings.TrimSpace(s.must("ps", "-aq")) == ""
	})
	if m := s.mounts(); len(m) != 0 {
		t.Fatalf("left mounted: %v", m)
	}
}

// mountVFSOptions returns the superblock options of the mount at target.
func mountVFSOptions(t *testing.T, target string) string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && f[4] == target {
			return f[len(f)-1]
		}
	}
	t.Fatalf("%s is not mounted", target)
	return ""
}

// A foreground run records its container's exit itself, with the store it
// has open, and the monitor ends without running its exit phase: the exit
// is recorded once, seen at once, and nothing of the monitor stays.
func TestForegroundRecordsExitOnce(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	since := time.Now().Add(-time.Second)
	out, _, code := s.run(nil, "run", "--name", "fg", "bb", "sh", "-c", "echo bye; exit 3")
	if code != 3 || out != "bye\n" {
		t.Fatalf("run: code %d, stdout %q", code, out)
	}
	if got := s.field("fg", "{{.State.Status}} {{.State.ExitCode}} {{.State.Pid}}"); got != "exited 3 0" {
		t.Fatalf("right after run: %q, want exited 3 0", got)
	}
	s.waitFor(10*time.Second, "the monitor to end", func() bool { return len(s.processes()) == 0 })
	id := s.field("fg", "{{.Id}}")
	if got := strings.Join(actions(s.events(since, "--filter", "container="+id), id), " "); got != "create attach start die" && got != "create start die" {
		t.Errorf("events: %q, want one die", got)
	}
	// A second run of the same container, through start -a.
	out, _, code = s.run(nil, "start", "-a", "fg")
	if code != 3 || out != "bye\n" {
		t.Fatalf("start -a: code %d, stdout %q", code, out)
	}
	if got := s.field("fg", "{{.State.Status}} {{.State.ExitCode}}"); got != "exited 3" {
		t.Fatalf("after start -a: %q", got)
	}
	s.waitFor(10*time.Second, "the monitor to end", func() bool { return len(s.processes()) == 0 })
	if n := strings.Count(strings.Join(actions(s.events(since, "--filter", "container="+id), id), " "), "die"); n != 2 {
		t.Errorf("%d die events for two runs", n)
	}
}

// run starts the container's monitor before it creates the container; a
// run that fails before the container exists leaves no monitor behind.
func TestFailedRunLeavesNoMonitor(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	s.must("create", "--name", "taken", "bb", "true")
	for _, args := range [][]string{
		{"run", "--name", "taken", "bb", "true"},
		{"run", "-d", "--name", "taken", "bb", "true"},
		{"run", "--rm", "--pull", "never", "nosuchimage"},
		{"run", "-d", "-v", "/nonexistent-source:/x:bogus", "bb", "true"},
	} {
		s.fails(125, args...)
	}
	s.waitFor(10*time.Second, "monitors started ahead to leave", func() bool { return len(s.processes()) == 0 })
	if ids := strings.Fields(s.must("ps", "-aq")); len(ids) != 1 {
		t.Fatalf("containers after the failed runs: %v, want only the one created", ids)
	}
}
