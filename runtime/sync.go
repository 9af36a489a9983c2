package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// The parent (create, run or exec) and the init process it starts talk over
// a SOCK_SEQPACKET socketpair: one JSON message per packet, so no framing is
// needed, and file descriptors ride along with SCM_RIGHTS.
//
//	parent (host)                         init (container namespaces)
//	-------------                         ---------------------------
//	start init, join cgroup
//	bootstrap{config} ------------------>
//	  (or a C init plan, see runtime/cinit: the init then sends only
//	  ready or error)
//	                                      mounts, devices ...
//	                  <------------------ hooks          (only with hooks)
//	prestart/createRuntime hooks
//	hooksDone ------------------------->
//	                                      createContainer hooks, pivot_root,
//	                                      console, sysctl, masked paths ...
//	                  <------------------ seccompFd + fd (only with a listener)
//	send fd to the listener
//	seccompDone ----------------------->
//	                                      drop privileges
//	                  <------------------ ready
//	record state                          create: close the socket, wait on
//	                                      exec.fifo until `start` reads it
//	                                      run, exec: go on at once
//	                                      execve(process.args)
//	                  <------------------ (EOF: close-on-exec)
//	create returns at ready; run and exec wait for the EOF, or an error
//
// Any step may instead answer error{message}; the parent then tears down
// everything it made and reports that one line.
type msgType string

const (
	msgBootstrap   msgType = "bootstrap"
	msgHooks       msgType = "hooks"
	msgHooksDone   msgType = "hooksDone"
	msgSeccompFd   msgType = "seccompFd"
	msgSeccompDone msgType = "seccompDone"
	msgReady       msgType = "ready"
	msgError       msgType = "error"
)

type message struct {
	Type  msgType     `json:"type"`
	Error string      `json:"error,omitempty"`
	Init  *initConfig `json:"init,omitempty"`
	// Warnings travel with ready: what init did differently from what the
	// configuration asked, for the parent to report.
	Warnings []string `json:"warnings,omitempty"`
}

// syncConn is one end of the socketpair.
type syncConn struct {
	f *os.File
}

func newSyncPair() (parent, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("make sync socketpair: %w", err)
	}
	// A packet must fit in the sender's buffer whole, and the default
	// (net.core.wmem_default, often 208 KiB) is below maxMessage. Root may
	// force a larger one; otherwise take what wmem_max allows.
	for _, fd := range fds {
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, maxMessage+64<<10) != nil {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, maxMessage+64<<10)
		}
	}
	return os.NewFile(uintptr(fds[0]), "sync-parent"), os.NewFile(uintptr(fds[1]), "sync-child"), nil
}

// maxMessage bounds one packet; the bootstrap config is the largest.
const maxMessage = 4 << 20

func (c *syncConn) send(m message, files ...int) error {
	data, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode %s message: %w", m.Type, err)
	}
	var oob []byte
	if len(files) > 0 {
		oob = unix.UnixRights(files...)
	}
	if err := unix.Sendmsg(int(c.f.Fd()), data, oob, nil, 0); err != nil {
		return fmt.Errorf("send %s message: %w", m.Type, err)
	}
	return nil
}

// sendPlan sends a C init plan (runtime/cinit) as the bootstrap.
func (c *syncConn) sendPlan(plan []byte) error {
	if len(plan) > maxMessage {
		return fmt.Errorf("init plan of %d bytes is too large", len(plan))
	}
	if err := unix.Sendmsg(int(c.f.Fd()), plan, nil, nil, 0); err != nil {
		return fmt.Errorf("send init plan: %w", err)
	}
	return nil
}

// peekSize returns the length of the next packet without taking it, so
// each read allocates what it needs rather than the largest message.
func (c *syncConn) peekSize() (int, error) {
	for {
		n, _, err := unix.Recvfrom(int(c.f.Fd()), nil, unix.MSG_PEEK|unix.MSG_TRUNC)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("read sync socket: %w", err)
		}
		if n > maxMessage {
			return 0, fmt.Errorf("sync message of %d bytes is too large", n)
		}
		return max(n, 1), nil
	}
}

// errEOF means the other end closed the socket.
var errEOF = errors.New("sync socket closed")

func (c *syncConn) recv() (message, []int, error) {
	size, err := c.peekSize()
	if err != nil {
		return message{}, nil, err
	}
	buf := make([]byte, size)
	oob := make([]byte, unix.CmsgSpace(4*4))
	for {
		n, oobn, _, _, err := unix.Recvmsg(int(c.f.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return message{}, nil, fmt.Errorf("read sync socket: %w", err)
		}
		if n == 0 && oobn == 0 {
			return message{}, nil, errEOF
		}
		fds, err := parseRights(oob[:oobn])
		if err != nil {
			return message{}, nil, err
		}
		var m message
		if err := json.Unmarshal(buf[:n], &m); err != nil {
			// A plain line: written by the namespace-joining constructor,
			// which runs before Go and knows nothing of JSON.
			return message{Type: msgError, Error: trimNewline(string(buf[:n]))}, fds, nil
		}
		return m, fds, nil
	}
}

func parseRights(oob []byte) ([]int, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("parse control message: %w", err)
	}
	var fds []int
	for _, m := range msgs {
		got, err := unix.ParseUnixRights(&m)
		if err != nil {
			return nil, fmt.Errorf("parse passed fds: %w", err)
		}
		fds = append(fds, got...)
	}
	return fds, nil
}

// expect reads one message and checks its type; an error message becomes
// a Go error.
func (c *syncConn) expect(t msgType) (message, error) {
	m, fds, err := c.recv()
	for _, fd := range fds {
		_ = unix.Close(fd)
	}
	if err != nil {
		return m, err
	}
	if m.Type == msgError {
		return m, errors.New(m.Error)
	}
	if m.Type != t {
		return m, fmt.Errorf("sync: expected %s, got %s", t, m.Type)
	}
	return m, nil
}

func trimNewline(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == '\r') {
		s = s[:len(s)-1]
	}
	return s
}
