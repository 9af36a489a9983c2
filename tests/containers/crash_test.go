package containers_test

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKillBerthMidRun kills the CLI with SIGKILL at points spread over a
// run's life; each time the next commands must work on the store: ps
// lists, rm -f cleans whatever was left, and a new run succeeds.
func TestKillBerthMidRun(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	for i, delay := range []time.Duration{0, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond,
		20 * time.Millisecond, 40 * time.Millisecond, 80 * time.Millisecond} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := exec.CommandContext(ctx, s.bin, "--root", s.root, "run", "-d", "--name", "victim"+strconv.Itoa(i), "bb", "sleep", "600")
		if err := cmd.Start(); err != nil {
			cancel()
			t.Fatal(err)
		}
		time.Sleep(delay)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		cancel()
		out := s.must("ps", "-a", "--format", "{{.Names}} {{.State}}")
		t.Logf("after SIGKILL at %s: %q", delay, strings.TrimSpace(out))
	}
	s.must("run", "--rm", "bb", "true")
	ids := strings.Fields(s.must("ps", "-aq", "--no-trunc"))
	if len(ids) > 0 {
		s.must(append([]string{"rm", "-f"}, ids...)...)
	}
	for _, id := range ids {
		assertGone(t, s, id)
	}
	if ms := s.mounts(); len(ms) > 0 {
		t.Fatalf("mounts left: %v", ms)
	}
}

// TestMonitorDeathIsReported kills a container's monitor: the next
// command notices, stops the orphaned program and records why.
func TestMonitorDeathIsReported(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	id := strings.TrimSpace(s.must("run", "-d", "bb", "sleep", "600"))
	pid := s.field(id, "{{.State.Pid}}")
	mons := s.monitors()
	if len(mons) != 1 {
		t.Fatalf("monitors: %v", mons)
	}
	mpid, _ := strconv.Atoi(mons[0])
	if err := syscall.Kill(mpid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	s.waitFor(10*time.Second, "the monitor to die", func() bool { return len(s.monitors()) == 0 })
	st := s.field(id, "{{.State.Status}}|{{.State.ExitCode}}|{{.State.Error}}")
	if !strings.HasPrefix(st, "exited|137|") || !strings.Contains(st, "monitor") {
		t.Fatalf("after the monitor died: %q", st)
	}
	if n, _ := strconv.Atoi(pid); n > 0 && running(n) {
		t.Fatalf("the container's process %d still runs unowned", n)
	}
	if !strings.Contains(s.must("ps", "-a"), "Exited (137)") {
		t.Fatal("ps -a does not report the exit")
	}
	// The container can be started again under a new monitor.
	s.must("start", id)
	if st := s.field(id, "{{.State.Status}}"); st != "running" {
		t.Fatalf("restart after monitor death: %s", st)
	}
}

// TestMonitorMemory checks the monitor's resident memory (the C phase)
// against the 1.5 MiB budget.
func TestMonitorMemory(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	s.must("run", "-d", "bb", "sh", "-c", "while true; do echo tick; sleep 0.1; done")
	time.Sleep(500 * time.Millisecond)
	mons := s.monitors()
	if len(mons) != 1 {
		t.Fatalf("monitors: %v", mons)
	}
	rss := vmRSS(t, mons[0])
	t.Logf("monitor VmRSS %d kB", rss)
	if rss >= 1536 {
		t.Fatalf("monitor VmRSS %d kB, budget 1536 kB", rss)
	}
}

func vmRSS(t *testing.T, pid string) int {
	t.Helper()
	out, err := exec.Command("grep", "VmRSS", "/proc/"+pid+"/status").Output()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(out))
	n, _ := strconv.Atoi(f[1])
	return n
}

// running says whether pid is alive and not a zombie waiting for init
// to reap it.
func running(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] != 'Z'
}

// TestOOMKillReported runs a program past its memory limit: the kernel's
// OOM killer ends it, and inspect, ps and events say so.
func TestOOMKillReported(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	// A shell variable of 64 MB in a 16 MiB container with no swap.
	_, _, code := s.run(nil, "run", "--name", "hog", "-m", "16m", "--memory-swap", "16m", "bb",
		"sh", "-c", `x=$(head -c 67108864 /dev/zero | tr '\0' a); echo survived ${#x}`)
	if code != 137 {
		t.Fatalf("exit %d, want 137 (killed)", code)
	}
	if got := s.field("hog", "{{.State.OOMKilled}} {{.State.ExitCode}}"); got != "true 137" {
		t.Fatalf("inspect: %q, want OOMKilled true, exit 137", got)
	}
	ev := s.must("events", "--since", "5m", "--until", "0s", "--filter", "container=hog", "--filter", "event=oom")
	if !strings.Contains(ev, " container oom ") {
		t.Fatalf("no oom event: %q", ev)
	}
}
