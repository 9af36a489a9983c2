package monitor

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// Frame kinds, monitor to client.
const (
	frameStdout = 1
	frameStderr = 2
	frameExit   = 3
)

// Frame kinds, client to monitor.
const (
	frameStdin        = 0
	frameCloseStdin   = 1
	frameResize       = 2
	frameDetach       = 3
	frameExitRecorded = 4
	frameExitYours    = 5
)

// maxSunPath is the room for a path in sockaddr_un, its NUL included.
const maxSunPath = 108

// Conn is an attach client's connection to a monitor. Its methods that
// send may be called from several goroutines; Copy from one.
type Conn struct {
	rw io.ReadWriteCloser
	mu sync.Mutex // one frame at a time
	// Claim marks the connection of the client that may record the exit
	// (Config.Claim): after the exit frame, the monitor waits for its
	// ExitRecorded or ExitYours.
	Claim bool
}

// NewConn wraps a connection to a monitor: a net.Conn, or an *os.File for
// a socket handed over (one end of a socketpair given in Config.Clients).
func NewConn(rw io.ReadWriteCloser) *Conn {
	return &Conn{rw: rw}
}

// Dial connects to a monitor's attach socket at path, which may be longer
// than a socket address can hold.
func Dial(path string) (*Conn, error) {
	var c net.Conn
	err := viaShortPath(path, func(short string) error {
		var err error
		c, err = net.DialUnix("unix", nil, &net.UnixAddr{Name: short, Net: "unix"})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("attach to %s: %w", path, err)
	}
	return NewConn(c), nil
}

// ListenUnix makes the listening socket for attach clients at path (mode
// 0600; a stale socket there is replaced), for Config.Listener.
func ListenUnix(path string) (*os.File, error) {
	if st, err := os.Lstat(path); err == nil && st.Mode().Type() == os.ModeSocket {
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("listen on %s: remove stale socket: %w", path, err)
		}
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	err = viaShortPath(path, func(short string) error {
		if err := unix.Bind(fd, &unix.SockaddrUnix{Name: short}); err != nil {
			return err
		}
		// Nobody can connect before listen: the mode is set in time.
		if err := os.Chmod(short, 0o600); err != nil {
			return err
		}
		return unix.Listen(fd, 64)
	})
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// viaShortPath calls fn with path, or, when path is too long for a socket
// address, with /proc/self/fd/<dir>/<base> through an O_PATH fd of its
// directory.
func viaShortPath(path string, fn func(string) error) error {
	if len(path) < maxSunPath {
		return fn(path)
	}
	dir, err := unix.Open(filepath.Dir(path), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open socket directory: %w", &os.PathError{Op: "open", Path: filepath.Dir(path), Err: err})
	}
	defer unix.Close(dir)
	short := "/proc/self/fd/" + strconv.Itoa(dir) + "/" + filepath.Base(path)
	if len(short) >= maxSunPath {
		return fmt.Errorf("socket name %q too long", filepath.Base(path))
	}
	return fn(short)
}

func (c *Conn) send(kind byte, payload []byte) error {
	if uint64(len(payload)) > 1<<32-1 {
		return errors.New("frame too large")
	}
	buf := make([]byte, 8+len(payload))
	buf[0] = kind
	binary.BigEndian.PutUint32(buf[4:], uint32(len(payload)))
	copy(buf[8:], payload)
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := c.rw.Write(buf)
	return err
}

// WriteStdin sends p to the container's stdin (dropped by the monitor when
// the container has none).
func (c *Conn) WriteStdin(p []byte) error {
	if err := c.send(frameStdin, p); err != nil {
		return fmt.Errorf("attach: write stdin: %w", err)
	}
	return nil
}

// CloseStdin closes the container's stdin once what was sent before has
// been written (nothing happens with a tty).
func (c *Conn) CloseStdin() error {
	if err := c.send(frameCloseStdin, nil); err != nil {
		return fmt.Errorf("attach: close stdin: %w", err)
	}
	return nil
}

// Resize sets the container's terminal size.
func (c *Conn) Resize(rows, cols uint16) error {
	var p [4]byte
	binary.BigEndian.PutUint16(p[0:], rows)
	binary.BigEndian.PutUint16(p[2:], cols)
	if err := c.send(frameResize, p[:]); err != nil {
		return fmt.Errorf("attach: resize: %w", err)
	}
	return nil
}

// Detach tells the monitor the client leaves, and closes the connection.
func (c *Conn) Detach() error {
	err := c.send(frameDetach, nil)
	if cerr := c.rw.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("attach: detach: %w", err)
	}
	return nil
}

// ExitRecorded tells the monitor, after the exit frame, that this client
// (the Config.Claim one) recorded the exit: the monitor ends there.
func (c *Conn) ExitRecorded() error {
	if err := c.send(frameExitRecorded, nil); err != nil {
		return fmt.Errorf("attach: report the exit recorded: %w", err)
	}
	return nil
}

// ExitYours tells the monitor, after the exit frame, that this client
// leaves the exit to it. The monitor closes the connection once its exit
// phase has run.
func (c *Conn) ExitYours() error {
	if err := c.send(frameExitYours, nil); err != nil {
		return fmt.Errorf("attach: leave the exit to the monitor: %w", err)
	}
	return nil
}

// Close closes the connection without a word to the monitor.
func (c *Conn) Close() error {
	return c.rw.Close()
}

// Stdin is an io.Writer whose writes go to the container's stdin.
func (c *Conn) Stdin() io.Writer {
	return stdinWriter{c}
}

type stdinWriter struct{ c *Conn }

func (w stdinWriter) Write(p []byte) (int, error) {
	// Frames stay well under the monitor's stdin backlog.
	const chunk = 32 * 1024
	for off := 0; off < len(p); off += chunk {
		if err := w.c.WriteStdin(p[off:min(off+chunk, len(p))]); err != nil {
			return off, err
		}
	}
	return len(p), nil
}

// Copy writes the container's output to stdout and stderr (stderr nil:
// to stdout) until the exit frame, which gives code and exited true, or
// until the monitor closes the connection, which gives exited false.
func (c *Conn) Copy(stdout, stderr io.Writer) (code int, exited bool, err error) {
	if stderr == nil {
		stderr = stdout
	}
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(c.rw, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return 0, false, nil
			}
			return 0, false, fmt.Errorf("attach: read frame: %w", err)
		}
		n := int64(binary.BigEndian.Uint32(hdr[4:]))
		switch hdr[0] {
		case frameStdout, frameStderr:
			w := stdout
			if hdr[0] == frameStderr {
				w = stderr
			}
			if _, err := io.CopyN(w, c.rw, n); err != nil {
				return 0, false, fmt.Errorf("attach: copy output: %w", err)
			}
		case frameExit:
			if n > 16 {
				return 0, false, fmt.Errorf("attach: exit frame of %d bytes", n)
			}
			p := make([]byte, n)
			if _, err := io.ReadFull(c.rw, p); err != nil {
				return 0, false, fmt.Errorf("attach: read exit frame: %w", err)
			}
			code, err := strconv.Atoi(string(p))
			if err != nil {
				return 0, false, fmt.Errorf("attach: bad exit code %q", p)
			}
			return code, true, nil
		default:
			if _, err := io.CopyN(io.Discard, c.rw, n); err != nil {
				return 0, false, fmt.Errorf("attach: skip frame: %w", err)
			}
		}
	}
}
