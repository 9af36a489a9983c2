package monitor

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-containers/berth/internal/errdefs"
)

func TestPlan(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	ok := Config{Pid: 42, Stdout: r, Stdin: w, ExitPath: "/x/exit", Next: []string{"berth", "a b", ""},
		LogPath: "/x/log", LogMaxSize: 100, Clients: []*os.File{r, w},
		TickInterval: 1500 * time.Millisecond, Tick: []string{"berth", "health"}}
	vars, fds, err := plan(ok)
	if err != nil {
		t.Fatal(err)
	}
	rfd, wfd := itoa(r.Fd()), itoa(w.Fd())
	want := []string{"_BERTH_MONITOR=1", "_BERTH_MON_PID=42", "_BERTH_MON_STDOUT=" + rfd, "_BERTH_MON_STDIN=" + wfd,
		"_BERTH_MON_CLIENTS=" + rfd + "," + wfd, "_BERTH_MON_LOG=/x/log", "_BERTH_MON_LOG_MAX=100", "_BERTH_MON_LOG_FILES=1",
		"_BERTH_MON_EXIT=/x/exit", "_BERTH_MON_NEXT=berth\x1fa b\x1f", "_BERTH_MON_TICK_MS=1500", "_BERTH_MON_TICK=berth\x1fhealth"}
	if strings.Join(vars, "\n") != strings.Join(want, "\n") {
		t.Errorf("vars:\n%q\nwant\n%q", vars, want)
	}
	if len(fds) != 4 {
		t.Errorf("fds %v, want 4", fds)
	}

	closed, _, _ := os.Pipe()
	closed.Close()
	for name, mut := range map[string]func(*Config){
		"no pid":         func(c *Config) { c.Pid = 0 },
		"tty and pipes":  func(c *Config) { c.TTY = r },
		"no exit path":   func(c *Config) { c.ExitPath = "" },
		"no next":        func(c *Config) { c.Next = nil },
		"separator":      func(c *Config) { c.Next = []string{"a\x1fb"} },
		"negative size":  func(c *Config) { c.LogMaxSize = -1 },
		"closed file":    func(c *Config) { c.Stderr = closed },
		"tick no argv":   func(c *Config) { c.Tick = nil },
		"tick too often": func(c *Config) { c.TickInterval = time.Microsecond },
	} {
		c := ok
		mut(&c)
		if _, _, err := plan(c); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: err %v, want invalid argument", name, err)
		}
	}
}

func itoa(fd uintptr) string { return strconv.FormatUint(uint64(fd), 10) }

func TestWithoutMonitorVars(t *testing.T) {
	got := withoutMonitorVars([]string{"A=1", "_BERTH_MON_PID=3", "_BERTH_MONITOR=1", "_BERTH_NSENTER=x"})
	if strings.Join(got, ",") != "A=1,_BERTH_NSENTER=x" {
		t.Errorf("got %v", got)
	}
}

func TestParseExit(t *testing.T) {
	e, err := parseExit(bufio.NewScanner(strings.NewReader("status=256\ncode=1\nfinished=1700000000123456789\nerror=open log: x=y\n")))
	if err != nil || e.Status != 256 || e.Code != 1 || e.Finished.UnixNano() != 1700000000123456789 || e.Error != "open log: x=y" {
		t.Errorf("got %+v, %v", e, err)
	}
	for _, bad := range []string{"", "code=1\n", "status=x\ncode=1\n"} {
		if _, err := parseExit(bufio.NewScanner(strings.NewReader(bad))); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	if _, err := ReadExit(filepath.Join(t.TempDir(), "none")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestConnFrames(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	c := NewConn(b)
	got := make(chan []byte, 1)
	go func() {
		data, _ := io.ReadAll(a)
		got <- data
	}()
	for _, err := range []error{c.WriteStdin([]byte("hi")), c.CloseStdin(), c.Resize(24, 0x150)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Stdin().Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := c.Detach(); err != nil {
		t.Fatal(err)
	}
	want := []byte{0, 0, 0, 0, 0, 0, 0, 2, 'h', 'i', 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 4, 0, 24, 1, 0x50,
		0, 0, 0, 0, 0, 0, 0, 1, 'x', 3, 0, 0, 0, 0, 0, 0, 0}
	if data := <-got; !bytes.Equal(data, want) {
		t.Errorf("frames %v, want %v", data, want)
	}
}

func TestConnCopy(t *testing.T) {
	frame := func(kind byte, p string) []byte {
		h := []byte{kind, 0, 0, 0, 0, 0, byte(len(p) >> 8), byte(len(p))}
		return append(h, p...)
	}
	stream := bytes.Join([][]byte{frame(1, "out"), frame(2, "err"), frame(9, "skipped"), frame(1, "!"), frame(3, "137")}, nil)
	var out, errb bytes.Buffer
	code, exited, err := NewConn(nopCloser{bytes.NewReader(stream)}).Copy(&out, &errb)
	if err != nil || !exited || code != 137 || out.String() != "out!" || errb.String() != "err" {
		t.Errorf("copy: %d %v %v %q %q", code, exited, err, out.String(), errb.String())
	}
	// The end of the stream without an exit frame, and a cut frame.
	if _, exited, err := NewConn(nopCloser{bytes.NewReader(frame(1, "a"))}).Copy(&out, nil); exited || err != nil {
		t.Errorf("plain end: %v %v", exited, err)
	}
	if _, _, err := NewConn(nopCloser{bytes.NewReader(frame(1, "abc")[:9])}).Copy(&out, nil); err == nil {
		t.Error("a cut frame gave no error")
	}
}

type nopCloser struct{ io.Reader }

func (nopCloser) Write(p []byte) (int, error) { return len(p), nil }
func (nopCloser) Close() error                { return nil }

func TestListenDialLongPath(t *testing.T) {
	dir := t.TempDir()
	long := filepath.Join(dir, strings.Repeat("d", 60), strings.Repeat("e", 60))
	if err := os.MkdirAll(long, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(dir, "s.sock"), filepath.Join(long, "attach.sock")} {
		l, err := ListenUnix(path)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		st, err := os.Stat(path)
		if err != nil || st.Mode().Type() != os.ModeSocket || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", path, st.Mode(), err)
		}
		ln, err := net.FileListener(l)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		c, err := Dial(path)
		if err != nil {
			t.Fatalf("dial %d-byte path: %v", len(path), err)
		}
		defer c.Close()
		srv, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		if err := c.WriteStdin([]byte("z")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 9)
		if _, err := io.ReadFull(srv, buf); err != nil || buf[8] != 'z' {
			t.Errorf("server read %v %v", buf, err)
		}
		// A stale socket is replaced.
		if l2, err := ListenUnix(path); err != nil {
			t.Errorf("listen again: %v", err)
		} else {
			l2.Close()
		}
	}
}
