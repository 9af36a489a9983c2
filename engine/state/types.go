package state

import (
	"net/netip"
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
	// Net holds the container's network settings that Docker's
	// HostConfig has no field for.
	Net NetConfig
}

// NetConfig is what a container asks of its network beyond Docker's
// settings: firewall rules and routes inside its network namespace.
// Rules and routes are kept in their flag syntax, checked at create.
type NetConfig struct {
	// Firewall are the --firewall rules, first match wins.
	Firewall []string `json:",omitempty"`
	// FirewallDefault is the --firewall-default policy
	// ("ingress=allow,egress=deny"); empty allows both ways.
	FirewallDefault string `json:",omitempty"`
	// Routes are the --route extra routes.
	Routes []string `json:",omitempty"`
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
	// KeepOnExit records that a restart is stopping the container: the
	// exit it causes leaves a --rm container in place, as Docker's
	// restart does, so that it can start again.
	KeepOnExit bool `json:",omitempty"`
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

// Network is one bridge network: a Linux bridge and its address plan.
type Network struct {
	ID      string // 64 lower-case hex digits
	Name    string
	Created time.Time
	// Driver is "bridge", the only driver.
	Driver string
	// Bridge is the Linux bridge's interface name.
	Bridge string
	// Subnets hold one IPv4 and, with IPv6, one IPv6 address plan.
	Subnets []Subnet
	// Internal networks have no route out and cannot be reached from
	// outside.
	Internal   bool `json:",omitempty"`
	EnableIPv6 bool `json:",omitempty"`
	// MTU of the bridge and its veths; 0 is the kernel's default.
	MTU     int               `json:",omitempty"`
	Options map[string]string `json:",omitempty"`
	Labels  map[string]string `json:",omitempty"`
}

// Subnet is one subnet of a network, as `network create` gives it.
type Subnet struct {
	Subnet netip.Prefix
	// IPRange is where container addresses come from; zero: all of Subnet.
	IPRange netip.Prefix `json:",omitzero"`
	Gateway netip.Addr
}

// Endpoint is one container's membership of one network: what it asked
// for from create or connect on, and what it was given while it runs.
type Endpoint struct {
	ContainerID string
	NetworkID   string
	// Aliases are the extra names the container answers to on this
	// network (--network-alias).
	Aliases []string `json:",omitempty"`
	// IPv4 and IPv6 are the addresses asked for (--ip, --ip6); zero:
	// any free one.
	IPv4 netip.Addr `json:",omitzero"`
	IPv6 netip.Addr `json:",omitzero"`
	// MAC is the address asked for (--mac-address); empty: derived.
	MAC string `json:",omitempty"`
	// Attached is what the running container has; nil while it is not
	// running.
	Attached *Attachment `json:",omitempty"`
}

// Attachment is an endpoint's live part: the veth and the addresses.
type Attachment struct {
	// EndpointID is Docker's per-attachment ID, new at every attach.
	EndpointID string
	// IfName is the interface's name in the container ("eth0").
	IfName string
	// HostIf is the host end of the veth.
	HostIf string
	// Addrs are the container's addresses with their prefix lengths.
	Addrs              []netip.Prefix
	MAC                string
	Gateway4, Gateway6 netip.Addr `json:",omitzero"`
}

// Addr returns the attachment's address of the given family (4 or 6),
// or the zero prefix.
func (a *Attachment) Addr(family int) netip.Prefix {
	for _, p := range a.Addrs {
		if (family == 4) == p.Addr().Is4() {
			return p
		}
	}
	return netip.Prefix{}
}

// PublishedPort is one host port a running container holds.
type PublishedPort struct {
	ContainerID string
	// Proto is "tcp" or "udp".
	Proto string
	// HostIP is the host address the port is bound on; the zero Addr
	// means every address.
	HostIP        netip.Addr
	HostPort      uint16
	ContainerIP   netip.Addr
	ContainerPort uint16
}
