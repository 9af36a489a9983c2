package specgen

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/blkiodev"
	"github.com/moby/moby/api/types/container"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/internal/testutil"
	rtseccomp "github.com/berth-containers/berth/runtime/seccomp"
	rtspec "github.com/berth-containers/berth/runtime/spec"
)

const testID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// fakeDevices is a host /dev for tests.
var fakeDevices = map[string]specs.LinuxDevice{
	"/dev/null":   {Path: "/dev/null", Type: "c", Major: 1, Minor: 3},
	"/dev/fuse":   {Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229},
	"/dev/sda":    {Path: "/dev/sda", Type: "b", Major: 8, Minor: 0},
	"/dev/dri/c0": {Path: "/dev/dri/c0", Type: "c", Major: 226, Minor: 0},
	"/dev/dri/r0": {Path: "/dev/dri/r0", Type: "c", Major: 226, Minor: 128},
}

// fakeHost answers without touching the machine.
func fakeHost() *Host {
	return &Host{
		Devices: func(p string) ([]specs.LinuxDevice, error) {
			if d, ok := fakeDevices[p]; ok {
				return []specs.LinuxDevice{d}, nil
			}
			var out []specs.LinuxDevice
			for k, d := range fakeDevices {
				if strings.HasPrefix(k, p+"/") {
					out = append(out, d)
				}
			}
			if len(out) == 0 {
				return nil, errNotDevice
			}
			slices.SortFunc(out, func(a, b specs.LinuxDevice) int { return strings.Compare(a.Path, b.Path) })
			return out, nil
		},
		Capabilities: func() ([]string, error) {
			return []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_KILL", "CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_SYS_PTRACE"}, nil
		},
		ReadFile: func(p string) ([]byte, error) {
			if p == "/profiles/tiny.json" {
				return []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["chmod"],"action":"SCMP_ACT_ERRNO"}]}`), nil
			}
			return nil, os.ErrNotExist
		},
		Exists: func(p string) bool {
			return strings.HasPrefix(p, "/proc/sys/") || p == "/sys/devices/system/cpu/cpu1/thermal_throttle"
		},
		CPUs: func() int { return 4 },
	}
}

// rootfsWith makes a root filesystem holding the given files.
func rootfsWith(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const busyboxPasswd = "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nnobody:x:65534:65534:nobody:/home:/bin/false\nwww-data:x:33:33:www-data:/var/www:/bin/false\n"
const busyboxGroup = "root:x:0:\ndaemon:x:1:\nwheel:x:10:root\naudio:x:29:www-data\nvideo:x:44:www-data,root\nnogroup:x:65534:\nwww-data:x:33:\n"

// baseInput is `berth run busybox sh` before any flag.
func baseInput(t *testing.T) Input {
	t.Helper()
	return Input{
		ID:         testID,
		Config:     &container.Config{Image: "busybox"},
		HostConfig: &container.HostConfig{},
		Image:      &ocispec.ImageConfig{Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, Cmd: []string{"sh"}},
		Rootfs:     rootfsWith(t, map[string]string{"etc/passwd": busyboxPasswd, "etc/group": busyboxGroup}),
		Files:      Files{Hostname: "/run/c/hostname", Hosts: "/run/c/hosts", ResolvConf: "/run/c/resolv.conf"},
		InitPath:   "/usr/bin/berth",
		Host:       fakeHost(),
	}
}

func generate(t *testing.T, in Input) *specs.Spec {
	t.Helper()
	s, err := Generate(in)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return s
}

func mountAt(s *specs.Spec, dst string) *specs.Mount {
	for i := range s.Mounts {
		if s.Mounts[i].Destination == dst {
			return &s.Mounts[i]
		}
	}
	return nil
}

func destinations(s *specs.Spec) []string {
	var out []string
	for _, m := range s.Mounts {
		out = append(out, m.Destination)
	}
	return out
}

func nsTypes(s *specs.Spec) []string {
	var out []string
	for _, n := range s.Linux.Namespaces {
		out = append(out, string(n.Type)+n.Path)
	}
	return out
}

func equal[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Errorf("%s:\n got %s\nwant %s", what, g, w)
	}
}

// TestBusyboxLikeDocker checks the whole spec of `run busybox sh` against
// what Docker's daemon writes for it (cgroup v1 host, default network).
func TestBusyboxLikeDocker(t *testing.T) {
	in := baseInput(t)
	in.Rootfs = testutil.BusyboxRootfs(t, t.TempDir())
	in.CgroupParent = "berth"
	s := generate(t, in)

	equal(t, "args", s.Process.Args, []string{"sh"})
	equal(t, "env", s.Process.Env, []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOSTNAME=0123456789ab",
		"HOME=/root",
	})
	equal(t, "cwd", s.Process.Cwd, "/")
	equal(t, "user", s.Process.User, specs.User{UID: 0, GID: 0, AdditionalGids: []uint32{0}})
	if s.Process.Terminal || s.Process.NoNewPrivileges || s.Process.Rlimits != nil {
		t.Errorf("terminal %v, no-new-privileges %v, rlimits %v: want none", s.Process.Terminal, s.Process.NoNewPrivileges, s.Process.Rlimits)
	}
	if s.Process.OOMScoreAdj == nil || *s.Process.OOMScoreAdj != 0 {
		t.Errorf("oomScoreAdj %v, want 0", s.Process.OOMScoreAdj)
	}
	caps := s.Process.Capabilities
	equal(t, "bounding", caps.Bounding, DefaultCapabilities)
	equal(t, "effective", caps.Effective, DefaultCapabilities)
	equal(t, "permitted", caps.Permitted, DefaultCapabilities)
	if caps.Inheritable != nil || caps.Ambient != nil {
		t.Errorf("inheritable %v ambient %v, want none", caps.Inheritable, caps.Ambient)
	}
	equal(t, "root", s.Root, &specs.Root{Path: in.Rootfs})
	equal(t, "hostname", s.Hostname, "0123456789ab")

	equal(t, "mounts", s.Mounts, []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=67108864"}},
		{Destination: "/etc/resolv.conf", Type: "bind", Source: "/run/c/resolv.conf", Options: []string{"rbind", "rprivate"}},
		{Destination: "/etc/hostname", Type: "bind", Source: "/run/c/hostname", Options: []string{"rbind", "rprivate"}},
		{Destination: "/etc/hosts", Type: "bind", Source: "/run/c/hosts", Options: []string{"rbind", "rprivate"}},
	})
	equal(t, "namespaces", nsTypes(s), []string{"mount", "network", "uts", "pid", "ipc"})
	equal(t, "masked paths", s.Linux.MaskedPaths, append(slices.Clone(DefaultMaskedPaths), "/sys/devices/system/cpu/cpu1/thermal_throttle"))
	equal(t, "readonly paths", s.Linux.ReadonlyPaths, []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"})
	if len(s.Linux.Devices) != 0 {
		t.Errorf("devices %v, want none (the runtime adds the standard nodes)", s.Linux.Devices)
	}
	equal(t, "device rules", s.Linux.Resources.Devices, []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: i64(5), Minor: i64(1), Access: "rwm"},
		{Allow: true, Type: "c", Major: i64(10), Minor: i64(200), Access: "rwm"},
	})
	equal(t, "sysctls", s.Linux.Sysctl, map[string]string{"net.ipv4.ping_group_range": "0 2147483647", "net.ipv4.ip_unprivileged_port_start": "0"})
	equal(t, "cgroupsPath", s.Linux.CgroupsPath, "/berth/"+testID)
	if r := s.Linux.Resources; r.Memory != nil || r.CPU != nil || r.Pids != nil || r.BlockIO != nil {
		t.Errorf("resources %+v, want only device rules", r)
	}
	if s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != specs.ActErrno || len(s.Linux.Seccomp.Syscalls) < 10 {
		t.Fatalf("seccomp %+v, want Docker's default profile", s.Linux.Seccomp)
	}
	if s.Annotations != nil {
		t.Errorf("annotations %v, want none", s.Annotations)
	}
}

// TestSpecLoads checks that the spec survives JSON and the runtime's own
// checks, and that the runtime compiles its seccomp filter.
func TestSpecLoads(t *testing.T) {
	for name, mod := range map[string]func(*Input){
		"default":    func(*Input) {},
		"privileged": func(in *Input) { in.HostConfig.Privileged = true },
		"flags": func(in *Input) {
			in.Config.Tty = true
			in.HostConfig.Ulimits = []*container.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}}
			in.HostConfig.Memory = 64 << 20
			in.HostConfig.Init = boolp(true)
			in.HostConfig.Tmpfs = map[string]string{"/run": "size=1m"}
		},
	} {
		t.Run(name, func(t *testing.T) {
			in := baseInput(t)
			mod(&in)
			s := generate(t, in)
			data, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			back, err := rtspec.Parse(data)
			if err != nil {
				t.Fatalf("runtime refuses the spec: %v", err)
			}
			equal(t, "round trip", back, s)
			if s.Linux.Seccomp != nil {
				if _, err := rtseccomp.Compile(s.Linux.Seccomp); err != nil {
					t.Fatalf("runtime cannot compile the seccomp profile: %v", err)
				}
			}
		})
	}
}

func boolp(b bool) *bool    { return &b }
func i64p(v int64) *int64   { return &v }
func u32p(v uint32) *uint32 { return &v }

// TestFlags checks the effect of each flag on the spec.
func TestFlags(t *testing.T) {
	tests := []struct {
		name  string
		mod   func(*Input)
		check func(*testing.T, *specs.Spec)
	}{
		{"cmd overrides image cmd", func(in *Input) { in.Config.Cmd = []string{"echo", "hi"} },
			func(t *testing.T, s *specs.Spec) { equal(t, "args", s.Process.Args, []string{"echo", "hi"}) }},
		{"image entrypoint and cmd", func(in *Input) {
			in.Image.Entrypoint = []string{"/entry.sh"}
			in.Image.Cmd = []string{"serve"}
		}, func(t *testing.T, s *specs.Spec) {
			equal(t, "args", s.Process.Args, []string{"/entry.sh", "serve"})
		}},
		{"cmd keeps image entrypoint", func(in *Input) {
			in.Image.Entrypoint = []string{"/entry.sh"}
			in.Config.Cmd = []string{"x"}
		}, func(t *testing.T, s *specs.Spec) { equal(t, "args", s.Process.Args, []string{"/entry.sh", "x"}) }},
		{"entrypoint resets image cmd", func(in *Input) {
			in.Image.Entrypoint = []string{"/entry.sh"}
			in.Config.Entrypoint = []string{"/bin/top", "-b"}
		}, func(t *testing.T, s *specs.Spec) { equal(t, "args", s.Process.Args, []string{"/bin/top", "-b"}) }},
		{"entrypoint with cmd", func(in *Input) {
			in.Config.Entrypoint = []string{"/bin/echo"}
			in.Config.Cmd = []string{"a"}
		}, func(t *testing.T, s *specs.Spec) { equal(t, "args", s.Process.Args, []string{"/bin/echo", "a"}) }},
		{"empty entrypoint flag clears it", func(in *Input) {
			in.Image.Entrypoint = []string{"/entry.sh"}
			in.Config.Entrypoint = []string{""}
			in.Config.Cmd = []string{"ls"}
		}, func(t *testing.T, s *specs.Spec) { equal(t, "args", s.Process.Args, []string{"ls"}) }},
		{"empty API entrypoint keeps image cmd", func(in *Input) {
			in.Image.Entrypoint = []string{"/entry.sh"}
			in.Config.Entrypoint = []string{}
		}, func(t *testing.T, s *specs.Spec) { equal(t, "args", s.Process.Args, []string{"sh"}) }},
		{"init", func(in *Input) { in.HostConfig.Init = boolp(true) }, func(t *testing.T, s *specs.Spec) {
			equal(t, "args", s.Process.Args, []string{InitDestination, "--", "sh"})
			equal(t, "init mount", mountAt(s, InitDestination), &specs.Mount{Destination: InitDestination, Type: "bind", Source: "/usr/bin/berth", Options: []string{"bind", "ro"}})
		}},
		{"init skipped with host pid", func(in *Input) {
			in.HostConfig.Init = boolp(true)
			in.HostConfig.PidMode = "host"
		}, func(t *testing.T, s *specs.Spec) {
			equal(t, "args", s.Process.Args, []string{"sh"})
			if mountAt(s, InitDestination) != nil {
				t.Error("init bound although the pid namespace is the host's")
			}
		}},
		{"env merge", func(in *Input) {
			in.Image.Env = append(in.Image.Env, "A=image", "B=image")
			in.Config.Env = []string{"B=user", "PATH=/opt", "C=user", "A", "HOME=/data"}
		}, func(t *testing.T, s *specs.Spec) {
			equal(t, "env", s.Process.Env, []string{"PATH=/opt", "HOSTNAME=0123456789ab", "B=user", "C=user", "HOME=/data"})
		}},
		{"no image path gets default", func(in *Input) { in.Image = nil; in.Config.Cmd = []string{"sh"} },
			func(t *testing.T, s *specs.Spec) {
				equal(t, "env", s.Process.Env, []string{"PATH=" + DefaultPath, "HOSTNAME=0123456789ab", "HOME=/root"})
			}},
		{"tty", func(in *Input) {
			in.Config.Tty = true
			in.HostConfig.ConsoleSize = [2]uint{40, 120}
		}, func(t *testing.T, s *specs.Spec) {
			if !s.Process.Terminal {
				t.Error("no terminal")
			}
			equal(t, "console", s.Process.ConsoleSize, &specs.Box{Height: 40, Width: 120})
			if !slices.Contains(s.Process.Env, "TERM=xterm") {
				t.Errorf("env %v lacks TERM=xterm", s.Process.Env)
			}
		}},
		{"working dir", func(in *Input) { in.Config.WorkingDir = "/srv/app/" },
			func(t *testing.T, s *specs.Spec) { equal(t, "cwd", s.Process.Cwd, "/srv/app") }},
		{"image working dir", func(in *Input) { in.Image.WorkingDir = "/img" },
			func(t *testing.T, s *specs.Spec) { equal(t, "cwd", s.Process.Cwd, "/img") }},
		{"hostname and domain", func(in *Input) {
			in.Config.Hostname = "web"
			in.Config.Domainname = "example.org"
		}, func(t *testing.T, s *specs.Spec) {
			equal(t, "names", []string{s.Hostname, s.Domainname}, []string{"web", "example.org"})
			if !slices.Contains(s.Process.Env, "HOSTNAME=web") {
				t.Errorf("env %v lacks HOSTNAME=web", s.Process.Env)
			}
		}},
		{"user by name", func(in *Input) { in.Config.User = "www-data" }, func(t *testing.T, s *specs.Spec) {
			equal(t, "user", s.Process.User, specs.User{UID: 33, GID: 33, AdditionalGids: []uint32{33, 29, 44}})
			if !slices.Contains(s.Process.Env, "HOME=/var/www") {
				t.Errorf("env %v lacks HOME=/var/www", s.Process.Env)
			}
		}},
		{"image user", func(in *Input) { in.Image.User = "1000:1000" }, func(t *testing.T, s *specs.Spec) {
			equal(t, "user", s.Process.User, specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000}})
		}},
		{"group add and umask", func(in *Input) {
			in.HostConfig.GroupAdd = []string{"audio", "4242"}
			in.HostConfig.Umask = u32p(0o027)
		}, func(t *testing.T, s *specs.Spec) {
			equal(t, "user", s.Process.User, specs.User{UID: 0, GID: 0, AdditionalGids: []uint32{0, 10, 44, 29, 4242}, Umask: u32p(0o027)})
		}},
		{"no-new-privileges", func(in *Input) { in.HostConfig.SecurityOpt = []string{"no-new-privileges"} },
			func(t *testing.T, s *specs.Spec) {
				if !s.Process.NoNewPrivileges {
					t.Error("noNewPrivileges not set")
				}
			}},
		{"no-new-privileges=false", func(in *Input) {
			in.HostConfig.SecurityOpt = []string{"no-new-privileges=true", "no-new-privileges:false", "apparmor=unconfined", "label=disable"}
		}, func(t *testing.T, s *specs.Spec) {
			if s.Process.NoNewPrivileges {
				t.Error("noNewPrivileges set")
			}
		}},
		{"oom score", func(in *Input) { in.HostConfig.OomScoreAdj = 500 }, func(t *testing.T, s *specs.Spec) {
			equal(t, "oom", *s.Process.OOMScoreAdj, 500)
		}},
		{"ulimits", func(in *Input) {
			in.HostConfig.Ulimits = []*container.Ulimit{{Name: "nofile", Soft: 1024, Hard: 4096}, {Name: "NPROC", Soft: -1, Hard: -1}, {Name: "nofile", Soft: 10, Hard: 20}}
		}, func(t *testing.T, s *specs.Spec) {
			equal(t, "rlimits", s.Process.Rlimits, []specs.POSIXRlimit{
				{Type: "RLIMIT_NOFILE", Soft: 10, Hard: 20},
				{Type: "RLIMIT_NPROC", Soft: ^uint64(0), Hard: ^uint64(0)},
			})
		}},
		{"cap add and drop", func(in *Input) {
			in.HostConfig.CapAdd = []string{"sys_admin", "CAP_NET_ADMIN"}
			in.HostConfig.CapDrop = []string{"net_raw", "Cap_Mknod"}
		}, func(t *testing.T, s *specs.Spec) {
			want := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE", "CAP_SYS_ADMIN", "CAP_NET_ADMIN"}
			c := s.Process.Capabilities
			equal(t, "caps", [][]string{c.Bounding, c.Effective, c.Permitted}, [][]string{want, want, want})
		}},
		{"cap drop all", func(in *Input) {
			in.HostConfig.CapDrop = []string{"all"}
			in.HostConfig.CapAdd = []string{"chown"}
		}, func(t *testing.T, s *specs.Spec) {
			equal(t, "caps", s.Process.Capabilities.Bounding, []string{"CAP_CHOWN"})
		}},
		{"cap add all", func(in *Input) {
			in.HostConfig.CapAdd = []string{"ALL"}
			in.HostConfig.CapDrop = []string{"sys_ptrace"}
		}, func(t *testing.T, s *specs.Spec) {
			equal(t, "caps", s.Process.Capabilities.Bounding, []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_KILL", "CAP_SYS_ADMIN", "CAP_NET_ADMIN"})
		}},
		{"privileged", func(in *Input) {
			in.HostConfig.Privileged = true
			in.HostConfig.CapDrop = []string{"chown"} // ignored, as in Docker
			in.HostConfig.Devices = []container.DeviceMapping{{PathOnHost: "/dev/sda", PathInContainer: "/dev/xvda", CgroupPermissions: "r"}}
		}, func(t *testing.T, s *specs.Spec) {
			all, _ := fakeHost().Capabilities()
			equal(t, "caps", s.Process.Capabilities.Effective, all)
			if s.Linux.MaskedPaths != nil || s.Linux.ReadonlyPaths != nil || s.Linux.Seccomp != nil {
				t.Errorf("masked %v readonly %v seccomp %v: want none", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths, s.Linux.Seccomp != nil)
			}
			equal(t, "sys", mountAt(s, "/sys").Options, []string{"nosuid", "noexec", "nodev"})
			equal(t, "cgroup", mountAt(s, "/sys/fs/cgroup").Options, []string{"nosuid", "noexec", "nodev"})
			equal(t, "rules", s.Linux.Resources.Devices, []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}})
			var paths []string
			for _, d := range s.Linux.Devices {
				paths = append(paths, d.Path)
			}
			slices.Sort(paths)
			equal(t, "devices", paths, []string{"/dev/dri/c0", "/dev/dri/r0", "/dev/fuse", "/dev/null", "/dev/sda", "/dev/xvda"})
		}},
		{"device", func(in *Input) {
			in.HostConfig.Devices = []container.DeviceMapping{
				{PathOnHost: "/dev/fuse", CgroupPermissions: "rw"},
				{PathOnHost: "/dev/dri", PathInContainer: "/dev/gpu", CgroupPermissions: "rwm"},
			}
			in.HostConfig.DeviceCgroupRules = []string{"c 42:* rmw", "b *:* m"}
		}, func(t *testing.T, s *specs.Spec) {
			equal(t, "devices", s.Linux.Devices, []specs.LinuxDevice{
				{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229},
				{Path: "/dev/gpu/c0", Type: "c", Major: 226, Minor: 0},
				{Path: "/dev/gpu/r0", Type: "c", Major: 226, Minor: 128},
			})
			equal(t, "rules", s.Linux.Resources.Devices[3:], []specs.LinuxDeviceCgroup{
				{Allow: true, Type: "c", Major: i64(10), Minor: i64(229), Access: "rw"},
				{Allow: true, Type: "c", Major: i64(226), Minor: i64(0), Access: "rwm"},
				{Allow: true, Type: "c", Major: i64(226), Minor: i64(128), Access: "rwm"},
				{Allow: true, Type: "c", Major: i64(42), Access: "rmw"},
				{Allow: true, Type: "b", Access: "m"},
			})
		}},
		{"readonly rootfs", func(in *Input) {
			in.HostConfig.ReadonlyRootfs = true
			in.HostConfig.Init = boolp(true)
		}, func(t *testing.T, s *specs.Spec) {
			if !s.Root.Readonly {
				t.Error("root not read-only")
			}
			equal(t, "hosts", mountAt(s, "/etc/hosts").Options, []string{"rbind", "ro", "rprivate"})
			equal(t, "init", mountAt(s, InitDestination).Options, []string{"bind", "ro"})
			equal(t, "shm", mountAt(s, "/dev/shm").Options, []string{"nosuid", "noexec", "nodev", "mode=1777", "size=67108864"})
		}},
		{"shm size", func(in *Input) { in.HostConfig.ShmSize = 1 << 20 }, func(t *testing.T, s *specs.Spec) {
			equal(t, "shm", mountAt(s, "/dev/shm").Options, []string{"nosuid", "noexec", "nodev", "mode=1777", "size=1048576"})
		}},
		{"ipc none", func(in *Input) { in.HostConfig.IpcMode = "none" }, func(t *testing.T, s *specs.Spec) {
			if mountAt(s, "/dev/shm") != nil {
				t.Error("/dev/shm mounted with ipc none")
			}
		}},
		{"ipc host", func(in *Input) { in.HostConfig.IpcMode = "host" }, func(t *testing.T, s *specs.Spec) {
			equal(t, "namespaces", nsTypes(s), []string{"mount", "network", "uts", "pid"})
			equal(t, "shm", mountAt(s, "/dev/shm"), &specs.Mount{Destination: "/dev/shm", Type: "bind", Source: "/dev/shm", Options: []string{"rbind", "rprivate"}})
		}},
		{"host namespaces", func(in *Input) {
			in.HostConfig.NetworkMode = "host"
			in.HostConfig.PidMode = "host"
			in.HostConfig.UTSMode = "host"
		}, func(t *testing.T, s *specs.Spec) {
			equal(t, "namespaces", nsTypes(s), []string{"mount", "ipc"})
			equal(t, "hostname", s.Hostname, "")
			if s.Linux.Sysctl != nil {
				t.Errorf("sysctls %v with the host network", s.Linux.Sysctl)
			}
		}},
		{"joined namespaces", func(in *Input) {
			in.HostConfig.NetworkMode = "container:db"
			in.HostConfig.PidMode = "container:db"
			in.NetNSPath = "/proc/42/ns/net"
			in.PIDNSPath = "/proc/42/ns/pid"
		}, func(t *testing.T, s *specs.Spec) {
			equal(t, "namespaces", nsTypes(s), []string{"mount", "network/proc/42/ns/net", "uts", "pid/proc/42/ns/pid", "ipc"})
		}},
		{"network none", func(in *Input) { in.HostConfig.NetworkMode = "none" }, func(t *testing.T, s *specs.Spec) {
			equal(t, "namespaces", nsTypes(s), []string{"mount", "network", "uts", "pid", "ipc"})
		}},
		{"cgroup v2 private by default", func(in *Input) { in.CgroupV2 = true }, func(t *testing.T, s *specs.Spec) {
			equal(t, "namespaces", nsTypes(s), []string{"mount", "network", "uts", "pid", "ipc", "cgroup"})
		}},
		{"cgroupns host on v2", func(in *Input) { in.CgroupV2 = true; in.HostConfig.CgroupnsMode = "host" },
			func(t *testing.T, s *specs.Spec) {
				equal(t, "namespaces", nsTypes(s), []string{"mount", "network", "uts", "pid", "ipc"})
			}},
		{"cgroupns private on v1", func(in *Input) { in.HostConfig.CgroupnsMode = "private" },
			func(t *testing.T, s *specs.Spec) {
				equal(t, "namespaces", nsTypes(s), []string{"mount", "network", "uts", "pid", "ipc", "cgroup"})
			}},
		{"masked and readonly paths given", func(in *Input) {
			in.HostConfig.MaskedPaths = []string{"/proc/kcore"}
			in.HostConfig.ReadonlyPaths = []string{}
		}, func(t *testing.T, s *specs.Spec) {
			equal(t, "masked", s.Linux.MaskedPaths, []string{"/proc/kcore"})
			equal(t, "readonly", s.Linux.ReadonlyPaths, []string{})
		}},
		{"systempaths unconfined", func(in *Input) { in.HostConfig.SecurityOpt = []string{"systempaths=unconfined"} },
			func(t *testing.T, s *specs.Spec) {
				if s.Linux.MaskedPaths != nil || s.Linux.ReadonlyPaths != nil {
					t.Error("system paths still confined")
				}
			}},
		{"writable cgroups", func(in *Input) { in.HostConfig.SecurityOpt = []string{"writable-cgroups=true"} },
			func(t *testing.T, s *specs.Spec) {
				equal(t, "cgroup", mountAt(s, "/sys/fs/cgroup").Options, []string{"nosuid", "noexec", "nodev"})
			}},
		{"sysctls", func(in *Input) {
			in.HostConfig.Sysctls = map[string]string{"net.ipv4.ip_forward": "1", "kernel.shmmax": "1000", "fs.mqueue.msg_max": "20", "net/core/somaxconn": "512"}
		}, func(t *testing.T, s *specs.Spec) {
			equal(t, "sysctls", s.Linux.Sysctl, map[string]string{
				"net.ipv4.ping_group_range": "0 2147483647", "net.ipv4.ip_unprivileged_port_start": "0",
				"net.ipv4.ip_forward": "1", "kernel.shmmax": "1000", "fs.mqueue.msg_max": "20", "net.core.somaxconn": "512",
			})
		}},
		{"memory", func(in *Input) {
			in.HostConfig.Memory = 128 << 20
			in.HostConfig.MemoryReservation = 64 << 20
			in.HostConfig.MemorySwappiness = i64p(10)
			in.HostConfig.OomKillDisable = boolp(true)
		}, func(t *testing.T, s *specs.Spec) {
			swappiness := uint64(10)
			equal(t, "memory", s.Linux.Resources.Memory, &specs.LinuxMemory{Limit: i64(128 << 20), Swap: i64(256 << 20), Reservation: i64(64 << 20), Swappiness: &swappiness, DisableOOMKiller: boolp(true)})
		}},
		{"unlimited swap", func(in *Input) {
			in.HostConfig.Memory = 128 << 20
			in.HostConfig.MemorySwap = -1
		}, func(t *testing.T, s *specs.Spec) {
			equal(t, "memory", s.Linux.Resources.Memory, &specs.LinuxMemory{Limit: i64(128 << 20), Swap: i64(-1)})
		}},
		{"cpus", func(in *Input) {
			in.HostConfig.NanoCPUs = 1_500_000_000
			in.HostConfig.CPUShares = 1
			in.HostConfig.CpusetCpus = "0-1"
			in.HostConfig.CpusetMems = "0"
		}, func(t *testing.T, s *specs.Spec) {
			period, shares := uint64(100000), uint64(2)
			equal(t, "cpu", s.Linux.Resources.CPU, &specs.LinuxCPU{Shares: &shares, Quota: i64(150000), Period: &period, Cpus: "0-1", Mems: "0"})
		}},
		{"cpu quota and period", func(in *Input) {
			in.HostConfig.CPUQuota = 50000
			in.HostConfig.CPUPeriod = 200000
			in.HostConfig.CPUShares = 512
		}, func(t *testing.T, s *specs.Spec) {
			period, shares := uint64(200000), uint64(512)
			equal(t, "cpu", s.Linux.Resources.CPU, &specs.LinuxCPU{Shares: &shares, Quota: i64(50000), Period: &period})
		}},
		{"pids limit", func(in *Input) { in.HostConfig.PidsLimit = i64p(100) }, func(t *testing.T, s *specs.Spec) {
			equal(t, "pids", s.Linux.Resources.Pids, &specs.LinuxPids{Limit: i64(100)})
		}},
		{"pids unlimited", func(in *Input) { in.HostConfig.PidsLimit = i64p(0) }, func(t *testing.T, s *specs.Spec) {
			equal(t, "pids", s.Linux.Resources.Pids, &specs.LinuxPids{Limit: i64(-1)})
		}},
		{"blkio", func(in *Input) {
			in.HostConfig.BlkioWeight = 300
			in.HostConfig.BlkioWeightDevice = []*blkiodev.WeightDevice{{Path: "/dev/sda", Weight: 200}}
			in.HostConfig.BlkioDeviceReadBps = []*blkiodev.ThrottleDevice{{Path: "/dev/sda", Rate: 1 << 20}}
		}, func(t *testing.T, s *specs.Spec) {
			b := s.Linux.Resources.BlockIO
			if b == nil || *b.Weight != 300 || len(b.WeightDevice) != 1 || *b.WeightDevice[0].Weight != 200 || b.WeightDevice[0].Major != 8 ||
				len(b.ThrottleReadBpsDevice) != 1 || b.ThrottleReadBpsDevice[0].Rate != 1<<20 {
				t.Errorf("blkio %+v", b)
			}
		}},
		{"cgroup parent", func(in *Input) {
			in.CgroupParent = "berth"
			in.HostConfig.CgroupParent = "/custom/"
		}, func(t *testing.T, s *specs.Spec) { equal(t, "path", s.Linux.CgroupsPath, "/custom/"+testID) }},
		{"no cgroup parent", func(in *Input) {}, func(t *testing.T, s *specs.Spec) {
			equal(t, "path", s.Linux.CgroupsPath, "/"+testID)
		}},
		{"annotations", func(in *Input) { in.HostConfig.Annotations = map[string]string{"a": "b"} },
			func(t *testing.T, s *specs.Spec) { equal(t, "annotations", s.Annotations, map[string]string{"a": "b"}) }},
		{"no generated files", func(in *Input) { in.Files = Files{} }, func(t *testing.T, s *specs.Spec) {
			if mountAt(s, "/etc/hosts") != nil || mountAt(s, "/etc/resolv.conf") != nil || mountAt(s, "/etc/hostname") != nil {
				t.Error("generated files bound although none were given")
			}
		}},
		{"nil host config", func(in *Input) { in.HostConfig = nil }, func(t *testing.T, s *specs.Spec) {
			equal(t, "namespaces", nsTypes(s), []string{"mount", "network", "uts", "pid", "ipc"})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t)
			tc.mod(&in)
			tc.check(t, generate(t, in))
		})
	}
}

// TestInvalid checks that each bad value is refused as invalid, in one
// line naming it.
func TestInvalid(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Input)
		want string
	}{
		{"no config", func(in *Input) { in.Config = nil }, "container config is missing"},
		{"no id", func(in *Input) { in.ID = "" }, "container id is missing"},
		{"no rootfs", func(in *Input) { in.Rootfs = "" }, "root filesystem"},
		{"no command", func(in *Input) { in.Image.Cmd = nil }, "no command specified"},
		{"entrypoint reset without cmd", func(in *Input) { in.Config.Entrypoint = []string{""} }, "no command specified"},
		{"init without binary", func(in *Input) { in.HostConfig.Init = boolp(true); in.InitPath = "" }, "--init"},
		{"relative workdir", func(in *Input) { in.Config.WorkingDir = "app" }, `working directory "app"`},
		{"unknown user", func(in *Input) { in.Config.User = "x" }, "unable to find user x: no matching entries in passwd file"},
		{"unknown group", func(in *Input) { in.Config.User = "root:nope" }, "unable to find group nope: no matching entries in group file"},
		{"unknown group add", func(in *Input) { in.HostConfig.GroupAdd = []string{"nope"} }, "unable to find group nope"},
		{"uid out of range", func(in *Input) { in.Config.User = "4294967296" }, "uid out of range"},
		{"umask", func(in *Input) { in.HostConfig.Umask = u32p(0o1000) }, "invalid umask"},
		{"oom score", func(in *Input) { in.HostConfig.OomScoreAdj = 1001 }, "oom score adjustment 1001"},
		{"ulimit name", func(in *Input) { in.HostConfig.Ulimits = []*container.Ulimit{{Name: "files", Soft: 1, Hard: 1}} }, "invalid ulimit type: files"},
		{"ulimit order", func(in *Input) { in.HostConfig.Ulimits = []*container.Ulimit{{Name: "nofile", Soft: 2, Hard: 1}} }, "soft limit 2 is larger than hard limit 1"},
		{"ulimit negative", func(in *Input) { in.HostConfig.Ulimits = []*container.Ulimit{{Name: "nofile", Soft: -2, Hard: 1}} }, "must not be negative"},
		{"unknown cap", func(in *Input) { in.HostConfig.CapAdd = []string{"foo"} }, `unknown capability: "CAP_FOO"`},
		{"unknown cap drop", func(in *Input) { in.HostConfig.CapDrop = []string{"CAP_BAR"} }, `unknown capability: "CAP_BAR"`},
		{"security opt", func(in *Input) { in.HostConfig.SecurityOpt = []string{"foo=bar"} }, `invalid --security-opt "foo=bar"`},
		{"security opt form", func(in *Input) { in.HostConfig.SecurityOpt = []string{"seccomp"} }, `invalid --security-opt "seccomp"`},
		{"apparmor profile", func(in *Input) { in.HostConfig.SecurityOpt = []string{"apparmor=docker-default"} }, "AppArmor"},
		{"selinux label", func(in *Input) { in.HostConfig.SecurityOpt = []string{"label=type:svirt_t"} }, "SELinux"},
		{"no-new-privileges value", func(in *Input) { in.HostConfig.SecurityOpt = []string{"no-new-privileges=maybe"} }, "no-new-privileges"},
		{"seccomp file missing", func(in *Input) { in.HostConfig.SecurityOpt = []string{"seccomp=/nope.json"} }, "read seccomp profile /nope.json"},
		{"seccomp bad json", func(in *Input) { in.HostConfig.SecurityOpt = []string{"seccomp={bad"} }, "seccomp profile"},
		{"relative mount", func(in *Input) { in.Mounts = []specs.Mount{{Destination: "data", Type: "bind", Source: "/x"}} }, `invalid mount destination "data"`},
		{"duplicate mount", func(in *Input) {
			in.Mounts = []specs.Mount{{Destination: "/data", Type: "bind", Source: "/x"}, {Destination: "/data/", Type: "bind", Source: "/y"}}
		}, "duplicate mount point: /data"},
		{"mount over tmpfs", func(in *Input) {
			in.Mounts = []specs.Mount{{Destination: "/run", Type: "bind", Source: "/x"}}
			in.HostConfig.Tmpfs = map[string]string{"/run": ""}
		}, "duplicate mount point: /run"},
		{"root mount", func(in *Input) { in.HostConfig.Tmpfs = map[string]string{"/": ""} }, "can't be '/'"},
		{"negative shm", func(in *Input) { in.HostConfig.ShmSize = -1 }, "invalid shm size -1"},
		{"container net without path", func(in *Input) { in.HostConfig.NetworkMode = "container:db" }, "network mode container:db"},
		{"container pid without path", func(in *Input) { in.HostConfig.PidMode = "container:db" }, "pid mode container:db"},
		{"bad pid mode", func(in *Input) { in.HostConfig.PidMode = "weird" }, "invalid PID mode: weird"},
		{"bad ipc mode", func(in *Input) { in.HostConfig.IpcMode = "weird" }, "invalid IPC mode: weird"},
		{"container ipc", func(in *Input) { in.HostConfig.IpcMode = "container:db" }, "IPC mode container:db is not supported"},
		{"bad uts mode", func(in *Input) { in.HostConfig.UTSMode = "weird" }, "invalid UTS mode: weird"},
		{"bad cgroupns mode", func(in *Input) { in.HostConfig.CgroupnsMode = "weird" }, "invalid cgroup namespace mode: weird"},
		{"userns", func(in *Input) { in.HostConfig.UsernsMode = "private" }, "user namespace mode private"},
		{"relative masked path", func(in *Input) { in.HostConfig.MaskedPaths = []string{"proc/kcore"} }, `"proc/kcore"`},
		{"device not a node", func(in *Input) { in.HostConfig.Devices = []container.DeviceMapping{{PathOnHost: "/dev/nope"}} }, `custom device "/dev/nope": not a device node`},
		{"device relative", func(in *Input) { in.HostConfig.Devices = []container.DeviceMapping{{PathOnHost: "dev/fuse"}} }, `invalid device "dev/fuse"`},
		{"device mode", func(in *Input) {
			in.HostConfig.Devices = []container.DeviceMapping{{PathOnHost: "/dev/fuse", CgroupPermissions: "rwx"}}
		}, `invalid device mode "rwx"`},
		{"device cgroup rule", func(in *Input) { in.HostConfig.DeviceCgroupRules = []string{"c 1 rwm"} }, "invalid device cgroup rule format: 'c 1 rwm'"},
		{"gpus", func(in *Input) { in.HostConfig.DeviceRequests = []container.DeviceRequest{{Count: -1}} }, "--gpus"},
		{"sysctl not namespaced", func(in *Input) { in.HostConfig.Sysctls = map[string]string{"kernel.pid_max": "1"} }, `sysctl "kernel.pid_max" is not allowed`},
		{"net sysctl with host net", func(in *Input) {
			in.HostConfig.NetworkMode = "host"
			in.HostConfig.Sysctls = map[string]string{"net.ipv4.ip_forward": "1"}
		}, `sysctl "net.ipv4.ip_forward" is not allowed in the host network namespace`},
		{"ipc sysctl with host ipc", func(in *Input) {
			in.HostConfig.IpcMode = "host"
			in.HostConfig.Sysctls = map[string]string{"kernel.shmmax": "1"}
		}, `sysctl "kernel.shmmax" is not allowed in the host IPC namespace`},
		{"memory minimum", func(in *Input) { in.HostConfig.Memory = 1 << 20 }, "minimum allowed is 6MB"},
		{"swap without memory", func(in *Input) { in.HostConfig.MemorySwap = 64 << 20 }, "set the memory limit too"},
		{"swap below memory", func(in *Input) { in.HostConfig.Memory = 64 << 20; in.HostConfig.MemorySwap = 32 << 20 }, "larger than the memory limit"},
		{"swappiness", func(in *Input) { in.HostConfig.MemorySwappiness = i64p(101) }, "swappiness 101"},
		{"reservation minimum", func(in *Input) { in.HostConfig.MemoryReservation = 1 }, "memory reservation 1"},
		{"reservation above memory", func(in *Input) {
			in.HostConfig.Memory = 64 << 20
			in.HostConfig.MemoryReservation = 128 << 20
		}, "less than the memory reservation"},
		{"cpus and quota", func(in *Input) { in.HostConfig.NanoCPUs = 1e9; in.HostConfig.CPUQuota = 50000 }, "Nano CPUs and CPU Quota"},
		{"cpus and period", func(in *Input) { in.HostConfig.NanoCPUs = 1e9; in.HostConfig.CPUPeriod = 50000 }, "Nano CPUs and CPU Period"},
		{"too many cpus", func(in *Input) { in.HostConfig.NanoCPUs = 5e9 }, "only 4 CPUs available"},
		{"cpu period", func(in *Input) { in.HostConfig.CPUPeriod = 10 }, "invalid CPU period 10"},
		{"cpu quota", func(in *Input) { in.HostConfig.CPUQuota = 10 }, "invalid CPU quota 10"},
		{"blkio weight", func(in *Input) { in.HostConfig.BlkioWeight = 5 }, "invalid blkio weight 5"},
		{"blkio device", func(in *Input) {
			in.HostConfig.BlkioDeviceReadBps = []*blkiodev.ThrottleDevice{{Path: "/dev/null", Rate: 1}}
		}, `invalid block device "/dev/null"`},
		{"pids", func(in *Input) { in.HostConfig.PidsLimit = i64p(-2) }, "invalid pids limit -2"},
		{"extra host", func(in *Input) { in.HostConfig.ExtraHosts = []string{"db:nope"} }, `invalid IP address in add-host: "nope"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t)
			tc.mod(&in)
			_, err := Generate(in)
			if err == nil {
				t.Fatalf("no error, want one containing %q", tc.want)
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("error %q is not classed invalid", err)
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q, want one line containing %q", err, tc.want)
			}
		})
	}
}
