package rootfs

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// RootPropagation returns the propagation "/" gets before anything is
// mounted: linux.rootfsPropagation, or rslave so that mounts made for the
// container never reach the host while the host's later mounts still do.
func RootPropagation(s *specs.Spec) (uintptr, error) {
	if s == nil || s.Linux == nil || s.Linux.RootfsPropagation == "" {
		return unix.MS_SLAVE | unix.MS_REC, nil
	}
	p, ok := propagationOptions[s.Linux.RootfsPropagation]
	if !ok {
		return 0, fmt.Errorf("rootfsPropagation %q: not a propagation mode", s.Linux.RootfsPropagation)
	}
	return p, nil
}

// mountKind says which code path makes a spec mount.
type mountKind int

const (
	kindFS     mountKind = iota // a new filesystem instance: proc, tmpfs, devpts, ...
	kindBind                    // a bind of a host path
	kindCgroup                  // the cgroup tree, built from several mounts
	kindSysfs                   // sysfs, which may need the bind fallback
)

func classify(m specs.Mount, o MountOptions) mountKind {
	switch {
	case m.Type == "bind" || o.Bind():
		return kindBind
	case m.Type == "cgroup" || m.Type == "cgroup2":
		return kindCgroup
	case m.Type == "sysfs":
		return kindSysfs
	}
	return kindFS
}

// cleanDest makes a destination absolute and lexically clean, the form the
// checks below compare.
func cleanDest(dest string) string {
	return path.Clean("/" + dest)
}

// procBindAllowed are the /proc files a bind mount may cover: lxcfs and
// similar tools serve container-aware copies of these. Nothing else under
// /proc may be hidden, since that is where the kernel's security knobs and
// the files that masking relies on live.
var procBindAllowed = []string{
	"/proc/cpuinfo",
	"/proc/diskstats",
	"/proc/meminfo",
	"/proc/stat",
	"/proc/swaps",
	"/proc/uptime",
	"/proc/loadavg",
	"/proc/slabinfo",
	"/proc/pressure/cpu",
	"/proc/pressure/io",
	"/proc/pressure/memory",
	"/proc/net/dev",
	"/proc/sys/kernel/ns_last_pid",
}

// checkProcDest refuses mounts that would cover /proc or part of it with
// anything but a procfs or an allowed bind. dest is a clean absolute path
// inside the container.
func checkProcDest(dest string, kind mountKind, fstype string) error {
	if dest != "/proc" && !strings.HasPrefix(dest, "/proc/") {
		return nil
	}
	if fstype == "proc" && kind == kindFS {
		return nil
	}
	if kind == kindBind && slices.Contains(procBindAllowed, dest) {
		return nil
	}
	return fmt.Errorf("mount of type %q onto %s: only proc, or a bind onto a few /proc files, may be mounted under /proc", fstype, dest)
}

// bindsDev reports whether the spec bind-mounts the whole /dev from
// elsewhere, in which case the runtime leaves its device nodes alone.
func bindsDev(mounts []specs.Mount) bool {
	for _, m := range mounts {
		if cleanDest(m.Destination) == "/dev" && classify(m, ParseOptions(m.Options)) == kindBind {
			return true
		}
	}
	return false
}

func charDev(p string, major, minor int64) specs.LinuxDevice {
	mode := os.FileMode(0o666)
	uid, gid := uint32(0), uint32(0)
	return specs.LinuxDevice{Path: p, Type: "c", Major: major, Minor: minor, FileMode: &mode, UID: &uid, GID: &gid}
}

// DefaultDevices are the nodes every container gets.
func DefaultDevices() []specs.LinuxDevice {
	return []specs.LinuxDevice{
		charDev("/dev/null", 1, 3),
		charDev("/dev/zero", 1, 5),
		charDev("/dev/full", 1, 7),
		charDev("/dev/random", 1, 8),
		charDev("/dev/urandom", 1, 9),
		charDev("/dev/tty", 5, 0),
	}
}

// planDevices merges the default devices with the spec's: a spec entry for
// the same path wins, and the result keeps the defaults first.
func planDevices(s *specs.Spec) []specs.LinuxDevice {
	var extra []specs.LinuxDevice
	if s != nil && s.Linux != nil {
		extra = s.Linux.Devices
	}
	out := make([]specs.LinuxDevice, 0, 6+len(extra))
	for _, d := range DefaultDevices() {
		if !slices.ContainsFunc(extra, func(e specs.LinuxDevice) bool { return cleanDest(e.Path) == d.Path }) {
			out = append(out, d)
		}
	}
	for _, d := range extra {
		d.Path = cleanDest(d.Path)
		out = append(out, d)
	}
	return out
}

// deviceMode returns the mknod mode (type bits and permissions) and the
// device number for a device.
func deviceMode(d specs.LinuxDevice) (uint32, int, error) {
	perm := uint32(0o666)
	if d.FileMode != nil {
		perm = uint32(d.FileMode.Perm())
	}
	dev := int(unix.Mkdev(uint32(d.Major), uint32(d.Minor)))
	switch d.Type {
	case "c", "u":
		return unix.S_IFCHR | perm, dev, nil
	case "b":
		return unix.S_IFBLK | perm, dev, nil
	case "p":
		return unix.S_IFIFO | perm, 0, nil
	}
	return 0, 0, fmt.Errorf("device %s: unknown type %q", d.Path, d.Type)
}

// devSymlinks are the links every /dev gets, name -> target. /dev/core is
// added only where the host has /proc/kcore.
func devSymlinks(withCore bool) [][2]string {
	links := [][2]string{
		{"/dev/fd", "/proc/self/fd"},
		{"/dev/stdin", "/proc/self/fd/0"},
		{"/dev/stdout", "/proc/self/fd/1"},
		{"/dev/stderr", "/proc/self/fd/2"},
	}
	if withCore {
		links = append(links, [2]string{"/dev/core", "/proc/kcore"})
	}
	return links
}

// idMappings returns the uid and gid mappings an idmapped mount uses: its
// own, or else the container's user namespace mappings.
func idMappings(m specs.Mount, s *specs.Spec) ([]specs.LinuxIDMapping, []specs.LinuxIDMapping, error) {
	uids, gids := m.UIDMappings, m.GIDMappings
	if len(uids) == 0 && len(gids) == 0 && s != nil && s.Linux != nil {
		uids, gids = s.Linux.UIDMappings, s.Linux.GIDMappings
	}
	if len(uids) == 0 || len(gids) == 0 {
		return nil, nil, fmt.Errorf("idmapped mount onto %s: both uidMappings and gidMappings are needed", m.Destination)
	}
	return uids, gids, nil
}

// underRoot returns the container path of host path p, which must lie in
// rootfs; ok is false when it does not.
func underRoot(rootfs, p string) (string, bool) {
	rel, err := filepath.Rel(rootfs, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", false
	}
	return cleanDest(rel), true
}
