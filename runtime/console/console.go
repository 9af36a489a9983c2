// Package console gives containers terminals the way runc's
// --console-socket protocol does: the runtime opens a pseudo-terminal inside
// the container, keeps the slave as the container's stdio and sends the
// master to whoever listens on the console socket.
//
// On the socket, one message carries the master as an SCM_RIGHTS file
// descriptor; its bytes are the slave's path (for example "/dev/pts/3"),
// which the receiver uses as the received file's name.
package console

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// maxNameLen bounds the name read with a received file: a path.
const maxNameLen = 4096

// NewPty opens a new pseudo-terminal from /dev/ptmx (the caller runs inside
// the container's root, so it comes from the container's devpts) and
// returns the master and the slave's path. The master is in blocking mode.
func NewPty() (master *os.File, slavePath string, err error) {
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, "", fmt.Errorf("open /dev/ptmx: %w", err)
	}
	master = os.NewFile(uintptr(fd), "/dev/ptmx")
	slavePath, err = ptsName(fd)
	if err == nil {
		err = unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0)
		if err != nil {
			err = fmt.Errorf("unlock pty: %w", err)
		}
	}
	if err != nil {
		master.Close()
		return nil, "", err
	}
	return master, slavePath, nil
}

// ptsName returns the path of the slave of the pty master fd.
func ptsName(fd int) (string, error) {
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		return "", fmt.Errorf("get pty number: %w", err)
	}
	return "/dev/pts/" + strconv.FormatUint(uint64(n), 10), nil
}

// SendMaster connects to the unix socket at socketPath and sends master
// with SCM_RIGHTS.
func SendMaster(socketPath string, master *os.File) error {
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: socketPath, Net: "unix"})
	if err != nil {
		return fmt.Errorf("connect to console socket: %w", err)
	}
	defer conn.Close()
	return SendMasterConn(conn, master)
}

// SendMasterConn sends master over an already connected unix socket with
// SCM_RIGHTS, its slave's path as the message. A file that is not a pty
// master is sent under its own name.
func SendMasterConn(conn *net.UnixConn, master *os.File) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return fmt.Errorf("send console master: %w", err)
	}
	var serr error
	err = rc.Write(func(sock uintptr) bool {
		serr = send(int(sock), master)
		return !errors.Is(serr, unix.EAGAIN)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("send console master: %w", err)
	}
	return nil
}

// SendFd sends f over the connected unix socket sockFd (in blocking mode)
// with SCM_RIGHTS, its message as SendMasterConn makes it.
func SendFd(sockFd int, f *os.File) error {
	if err := send(sockFd, f); err != nil {
		return fmt.Errorf("send console master: %w", err)
	}
	return nil
}

// send sends f on the socket sock, with the slave's path as the message
// when f is a pty master and f's name otherwise.
func send(sock int, f *os.File) error {
	return control(f, func(fd int) error {
		name, err := ptsName(fd)
		if err != nil {
			name = f.Name()
		}
		return unix.Sendmsg(sock, []byte(name), unix.UnixRights(fd), nil, 0)
	})
}

// RecvMaster accepts one connection on a listening unix socket and returns
// the file received on it, named by the message that came with it.
func RecvMaster(l *net.UnixListener) (*os.File, error) {
	conn, err := l.AcceptUnix()
	if err != nil {
		return nil, fmt.Errorf("accept on console socket: %w", err)
	}
	defer conn.Close()
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("receive console master: %w", err)
	}
	return recv(rc)
}

// RecvFd receives one file from the connected unix socket sock, as sent by
// SendFd or SendMasterConn, named by the message that came with it.
func RecvFd(sock *os.File) (*os.File, error) {
	rc, err := sock.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("receive console master: %w", err)
	}
	return recv(rc)
}

// recv reads one message carrying exactly one file descriptor.
func recv(rc syscall.RawConn) (*os.File, error) {
	buf := make([]byte, maxNameLen)
	// Room for a few descriptors, so that a sender passing more than one
	// is detected (and its extra descriptors closed) rather than truncated.
	oob := make([]byte, unix.CmsgSpace(4*4))
	var n, oobn, flags int
	var rerr error
	err := rc.Read(func(sock uintptr) bool {
		n, oobn, flags, _, rerr = unix.Recvmsg(int(sock), buf, oob, unix.MSG_CMSG_CLOEXEC)
		return !errors.Is(rerr, unix.EAGAIN)
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return nil, fmt.Errorf("receive console master: %w", err)
	}
	fds, err := parseRights(oob[:oobn])
	if err == nil && flags&unix.MSG_CTRUNC != 0 {
		err = errors.New("control message truncated")
	}
	if err == nil && len(fds) != 1 {
		err = fmt.Errorf("got %d file descriptors, want 1", len(fds))
	}
	if err != nil {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("receive console master: %w", err)
	}
	name := string(buf[:n])
	if name == "" {
		name = "console"
	}
	return os.NewFile(uintptr(fds[0]), name), nil
}

// parseRights returns every descriptor passed in the control messages oob.
func parseRights(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("parse control message: %w", err)
	}
	var fds []int
	for i := range msgs {
		if msgs[i].Header.Level != unix.SOL_SOCKET || msgs[i].Header.Type != unix.SCM_RIGHTS {
			continue
		}
		got, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			return fds, fmt.Errorf("parse rights: %w", err)
		}
		fds = append(fds, got...)
	}
	return fds, nil
}

// SetSize sets the window size of a terminal, in character cells.
func SetSize(f *os.File, width, height uint) error {
	ws, err := winsize(width, height)
	if err != nil {
		return err
	}
	err = control(f, func(fd int) error {
		return unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, ws)
	})
	if err != nil {
		return fmt.Errorf("set terminal size of %s: %w", f.Name(), err)
	}
	return nil
}

// Size returns the window size of a terminal, in character cells.
func Size(f *os.File) (width, height uint, err error) {
	var ws *unix.Winsize
	err = control(f, func(fd int) error {
		var err error
		ws, err = unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("get terminal size of %s: %w", f.Name(), err)
	}
	return uint(ws.Col), uint(ws.Row), nil
}

// MakeRaw puts the terminal f in raw mode (as cfmakeraw(3) does), so that
// what the user types reaches the container's terminal unprocessed, and
// returns a function that restores the previous mode (best effort: a
// terminal that cannot be restored has nothing left to report to).
func MakeRaw(f *os.File) (restore func(), err error) {
	var old *unix.Termios
	err = control(f, func(fd int) error {
		var err error
		if old, err = unix.IoctlGetTermios(fd, unix.TCGETS); err != nil {
			return err
		}
		raw := rawMode(*old)
		return unix.IoctlSetTermios(fd, unix.TCSETS, &raw)
	})
	if err != nil {
		return nil, fmt.Errorf("make %s raw: %w", f.Name(), err)
	}
	return func() {
		_ = control(f, func(fd int) error { return unix.IoctlSetTermios(fd, unix.TCSETS, old) })
	}, nil
}

// rawMode returns t changed to raw mode: no line editing, echo, signals or
// character translation; a read returns each byte as it comes.
func rawMode(t unix.Termios) unix.Termios {
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	return t
}

// winsize checks that the size fits the kernel's 16-bit fields.
func winsize(width, height uint) (*unix.Winsize, error) {
	if width > math.MaxUint16 || height > math.MaxUint16 {
		return nil, fmt.Errorf("terminal size %dx%d too large", width, height)
	}
	return &unix.Winsize{Col: uint16(width), Row: uint16(height)}, nil
}

// SetupSlave makes the slave the controlling terminal of the calling
// process and dups it onto fds 0, 1 and 2 (setsid first, so the process
// leads a new session without a terminal). A zero width and height leave
// the terminal's size as it is.
func SetupSlave(slavePath string, width, height uint) error {
	ws, err := winsize(width, height)
	if err != nil {
		return err
	}
	if _, err := unix.Setsid(); err != nil {
		return fmt.Errorf("setsid: %w", err)
	}
	fd, err := unix.Open(slavePath, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", slavePath, err)
	}
	defer func() {
		if fd > 2 {
			unix.Close(fd)
		}
	}()
	if err := unix.IoctlSetInt(fd, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("make %s the controlling terminal: %w", slavePath, err)
	}
	if width != 0 || height != 0 {
		if err := unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, ws); err != nil {
			return fmt.Errorf("set terminal size of %s: %w", slavePath, err)
		}
	}
	for i := 0; i <= 2; i++ {
		if fd == i {
			// Already in place; dup3 refuses equal descriptors, and the
			// close-on-exec flag must go.
			if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
				return fmt.Errorf("keep %s open across exec: %w", slavePath, err)
			}
			continue
		}
		if err := unix.Dup3(fd, i, 0); err != nil {
			return fmt.Errorf("dup %s onto fd %d: %w", slavePath, i, err)
		}
	}
	return nil
}

// control runs fn with f's descriptor; f stays open meanwhile.
func control(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}
