package cgroups

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"strings"

	"github.com/opencontainers/cgroups"
	devconfig "github.com/opencontainers/cgroups/devices/config"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// scopePrefix names the systemd scope of a container whose spec gives no
// cgroupsPath: "berth-<id>.scope".
const scopePrefix = "berth"

// defaultDevice is a device every container may use whatever its spec says.
type defaultDevice struct {
	path string // "" for rules that no spec device can replace
	rule devconfig.Rule
}

// defaultDevices are the allow rules appended after the spec's own rules.
// Like runc, this includes mknod (but not read or write) of any device, so
// that an image's setup can create device nodes it then cannot open, and
// the standard character devices. /dev/console is the container's console.
var defaultDevices = []defaultDevice{
	{rule: devRule(devconfig.CharDevice, devconfig.Wildcard, devconfig.Wildcard, "m")},
	{rule: devRule(devconfig.BlockDevice, devconfig.Wildcard, devconfig.Wildcard, "m")},
	{path: "/dev/null", rule: devRule(devconfig.CharDevice, 1, 3, "rwm")},
	{path: "/dev/random", rule: devRule(devconfig.CharDevice, 1, 8, "rwm")},
	{path: "/dev/full", rule: devRule(devconfig.CharDevice, 1, 7, "rwm")},
	{path: "/dev/tty", rule: devRule(devconfig.CharDevice, 5, 0, "rwm")},
	{path: "/dev/zero", rule: devRule(devconfig.CharDevice, 1, 5, "rwm")},
	{path: "/dev/urandom", rule: devRule(devconfig.CharDevice, 1, 9, "rwm")},
	// /dev/pts/*: every pty slave, including the console's.
	{rule: devRule(devconfig.CharDevice, 136, devconfig.Wildcard, "rwm")},
	{path: "/dev/ptmx", rule: devRule(devconfig.CharDevice, 5, 2, "rwm")},
}

func devRule(t devconfig.Type, major, minor int64, perms string) devconfig.Rule {
	return devconfig.Rule{Type: t, Major: major, Minor: minor, Permissions: devconfig.Permissions(perms), Allow: true}
}

// libCgroup computes the library's description of the container's cgroup:
// where it lives and everything that is to be written into it.
func libCgroup(cfg Config) (*cgroups.Cgroup, error) {
	cg := &cgroups.Cgroup{Systemd: cfg.Systemd}
	if err := placeCgroup(cg, cfg); err != nil {
		return nil, err
	}
	res := libResources(cfg.Resources)
	var specRules []specs.LinuxDeviceCgroup
	if cfg.Resources != nil {
		specRules = cfg.Resources.Devices
	}
	var err error
	res.Devices, err = deviceRules(specRules, cfg.Devices)
	if err != nil {
		return nil, err
	}
	cg.Resources = res
	return cg, nil
}

// placeCgroup fills in where the cgroup lives, the way runc does it.
//
// Without systemd an empty cgroupsPath makes runc name the cgroup after the
// container (Name = id, no Parent). The library treats that as the relative
// path "<id>", and relative paths are resolved against the runtime's own
// cgroup in each hierarchy, so the container ends up in
// "<runtime's cgroup>/<id>" (for a runtime started from a shell in the root
// cgroup that is plainly "/<id>"). On v2 the base is the parent of the
// runtime's cgroup instead, since a cgroup holding processes cannot give
// controllers to its children. An explicit path is cleaned so that ".."
// cannot climb out of the hierarchy; an absolute one starts at each
// hierarchy's root and a relative one has the same base as the default.
//
// With systemd the path is "slice:prefix:name" and the unit is
// "<prefix>-<name>.scope" in that slice; an empty path gives
// "berth-<id>.scope" in the driver's default slice.
func placeCgroup(cg *cgroups.Cgroup, cfg Config) error {
	if cfg.Systemd {
		if cfg.Path == "" {
			if cfg.ID == "" {
				return fmt.Errorf("cgroup: a container id is needed when cgroupsPath is empty")
			}
			cg.ScopePrefix, cg.Name = scopePrefix, cfg.ID
			return nil
		}
		parts := strings.Split(cfg.Path, ":")
		if len(parts) != 3 {
			return fmt.Errorf("cgroup: with the systemd driver cgroupsPath must be \"slice:prefix:name\", got %q", cfg.Path)
		}
		cg.Parent, cg.ScopePrefix, cg.Name = parts[0], parts[1], parts[2]
		return nil
	}
	if cfg.Path == "" {
		if cfg.ID == "" {
			return fmt.Errorf("cgroup: a container id is needed when cgroupsPath is empty")
		}
		cg.Name = cfg.ID
		return nil
	}
	cg.Path = cleanPath(cfg.Path)
	return nil
}

// cleanPath lexically cleans a cgroup path and keeps a relative path
// relative, without letting leading ".." elements escape: "../../a" is "a".
func cleanPath(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	rel, err := filepath.Rel("/", filepath.Clean("/"+p))
	if err != nil {
		// Both arguments are absolute, so Rel cannot fail.
		return "."
	}
	return rel
}

// libResources translates every field of linux.resources except devices
// (see deviceRules). Fields the library has no place for are ignored as
// runc ignores them: memory.kernel and memory.kernelTCP (obsolete since
// Linux 5.4) and memory.useHierarchy (always on in current kernels).
func libResources(r *specs.LinuxResources) *cgroups.Resources {
	res := &cgroups.Resources{}
	if r == nil {
		return res
	}
	memory(res, r.Memory)
	cpu(res, r.CPU)
	if r.Pids != nil && r.Pids.Limit != nil {
		limit := *r.Pids.Limit
		res.PidsLimit = &limit
	}
	blockIO(res, r.BlockIO)
	for _, l := range r.HugepageLimits {
		res.HugetlbLimit = append(res.HugetlbLimit, &cgroups.HugepageLimit{Pagesize: l.Pagesize, Limit: l.Limit})
	}
	if r.Network != nil {
		if r.Network.ClassID != nil {
			res.NetClsClassid = *r.Network.ClassID
		}
		for _, p := range r.Network.Priorities {
			res.NetPrioIfpriomap = append(res.NetPrioIfpriomap, &cgroups.IfPrioMap{Interface: p.Name, Priority: int64(p.Priority)})
		}
	}
	if len(r.Rdma) > 0 {
		res.Rdma = make(map[string]cgroups.LinuxRdma, len(r.Rdma))
		for dev, l := range r.Rdma {
			res.Rdma[dev] = cgroups.LinuxRdma{HcaHandles: copyPtr(l.HcaHandles), HcaObjects: copyPtr(l.HcaObjects)}
		}
	}
	if len(r.Unified) > 0 {
		res.Unified = maps.Clone(r.Unified)
	}
	return res
}

func memory(res *cgroups.Resources, m *specs.LinuxMemory) {
	if m == nil {
		return
	}
	if m.Limit != nil {
		res.Memory = *m.Limit
	}
	if m.Reservation != nil {
		res.MemoryReservation = *m.Reservation
	}
	if m.Swap != nil {
		res.MemorySwap = *m.Swap
	}
	res.MemorySwappiness = copyPtr(m.Swappiness)
	if m.DisableOOMKiller != nil {
		res.OomKillDisable = *m.DisableOOMKiller
	}
	if m.CheckBeforeUpdate != nil {
		res.MemoryCheckBeforeUpdate = *m.CheckBeforeUpdate
	}
}

func cpu(res *cgroups.Resources, c *specs.LinuxCPU) {
	if c == nil {
		return
	}
	if c.Shares != nil {
		res.CpuShares = *c.Shares
		// cgroup v2 has cpu.weight instead; the v1 managers ignore it.
		res.CpuWeight = cgroups.ConvertCPUSharesToCgroupV2Value(*c.Shares)
	}
	if c.Quota != nil {
		res.CpuQuota = *c.Quota
	}
	res.CpuBurst = copyPtr(c.Burst)
	if c.Period != nil {
		res.CpuPeriod = *c.Period
	}
	if c.RealtimeRuntime != nil {
		res.CpuRtRuntime = *c.RealtimeRuntime
	}
	if c.RealtimePeriod != nil {
		res.CpuRtPeriod = *c.RealtimePeriod
	}
	res.CpusetCpus = c.Cpus
	res.CpusetMems = c.Mems
	res.CPUIdle = copyPtr(c.Idle)
}

func blockIO(res *cgroups.Resources, b *specs.LinuxBlockIO) {
	if b == nil {
		return
	}
	if b.Weight != nil {
		res.BlkioWeight = *b.Weight
	}
	if b.LeafWeight != nil {
		res.BlkioLeafWeight = *b.LeafWeight
	}
	for _, wd := range b.WeightDevice {
		var weight, leaf uint16
		if wd.Weight != nil {
			weight = *wd.Weight
		}
		if wd.LeafWeight != nil {
			leaf = *wd.LeafWeight
		}
		res.BlkioWeightDevice = append(res.BlkioWeightDevice, cgroups.NewWeightDevice(wd.Major, wd.Minor, weight, leaf))
	}
	res.BlkioThrottleReadBpsDevice = throttles(b.ThrottleReadBpsDevice)
	res.BlkioThrottleWriteBpsDevice = throttles(b.ThrottleWriteBpsDevice)
	res.BlkioThrottleReadIOPSDevice = throttles(b.ThrottleReadIOPSDevice)
	res.BlkioThrottleWriteIOPSDevice = throttles(b.ThrottleWriteIOPSDevice)
}

func throttles(in []specs.LinuxThrottleDevice) []*cgroups.ThrottleDevice {
	var out []*cgroups.ThrottleDevice
	for _, t := range in {
		out = append(out, cgroups.NewThrottleDevice(t.Major, t.Minor, t.Rate))
	}
	return out
}

// deviceRules builds the device access list in runc's order: the spec's
// rules, then the default devices (less any whose path the spec's
// linux.devices redefines), then an allow rule for each of linux.devices.
// Later rules win, so a spec cannot deny what the defaults allow.
func deviceRules(specRules []specs.LinuxDeviceCgroup, devs []specs.LinuxDevice) ([]*devconfig.Rule, error) {
	var rules []*devconfig.Rule
	for i, d := range specRules {
		rule, err := specRule(d)
		if err != nil {
			return nil, fmt.Errorf("linux.resources.devices[%d]: %w", i, err)
		}
		rules = append(rules, rule)
	}
	redefined := make(map[string]bool, len(devs))
	for _, d := range devs {
		redefined[filepath.Clean(d.Path)] = true
	}
	for _, d := range defaultDevices {
		if d.path != "" && redefined[d.path] {
			continue
		}
		rule := d.rule
		rules = append(rules, &rule)
	}
	for i, d := range devs {
		t, err := deviceType(d.Type)
		if err != nil {
			return nil, fmt.Errorf("linux.devices[%d] (%s): %w", i, d.Path, err)
		}
		if !t.CanCgroup() {
			// FIFOs are not device-cgroup controlled.
			continue
		}
		rule := devRule(t, d.Major, d.Minor, "rwm")
		rules = append(rules, &rule)
	}
	return rules, nil
}

// specRule translates one linux.resources.devices entry. A missing type
// means all devices and a missing major or minor number means any.
func specRule(d specs.LinuxDeviceCgroup) (*devconfig.Rule, error) {
	t := devconfig.WildcardDevice
	switch d.Type {
	case "", "a":
	case "b":
		t = devconfig.BlockDevice
	case "c":
		t = devconfig.CharDevice
	default:
		return nil, fmt.Errorf("invalid device type %q (want a, b or c)", d.Type)
	}
	perms := devconfig.Permissions(d.Access)
	if d.Access == "" || !perms.IsValid() {
		return nil, fmt.Errorf("invalid access %q (want a combination of r, w and m)", d.Access)
	}
	rule := &devconfig.Rule{Type: t, Major: devconfig.Wildcard, Minor: devconfig.Wildcard, Permissions: perms, Allow: d.Allow}
	if d.Major != nil {
		rule.Major = *d.Major
	}
	if d.Minor != nil {
		rule.Minor = *d.Minor
	}
	return rule, nil
}

// deviceType maps a linux.devices type to the library's device type.
func deviceType(s string) (devconfig.Type, error) {
	switch s {
	case "c", "u":
		return devconfig.CharDevice, nil
	case "b":
		return devconfig.BlockDevice, nil
	case "p":
		return devconfig.FifoDevice, nil
	default:
		return 0, fmt.Errorf("invalid device type %q (want c, u, b or p)", s)
	}
}

// mergeResources returns old with every field that upd sets replaced, the
// way `update` treats its input: what upd leaves nil stays as it was. Lists
// (device rules, throttles, hugepage limits, priorities) are replaced
// whole; the unified map is merged key by key. Neither argument changes.
func mergeResources(old, upd *specs.LinuxResources) (*specs.LinuxResources, error) {
	out := &specs.LinuxResources{}
	if old != nil {
		if err := overlay(out, old); err != nil {
			return nil, err
		}
	}
	if upd == nil {
		return out, nil
	}
	var u specs.LinuxResources
	if err := overlay(&u, upd); err != nil {
		return nil, err
	}
	if u.Devices != nil {
		out.Devices = u.Devices
	}
	if u.HugepageLimits != nil {
		out.HugepageLimits = u.HugepageLimits
	}
	if u.Rdma != nil {
		out.Rdma = u.Rdma
	}
	if len(u.Unified) > 0 {
		if out.Unified == nil {
			out.Unified = map[string]string{}
		}
		maps.Copy(out.Unified, u.Unified)
	}
	var err error
	if u.Memory != nil {
		out.Memory = cmp.Or(out.Memory, &specs.LinuxMemory{})
		err = overlay(out.Memory, u.Memory)
	}
	if u.CPU != nil && err == nil {
		out.CPU = cmp.Or(out.CPU, &specs.LinuxCPU{})
		err = overlay(out.CPU, u.CPU)
	}
	if u.Pids != nil && err == nil {
		out.Pids = cmp.Or(out.Pids, &specs.LinuxPids{})
		err = overlay(out.Pids, u.Pids)
	}
	if u.BlockIO != nil && err == nil {
		out.BlockIO = cmp.Or(out.BlockIO, &specs.LinuxBlockIO{})
		err = overlay(out.BlockIO, u.BlockIO)
	}
	if u.Network != nil && err == nil {
		out.Network = cmp.Or(out.Network, &specs.LinuxNetwork{})
		err = overlay(out.Network, u.Network)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// overlay replaces the fields of dst that src sets, copying them. It goes
// through JSON because every spec field is "omitempty": what src leaves
// unset is absent from its encoding and so leaves dst alone, and slices in
// the encoding replace dst's whole.
func overlay(dst, src any) error {
	b, err := json.Marshal(src)
	if err != nil {
		return fmt.Errorf("merge resources: %w", err)
	}
	if err := json.Unmarshal(b, dst); err != nil {
		return fmt.Errorf("merge resources: %w", err)
	}
	return nil
}

func copyPtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
