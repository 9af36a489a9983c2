package specgen

import (
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-containers/berth/internal/errdefs"
)

// DefaultShmSize is the size of /dev/shm when HostConfig.ShmSize is 0.
const DefaultShmSize = 64 << 20

// defaultMounts are Docker's standard mounts, in Docker's order.
func defaultMounts() []specs.Mount {
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777"}},
	}
}

// tmpfsDefaults are the options every user tmpfs starts from; the user's
// own options override them.
var tmpfsDefaults = []string{"noexec", "nosuid", "nodev", "rprivate"}

// mounts lays out the container's mounts as Docker does: the standard
// mounts (less those a user mount replaces), the init binary, then the
// generated /etc files, the user's mounts and tmpfs mounts ordered so that
// a directory is mounted before anything inside it.
func (g *generator) mounts() error {
	user, err := g.userMounts()
	if err != nil {
		return err
	}
	dests := map[string]bool{}
	for _, m := range user {
		dests[m.Destination] = true
	}
	var out []specs.Mount
	for _, m := range defaultMounts() {
		if dests[m.Destination] || (dests["/dev"] && strings.HasPrefix(m.Destination, "/dev/")) {
			continue
		}
		if m.Destination == "/dev/shm" {
			if g.hc.IpcMode.IsNone() || g.hc.IpcMode.IsHost() {
				continue // none: no /dev/shm; host: the host's, among the user mounts
			}
			if g.hc.ShmSize < 0 {
				return errdefs.Invalid("invalid shm size %d: it can not be less than 0", g.hc.ShmSize)
			}
			size := g.hc.ShmSize
			if size == 0 {
				size = DefaultShmSize
			}
			m.Options = append(m.Options, "size="+strconv.FormatInt(size, 10))
		}
		out = append(out, m)
	}
	if g.initEnabled() {
		out = append(out, specs.Mount{Destination: InitDestination, Type: "bind", Source: g.in.InitPath, Options: []string{"bind", "ro"}})
	}
	if g.hc.ReadonlyRootfs {
		for i, m := range out {
			switch m.Destination {
			case "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue":
				continue
			}
			if !slices.Contains(m.Options, "ro") {
				out[i].Options = append(out[i].Options, "ro")
			}
		}
	}
	for i, m := range out {
		if (m.Destination == "/sys" && g.hc.Privileged) ||
			(m.Type == "cgroup" && (g.hc.Privileged || g.sec.writableCgroups)) {
			out[i].Options = withoutOption(m.Options, "ro")
		}
	}
	g.s.Mounts = append(out, user...)
	return nil
}

// userMounts collects the generated files, Input.Mounts, the host's
// /dev/shm (ipc host) and HostConfig.Tmpfs, checks their destinations and
// orders them parents first.
func (g *generator) userMounts() ([]specs.Mount, error) {
	var ms []specs.Mount
	seen := map[string]bool{}
	add := func(m specs.Mount, what string) error {
		if m.Destination == "" || !path.IsAbs(m.Destination) {
			return errdefs.Invalid("invalid mount destination %q for %s: it must be an absolute path", m.Destination, what)
		}
		m.Destination = path.Clean(m.Destination)
		if m.Destination == "/" {
			return errdefs.Invalid("invalid mount destination for %s: it can't be '/'", what)
		}
		if seen[m.Destination] {
			return errdefs.Invalid("duplicate mount point: %s", m.Destination)
		}
		seen[m.Destination] = true
		ms = append(ms, m)
		return nil
	}
	for _, m := range g.in.Mounts {
		if err := add(m, "mount "+m.Source); err != nil {
			return nil, err
		}
	}
	dests := make([]string, 0, len(g.hc.Tmpfs))
	for d := range g.hc.Tmpfs {
		dests = append(dests, d)
	}
	sort.Strings(dests)
	for _, d := range dests {
		m := specs.Mount{Destination: d, Type: "tmpfs", Source: "tmpfs", Options: TmpfsOptions(g.hc.Tmpfs[d])}
		if err := add(m, "tmpfs "+d); err != nil {
			return nil, err
		}
	}
	if g.hc.IpcMode.IsHost() && !seen["/dev/shm"] {
		_ = add(specs.Mount{Destination: "/dev/shm", Type: "bind", Source: "/dev/shm", Options: []string{"rbind", "rprivate"}}, "ipc host")
	}
	// The generated files give way to a user's own file there.
	files := []struct{ dest, src string }{
		{"/etc/resolv.conf", g.in.Files.ResolvConf},
		{"/etc/hostname", g.in.Files.Hostname},
		{"/etc/hosts", g.in.Files.Hosts},
	}
	for _, f := range files {
		if f.src == "" || seen[f.dest] {
			continue
		}
		opts := []string{"rbind", "rprivate"}
		if g.hc.ReadonlyRootfs {
			opts = []string{"rbind", "ro", "rprivate"}
		}
		_ = add(specs.Mount{Destination: f.dest, Type: "bind", Source: f.src, Options: opts}, f.dest)
	}
	sortMounts(ms)
	return ms, nil
}

// sortMounts orders mounts by the depth of their destination, keeping the
// given order among equals, so that /a is mounted before /a/b.
func sortMounts(ms []specs.Mount) {
	slices.SortStableFunc(ms, func(a, b specs.Mount) int {
		return depth(a.Destination) - depth(b.Destination)
	})
}

func depth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(path.Clean(p), "/")
}

// TmpfsOptions turns a --tmpfs option string ("size=64m,mode=1777,exec")
// into mount options: Docker's defaults (noexec, nosuid, nodev, rprivate)
// overridden by the given ones.
func TmpfsOptions(data string) []string {
	opts := slices.Clone(tmpfsDefaults)
	if data != "" {
		opts = append(opts, strings.Split(data, ",")...)
	}
	return mergeMountOptions(opts)
}

// opposites pairs each flag option with the one that undoes it.
var opposites = map[string]string{
	"ro": "rw", "rw": "ro",
	"exec": "noexec", "noexec": "exec",
	"suid": "nosuid", "nosuid": "suid",
	"dev": "nodev", "nodev": "dev",
	"atime": "noatime", "noatime": "atime",
	"diratime": "nodiratime", "nodiratime": "diratime",
	"sync": "async", "async": "sync",
	"relatime": "norelatime", "norelatime": "relatime",
	"strictatime": "nostrictatime", "nostrictatime": "strictatime",
}

// propagations are the propagation options; the last one given wins.
var propagations = []string{"private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable"}

// mergeMountOptions keeps the last of each option: a later flag removes
// an earlier one and its opposite, a later key=value an earlier value of
// the same key, a later propagation an earlier one. Order follows the
// surviving options.
func mergeMountOptions(opts []string) []string {
	var out []string
	for i := len(opts) - 1; i >= 0; i-- {
		o := strings.TrimSpace(opts[i])
		if o == "" {
			continue
		}
		key, _, _ := strings.Cut(o, "=")
		clash := slices.ContainsFunc(out, func(kept string) bool {
			k, _, _ := strings.Cut(kept, "=")
			return k == key || opposites[key] == kept ||
				(slices.Contains(propagations, key) && slices.Contains(propagations, kept))
		})
		if !clash {
			out = append(out, o)
		}
	}
	slices.Reverse(out)
	return out
}

func withoutOption(opts []string, drop string) []string {
	var out []string
	for _, o := range opts {
		if o != drop {
			out = append(out, o)
		}
	}
	return out
}
