package seccomp

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func listenUnix(t *testing.T, path string) *net.UnixListener {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// receiveListener accepts one connection on ln, as a seccomp agent does,
// and returns the state and the one fd it carried.
func receiveListener(t *testing.T, ln *net.UnixListener) (*specs.ContainerProcessState, int) {
	t.Helper()
	if err := ln.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	conn, err := ln.AcceptUnix()
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<16)
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		t.Fatalf("read state: %v", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		t.Fatalf("control messages %v, %v; want one", msgs, err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		t.Fatalf("rights %v, %v; want one fd", fds, err)
	}
	// The sender closes the connection after the state: read to the end.
	rest, err := io.ReadAll(conn)
	if err != nil {
		unix.Close(fds[0])
		t.Fatalf("read rest of state: %v", err)
	}
	var st specs.ContainerProcessState
	if err := json.Unmarshal(append(buf[:n], rest...), &st); err != nil {
		unix.Close(fds[0])
		t.Fatalf("decode state: %v", err)
	}
	return &st, fds[0]
}

func TestSendListener(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln := listenUnix(t, sock)

	// A pipe stands in for the listener fd: what is written through the fd
	// the agent receives must come out of our end.
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])

	big := strings.Repeat("x", 200_000) // more than one socket buffer
	in := &specs.ContainerProcessState{
		Version:  specs.Version,
		Pid:      1234,
		Metadata: big,
		State: specs.State{Version: specs.Version, ID: "ctr", Status: specs.StateCreating, Pid: 1234,
			Bundle: "/bundle", Annotations: map[string]string{"a": "b"}},
	}
	errc := make(chan error, 1)
	go func() { errc <- SendListener(sock, in, p[1]) }()

	st, fd := receiveListener(t, ln)
	defer unix.Close(fd)
	if err := <-errc; err != nil {
		t.Fatalf("send listener: %v", err)
	}
	if len(st.Fds) != 1 || st.Fds[0] != "seccompFd" {
		t.Errorf("fds %v, want [seccompFd]", st.Fds)
	}
	if st.Pid != 1234 || st.Metadata != big || st.State.ID != "ctr" || st.State.Annotations["a"] != "b" {
		t.Errorf("state %+v does not match what was sent", st.State)
	}
	if in.Fds != nil {
		t.Errorf("the caller's state was changed: fds %v", in.Fds)
	}
	if _, err := unix.Write(fd, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	if n, err := unix.Read(p[0], got); err != nil || string(got[:n]) != "ping" {
		t.Errorf("read %q, %v through the passed fd; want ping", got[:n], err)
	}
	// The fd stays the caller's.
	if _, err := unix.FcntlInt(uintptr(p[1]), unix.F_GETFD, 0); err != nil {
		t.Errorf("SendListener closed the caller's fd: %v", err)
	}
}

func TestSendListenerErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nobody.sock")
	err := SendListener(missing, &specs.ContainerProcessState{}, int(os.Stdin.Fd()))
	if err == nil || !errors.Is(err, unix.ENOENT) {
		t.Errorf("send to a missing socket: %v, want ENOENT", err)
	}
	if err := SendListener(missing, nil, 0); err == nil {
		t.Error("send without a state succeeded")
	}
}
