package specgen

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Host is what Generate asks of the machine it runs on. Each nil field
// falls back to the real host, so tests set only what they fake.
type Host struct {
	// Devices returns the device nodes at a host path: the node itself,
	// or every node below a directory. Paths are host paths.
	Devices func(path string) ([]specs.LinuxDevice, error)
	// Capabilities lists every capability ("CAP_*") a privileged
	// container gets: those this build and the running kernel know.
	Capabilities func() ([]string, error)
	// ReadFile reads a seccomp profile named by --security-opt seccomp=.
	ReadFile func(path string) ([]byte, error)
	// Exists reports whether a host path exists (probes of /proc/sys and
	// /sys that Docker's defaults depend on).
	Exists func(path string) bool
	// CPUs is the number of CPUs, the bound of --cpus.
	CPUs func() int
}

// orDefault returns h with every nil field set to the real host's answer.
func (h *Host) orDefault() *Host {
	out := Host{}
	if h != nil {
		out = *h
	}
	if out.Devices == nil {
		out.Devices = hostDevices
	}
	if out.Capabilities == nil {
		out.Capabilities = hostCapabilities
	}
	if out.ReadFile == nil {
		out.ReadFile = os.ReadFile
	}
	if out.Exists == nil {
		out.Exists = func(p string) bool { _, err := os.Stat(p); return err == nil }
	}
	if out.CPUs == nil {
		out.CPUs = hostCPUs
	}
	return &out
}

// errNotDevice says a path is neither a device node nor a directory.
var errNotDevice = errors.New("not a device node")

// maxDevices bounds a walk of a device directory.
const maxDevices = 65536

// skippedDevDirs are the parts of a host's /dev no container takes: each
// container has its own ptys, shared memory and message queues.
var skippedDevDirs = []string{"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"}

// hostDevices lists the device nodes at path, following a symlink at path
// itself (/dev/disk/by-id/x) but not below it.
func hostDevices(path string) ([]specs.LinuxDevice, error) {
	resolved, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(resolved)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		d, err := deviceFromInfo(path, fi)
		if err != nil {
			return nil, err
		}
		return []specs.LinuxDevice{d}, nil
	}
	var out []specs.LinuxDevice
	root := filepath.Clean(resolved)
	err = filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if de.IsDir() {
			if p != root && filepath.Dir(p) == "/dev" && slices.Contains(skippedDevDirs, de.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		if de.Type()&(fs.ModeDevice|fs.ModeCharDevice) == 0 || (root == "/dev" && p == "/dev/console") {
			return nil
		}
		fi, err := de.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // gone while we walked
			}
			return err
		}
		d, err := deviceFromInfo(filepath.Join(path, strings.TrimPrefix(p, root)), fi)
		if err != nil {
			return nil
		}
		if len(out) >= maxDevices {
			return fmt.Errorf("more than %d devices under %s", maxDevices, path)
		}
		out = append(out, d)
		return nil
	})
	return out, err
}

// deviceFromInfo describes the node fi as the device at path.
func deviceFromInfo(path string, fi fs.FileInfo) (specs.LinuxDevice, error) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return specs.LinuxDevice{}, errNotDevice
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	default:
		return specs.LinuxDevice{}, errNotDevice
	}
	mode := fi.Mode().Perm()
	uid, gid := st.Uid, st.Gid
	return specs.LinuxDevice{
		Path:     path,
		Type:     typ,
		Major:    int64(unix.Major(uint64(st.Rdev))), //nolint:unconvert // Rdev's type differs by architecture
		Minor:    int64(unix.Minor(uint64(st.Rdev))), //nolint:unconvert // Rdev's type differs by architecture
		FileMode: &mode,
		UID:      &uid,
		GID:      &gid,
	}, nil
}

// hostCapabilities lists the capabilities both this build and the running
// kernel know. Those the host's root lacks stay listed: the runtime drops
// what it cannot grant, as it does for any spec.
func hostCapabilities() ([]string, error) {
	last, err := capability.LastCap()
	if err != nil {
		return nil, fmt.Errorf("read the kernel's last capability: %w", err)
	}
	var names []string
	for _, c := range capability.ListKnown() {
		if c <= last {
			names = append(names, "CAP_"+strings.ToUpper(c.String()))
		}
	}
	return names, nil
}

// hostCPUs counts the CPUs this process may run on.
func hostCPUs() int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err == nil && set.Count() > 0 {
		return set.Count()
	}
	return 1
}

// thermalThrottlePaths lists the per-CPU thermal_throttle directories in
// /sys that exist, which Docker masks (they leak host activity).
func thermalThrottlePaths(h *Host) []string {
	var out []string
	for cpu := 0; cpu < h.CPUs() && cpu < 4096; cpu++ {
		p := "/sys/devices/system/cpu/cpu" + strconv.Itoa(cpu) + "/thermal_throttle"
		if h.Exists(p) {
			out = append(out, p)
		}
	}
	return out
}
