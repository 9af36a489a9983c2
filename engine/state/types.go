package state

import (
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
)

// Container statuses, Docker's words for State.Status.
const (
	StatusCreated    = "created"
	StatusRunning    = "running"
	StatusPaused     = "paused"
	StatusRestarting = "restarting"
	StatusRemoving   = "removing"
	StatusExited     = "exited"
	StatusDead       = "dead"
)

// Container is the stored record of one container. Its configuration is
// Docker's API types, so the Docker API passes requests through unchanged.
type Container struct {
	ID      string // 64 lower-case hex digits
	Name    string // without the leading "/"
	Image   string // the image reference as given, in its familiar form
	ImageID string // "sha256:..."
	Created time.Time

	Config     *container.Config
	HostConfig *container.HostConfig
	// Mounts are the resolved mounts: volumes created, binds checked.
	Mounts []MountPoint

	State        State
	RestartCount int
	LogPath      string
}

// MountPoint is one resolved mount, as Docker's inspect shows "Mounts".
type MountPoint struct {
	Type        mount.Type
	Name        string // the volume's name, for volume mounts
	Source      string
	Destination string
	Mode        string
	Propagation string
	RW          bool
	// Driver is the volume driver ("local"), for volume mounts.
	Driver string `json:",omitempty"`
	// NoCopy keeps the image's content at Destination out of a new
	// volume.
	NoCopy bool `json:",omitempty"`
}

// State is what the container is doing now.
type State struct {
	Status     string // one of the Status constants
	Pid        int
	MonitorPid int
	ExitCode   int
	Error      string
	OOMKilled  bool
	StartedAt  time.Time
	FinishedAt time.Time
	Health     *container.Health // nil without a healthcheck
	// ManualStop records that a user stopped the container, so its
	// restart policy leaves it stopped (Docker's HasBeenManuallyStopped).
	ManualStop bool `json:",omitempty"`
	// MonitorStart is the monitor's start time (clock ticks after boot,
	// /proc/PID/stat field 22): with MonitorPid it names the process even
	// if the pid is reused, and it does not change across the monitor's
	// execs.
	MonitorStart uint64 `json:",omitempty"`
}

// Volume is one named or anonymous volume.
type Volume struct {
	Name       string
	Driver     string
	Mountpoint string
	Created    time.Time
	Labels     map[string]string
	Options    map[string]string
	Anonymous  bool
}

// Event is one of Docker's events: Type is "container", "image", "volume"
// or "network"; Action is "create", "start", "die", ...; Attributes hold
// name, image, exitCode and the like.
type Event struct {
	Seq        int64
	Time       time.Time
	Type       string
	Action     string
	ActorID    string
	Attributes map[string]string
}

// EventQuery selects events; zero fields do not filter. Events come
// oldest first.
type EventQuery struct {
	AfterSeq int64     // only events with a greater Seq
	Since    time.Time // only events at or after Since
	Until    time.Time // only events at or before Until
	Limit    int       // at most this many (the oldest that match); 0: all
}

// MaxEvents is how many events the store keeps; older ones are pruned as
// new ones arrive.
const MaxEvents = 10000
