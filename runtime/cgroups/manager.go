package cgroups

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/opencontainers/cgroups"
	// The device controller only works with this imported: it installs the
	// v1 devices.allow/deny writer and the v2 eBPF device filter.
	"github.com/opencontainers/cgroups/manager"
	"github.com/opencontainers/cgroups/systemd"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Manager owns one container's cgroup(s): one per v1 hierarchy (plus one in
// the unified hierarchy on a hybrid host), or the single v2 cgroup. It is
// not safe for concurrent use.
type Manager struct {
	cfg   Config
	mode  string
	lib   cgroups.Manager
	paths map[string]string
}

// State is what a later command needs to find and manage the container's
// cgroups again; it is saved with the container's state.
type State struct {
	// Mode is the host's cgroup layout when the cgroups were made.
	Mode string `json:"mode"`
	// ID, Path and Systemd are the Config the Manager was made from.
	ID      string `json:"id"`
	Path    string `json:"path,omitempty"`
	Systemd bool   `json:"systemd,omitempty"`
	// Paths maps each controller to its cgroup directory ("" = unified).
	Paths map[string]string `json:"paths"`
	// Resources are the limits in force, after any updates.
	Resources *specs.LinuxResources `json:"resources,omitempty"`
	// Devices are the spec's linux.devices, whose allow rules stay in force.
	Devices []specs.LinuxDevice `json:"devices,omitempty"`
}

// New computes where the container's cgroups go and checks that the host
// can enforce every limit that cfg sets. It creates nothing.
func New(cfg Config) (*Manager, error) {
	if cfg.Systemd && !systemd.IsRunningSystemd() {
		return nil, errors.New("cgroup: the systemd cgroup driver was requested but systemd is not running on this host")
	}
	mode := Mode()
	cg, err := libCgroup(cfg)
	if err != nil {
		return nil, err
	}
	have, err := hostControllers()
	if err != nil {
		return nil, err
	}
	if err := checkResources(cg.Resources, mode, have); err != nil {
		return nil, err
	}
	if mode == ModeV2 {
		r := cg.Resources
		if _, err := cgroups.ConvertMemorySwapToCgroupV2Value(r.MemorySwap, r.Memory); err != nil {
			return nil, fmt.Errorf("cgroup: linux.resources.memory: %w", err)
		}
	}
	lib, err := manager.New(cg)
	if err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	m := &Manager{cfg: cfg, mode: mode, lib: lib, paths: maps.Clone(lib.GetPaths())}
	m.cfg.Resources, err = mergeResources(cfg.Resources, nil)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Load rebuilds the Manager of a container from the State an earlier
// command saved, for commands that act on a running container.
func Load(s State) (*Manager, error) {
	mode := Mode()
	if s.Mode != mode {
		return nil, fmt.Errorf("cgroup: container state was made on a %s cgroup host, this host is %s", s.Mode, mode)
	}
	cfg := Config{ID: s.ID, Path: s.Path, Systemd: s.Systemd, Resources: s.Resources, Devices: s.Devices}
	cg, err := libCgroup(cfg)
	if err != nil {
		return nil, err
	}
	lib, err := manager.NewWithPaths(cg, maps.Clone(s.Paths))
	if err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	return &Manager{cfg: cfg, mode: mode, lib: lib, paths: maps.Clone(s.Paths)}, nil
}

// Apply creates the cgroup(s), moves pid into them and applies every
// limit, device rules included. On failure the caller should Destroy.
func (m *Manager) Apply(pid int) error {
	if err := m.lib.Apply(pid); err != nil {
		return fmt.Errorf("cgroup: join pid %d: %w", pid, err)
	}
	// Systemd learns the final paths only when the unit starts.
	m.paths = maps.Clone(m.lib.GetPaths())
	cg, err := m.lib.GetCgroups()
	if err != nil {
		return fmt.Errorf("cgroup: %w", err)
	}
	if err := m.lib.Set(withoutDevices(cg.Resources)); err != nil {
		return fmt.Errorf("cgroup: set limits: %w", err)
	}
	if err := m.setDevices(m.cfg.Resources); err != nil {
		return err
	}
	return m.applyV1Extras()
}

// Join adds another process, such as one started by exec, to the
// container's existing cgroup(s).
func (m *Manager) Join(pid int) error {
	if err := m.lib.AddPid("", pid); err != nil {
		return fmt.Errorf("cgroup: add pid %d: %w", pid, err)
	}
	return nil
}

// Set applies new limits (the update command). Fields res leaves nil keep
// their value; device rules are rewritten only when res has some.
func (m *Manager) Set(res *specs.LinuxResources) error {
	merged, err := mergeResources(m.cfg.Resources, res)
	if err != nil {
		return err
	}
	cfg := m.cfg
	cfg.Resources = merged
	cg, err := libCgroup(cfg)
	if err != nil {
		return err
	}
	have, err := hostControllers()
	if err != nil {
		return err
	}
	if err := checkResources(cg.Resources, m.mode, have); err != nil {
		return err
	}
	r := withoutDevices(cg.Resources)
	// The v1 freezer is driven through Resources too: keep its state.
	if old, err := m.lib.GetCgroups(); err == nil {
		if prev := old.Resources; prev != nil {
			r.Freezer = prev.Freezer
		}
	}
	if err := m.lib.Set(r); err != nil {
		return fmt.Errorf("cgroup: update limits: %w", err)
	}
	// Rewriting an unchanged device list on v1 briefly denies access, and
	// on v2 replaces the eBPF program: only do it when asked to.
	if res != nil && res.Devices != nil {
		if err := m.setDevices(merged); err != nil {
			return err
		}
	}
	m.cfg.Resources = merged
	return nil
}

// Freeze stops every process in the container's cgroup.
func (m *Manager) Freeze() error {
	if err := m.lib.Freeze(cgroups.Frozen); err != nil {
		return fmt.Errorf("cgroup: freeze: %w", err)
	}
	return nil
}

// Thaw resumes the processes that Freeze stopped.
func (m *Manager) Thaw() error {
	if err := m.lib.Freeze(cgroups.Thawed); err != nil {
		return fmt.Errorf("cgroup: thaw: %w", err)
	}
	return nil
}

// FreezerState reports Frozen, Thawed, or "" when the container has no
// freezer cgroup.
func (m *Manager) FreezerState() (string, error) {
	s, err := m.lib.GetFreezerState()
	if err != nil {
		return "", fmt.Errorf("cgroup: freezer state: %w", err)
	}
	return string(s), nil
}

// Pids lists every process in the container's cgroup and its sub-cgroups.
func (m *Manager) Pids() ([]int, error) {
	pids, err := m.lib.GetAllPids()
	if err != nil {
		return nil, fmt.Errorf("cgroup: list pids: %w", err)
	}
	return pids, nil
}

// Stats reads the container's resource usage.
func (m *Manager) Stats() (*Stats, error) {
	s, err := m.lib.GetStats()
	if err != nil {
		return nil, fmt.Errorf("cgroup: stats: %w", err)
	}
	return convertStats(s), nil
}

// Destroy removes the container's cgroup(s), sub-cgroups included. It
// kills nothing, so it fails while processes remain; cgroups that are
// already gone are not an error.
func (m *Manager) Destroy() error {
	if err := m.lib.Destroy(); err != nil {
		return fmt.Errorf("cgroup: remove: %w", err)
	}
	return nil
}

// Paths maps each controller name to the container's cgroup directory on
// the host; the "" key is the unified (v2) cgroup.
func (m *Manager) Paths() map[string]string {
	return maps.Clone(m.paths)
}

// State returns what Load needs to manage these cgroups again.
func (m *Manager) State() State {
	res, err := mergeResources(m.cfg.Resources, nil)
	if err != nil {
		// A copy of resources that were copied the same way before.
		res = m.cfg.Resources
	}
	return State{
		Mode:      m.mode,
		ID:        m.cfg.ID,
		Path:      m.cfg.Path,
		Systemd:   m.cfg.Systemd,
		Paths:     maps.Clone(m.paths),
		Resources: res,
		Devices:   append([]specs.LinuxDevice(nil), m.cfg.Devices...),
	}
}

// withoutDevices hands the library limits without device rules: those are
// berth's own work (devices.go).
func withoutDevices(r *cgroups.Resources) *cgroups.Resources {
	out := *r
	out.Devices = nil
	out.SkipDevices = true
	return &out
}

// OOMKills counts the processes the kernel's OOM killer killed in the
// container's memory cgroup: memory.events on v2, memory.oom_control on
// v1. A host without the counter reports 0.
func (m *Manager) OOMKills() uint64 {
	if p, ok := m.paths[""]; ok {
		if n, ok := readCounter(filepath.Join(p, "memory.events"), "oom_kill"); ok {
			return n
		}
	}
	if p, ok := m.paths["memory"]; ok {
		if n, ok := readCounter(filepath.Join(p, "memory.oom_control"), "oom_kill"); ok {
			return n
		}
	}
	return 0
}

// readCounter finds "key N" in a flat-keyed cgroup file.
func readCounter(path, key string) (uint64, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, " ")
		if ok && k == key {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
