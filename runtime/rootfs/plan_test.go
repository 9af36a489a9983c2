package rootfs

import (
	"bufio"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestRootPropagation(t *testing.T) {
	cases := []struct {
		prop string
		want uintptr
		bad  bool
	}{
		{"", unix.MS_SLAVE | unix.MS_REC, false},
		{"rslave", unix.MS_SLAVE | unix.MS_REC, false},
		{"private", unix.MS_PRIVATE, false},
		{"rprivate", unix.MS_PRIVATE | unix.MS_REC, false},
		{"shared", unix.MS_SHARED, false},
		{"rshared", unix.MS_SHARED | unix.MS_REC, false},
		{"runbindable", unix.MS_UNBINDABLE | unix.MS_REC, false},
		{"rbind", 0, true},
	}
	for _, c := range cases {
		got, err := RootPropagation(&specs.Spec{Linux: &specs.Linux{RootfsPropagation: c.prop}})
		if (err != nil) != c.bad || got != c.want {
			t.Errorf("%q: got %#x, %v; want %#x, error %v", c.prop, got, err, c.want, c.bad)
		}
	}
	if got, err := RootPropagation(&specs.Spec{}); err != nil || got != unix.MS_SLAVE|unix.MS_REC {
		t.Errorf("no linux section: %#x, %v", got, err)
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		m    specs.Mount
		want mountKind
	}{
		{specs.Mount{Type: "bind"}, kindBind},
		{specs.Mount{Type: "none", Options: []string{"rbind"}}, kindBind},
		{specs.Mount{Options: []string{"bind"}}, kindBind},
		{specs.Mount{Type: "cgroup"}, kindCgroup},
		{specs.Mount{Type: "cgroup2"}, kindCgroup},
		{specs.Mount{Type: "sysfs"}, kindSysfs},
		{specs.Mount{Type: "proc"}, kindFS},
		{specs.Mount{Type: "tmpfs", Options: []string{"tmpcopyup"}}, kindFS},
		{specs.Mount{Type: "overlay"}, kindFS},
	}
	for _, c := range cases {
		if got := classify(c.m, ParseOptions(c.m.Options)); got != c.want {
			t.Errorf("%+v: kind %d, want %d", c.m, got, c.want)
		}
	}
}

func TestCheckProcDest(t *testing.T) {
	cases := []struct {
		dest   string
		kind   mountKind
		fstype string
		ok     bool
	}{
		{"/proc", kindFS, "proc", true},
		{"/proc", kindFS, "tmpfs", false},
		{"/proc", kindBind, "bind", false},
		{"/proc/sys", kindFS, "tmpfs", false},
		{"/proc/self", kindBind, "bind", false},
		{"/proc/cpuinfo", kindBind, "bind", true},
		{"/proc/meminfo", kindBind, "none", true},
		{"/proc/cpuinfo", kindFS, "tmpfs", false},
		{"/proc/sys/kernel/ns_last_pid", kindBind, "bind", true},
		{"/processes", kindFS, "tmpfs", true},
		{"/tmp", kindBind, "bind", true},
	}
	for _, c := range cases {
		err := checkProcDest(c.dest, c.kind, c.fstype)
		if (err == nil) != c.ok {
			t.Errorf("%s (%s): %v, want ok=%v", c.dest, c.fstype, err, c.ok)
		}
	}
}

func TestCleanDestAndUnderRoot(t *testing.T) {
	for in, want := range map[string]string{"proc": "/proc", "/a/../../b": "/b", "/x/./y/": "/x/y", "": "/"} {
		if got := cleanDest(in); got != want {
			t.Errorf("cleanDest(%q) = %q, want %q", in, got, want)
		}
	}
	cases := []struct {
		p, want string
		ok      bool
	}{
		{"/r/root/proc/sys", "/proc/sys", true},
		{"/r/root", "/", true},
		{"/r/rootx", "", false},
		{"/etc", "", false},
	}
	for _, c := range cases {
		got, ok := underRoot("/r/root", c.p)
		if got != c.want || ok != c.ok {
			t.Errorf("underRoot(%q) = %q, %v", c.p, got, ok)
		}
	}
}

func TestBindsDev(t *testing.T) {
	if bindsDev([]specs.Mount{{Destination: "/dev", Type: "tmpfs"}}) {
		t.Errorf("tmpfs /dev counted as a bind")
	}
	if !bindsDev([]specs.Mount{{Destination: "/dev/", Type: "none", Options: []string{"rbind"}}}) {
		t.Errorf("rbind of /dev not seen")
	}
}

func TestPlanDevices(t *testing.T) {
	mode := os.FileMode(0o600)
	s := &specs.Spec{Linux: &specs.Linux{Devices: []specs.LinuxDevice{
		{Path: "/dev/null", Type: "c", Major: 1, Minor: 3, FileMode: &mode},
		{Path: "dev/fuse", Type: "c", Major: 10, Minor: 229},
	}}}
	got := planDevices(s)
	var paths []string
	for _, d := range got {
		paths = append(paths, d.Path)
	}
	want := []string{"/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", "/dev/null", "/dev/fuse"}
	if !reflect.DeepEqual(paths, want) {
		t.Errorf("paths %v, want %v", paths, want)
	}
	if *got[5].FileMode != 0o600 {
		t.Errorf("spec device did not override the default")
	}
	if n := len(planDevices(nil)); n != 6 {
		t.Errorf("default devices: %d, want 6", n)
	}
}

func TestDeviceMode(t *testing.T) {
	perm := os.FileMode(0o640)
	cases := []struct {
		d    specs.LinuxDevice
		mode uint32
		dev  int
		bad  bool
	}{
		{specs.LinuxDevice{Type: "c", Major: 1, Minor: 3}, unix.S_IFCHR | 0o666, int(unix.Mkdev(1, 3)), false},
		{specs.LinuxDevice{Type: "u", Major: 4, Minor: 64, FileMode: &perm}, unix.S_IFCHR | 0o640, int(unix.Mkdev(4, 64)), false},
		{specs.LinuxDevice{Type: "b", Major: 259, Minor: 1000}, unix.S_IFBLK | 0o666, int(unix.Mkdev(259, 1000)), false},
		{specs.LinuxDevice{Type: "p", Major: 9, FileMode: &perm}, unix.S_IFIFO | 0o640, 0, false},
		{specs.LinuxDevice{Type: "x"}, 0, 0, true},
	}
	for _, c := range cases {
		mode, dev, err := deviceMode(c.d)
		if (err != nil) != c.bad || mode != c.mode || dev != c.dev {
			t.Errorf("%+v: %o %d %v; want %o %d bad=%v", c.d, mode, dev, err, c.mode, c.dev, c.bad)
		}
	}
}

func TestDevSymlinks(t *testing.T) {
	if n := len(devSymlinks(false)); n != 4 {
		t.Errorf("without core: %d links", n)
	}
	links := devSymlinks(true)
	if last := links[len(links)-1]; last != [2]string{"/dev/core", "/proc/kcore"} {
		t.Errorf("core link %v", last)
	}
}

func TestIDMappings(t *testing.T) {
	own := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}
	ctr := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 5000, Size: 10}}
	s := &specs.Spec{Linux: &specs.Linux{UIDMappings: ctr, GIDMappings: ctr}}
	u, g, err := idMappings(specs.Mount{UIDMappings: own, GIDMappings: own}, s)
	if err != nil || u[0].HostID != 1000 || g[0].HostID != 1000 {
		t.Errorf("mount's own mappings: %v %v %v", u, g, err)
	}
	u, _, err = idMappings(specs.Mount{}, s)
	if err != nil || u[0].HostID != 5000 {
		t.Errorf("container's mappings: %v %v", u, err)
	}
	if _, _, err := idMappings(specs.Mount{Destination: "/x"}, &specs.Spec{}); err == nil {
		t.Errorf("no mappings accepted")
	}
	if got := formatMappings(append(own, ctr...)); got != "0 1000 1\n0 5000 10\n" {
		t.Errorf("formatMappings: %q", got)
	}
}

func TestWithLocked(t *testing.T) {
	cur := uintptr(unix.MS_NOSUID | unix.MS_NODEV | unix.MS_RELATIME)
	if got := withLocked(unix.MS_RDONLY, cur); got != unix.MS_RDONLY|cur {
		t.Errorf("locked flags not kept: %#x", got)
	}
	// A chosen atime mode replaces the current one.
	if got := withLocked(unix.MS_NOATIME, cur); got != unix.MS_NOATIME|unix.MS_NOSUID|unix.MS_NODEV {
		t.Errorf("atime: %#x", got)
	}
}

var (
	v1cpu    = hierarchy{Mountpoint: "/sys/fs/cgroup/cpu,cpuacct", Root: "/", Subsystems: []string{"cpu", "cpuacct"}}
	v1mem    = hierarchy{Mountpoint: "/sys/fs/cgroup/memory", Root: "/", Subsystems: []string{"memory"}}
	v1sd     = hierarchy{Mountpoint: "/sys/fs/cgroup/systemd", Root: "/", Subsystems: []string{"name=systemd"}}
	unified  = hierarchy{Mountpoint: "/sys/fs/cgroup/unified", Root: "/", V2: true}
	pureV2   = hierarchy{Mountpoint: "/sys/fs/cgroup", Root: "/", V2: true}
	ctrPaths = map[string]string{
		"cpu": "/sys/fs/cgroup/cpu,cpuacct/c1", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct/c1",
		"memory": "/sys/fs/cgroup/memory/c1", "name=systemd": "/sys/fs/cgroup/systemd/c1", "": "/sys/fs/cgroup/unified/c1",
	}
)

func TestPlanCgroupMount(t *testing.T) {
	cases := []struct {
		name string
		env  cgroupEnv
		want []cgroupStep
	}{
		{"v2 bind", cgroupEnv{Hierarchies: []hierarchy{pureV2}, Paths: map[string]string{"": "/sys/fs/cgroup/c1"}},
			[]cgroupStep{{Kind: stepBind, Source: "/sys/fs/cgroup/c1", Dest: "/sys/fs/cgroup"}}},
		{"v2 own cgroup", cgroupEnv{Hierarchies: []hierarchy{pureV2}, Self: map[string]string{"": "/user.slice/x"}},
			[]cgroupStep{{Kind: stepBind, Source: "/sys/fs/cgroup/user.slice/x", Dest: "/sys/fs/cgroup"}}},
		{"v2 namespace", cgroupEnv{Hierarchies: []hierarchy{pureV2}, NS: true},
			[]cgroupStep{{Kind: stepCgroup2, Dest: "/sys/fs/cgroup"}}},
		{"hybrid bind", cgroupEnv{Hierarchies: []hierarchy{v1cpu, v1mem, v1sd, unified}, Paths: ctrPaths},
			[]cgroupStep{
				{Kind: stepTmpfs, Dest: "/sys/fs/cgroup"},
				{Kind: stepBind, Source: "/sys/fs/cgroup/cpu,cpuacct/c1", Dest: "/sys/fs/cgroup/cpu,cpuacct"},
				{Kind: stepBind, Source: "/sys/fs/cgroup/memory/c1", Dest: "/sys/fs/cgroup/memory"},
				{Kind: stepBind, Source: "/sys/fs/cgroup/systemd/c1", Dest: "/sys/fs/cgroup/systemd"},
				{Kind: stepBind, Source: "/sys/fs/cgroup/unified/c1", Dest: "/sys/fs/cgroup/unified"},
				{Kind: stepSymlink, Source: "cpu,cpuacct", Dest: "/sys/fs/cgroup/cpu"},
				{Kind: stepSymlink, Source: "cpu,cpuacct", Dest: "/sys/fs/cgroup/cpuacct"},
			}},
		{"v1 namespace", cgroupEnv{Hierarchies: []hierarchy{v1cpu, v1sd, unified}, NS: true},
			[]cgroupStep{
				{Kind: stepTmpfs, Dest: "/sys/fs/cgroup"},
				{Kind: stepCgroup, Dest: "/sys/fs/cgroup/cpu,cpuacct", Data: "cpu,cpuacct"},
				{Kind: stepCgroup, Dest: "/sys/fs/cgroup/systemd", Data: "name=systemd"},
				{Kind: stepCgroup2, Dest: "/sys/fs/cgroup/unified"},
				{Kind: stepSymlink, Source: "cpu,cpuacct", Dest: "/sys/fs/cgroup/cpu"},
				{Kind: stepSymlink, Source: "cpu,cpuacct", Dest: "/sys/fs/cgroup/cpuacct"},
			}},
		{"v1 own cgroups, systemd key without name=", cgroupEnv{
			Hierarchies: []hierarchy{v1mem, v1sd},
			Paths:       map[string]string{"systemd": "/sys/fs/cgroup/systemd/c2"},
			Self:        map[string]string{"memory": "/a/b"}},
			[]cgroupStep{
				{Kind: stepTmpfs, Dest: "/sys/fs/cgroup"},
				{Kind: stepBind, Source: "/sys/fs/cgroup/memory/a/b", Dest: "/sys/fs/cgroup/memory"},
				{Kind: stepBind, Source: "/sys/fs/cgroup/systemd/c2", Dest: "/sys/fs/cgroup/systemd"},
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := planCgroupMount("/sys/fs/cgroup", c.env)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("plan\n got %+v\nwant %+v", got, c.want)
			}
		})
	}
	if _, err := planCgroupMount("/c", cgroupEnv{Hierarchies: []hierarchy{v1mem}}); err == nil {
		t.Errorf("no known cgroup path accepted")
	}
	nested := hierarchy{Mountpoint: "/sys/fs/cgroup/memory", Root: "/ctr", Subsystems: []string{"memory"}}
	if _, err := planCgroupMount("/c", cgroupEnv{Hierarchies: []hierarchy{nested}, Self: map[string]string{"memory": "/other"}}); err == nil {
		t.Errorf("own cgroup outside the mount's root accepted")
	}
	if _, err := planCgroupMount("/c", cgroupEnv{}); err == nil {
		t.Errorf("host without cgroups accepted")
	}
}

func TestHierarchiesFrom(t *testing.T) {
	infos := []*mountinfo.Info{
		{Mountpoint: "/elsewhere/memory", Root: "/", FSType: "cgroup", VFSOptions: "rw,memory"},
		{Mountpoint: "/sys/fs/cgroup/cpu,cpuacct", Root: "/", FSType: "cgroup", VFSOptions: "rw,cpu,cpuacct"},
		{Mountpoint: "/sys/fs/cgroup/memory", Root: "/", FSType: "cgroup", VFSOptions: "rw,memory"},
		{Mountpoint: "/sys/fs/cgroup/systemd", Root: "/", FSType: "cgroup", VFSOptions: "rw,xattr,release_agent=/x,name=systemd"},
		{Mountpoint: "/sys/fs/cgroup/unified", Root: "/", FSType: "cgroup2", VFSOptions: "rw,nsdelegate"},
		{Mountpoint: "/other/unified", Root: "/", FSType: "cgroup2", VFSOptions: "rw"},
	}
	got := hierarchiesFrom(infos)
	want := []hierarchy{
		{Mountpoint: "/sys/fs/cgroup/cpu,cpuacct", Root: "/", Subsystems: []string{"cpu", "cpuacct"}},
		{Mountpoint: "/sys/fs/cgroup/memory", Root: "/", Subsystems: []string{"memory"}},
		{Mountpoint: "/sys/fs/cgroup/systemd", Root: "/", Subsystems: []string{"name=systemd"}},
		{Mountpoint: "/sys/fs/cgroup/unified", Root: "/", V2: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("hierarchies\n got %+v\nwant %+v", got, want)
	}
	if u := onlyUnified(got); len(u) != 1 || !u[0].V2 {
		t.Errorf("onlyUnified: %+v", u)
	}
	// With nothing under /sys/fs/cgroup, mounts elsewhere are used.
	got = hierarchiesFrom(infos[:1])
	if len(got) != 1 || got[0].Mountpoint != "/elsewhere/memory" {
		t.Errorf("hierarchies elsewhere: %+v", got)
	}
}

func TestParseCgroupFile(t *testing.T) {
	in := "12:cpu,cpuacct:/a\n9:name=systemd:/sd\n0::/unified\nbroken\n"
	got, err := parseCgroupFile(bufio.NewScanner(strings.NewReader(in)))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"cpu": "/a", "cpuacct": "/a", "name=systemd": "/sd", "": "/unified"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
