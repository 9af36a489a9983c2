package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/runtime/cgroups"
)

// The --root directory holds one directory per container:
//
//	<root>/<id>/state.json   the record below, written atomically
//	<root>/<id>/config.json  the configuration the container was created with
//	<root>/<id>/exec.fifo    opened by init, blocks it until `start` reads it
//	<root>/<id>/lock         flock()ed by every command that changes the container
//	<root>/@seccomp/<key>    compiled seccomp programs (a name no id can take)
const (
	stateFile  = "state.json"
	configFile = "config.json"
	fifoFile   = "exec.fifo"
	lockFile   = "lock"
	// seccompCacheDir holds compiled seccomp programs; "@" is not allowed
	// in container ids, so List never takes it for a container.
	seccompCacheDir = "@seccomp"
)

// Status values of the OCI state.
const (
	StatusCreated = "created"
	StatusRunning = "running"
	StatusPaused  = "paused"
	StatusStopped = "stopped"
)

// record is what berth keeps about a container between commands.
type record struct {
	ID           string            `json:"id"`
	Bundle       string            `json:"bundle"`
	Rootfs       string            `json:"rootfs"`
	Pid          int               `json:"pid"`
	PidStartTime uint64            `json:"pidStartTime"`
	Created      time.Time         `json:"created"`
	Owner        string            `json:"owner"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Cgroup       *cgroups.State    `json:"cgroup,omitempty"`
	Systemd      bool              `json:"systemd,omitempty"`
}

// Container is an opened container directory.
type Container struct {
	rt     *Runtime
	dir    string
	rec    record
	spec   *specs.Spec
	lockFd int
}

// validID accepts what runc does: letters, digits, "_", "+", "-", ".".
// (A loop, not a regexp: compiling one at start-up costs every command,
// the container's init included.)
func validID(id string) bool {
	for _, r := range id {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_+-.", r)
		if !ok {
			return false
		}
	}
	return true
}

func checkID(id string) error {
	if id == "" {
		return errdefs.Invalid("container id is required")
	}
	if !validID(id) || id == "." || id == ".." {
		return errdefs.Invalid("invalid container id %q (letters, digits, _ + - . only)", id)
	}
	return nil
}

// open loads a container's record; with lock it also takes the
// container's lock, held until release.
func (r *Runtime) open(id string, lock bool) (*Container, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	dir := filepath.Join(r.Root, id)
	c := &Container{rt: r, dir: dir, lockFd: -1}
	if lock {
		fd, err := unix.Open(filepath.Join(dir, lockFile), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				return nil, errdefs.NotFound("container %q does not exist", id)
			}
			return nil, fmt.Errorf("open lock of %s: %w", id, err)
		}
		if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
			_ = unix.Close(fd)
			return nil, fmt.Errorf("lock container %s: %w", id, err)
		}
		c.lockFd = fd
	}
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		c.release()
		if errors.Is(err, os.ErrNotExist) {
			return nil, errdefs.NotFound("container %q does not exist", id)
		}
		return nil, fmt.Errorf("read state of %s: %w", id, err)
	}
	if err := json.Unmarshal(data, &c.rec); err != nil {
		c.release()
		return nil, fmt.Errorf("parse state of %s: %w", id, err)
	}
	return c, nil
}

func (c *Container) release() {
	if c.lockFd >= 0 {
		_ = unix.Close(c.lockFd)
		c.lockFd = -1
	}
}

// Spec returns the configuration the container was created with.
func (c *Container) Spec() (*specs.Spec, error) {
	if c.spec != nil {
		return c.spec, nil
	}
	data, err := os.ReadFile(filepath.Join(c.dir, configFile))
	if err != nil {
		return nil, fmt.Errorf("read stored config of %s: %w", c.rec.ID, err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("parse stored config of %s: %w", c.rec.ID, err)
	}
	c.spec = &s
	return c.spec, nil
}

func (c *Container) save() error {
	data, err := json.Marshal(c.rec)
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	return writeFileAtomic(filepath.Join(c.dir, stateFile), data)
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}

// Status derives the container's status from the kernel and the exec
// fifo, never from a stored field: a container whose processes died is
// "stopped" at once, one whose init still waits on exec.fifo is "created"
// (start removes the fifo), and a frozen one is "paused".
func (c *Container) Status() string {
	if !c.initAlive() {
		return StatusStopped
	}
	if _, err := os.Stat(filepath.Join(c.dir, fifoFile)); err == nil {
		return StatusCreated
	}
	if c.rec.Cgroup != nil {
		if m, err := cgroups.Load(*c.rec.Cgroup); err == nil {
			if st, err := m.FreezerState(); err == nil && st == cgroups.Frozen {
				return StatusPaused
			}
		}
	}
	return StatusRunning
}

// initAlive reports whether the container's init still runs: the pid
// exists, is not a zombie, and started when ours did (pids get reused).
func (c *Container) initAlive() bool {
	if c.rec.Pid <= 0 {
		return false
	}
	st, state, err := procStartTime(c.rec.Pid)
	if err != nil || state == "Z" || state == "X" {
		return false
	}
	return st == c.rec.PidStartTime
}

// ProcStartTime reads a process's start time (clock ticks after boot,
// /proc/PID/stat field 22) and its state letter (field 3: R, S, Z, ...).
func ProcStartTime(pid int) (uint64, string, error) { return procStartTime(pid) }

// procStartTime reads field 22 (starttime) and field 3 (state) of
// /proc/<pid>/stat.
func procStartTime(pid int) (uint64, string, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, "", err
	}
	s := string(data)
	// The command name may hold spaces and parentheses: split after the last ')'.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, "", fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, "", fmt.Errorf("short /proc/%d/stat", pid)
	}
	v, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, "", fmt.Errorf("parse start time of %d: %w", pid, err)
	}
	return v, f[0], nil
}

// State is the OCI state of a container, with the extra fields runc prints.
type State struct {
	specs.State
	Rootfs  string    `json:"rootfs"`
	Created time.Time `json:"created"`
	Owner   string    `json:"owner"`
}

// OCIState returns the container's state as `state` prints it.
func (c *Container) OCIState() State {
	st := State{
		State: specs.State{
			Version:     specs.Version,
			ID:          c.rec.ID,
			Status:      specs.ContainerState(c.Status()),
			Bundle:      c.rec.Bundle,
			Annotations: c.rec.Annotations,
		},
		Rootfs:  c.rec.Rootfs,
		Created: c.rec.Created,
		Owner:   c.rec.Owner,
	}
	if st.Status != StatusStopped {
		st.Pid = c.rec.Pid
	}
	return st
}

// hookState is the state handed to hooks on stdin.
func (c *Container) hookState(status string) *specs.State {
	s := c.OCIState().State
	s.Status = specs.ContainerState(status)
	if status != StatusStopped {
		s.Pid = c.rec.Pid
	}
	return &s
}
