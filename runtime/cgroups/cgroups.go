// Package cgroups places a container's processes in cgroups and applies the
// resource limits of its OCI spec, on cgroup v1, cgroup v2 and the hybrid
// layout (v1 controllers plus a cgroup2 mount at /sys/fs/cgroup/unified).
//
// The work is split the usual way: pure functions translate the spec's
// linux.resources and devices into the cgroup library's types and check them
// against the controllers this host has (translate.go, check.go); Manager is
// the thin executor that hands the result to the library's fs, fs2 or
// systemd manager.
package cgroups

import (
	"errors"

	"github.com/opencontainers/cgroups"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The cgroup layouts Mode reports.
const (
	// ModeV1 is a host with only cgroup v1 hierarchies.
	ModeV1 = "v1"
	// ModeHybrid is a host with v1 controllers and a controller-less cgroup2
	// hierarchy mounted at /sys/fs/cgroup/unified.
	ModeHybrid = "hybrid"
	// ModeV2 is a host with the unified cgroup2 hierarchy only.
	ModeV2 = "v2"
)

// Freezer states reported by FreezerState. An empty string means the
// container has no freezer cgroup.
const (
	Frozen = string(cgroups.Frozen)
	Thawed = string(cgroups.Thawed)
)

// ErrNotSupported is wrapped by every error about a limit the host cannot
// enforce: a controller that is not mounted, or a setting that the host's
// cgroup version has no file for.
var ErrNotSupported = errors.New("cgroup limit not supported on this host")

// Config says which cgroup a container gets and what limits it has.
type Config struct {
	// ID is the container id. It names the cgroup when Path is empty.
	ID string
	// Path is the spec's linux.cgroupsPath ("" = default). Without Systemd
	// it is a cgroup path: absolute paths are taken from each hierarchy's
	// root, relative ones from the runtime's own cgroup. With Systemd it is
	// "slice:prefix:name".
	Path string
	// Systemd asks for the cgroup to be made by systemd over D-Bus
	// (--systemd-cgroup). New fails if systemd is not running.
	Systemd bool
	// Resources is the spec's linux.resources; it may be nil.
	Resources *specs.LinuxResources
	// Devices is the spec's linux.devices: each gets an allow rule.
	Devices []specs.LinuxDevice
}

// Mode reports the host's cgroup layout: ModeV1, ModeHybrid or ModeV2.
func Mode() string {
	switch {
	case cgroups.IsCgroup2UnifiedMode():
		return ModeV2
	case cgroups.IsCgroup2HybridMode():
		return ModeHybrid
	default:
		return ModeV1
	}
}
