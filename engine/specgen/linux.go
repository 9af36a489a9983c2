package specgen

import (
	"errors"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-containers/berth/internal/errdefs"
)

// DefaultMaskedPaths are the paths Docker hides from unprivileged
// containers (the per-CPU thermal_throttle directories are added where
// the host has them).
var DefaultMaskedPaths = []string{
	"/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
	"/proc/latency_stats", "/proc/sched_debug", "/proc/scsi", "/proc/timer_list",
	"/proc/timer_stats", "/sys/devices/virtual/powercap", "/sys/firmware",
}

// DefaultReadonlyPaths are the paths Docker makes read-only in
// unprivileged containers.
var DefaultReadonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}

// namespaces lists the namespaces in Docker's order: mount, network, uts,
// pid, ipc, cgroup. "host" modes leave a namespace out (the container
// shares the host's); "container:<id>" modes join the given path.
func (g *generator) namespaces() error {
	hc := g.hc
	ns := []specs.LinuxNamespace{{Type: specs.MountNamespace}}

	switch {
	case hc.NetworkMode.IsHost():
	case hc.NetworkMode.IsContainer():
		if g.in.NetNSPath == "" {
			return errdefs.Invalid("network mode %s needs the network namespace path of that container", hc.NetworkMode)
		}
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: g.in.NetNSPath})
	default:
		// Default, bridge, none and named networks: the namespace the
		// engine set up, or a new empty one.
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: g.in.NetNSPath})
	}

	if !hc.UTSMode.Valid() {
		return errdefs.Invalid("invalid UTS mode: %s", hc.UTSMode)
	}
	if !hc.UTSMode.IsHost() {
		ns = append(ns, specs.LinuxNamespace{Type: specs.UTSNamespace})
	}

	switch {
	case hc.PidMode == "":
		ns = append(ns, specs.LinuxNamespace{Type: specs.PIDNamespace})
	case hc.PidMode.IsHost():
	case hc.PidMode.IsContainer() && hc.PidMode.Container() != "":
		if g.in.PIDNSPath == "" {
			return errdefs.Invalid("pid mode %s needs the pid namespace path of that container", hc.PidMode)
		}
		ns = append(ns, specs.LinuxNamespace{Type: specs.PIDNamespace, Path: g.in.PIDNSPath})
	default:
		return errdefs.Invalid("invalid PID mode: %s", hc.PidMode)
	}

	switch {
	case !hc.IpcMode.Valid():
		return errdefs.Invalid("invalid IPC mode: %s", hc.IpcMode)
	case hc.IpcMode.IsHost():
	case hc.IpcMode.IsContainer():
		return errdefs.Invalid("IPC mode %s is not supported yet", hc.IpcMode)
	default:
		ns = append(ns, specs.LinuxNamespace{Type: specs.IPCNamespace})
	}

	switch hc.CgroupnsMode {
	case container.CgroupnsModePrivate:
		ns = append(ns, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	case container.CgroupnsModeHost:
	case container.CgroupnsModeEmpty:
		if g.in.CgroupV2 {
			ns = append(ns, specs.LinuxNamespace{Type: specs.CgroupNamespace})
		}
	default:
		return errdefs.Invalid("invalid cgroup namespace mode: %s", hc.CgroupnsMode)
	}
	if hc.UsernsMode != "" && hc.UsernsMode != "host" {
		return errdefs.Invalid("user namespace mode %s is not supported yet", hc.UsernsMode)
	}
	g.s.Linux.Namespaces = ns
	return nil
}

// systemPaths sets the masked and read-only paths: none for privileged
// containers or systempaths=unconfined, else HostConfig's lists where
// given (the daemon API fills them in), else Docker's defaults.
func (g *generator) systemPaths() error {
	if g.hc.Privileged || g.sec.unconfinedPaths {
		return nil
	}
	if g.hc.MaskedPaths != nil {
		g.s.Linux.MaskedPaths = slices.Clone(g.hc.MaskedPaths)
	} else {
		g.s.Linux.MaskedPaths = append(slices.Clone(DefaultMaskedPaths), thermalThrottlePaths(g.host)...)
	}
	if g.hc.ReadonlyPaths != nil {
		g.s.Linux.ReadonlyPaths = slices.Clone(g.hc.ReadonlyPaths)
	} else {
		g.s.Linux.ReadonlyPaths = slices.Clone(DefaultReadonlyPaths)
	}
	for _, p := range append(slices.Clone(g.s.Linux.MaskedPaths), g.s.Linux.ReadonlyPaths...) {
		if !path.IsAbs(p) {
			return errdefs.Invalid("invalid masked or read-only path %q: it must be absolute", p)
		}
	}
	return nil
}

// defaultDeviceRules are the cgroup device rules Docker starts from that
// berth's runtime does not add itself. The runtime appends its own allow
// list after the spec's rules (mknod of any node; null, zero, full,
// random, urandom, tty, ptmx and the ptys), so the spec only denies
// everything first and adds /dev/console and /dev/net/tun, which Docker's
// runtime allows.
func defaultDeviceRules() []specs.LinuxDeviceCgroup {
	return []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: i64(5), Minor: i64(1), Access: "rwm"},
		{Allow: true, Type: "c", Major: i64(10), Minor: i64(200), Access: "rwm"},
	}
}

func i64(v int64) *int64 { return &v }

// devices adds --device nodes and their cgroup rules, and
// --device-cgroup-rule rules; a privileged container gets every host
// device and access to all.
func (g *generator) devices() error {
	if len(g.hc.DeviceRequests) > 0 {
		return errdefs.Invalid("device requests (--gpus) are not supported yet")
	}
	if g.hc.Privileged {
		devs, err := g.host.Devices("/dev")
		if err != nil {
			return errdefs.Invalid("list host devices: %v", err)
		}
		for _, dm := range g.hc.Devices {
			if dm.PathInContainer == "" || dm.PathInContainer == dm.PathOnHost {
				continue // already there with the rest of /dev
			}
			mapped, _, err := g.mapDevice(dm)
			if err != nil {
				return err
			}
			devs = append(devs, mapped...)
		}
		g.s.Linux.Devices = devs
		g.resourcesOrNew().Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		return nil
	}
	rules := defaultDeviceRules()
	for _, dm := range g.hc.Devices {
		devs, perms, err := g.mapDevice(dm)
		if err != nil {
			return err
		}
		g.s.Linux.Devices = append(g.s.Linux.Devices, devs...)
		for _, d := range devs {
			rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Type: d.Type, Major: i64(d.Major), Minor: i64(d.Minor), Access: perms})
		}
	}
	for _, r := range g.hc.DeviceCgroupRules {
		rule, err := parseDeviceCgroupRule(r)
		if err != nil {
			return err
		}
		rules = append(rules, rule)
	}
	g.resourcesOrNew().Devices = rules
	return nil
}

// mapDevice stats the host side of a --device mapping (a node, or a
// directory of nodes) and returns the container's nodes and the cgroup
// access they get.
func (g *generator) mapDevice(dm container.DeviceMapping) ([]specs.LinuxDevice, string, error) {
	if !path.IsAbs(dm.PathOnHost) {
		return nil, "", errdefs.Invalid("invalid device %q: the host path must be absolute", dm.PathOnHost)
	}
	dst := dm.PathInContainer
	if dst == "" {
		dst = dm.PathOnHost
	}
	if !path.IsAbs(dst) {
		return nil, "", errdefs.Invalid("invalid device %q: the container path %q must be absolute", dm.PathOnHost, dst)
	}
	perms := dm.CgroupPermissions
	if perms == "" {
		perms = "rwm"
	}
	if !validDeviceMode(perms) {
		return nil, "", errdefs.Invalid("invalid device mode %q for %s: use a combination of r, w and m", perms, dm.PathOnHost)
	}
	devs, err := g.host.Devices(dm.PathOnHost)
	if err != nil {
		if errors.Is(err, errNotDevice) {
			return nil, "", errdefs.Invalid("error gathering device information while adding custom device %q: not a device node", dm.PathOnHost)
		}
		return nil, "", errdefs.Invalid("error gathering device information while adding custom device %q: %v", dm.PathOnHost, err)
	}
	if len(devs) == 0 {
		return nil, "", errdefs.Invalid("no devices found at %s", dm.PathOnHost)
	}
	src := path.Clean(dm.PathOnHost)
	for i := range devs {
		rel := strings.TrimPrefix(path.Clean(devs[i].Path), src)
		devs[i].Path = path.Clean(dst + rel)
	}
	return devs, perms, nil
}

func validDeviceMode(mode string) bool {
	if mode == "" || len(mode) > 3 {
		return false
	}
	seen := map[rune]bool{}
	for _, c := range mode {
		if !strings.ContainsRune("rwm", c) || seen[c] {
			return false
		}
		seen[c] = true
	}
	return true
}

// parseDeviceCgroupRule reads a --device-cgroup-rule: "type major:minor
// access", with a, b or c as type and * for any number.
func parseDeviceCgroupRule(rule string) (specs.LinuxDeviceCgroup, error) {
	bad := errdefs.Invalid("invalid device cgroup rule format: '%s'", rule)
	f := strings.Fields(rule)
	if len(f) != 3 || len(f[0]) != 1 || !strings.Contains("abc", f[0]) || !validDeviceMode(f[2]) {
		return specs.LinuxDeviceCgroup{}, bad
	}
	maj, min, ok := strings.Cut(f[1], ":")
	if !ok {
		return specs.LinuxDeviceCgroup{}, bad
	}
	num := func(s string) (*int64, bool) {
		if s == "*" {
			return nil, true
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return nil, false
		}
		return &n, true
	}
	major, ok1 := num(maj)
	minor, ok2 := num(min)
	if !ok1 || !ok2 {
		return specs.LinuxDeviceCgroup{}, bad
	}
	return specs.LinuxDeviceCgroup{Allow: true, Type: f[0], Major: major, Minor: minor, Access: f[2]}, nil
}

// ipcSysctls are the namespaced kernel.* sysctls (the IPC namespace's).
var ipcSysctls = []string{
	"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
	"kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
}

// sysctls sets Docker's defaults for a container with its own network
// (unprivileged ping and low ports) and the user's sysctls, which must be
// namespaced: net.* (not with the host's network), the IPC ones and
// fs.mqueue.* (not with the host's IPC namespace).
func (g *generator) sysctls() error {
	out := map[string]string{}
	ownNet := !g.hc.NetworkMode.IsHost() && !g.hc.NetworkMode.IsContainer()
	if ownNet {
		if g.host.Exists("/proc/sys/net/ipv4/ping_group_range") {
			out["net.ipv4.ping_group_range"] = "0 2147483647"
		}
		if g.host.Exists("/proc/sys/net/ipv4/ip_unprivileged_port_start") {
			out["net.ipv4.ip_unprivileged_port_start"] = "0"
		}
	}
	for k, v := range g.hc.Sysctls {
		key := strings.ReplaceAll(k, "/", ".")
		switch {
		case strings.HasPrefix(key, "net."):
			if g.hc.NetworkMode.IsHost() {
				return errdefs.Invalid("sysctl %q is not allowed in the host network namespace", k)
			}
		case slices.Contains(ipcSysctls, key) || strings.HasPrefix(key, "fs.mqueue."):
			if g.hc.IpcMode.IsHost() {
				return errdefs.Invalid("sysctl %q is not allowed in the host IPC namespace", k)
			}
		default:
			return errdefs.Invalid("sysctl %q is not allowed: only namespaced sysctls (net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*) can be set", k)
		}
		out[key] = v
	}
	if len(out) > 0 {
		g.s.Linux.Sysctl = out
	}
	return nil
}
