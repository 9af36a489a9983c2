package containers_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestLogsSinceUntil(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	s.must("run", "-d", "--name", "lg", "bb", "sh", "-c", "echo early; sleep 2; echo late; sleep 600")
	s.waitFor(15*time.Second, "the late line", func() bool { return strings.Contains(s.must("logs", "lg"), "late") })

	// Find the two lines' times from -t.
	var times []time.Time
	for _, l := range strings.Split(strings.TrimSpace(s.must("logs", "-t", "lg")), "\n") {
		ts, _, _ := strings.Cut(l, " ")
		tm, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			t.Fatalf("logs -t line %q: %v", l, err)
		}
		times = append(times, tm)
	}
	if len(times) != 2 || times[1].Sub(times[0]) < 1500*time.Millisecond {
		t.Fatalf("logs -t times %v", times)
	}
	mid := times[0].Add(times[1].Sub(times[0]) / 2)

	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--since", mid.Format(time.RFC3339Nano)}, "late\n"},
		{[]string{"--until", mid.Format(time.RFC3339Nano)}, "early\n"},
		{[]string{"--since", fmt.Sprintf("%d.%09d", mid.Unix(), mid.Nanosecond())}, "late\n"},
		{[]string{"--since", times[0].Add(-time.Second).Format(time.RFC3339), "--until", mid.Format(time.RFC3339Nano)}, "early\n"},
		{[]string{"--since", "1h"}, "early\nlate\n"},
		{[]string{"--since", "1m", "--until", "1ms"}, "early\nlate\n"},
		{[]string{"--until", "1h"}, ""},
		{[]string{"--since", time.Now().Add(time.Hour).Format(time.RFC3339)}, ""},
	}
	for _, c := range cases {
		if got, errOut, code := s.run(nil, append(append([]string{"logs"}, c.args...), "lg")...); code != 0 || got != c.want {
			t.Errorf("logs %v: exit %d, %q (%s), want %q", c.args, code, got, errOut, c.want)
		}
	}
	// A relative --since counts back from now: 1s after the late line is
	// written, nothing is that recent.
	time.Sleep(time.Until(times[1].Add(1500 * time.Millisecond)))
	if got := s.must("logs", "--since", "1s", "lg"); got != "" {
		t.Errorf("logs --since 1s: %q", got)
	}
	// Docker: `invalid value for "since": ...`, exit 1.
	if errOut := s.failsWith(1, "logs", "--since", "yesterday-ish", "lg"); !strings.Contains(errOut, `invalid value for "since"`) {
		t.Errorf("logs --since yesterday-ish: %q", errOut)
	}
}

func TestLogsTailTimestampsPartial(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	s.must("run", "--name", "many", "bb", "sh", "-c", "i=1; while [ $i -le 20 ]; do echo line$i; i=$((i+1)); done; echo err >&2; printf 'no newline'")
	all := s.must("logs", "many")
	if !strings.HasPrefix(all, "line1\nline2\n") || !strings.HasSuffix(all, "line20\nno newline") {
		t.Errorf("logs: %q", all)
	}
	if got := s.must("logs", "--tail", "all", "many"); got != all {
		t.Errorf("logs --tail all differs from logs")
	}
	// The last three lines of the log, stderr's among them.
	if got, errOut, _ := s.run(nil, "logs", "--tail", "3", "many"); got != "line20\nno newline" || errOut != "err\n" {
		t.Errorf("logs --tail 3: stdout %q, stderr %q", got, errOut)
	}
	if got := s.must("logs", "--tail", "0", "many"); got != "" {
		t.Errorf("logs --tail 0: %q", got)
	}
	if got := s.must("logs", "-n", "1", "many"); got != "no newline" {
		t.Errorf("logs -n 1: %q", got)
	}
	// -t: RFC 3339 nano UTC timestamps, in order.
	var last time.Time
	lines := strings.Split(s.must("logs", "-t", "many"), "\n")
	if len(lines) != 21 {
		t.Fatalf("logs -t: %d lines", len(lines))
	}
	for _, l := range lines {
		ts, rest, ok := strings.Cut(l, " ")
		tm, err := time.Parse(time.RFC3339Nano, ts)
		if !ok || err != nil || !strings.HasSuffix(ts, "Z") || len(ts) != len("2006-01-02T15:04:05.000000000Z") {
			t.Errorf("logs -t line %q: %v", l, err)
			continue
		}
		if tm.Before(last) {
			t.Errorf("logs -t: %s before %s", tm, last)
		}
		last = tm
		if !strings.HasPrefix(rest, "line") && rest != "no newline" {
			t.Errorf("logs -t line %q", l)
		}
	}
	// Unknown container.
	if errOut := s.failsWith(1, "logs", "nosuch"); !strings.Contains(strings.ToLower(errOut), "no such container") {
		t.Errorf("logs nosuch: %q", errOut)
	}
}

func TestLogsFollow(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	s.must("run", "-d", "--name", "fl", "bb", "sh", "-c", "echo one; while [ ! -e /tmp/go ]; do sleep 0.05; done; echo two; sleep 0.5; echo three")
	s.waitFor(10*time.Second, "the first line", func() bool { return s.must("logs", "fl") == "one\n" })

	cmd := exec.Command(s.bin, "--root", s.root, "logs", "-f", "fl")
	cmd.Env = s.env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// exited closes once logs -f is waited for; waitErr is its status.
	exited := make(chan struct{})
	var waitErr error
	lines := make(chan string, 10)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Error("logs -f not gone 10 s after SIGKILL")
		}
	})

	next := func() string {
		select {
		case l := <-lines:
			return l
		case <-time.After(15 * time.Second):
			t.Fatal("logs -f: no line within 15s")
		}
		return ""
	}
	if l := next(); l != "one" {
		t.Fatalf("logs -f first line %q", l)
	}
	s.must("exec", "fl", "touch", "/tmp/go")
	if l := next(); l != "two" {
		t.Fatalf("logs -f second line %q", l)
	}
	if l := next(); l != "three" {
		t.Fatalf("logs -f third line %q", l)
	}
	// The container exits: logs -f ends by itself.
	select {
	case <-exited:
		if waitErr != nil {
			t.Errorf("logs -f ended with %v", waitErr)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("logs -f did not end when the container exited")
	}

	// -f on an exited container prints and returns.
	start := time.Now()
	if got := s.must("logs", "-f", "fl"); got != "one\ntwo\nthree\n" {
		t.Errorf("logs -f of an exited container: %q", got)
	}
	if time.Since(start) > 10*time.Second {
		t.Error("logs -f of an exited container waited")
	}
	// --tail with -f: the last line, then what comes.
	s.must("run", "-d", "--name", "fl2", "bb", "sh", "-c", "echo a; echo b; sleep 1; echo c")
	s.waitFor(10*time.Second, "b", func() bool { return strings.Contains(s.must("logs", "fl2"), "b") })
	if got := s.must("logs", "-f", "--tail", "1", "fl2"); got != "b\nc\n" {
		t.Errorf("logs -f --tail 1: %q", got)
	}
}

func TestLogDriverNoneAndRotation(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	s.must("run", "-d", "--name", "quiet", "--log-driver", "none", "bb", "sh", "-c", "echo hi; sleep 600")
	errOut := s.failsWith(1, "logs", "quiet")
	if !strings.Contains(errOut, "configured logging driver does not support reading") {
		t.Errorf("logs of a --log-driver none container: %q", errOut)
	}
	if got := s.field("quiet", "{{.HostConfig.LogConfig.Type}}"); got != "none" {
		t.Errorf("LogConfig.Type %q", got)
	}
	if lp := s.field("quiet", "{{.LogPath}}"); lp != "" {
		t.Errorf("LogPath of a --log-driver none container: %q (Docker: empty)", lp)
	}
	s.failsWith(125, "run", "--rm", "--log-driver", "nosuchdriver", "bb", "true")

	// max-size=1k, max-file=2: at most two files of about 1k each.
	script := `i=0; while [ $i -lt 400 ]; do echo "line $i padded to be long enough"; i=$((i+1)); done`
	s.must("run", "--name", "rot", "--log-opt", "max-size=1k", "--log-opt", "max-file=2", "bb", "sh", "-c", script)
	if got := s.field("rot", "{{json .HostConfig.LogConfig}}"); got != `{"Type":"json-file","Config":{"max-file":"2","max-size":"1k"}}` {
		t.Errorf("LogConfig %s", got)
	}
	logPath := s.field("rot", "{{.LogPath}}")
	dir := filepath.Dir(logPath)
	matches, _ := filepath.Glob(logPath + "*")
	var total int64
	for _, m := range matches {
		st, err := os.Stat(m)
		if err != nil {
			t.Fatal(err)
		}
		total += st.Size()
		if st.Size() > 2048 {
			t.Errorf("log file %s is %d bytes with max-size=1k", m, st.Size())
		}
	}
	if len(matches) == 0 || len(matches) > 2 {
		ents, _ := os.ReadDir(dir)
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("log files %v (in %v), want at most 2", matches, names)
	}
	if total > 4096 {
		t.Errorf("log files hold %d bytes", total)
	}
	out := s.must("logs", "rot")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) == 0 || lines[len(lines)-1] != "line 399 padded to be long enough" {
		t.Errorf("logs after rotation end with %q", lines[len(lines)-1])
	}
	if len(lines) >= 400 || len(lines) < 5 {
		t.Errorf("logs after rotation: %d lines", len(lines))
	}
	for i := 1; i < len(lines); i++ {
		var a, b int
		if _, err := fmtSscanLine(lines[i-1], &a); err != nil {
			t.Fatalf("line %q", lines[i-1])
		}
		if _, err := fmtSscanLine(lines[i], &b); err != nil {
			t.Fatalf("line %q", lines[i])
		}
		if b != a+1 {
			t.Errorf("rotated logs not contiguous: %q then %q", lines[i-1], lines[i])
			break
		}
	}
	s.failsWith(125, "run", "--rm", "--log-opt", "max-size=lots", "bb", "true")
}

// fmtSscanLine reads the number of a "line N padded..." line.
func fmtSscanLine(l string, n *int) (int, error) {
	f := strings.Fields(l)
	if len(f) < 2 {
		return 0, strconv.ErrSyntax
	}
	v, err := strconv.Atoi(f[1])
	*n = v
	return 1, err
}
