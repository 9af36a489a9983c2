package console

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// slaveEnv makes the test binary act as a container's init: it takes the
// slave named in the variable as its terminal and reports on it.
const slaveEnv = "BERTH_CONSOLE_TEST_SLAVE"

func TestMain(m *testing.M) {
	if p, ok := os.LookupEnv(slaveEnv); ok {
		if err := child(p); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// child sets up the slave and prints, to its new stdout, facts the parent
// checks.
func child(slave string) error {
	if err := SetupSlave(slave, 120, 33); err != nil {
		return err
	}
	var report []string
	for fd := 0; fd <= 2; fd++ {
		l, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
		if err != nil {
			return err
		}
		report = append(report, fmt.Sprintf("fd%d=%s", fd, l))
	}
	// /dev/tty opens only for a process with a controlling terminal.
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return err
	}
	tty.Close()
	sid, err := unix.Getsid(0)
	if err != nil {
		return err
	}
	pgrp, err := unix.IoctlGetInt(0, unix.TIOCGPGRP)
	if err != nil {
		return err
	}
	ws, err := unix.IoctlGetWinsize(0, unix.TIOCGWINSZ)
	if err != nil {
		return err
	}
	report = append(report,
		"ctty=yes",
		fmt.Sprintf("leader=%t", sid == os.Getpid() && pgrp == os.Getpid()),
		fmt.Sprintf("size=%dx%d", ws.Col, ws.Row),
		"END")
	_, err = fmt.Println(strings.Join(report, " "))
	return err
}

// newPty opens a pty, closed at the end of the test.
func newPty(t *testing.T) (*os.File, string) {
	t.Helper()
	master, slave, err := NewPty()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { master.Close() })
	if !strings.HasPrefix(slave, "/dev/pts/") {
		t.Fatalf("slave path %q not under /dev/pts", slave)
	}
	return master, slave
}

// pollable returns a non-blocking duplicate of f whose reads honour
// deadlines, closed at the end of the test.
func pollable(t *testing.T, f *os.File) *os.File {
	t.Helper()
	fd, err := unix.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	p := os.NewFile(uintptr(fd), f.Name())
	t.Cleanup(func() { p.Close() })
	return p
}

// readUntil reads f until what it read contains want or 5 s passed.
func readUntil(t *testing.T, f *os.File, want string) string {
	t.Helper()
	if err := f.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var got []byte
	buf := make([]byte, 1024)
	for !strings.Contains(string(got), want) {
		n, err := f.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("read %s: %v (read so far %q)", f.Name(), err, got)
		}
	}
	return string(got)
}

func TestSendRecvRoundTrip(t *testing.T) {
	master, slave := newPty(t)
	sock := filepath.Join(t.TempDir(), "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })

	sent := make(chan error, 1)
	go func() { sent <- SendMaster(sock, master) }()
	_ = l.SetDeadline(time.Now().Add(5 * time.Second))
	got, err := RecvMaster(l)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { got.Close() })
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if got.Name() != slave {
		t.Errorf("received file named %q, want the slave path %q", got.Name(), slave)
	}

	s, err := os.OpenFile(slave, os.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := got.Write([]byte("hello through the master\n")); err != nil {
		t.Fatal(err)
	}
	readUntil(t, s, "hello through the master\n")

	// And back: the slave's output appears on the received master.
	if _, err := s.Write([]byte("from slave\n")); err != nil {
		t.Fatal(err)
	}
	readUntil(t, pollable(t, got), "from slave")
}

func TestSetSize(t *testing.T) {
	master, slave := newPty(t)
	if err := SetSize(master, 132, 43); err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(slave, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ws, err := unix.IoctlGetWinsize(int(s.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		t.Fatal(err)
	}
	if ws.Col != 132 || ws.Row != 43 {
		t.Fatalf("size = %dx%d, want 132x43", ws.Col, ws.Row)
	}
	if err := SetSize(master, 70000, 1); err == nil {
		t.Fatal("SetSize accepted a width over 65535")
	}
}

func TestSetupSlaveInChild(t *testing.T) {
	master, slave := newPty(t)
	m := pollable(t, master)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), slaveEnv+"="+slave)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if err := <-done; err != nil {
			t.Logf("child after kill: %v", err)
		}
	})
	out := readUntil(t, m, "END")
	select {
	case err := <-done:
		done <- err
		if err != nil {
			t.Fatalf("child: %v: %s", err, stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("child did not exit")
	}
	for _, want := range []string{
		"fd0=" + slave, "fd1=" + slave, "fd2=" + slave,
		"ctty=yes", "leader=true", "size=120x33",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("child reported %q, lacks %q", out, want)
		}
	}
}

func TestSendNotPty(t *testing.T) {
	// Any file goes through; it keeps its own name.
	a, b, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	defer b.Close()
	sock := filepath.Join(t.TempDir(), "s.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	sent := make(chan error, 1)
	go func() { sent <- SendMaster(sock, b) }()
	_ = l.SetDeadline(time.Now().Add(5 * time.Second))
	got, err := RecvMaster(l)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if got.Name() != b.Name() {
		t.Errorf("name = %q, want %q", got.Name(), b.Name())
	}
	if _, err := got.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	if _, err := a.Read(buf); err != nil || buf[0] != 'x' {
		t.Fatalf("read %q, %v; want x", buf, err)
	}
}

func TestRecvWithoutFd(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := net.Dial("unix", sock)
		if err == nil {
			_, _ = c.Write([]byte("no fd here"))
			c.Close()
		}
	}()
	_ = l.SetDeadline(time.Now().Add(5 * time.Second))
	if f, err := RecvMaster(l); err == nil {
		f.Close()
		t.Fatal("RecvMaster succeeded on a message without a descriptor")
	} else if !strings.Contains(err.Error(), "got 0 file descriptors") {
		t.Fatalf("err = %v", err)
	}
}

func TestSendFdRecvFd(t *testing.T) {
	master, slave := newPty(t)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	a := os.NewFile(uintptr(fds[0]), "a")
	b := os.NewFile(uintptr(fds[1]), "b")
	defer a.Close()
	defer b.Close()
	if err := SendFd(int(a.Fd()), master); err != nil {
		t.Fatal(err)
	}
	got, err := RecvFd(b)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	if got.Name() != slave {
		t.Errorf("name = %q, want %q", got.Name(), slave)
	}
	// The received descriptor is close-on-exec.
	flags, err := unix.FcntlInt(got.Fd(), unix.F_GETFD, 0)
	if err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("received fd flags %#x, %v: want close-on-exec", flags, err)
	}
	// Same terminal: a size set through one is seen through the other.
	if err := SetSize(got, 90, 30); err != nil {
		t.Fatal(err)
	}
	w, h, err := Size(master)
	if err != nil || w != 90 || h != 30 {
		t.Fatalf("size = %dx%d, %v; want 90x30", w, h, err)
	}
}

func TestMakeRaw(t *testing.T) {
	_, slave := newPty(t)
	s, err := os.OpenFile(slave, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	before, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if before.Lflag&unix.ICANON == 0 {
		t.Fatal("new pty not in canonical mode")
	}
	restore, err := MakeRaw(s)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if raw.Lflag&(unix.ICANON|unix.ECHO|unix.ISIG) != 0 || raw.Oflag&unix.OPOST != 0 || raw.Iflag&unix.ICRNL != 0 {
		t.Errorf("not raw: %+v", raw)
	}
	restore()
	after, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if after.Lflag != before.Lflag || after.Iflag != before.Iflag || after.Oflag != before.Oflag {
		t.Errorf("restore left %+v, want %+v", after, before)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if _, err := MakeRaw(r); err == nil {
		t.Error("MakeRaw accepted a pipe")
	}
}

func TestRawMode(t *testing.T) {
	in := unix.Termios{Iflag: unix.ICRNL | unix.IXON | unix.IUTF8, Oflag: unix.OPOST | unix.ONLCR, Lflag: unix.ICANON | unix.ECHO | unix.ISIG, Cflag: unix.PARENB | unix.CS7}
	out := rawMode(in)
	if out.Iflag != unix.IUTF8 || out.Oflag != unix.ONLCR || out.Lflag != 0 || out.Cflag != unix.CS8 || out.Cc[unix.VMIN] != 1 {
		t.Fatalf("rawMode = %+v", out)
	}
}
