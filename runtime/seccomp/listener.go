package seccomp

import (
	"encoding/json"
	"fmt"
	"net"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// listenerTimeout bounds the whole exchange with the seccomp agent, so a
// stuck agent fails the container's creation instead of hanging it.
const listenerTimeout = 30 * time.Second

// SendListener connects to the unix socket at path and sends the listener
// fd with the OCI container process state, as the spec's seccomp notify
// protocol describes: one connection per state, the state's JSON in the
// data of one message whose SCM_RIGHTS carry fd, named "seccompFd" in the
// state's fds, then the connection is closed. state is not modified; fd
// stays open and the caller's.
func SendListener(path string, state *specs.ContainerProcessState, fd int) error {
	if state == nil {
		return fmt.Errorf("send seccomp listener to %s: no process state", path)
	}
	st := *state
	st.Fds = []string{specs.SeccompFdName}
	data, err := json.Marshal(&st)
	if err != nil {
		return fmt.Errorf("encode container process state: %w", err)
	}
	conn, err := net.DialTimeout("unix", path, listenerTimeout)
	if err != nil {
		return fmt.Errorf("connect to seccomp agent: %w", err)
	}
	defer conn.Close()
	uc := conn.(*net.UnixConn)
	if err := uc.SetDeadline(time.Now().Add(listenerTimeout)); err != nil {
		return fmt.Errorf("set deadline on %s: %w", path, err)
	}
	n, _, err := uc.WriteMsgUnix(data, unix.UnixRights(fd), nil)
	if err != nil {
		return fmt.Errorf("send seccomp listener to %s: %w", path, err)
	}
	// A stream socket may take the data in several pieces; the fd went with
	// the first, the rest follows as plain data.
	if n < len(data) {
		if _, err := uc.Write(data[n:]); err != nil {
			return fmt.Errorf("send container process state to %s: %w", path, err)
		}
	}
	return nil
}
