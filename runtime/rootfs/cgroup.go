package rootfs

import (
	"bufio"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/sys/mountinfo"
)

// hierarchy is one cgroup filesystem mounted on the host.
type hierarchy struct {
	Mountpoint string   // where the host mounts it, e.g. /sys/fs/cgroup/cpu,cpuacct
	Root       string   // the cgroup the mount shows as its root, usually "/"
	V2         bool     // a cgroup2 (unified) mount
	Subsystems []string // v1 controllers and "name=" hierarchies, in mount order
}

// stepKind is one action of a cgroup mount plan.
type stepKind int

const (
	stepTmpfs   stepKind = iota // a tmpfs holding the v1 hierarchies
	stepBind                    // bind Source (a host cgroup dir) onto Dest
	stepCgroup                  // mount a cgroup v1 filesystem, Data naming its subsystems
	stepCgroup2                 // mount a cgroup2 filesystem
	stepSymlink                 // Dest -> Source (relative), for joint controllers
)

// cgroupStep is one action of a cgroup mount plan; Dest is a container path.
type cgroupStep struct {
	Kind   stepKind
	Source string
	Dest   string
	Data   string
}

// cgroupEnv is what planning a cgroup mount needs to know about the host.
type cgroupEnv struct {
	Hierarchies []hierarchy
	Paths       map[string]string // the container's cgroups, as Options.CgroupPaths
	Self        map[string]string // this process's cgroups from /proc/self/cgroup ("" = v2)
	NS          bool              // a private cgroup namespace
}

// unifiedOnly reports a pure cgroup v2 host: no v1 hierarchy at all.
func (e cgroupEnv) unifiedOnly() bool {
	return !slices.ContainsFunc(e.Hierarchies, func(h hierarchy) bool { return !h.V2 })
}

// hostDir is the host directory of the container's cgroup in h: the
// configured path for any of its controllers, or else our own cgroup,
// which is the container's since the init process already sits in it.
func (e cgroupEnv) hostDir(h hierarchy) (string, error) {
	keys := h.Subsystems
	if h.V2 {
		keys = []string{""}
	}
	for _, k := range keys {
		if p, ok := e.Paths[k]; ok && p != "" {
			return p, nil
		}
		if p, ok := e.Paths[strings.TrimPrefix(k, "name=")]; ok && p != "" {
			return p, nil
		}
	}
	for _, k := range keys {
		if own, ok := e.Self[k]; ok {
			rel, err := filepath.Rel(h.Root, own)
			if err != nil || strings.HasPrefix(rel, "..") {
				return "", fmt.Errorf("cgroup %s of %s lies outside its mount's root %s", own, k, h.Root)
			}
			return filepath.Join(h.Mountpoint, rel), nil
		}
	}
	return "", fmt.Errorf("no cgroup path known for hierarchy %s", h.Mountpoint)
}

// planCgroupMount lays out a mount of type "cgroup" at dest. On a cgroup v2
// host it is one mount; otherwise a tmpfs with one mount per v1 hierarchy,
// links for joint controllers (cpu -> cpu,cpuacct) and, on hybrid hosts,
// the unified hierarchy. With a cgroup namespace the filesystems are
// mounted afresh (the namespace hides the rest of the tree); without one
// the container's own directories are bound, so it sees nothing above.
func planCgroupMount(dest string, e cgroupEnv) ([]cgroupStep, error) {
	if e.unifiedOnly() {
		if e.NS {
			return []cgroupStep{{Kind: stepCgroup2, Dest: dest}}, nil
		}
		if len(e.Hierarchies) == 0 {
			return nil, fmt.Errorf("cgroup mount: no cgroup filesystem on this host")
		}
		src, err := e.hostDir(e.Hierarchies[0])
		if err != nil {
			return nil, err
		}
		return []cgroupStep{{Kind: stepBind, Source: src, Dest: dest}}, nil
	}
	steps := []cgroupStep{{Kind: stepTmpfs, Dest: dest}}
	var links []cgroupStep
	for _, h := range e.Hierarchies {
		name := path.Base(h.Mountpoint)
		if h.V2 {
			name = "unified"
		}
		sub := path.Join(dest, name)
		switch {
		case e.NS && h.V2:
			steps = append(steps, cgroupStep{Kind: stepCgroup2, Dest: sub})
		case e.NS:
			steps = append(steps, cgroupStep{Kind: stepCgroup, Dest: sub, Data: strings.Join(h.Subsystems, ",")})
		default:
			src, err := e.hostDir(h)
			if err != nil {
				return nil, err
			}
			steps = append(steps, cgroupStep{Kind: stepBind, Source: src, Dest: sub})
		}
		if len(h.Subsystems) < 2 {
			continue
		}
		for _, s := range h.Subsystems {
			if s != name && !strings.HasPrefix(s, "name=") {
				links = append(links, cgroupStep{Kind: stepSymlink, Source: name, Dest: path.Join(dest, s)})
			}
		}
	}
	return append(steps, links...), nil
}

// hostHierarchies lists the host's cgroup mounts, one per hierarchy. The
// first mount of a hierarchy wins.
func hostHierarchies() ([]hierarchy, error) {
	infos, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return hierarchiesFrom(infos), nil
}

// hierarchiesFrom picks one mount per hierarchy out of mountinfo entries.
// When the host mounts cgroups under /sys/fs/cgroup, mounts elsewhere (a
// tool's private hierarchy, say) are left out.
func hierarchiesFrom(infos []*mountinfo.Info) []hierarchy {
	if slices.ContainsFunc(infos, inSysCgroup) {
		infos = slices.DeleteFunc(slices.Clone(infos), func(in *mountinfo.Info) bool { return !inSysCgroup(in) })
	}
	var out []hierarchy
	seen := map[string]bool{}
	for _, in := range infos {
		h := hierarchy{Mountpoint: in.Mountpoint, Root: in.Root, V2: in.FSType == "cgroup2"}
		if !h.V2 {
			h.Subsystems = v1Subsystems(in.VFSOptions)
			if len(h.Subsystems) == 0 {
				continue
			}
		}
		key := strings.Join(h.Subsystems, ",")
		if h.V2 {
			key = "unified"
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, h)
	}
	return out
}

func inSysCgroup(in *mountinfo.Info) bool {
	return in.Mountpoint == "/sys/fs/cgroup" || strings.HasPrefix(in.Mountpoint, "/sys/fs/cgroup/")
}

// onlyUnified keeps the cgroup2 hierarchy, for a mount that asked for
// type "cgroup2" by name.
func onlyUnified(hs []hierarchy) []hierarchy {
	return slices.DeleteFunc(slices.Clone(hs), func(h hierarchy) bool { return !h.V2 })
}

// v1Subsystems pulls the controller names out of a cgroup v1 superblock's
// options ("rw,cpu,cpuacct" or "rw,name=systemd,xattr").
func v1Subsystems(vfsOptions string) []string {
	var out []string
	for _, o := range strings.Split(vfsOptions, ",") {
		switch {
		case strings.HasPrefix(o, "name="):
			out = append(out, o)
		case o == "" || strings.Contains(o, "=") || slices.Contains(cgroupMountFlags, o):
		default:
			out = append(out, o)
		}
	}
	return out
}

// cgroupMountFlags are v1 superblock options that are not controllers.
var cgroupMountFlags = []string{"rw", "ro", "none", "noprefix", "xattr", "clone_children", "cpuset_v2_mode", "all", "favordynmods", "nofavordynmods"}

// cgroupsIn parses a /proc/<pid>/cgroup file into controller -> path,
// with "" for the unified hierarchy.
func cgroupsIn(file string) (map[string]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("read cgroups: %w", err)
	}
	defer f.Close()
	return parseCgroupFile(bufio.NewScanner(f))
}

func parseCgroupFile(sc *bufio.Scanner) (map[string]string, error) {
	out := map[string]string{}
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read cgroups: %w", err)
	}
	return out, nil
}
