//go:build linux && cgo

package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// logRecord is one line of a json-file log.
type logRecord struct {
	Log    string `json:"log"`
	Stream string `json:"stream"`
	Time   string `json:"time"`
}

var timeFormat = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$`)

// readLog parses every line of a log file, failing on anything that is not
// one whole record.
func readLog(t *testing.T, path string) []logRecord {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		t.Errorf("%s does not end with a newline", path)
	}
	var recs []logRecord
	for _, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var r logRecord
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("%s: line %q: %v", path, line, err)
		}
		if !timeFormat.MatchString(r.Time) {
			t.Errorf("time %q is not RFC 3339 with nine digits in UTC", r.Time)
		}
		recs = append(recs, r)
	}
	return recs
}

func byStream(recs []logRecord, stream string) []string {
	var out []string
	for _, r := range recs {
		if r.Stream == stream {
			out = append(out, r.Log)
		}
	}
	return out
}

func TestLogFormat(t *testing.T) {
	start := time.Now()
	r := startMonitor(t, scenario{
		Log: true,
		Scripts: []string{`printf 'hello\n'; printf 'q"b\\t\tc\001\033 \303\251\377\n' >&2; ` +
			`printf 'two\nthree\n'; printf 'partial'`},
	})
	reps := r.wait(t, 20*time.Second)
	if e := reps[0].Exit; e.Code != 0 || e.Status != 0 || e.Error != "" {
		t.Errorf("exit = %+v, want code 0", e)
	}
	if f := reps[0].Exit.Finished; f.Before(start) || f.After(time.Now()) {
		t.Errorf("finished %v not within the run", f)
	}
	recs := readLog(t, filepath.Join(r.sc.Dir, "log"))
	if got, want := byStream(recs, "stdout"), []string{"hello\n", "two\n", "three\n", "partial"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("stdout records %q, want %q", got, want)
	}
	if got, want := byStream(recs, "stderr"), []string{"q\"b\\t\tc\x01\x1b \u00e9\ufffd\n"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("stderr records %q, want %q", got, want)
	}
	for _, rec := range recs {
		ts, err := time.Parse(time.RFC3339Nano, rec.Time)
		if err != nil || ts.Before(start.Add(-time.Second)) || ts.After(time.Now()) {
			t.Errorf("time %q (%v) not within the run", rec.Time, err)
		}
	}
	raw := r.file("log")
	for _, want := range []string{`{"log":"hello\n","stream":"stdout","time":"`, `q\"b\\t\tc\u0001\u001b ` + "\u00e9" + `\ufffd\n"`} {
		if !strings.Contains(raw, want) {
			t.Errorf("log lacks %s:\n%s", want, raw)
		}
	}
}

func TestLogLongLineIsCut(t *testing.T) {
	// 40000 bytes without a newline, then one: records of 16 KiB, 16 KiB
	// and the rest with the newline.
	r := startMonitor(t, scenario{
		Log:     true,
		Scripts: []string{`dd if=/dev/zero bs=1000 count=40 2>/dev/null | tr '\0' a; echo`},
	})
	r.wait(t, 20*time.Second)
	recs := byStream(readLog(t, filepath.Join(r.sc.Dir, "log")), "stdout")
	var lens []int
	for _, l := range recs {
		lens = append(lens, len(l))
	}
	if fmt.Sprint(lens) != fmt.Sprint([]int{16384, 16384, 40001 - 2*16384}) || !strings.HasSuffix(recs[len(recs)-1], "a\n") {
		t.Errorf("record lengths %v, want [16384 16384 7233]", lens)
	}
}

// lineNumbers checks records "line-N\n" and returns the Ns.
func lineNumbers(t *testing.T, recs []logRecord) []int {
	t.Helper()
	var ns []int
	for _, r := range recs {
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(r.Log, "line-"), "\n"))
		if err != nil || !strings.HasSuffix(r.Log, "\n") {
			t.Fatalf("record %q is not a whole line-N", r.Log)
		}
		ns = append(ns, n)
	}
	return ns
}

func TestLogRotation(t *testing.T) {
	const script = `i=0; while [ $i -lt 300 ]; do echo "line-$i"; i=$((i+1)); done`
	for _, files := range []int{3, 1} {
		t.Run(fmt.Sprintf("files=%d", files), func(t *testing.T) {
			r := startMonitor(t, scenario{Log: true, LogMax: 1000, LogFiles: files, Scripts: []string{script}})
			r.wait(t, 20*time.Second)
			log := filepath.Join(r.sc.Dir, "log")
			var all []logRecord
			for i := files - 1; i >= 0; i-- {
				name := log
				if i > 0 {
					name += "." + strconv.Itoa(i)
				}
				st, err := os.Stat(name)
				if err != nil {
					t.Fatalf("kept file missing: %v", err)
				}
				if st.Size() > 1000 || st.Size() < 500 {
					t.Errorf("%s has %d bytes, want 500..1000", name, st.Size())
				}
				if st.Mode().Perm() != 0o640 {
					t.Errorf("%s mode %v, want 0640", name, st.Mode().Perm())
				}
				all = append(all, readLog(t, name)...)
			}
			if _, err := os.Stat(log + "." + strconv.Itoa(files)); err == nil {
				t.Errorf("more than %d files kept", files)
			}
			ns := lineNumbers(t, all)
			if len(ns) == 0 || ns[len(ns)-1] != 299 {
				t.Fatalf("last line kept %v, want 299", ns)
			}
			for i := 1; i < len(ns); i++ {
				if ns[i] != ns[i-1]+1 {
					t.Fatalf("lines kept are not consecutive: %v", ns)
				}
			}
		})
	}
}

func TestAttachOutputAndExitCode(t *testing.T) {
	for _, tt := range []struct {
		script       string
		code, status int
		stderr       string
	}{
		{`read x; echo out; echo err >&2; exit 3`, 3, 3 << 8, "err\n"},
		{`read x; echo out; kill -9 $$`, 137, 9, ""},
	} {
		t.Run(strconv.Itoa(tt.code), func(t *testing.T) {
			r := startMonitor(t, scenario{Listen: true, Stdin: true, Log: true, Scripts: []string{tt.script}})
			c := r.dial(t)
			ch := copyAsync(c)
			// The container writes only after the monitor has taken this
			// client's stdin: the client cannot miss output.
			if err := c.WriteStdin([]byte("go\n")); err != nil {
				t.Fatal(err)
			}
			res := awaitCopy(t, ch, 20*time.Second)
			if res.err != nil || !res.exited || res.code != tt.code {
				t.Errorf("copy = code %d exited %v err %v, want code %d", res.code, res.exited, res.err, tt.code)
			}
			if res.stdout.String() != "out\n" || res.stderr.String() != tt.stderr {
				t.Errorf("stdout %q stderr %q, want %q %q", res.stdout.String(), res.stderr.String(), "out\n", tt.stderr)
			}
			reps := r.wait(t, 20*time.Second)
			if e := reps[0].Exit; e.Code != tt.code || e.Status != tt.status {
				t.Errorf("exit file %+v, want code %d status %d", e, tt.code, tt.status)
			}
			if reps[0].Clients != 1 || !reps[0].Listener {
				t.Errorf("handed over %d clients, listener %v; want 1 and true", reps[0].Clients, reps[0].Listener)
			}
		})
	}
}

func TestPreconnectedClientSeesFirstByte(t *testing.T) {
	c, theirs := socketpair(t)
	r := startMonitor(t, scenario{PreClients: 1, Scripts: []string{`echo first; echo second >&2`}}, theirs)
	theirs.Close()
	res := awaitCopy(t, copyAsync(c), 20*time.Second)
	if res.err != nil || !res.exited || res.code != 0 || res.stdout.String() != "first\n" || res.stderr.String() != "second\n" {
		t.Errorf("copy = %q %q code %d exited %v err %v", res.stdout.String(), res.stderr.String(), res.code, res.exited, res.err)
	}
	reps := r.wait(t, 20*time.Second)
	if reps[0].Clients != 1 || reps[0].Listener {
		t.Errorf("handed over %d clients, listener %v; want 1, false", reps[0].Clients, reps[0].Listener)
	}
	// The next phase closed its end: the connection ends there.
	if code, exited, err := c.Copy(&strings.Builder{}, nil); exited || err != nil {
		t.Errorf("after the handover: code %d exited %v err %v, want a plain end", code, exited, err)
	}
}

func TestStdinThroughClient(t *testing.T) {
	r := startMonitor(t, scenario{Listen: true, Stdin: true, Scripts: []string{`cat; echo done`}})
	c := r.dial(t)
	ch := copyAsync(c)
	// More than the pipe and the monitor's backlog hold: flow control.
	big := bytes.Repeat([]byte("0123456789abcdef"), 400*1024/16)
	if err := c.WriteStdin([]byte("abc\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Stdin().Write(big); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseStdin(); err != nil {
		t.Fatal(err)
	}
	res := awaitCopy(t, ch, 20*time.Second)
	want := "abc\n" + string(big) + "done\n"
	if res.err != nil || !res.exited || res.code != 0 || res.stdout.String() != want {
		t.Errorf("copy: %d bytes (want %d) code %d exited %v err %v", res.stdout.Len(), len(want), res.code, res.exited, res.err)
	}
	r.wait(t, 20*time.Second)
}

func TestSlowClientDoesNotBlock(t *testing.T) {
	slow, slowTheirs := socketpair(t)
	good, goodTheirs := socketpair(t)
	start := time.Now()
	// The output comes paced, 64 KiB every 20 ms: a good client on a
	// loaded machine must not fall 256 KiB behind and be dropped too,
	// while one that never reads is dropped well before the end.
	r := startMonitor(t, scenario{PreClients: 2, Log: true,
		Scripts: []string{`i=0; while [ $i -lt 64 ]; do dd if=/dev/zero bs=65536 count=1 2>/dev/null; sleep 0.02; i=$((i+1)); done; echo end`}}, slowTheirs, goodTheirs)
	slowTheirs.Close()
	goodTheirs.Close()
	ch := copyAsync(good)
	res := awaitCopy(t, ch, 30*time.Second)
	if res.err != nil || !res.exited || res.code != 0 || res.stdout.Len() != 64*65536+4 {
		t.Errorf("good client: %d bytes code %d exited %v err %v", res.stdout.Len(), res.code, res.exited, res.err)
	}
	reps := r.wait(t, 20*time.Second)
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("the run took %v", d)
	}
	if reps[0].Clients != 1 {
		t.Errorf("handed over %d clients, want only the good one", reps[0].Clients)
	}
	// The slow one got some output, then was cut off before the end.
	var got strings.Builder
	_, exited, _ := slow.Copy(&got, nil)
	if exited || got.Len() >= 64*65536 {
		t.Errorf("slow client got %d bytes and exited=%v, want it cut off", got.Len(), exited)
	}
	t.Logf("slow client received %d of %d bytes before being dropped", got.Len(), 64*65536+4)
}

func TestTTY(t *testing.T) {
	r := startMonitor(t, scenario{TTY: true, Listen: true, Log: true,
		Scripts: []string{`read x; stty size; echo "x=$x"; exit 5`}})
	c := r.dial(t)
	ch := copyAsync(c)
	if err := c.Resize(30, 100); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseStdin(); err != nil { // ignored with a tty
		t.Fatal(err)
	}
	if err := c.WriteStdin([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	res := awaitCopy(t, ch, 20*time.Second)
	out := res.stdout.String()
	if res.err != nil || !res.exited || res.code != 5 || !strings.Contains(out, "30 100\r\n") || !strings.Contains(out, "x=go\r\n") {
		t.Errorf("copy = %q code %d exited %v err %v", out, res.code, res.exited, res.err)
	}
	if res.stderr.Len() != 0 {
		t.Errorf("stderr frames with a tty: %q", res.stderr.String())
	}
	r.wait(t, 20*time.Second)
	recs := readLog(t, filepath.Join(r.sc.Dir, "log"))
	if len(byStream(recs, "stderr")) != 0 || !strings.Contains(strings.Join(byStream(recs, "stdout"), ""), "30 100") {
		t.Errorf("log records %+v", recs)
	}
}

func TestTick(t *testing.T) {
	r := startMonitor(t, scenario{TickMs: 100, Scripts: []string{`sleep 1.5`}})
	r.wait(t, 20*time.Second)
	type run struct{ start, end int64 }
	var runs []run
	for _, line := range strings.Split(strings.TrimSpace(r.file("ticks")), "\n") {
		var tr run
		var leak int
		var out string
		if _, err := fmt.Sscan(line, &tr.start, &tr.end, &leak, &out); err != nil {
			t.Fatalf("tick line %q: %v", line, err)
		}
		if leak != 0 || out != "/dev/null" {
			t.Errorf("tick saw %d monitor variables and stdout %s", leak, out)
		}
		runs = append(runs, tr)
	}
	// Each tick takes 250 ms: about one every 300 ms in 1.5 s.
	if len(runs) < 2 || len(runs) > 8 {
		t.Errorf("%d ticks in 1.5 s at 100 ms taking 250 ms each", len(runs))
	}
	for i := 1; i < len(runs); i++ {
		if runs[i].start < runs[i-1].end {
			t.Errorf("tick %d started before tick %d ended", i, i-1)
		}
		if gap := time.Duration(runs[i].start - runs[i-1].end); gap > 400*time.Millisecond {
			t.Errorf("tick %d came %v after the previous ended", i, gap)
		}
	}
	t.Logf("%d ticks", len(runs))
}

// procStatus reads fields of /proc/<pid>/status.
func procStatus(pid int) map[string]string {
	m := map[string]string{}
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// waitCPhase waits until pid runs the monitor's C phase (its own argv, one
// thread) and ready says the run got far enough, then returns its
// /proc/<pid>/status.
func waitCPhase(t *testing.T, pid int, ready func() bool) map[string]string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if strings.HasPrefix(string(cmdline), "berth-monitor\x00") && procStatus(pid)["Threads"] == "1" && ready() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("monitor %d never reached its C phase: %q", pid, cmdline)
		}
	}
	time.Sleep(200 * time.Millisecond)
	return procStatus(pid)
}

func rssLine(st map[string]string) string {
	return fmt.Sprintf("VmRSS %s (RssAnon %s, RssFile %s), VmHWM %s", st["VmRSS"], st["RssAnon"], st["RssFile"], st["VmHWM"])
}

// TestMonitorRSS measures the C phase in a static binary built like berth
// (the test binary itself links glibc dynamically, whose mapped pages
// count in its RSS: that figure is only logged).
func TestMonitorRSS(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	dir := t.TempDir()
	probe := filepath.Join(dir, "rssprobe")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, goBin, "build", "-tags", "netgo,osusergo,sqlite_omit_load_extension", "-ldflags", "-extldflags=-static", "-o", probe, "./testdata/rssprobe")
	build.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the probe: %v\n%s", err, out)
	}
	cmd := exec.Command(probe, dir, `echo hi; echo ho >&2; read x; exit 4`)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		select {
		case err := <-done:
			_ = err // killed: its status says nothing
		case <-time.After(10 * time.Second):
			t.Errorf("probe %d not gone after SIGKILL", cmd.Process.Pid)
		}
	})
	st := waitCPhase(t, cmd.Process.Pid, func() bool {
		data, _ := os.ReadFile(filepath.Join(dir, "log"))
		return bytes.Contains(data, []byte("ho"))
	})
	rss, err := strconv.Atoi(strings.TrimSuffix(st["VmRSS"], " kB"))
	if err != nil {
		t.Fatalf("VmRSS %q: %v", st["VmRSS"], err)
	}
	t.Logf("static binary, monitor C phase: %s", rssLine(st))
	if rss >= 1536 {
		t.Errorf("monitor RSS %d kB, want under 1536 kB", rss)
	}
	c, err := Dial(filepath.Join(dir, "attach.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WriteStdin([]byte("\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		done <- err
		if cmd.ProcessState.ExitCode() != 4 {
			t.Errorf("probe: %v, want exit 4 through the next phase; stderr %s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("probe still running")
	}

	// The same in the (dynamically linked) test binary, with a client.
	c2, theirs := socketpair(t)
	r := startMonitor(t, scenario{Listen: true, Log: true, PreClients: 1, Stdin: true,
		Scripts: []string{`echo hi; read x`}}, theirs)
	theirs.Close()
	ch := copyAsync(c2)
	st = waitCPhase(t, r.cmd.Process.Pid, func() bool { return strings.Contains(r.file("log"), "hi") })
	t.Logf("dynamic test binary, monitor C phase: %s", rssLine(st))
	if err := c2.WriteStdin([]byte("\n")); err != nil {
		t.Fatal(err)
	}
	if res := awaitCopy(t, ch, 20*time.Second); !res.exited || res.stdout.String() != "hi\n" {
		t.Errorf("copy = %q exited %v err %v", res.stdout.String(), res.exited, res.err)
	}
	r.wait(t, 20*time.Second)
}

func TestReentry(t *testing.T) {
	c, theirs := socketpair(t)
	r := startMonitor(t, scenario{PreClients: 1, Log: true, Listen: true,
		Scripts: []string{`echo one; exit 1`, `echo two; exit 2`, `echo three`}}, theirs)
	theirs.Close()
	for i, want := range []string{"one\n", "two\n", "three\n"} {
		res := awaitCopy(t, copyAsync(c), 20*time.Second)
		if res.err != nil || !res.exited || res.code != (i+1)%3 || res.stdout.String() != want {
			t.Errorf("round %d: copy = %q code %d exited %v err %v", i, res.stdout.String(), res.code, res.exited, res.err)
		}
	}
	reps := r.wait(t, 20*time.Second)
	for i, rep := range reps {
		if rep.Exit.Code != (i+1)%3 || rep.Clients != 1 || !rep.Listener {
			t.Errorf("round %d: %+v", i, rep)
		}
	}
	if got := byStream(readLog(t, filepath.Join(r.sc.Dir, "log")), "stdout"); fmt.Sprint(got) != fmt.Sprint([]string{"one\n", "two\n", "three\n"}) {
		t.Errorf("log %q", got)
	}
}

func TestBadInputHandsBack(t *testing.T) {
	for _, tt := range []struct {
		env, want string
		hidden    bool
	}{
		{"_BERTH_MON_STDOUT=999", "_BERTH_MON_STDOUT: 999 is not an open fd", true},
		{"_BERTH_MON_PID=1", "_BERTH_MON_PID: 1 is not a child of the monitor", false},
		{"_BERTH_MON_LOG_FILES=0", "_BERTH_MON_LOG_FILES: bad count 0", false},
		{"_BERTH_MON_TICK_MS=x", "bad tick x", false},
	} {
		t.Run(tt.env, func(t *testing.T) {
			c, theirs := socketpair(t)
			r := startMonitor(t, scenario{PreClients: 1, Log: true, BadEnv: []string{tt.env}, FdHidden: tt.hidden,
				Scripts: []string{`sleep 30`}}, theirs)
			theirs.Close()
			reps := r.wait(t, 20*time.Second)
			e := reps[0].Exit
			if e.Status != -1 || e.Code != 125 || !strings.Contains(e.Error, tt.want) {
				t.Errorf("exit %+v, want status -1, code 125, error %q", e, tt.want)
			}
			if reps[0].Clients != 1 {
				t.Errorf("clients handed back: %d, want 1", reps[0].Clients)
			}
			if !strings.Contains(r.file("monitor.err"), tt.want) {
				t.Errorf("monitor stderr %q lacks %q", r.file("monitor.err"), tt.want)
			}
			c.Close()
		})
	}
}

// The claiming client records the exit itself: the monitor ends after its
// answer without executing Next, or executes Next when the client leaves
// the exit to it, says nothing and goes, or was never the claimant.
func TestClaimingClient(t *testing.T) {
	cases := []struct {
		name     string
		answer   func(*Conn) error
		wantNext bool
	}{
		{"recorded", (*Conn).ExitRecorded, false},
		{"yours", (*Conn).ExitYours, true},
		{"gone", (*Conn).Close, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, theirs := socketpair(t)
			sc := scenario{PreClients: 1, Claim: true, Scripts: []string{`echo out; exit 4`}}
			r := startMonitor(t, sc, theirs)
			theirs.Close()
			res := awaitCopy(t, copyAsync(c), 20*time.Second)
			if res.err != nil || !res.exited || res.code != 4 || res.stdout.String() != "out\n" {
				t.Fatalf("copy = %q code %d exited %v err %v", res.stdout.String(), res.code, res.exited, res.err)
			}
			ex, err := ReadExit(filepath.Join(r.sc.Dir, "exit.0"))
			if err != nil || ex.Code != 4 {
				t.Fatalf("exit file before the answer: %+v, %v", ex, err)
			}
			if err := tc.answer(c); err != nil {
				t.Fatal(err)
			}
			if tc.wantNext {
				reps := r.wait(t, 20*time.Second)
				if reps[0].Exit.Code != 4 {
					t.Errorf("next phase read exit %+v", reps[0].Exit)
				}
				return
			}
			select {
			case err := <-r.done:
				r.done <- err // for the cleanup
				if err != nil {
					t.Fatalf("monitor: %v; stderr: %s", err, r.file("monitor.err"))
				}
			case <-time.After(20 * time.Second):
				t.Fatal("monitor still running after the exit was recorded")
			}
			if _, err := os.Stat(filepath.Join(r.sc.Dir, "report.jsonl")); !os.IsNotExist(err) {
				t.Errorf("the next phase ran after the client recorded the exit (stat: %v)", err)
			}
		})
	}
}

func TestClaimMustBeAClient(t *testing.T) {
	_, theirs := socketpair(t)
	_, _, err := plan(Config{Pid: 1, ExitPath: "/x", Next: []string{"n"}, Clients: []*os.File{theirs}, Claim: os.Stdin})
	if err == nil {
		t.Fatal("a claiming client that is not one of the clients was accepted")
	}
	vars, _, err := plan(Config{Pid: 1, ExitPath: "/x", Next: []string{"n"}, Clients: []*os.File{theirs}, Claim: theirs})
	if err != nil {
		t.Fatal(err)
	}
	if !slicesContainsPrefix(vars, envClaim+"=") {
		t.Errorf("plan gave no %s: %v", envClaim, vars)
	}
}

func slicesContainsPrefix(vars []string, prefix string) bool {
	for _, v := range vars {
		if strings.HasPrefix(v, prefix) {
			return true
		}
	}
	return false
}
