package rootfs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestSetupDefaultSpec(t *testing.T) {
	bundle, rootfs, s := newBundle(t)
	_, kerr := os.Stat("/proc/kcore")
	probes := []probe{
		{"cwd", ""},           // 0
		{"ls", "/"},           // 1
		{"mounts", ""},        // 2
		{"mount", "/proc"},    // 3
		{"mount", "/dev"},     // 4
		{"mount", "/dev/pts"}, // 5
		{"mount", "/sys"},     // 6
		{"mount", "/dev/shm"}, // 7
		{"stat", "/dev/null"}, // 8
		{"stat", "/dev/tty"},  // 9
		{"readlink", "/dev/ptmx"},
		{"readlink", "/dev/fd"},
		{"readlink", "/dev/stderr"},
		{"readlink", "/dev/core"},
		{"write", "/proc/sys/kernel/hostname"},
		{"mount", "/proc/sys"},
		{"stat", "/proc/kcore"},
		{"read", "/etc/passwd"},
		{"console", ""},
		{"write", "/probe"},
	}
	res := mustRun(t, childConfig{Spec: s, Rootfs: rootfs, Bundle: bundle, Probes: probes}, childOpts{Cloneflags: unix.CLONE_NEWPID})
	expectOK(t, "cwd", res[0], "/")
	if res[0].Out != "/" {
		t.Errorf("cwd %q, want /", res[0].Out)
	}
	expectOK(t, "ls /", res[1], "bin", "etc", "proc")
	expectOK(t, "mounts", res[2], "/proc", "/dev/mqueue", "/sys/fs/cgroup")
	// The old root is gone: every mount lies at or under a spec mount.
	for _, mp := range strings.Split(res[2].Out, "\n") {
		if mp != "/" && !underSpecMount(s, mp) {
			t.Errorf("mount %s does not belong to the container (old root left over?)", mp)
		}
	}
	expectOK(t, "/proc", res[3], "fstype=proc")
	expectOK(t, "/dev", res[4], "fstype=tmpfs", "nosuid", "mode=755")
	expectOK(t, "/dev/pts", res[5], "fstype=devpts", "ptmxmode=666")
	expectOK(t, "/sys", res[6], "fstype=sysfs", "ro,")
	expectOK(t, "/dev/shm", res[7], "fstype=tmpfs", "nodev", "noexec", "size=65536k")
	expectOK(t, "/dev/null", res[8], "type=c perm=666 major=1 minor=3 uid=0 gid=0")
	expectOK(t, "/dev/tty", res[9], "type=c perm=666 major=5 minor=0")
	expectOK(t, "/dev/ptmx", res[10], "pts/ptmx")
	expectOK(t, "/dev/fd", res[11], "/proc/self/fd")
	expectOK(t, "/dev/stderr", res[12], "/proc/self/fd/2")
	if kerr == nil {
		expectOK(t, "/dev/core", res[13], "/proc/kcore")
	} else {
		expectErr(t, "/dev/core", res[13], "ENOENT")
	}
	expectErr(t, "write readonly /proc/sys", res[14], "EROFS")
	expectOK(t, "/proc/sys", res[15], "opts=ro,", "root=/sys")
	if kerr == nil {
		expectOK(t, "masked /proc/kcore", res[16], "type=c", "major=1 minor=3")
	}
	expectOK(t, "/etc/passwd", res[17], "root:x:0:0")
	expectOK(t, "console", res[18], "same=true")
	expectOK(t, "write into rootfs", res[19])
}

func TestBindMounts(t *testing.T) {
	bundle, rootfs, s := newBundle(t)
	must(t, os.MkdirAll(filepath.Join(bundle, "data"), 0o755))
	must(t, os.WriteFile(filepath.Join(bundle, "data", "hello"), []byte("hi"), 0o644))
	must(t, os.WriteFile(filepath.Join(bundle, "hostname"), []byte("box\n"), 0o644))
	s.Mounts = append(s.Mounts,
		specs.Mount{Destination: "/data", Type: "bind", Source: "data", Options: []string{"rbind", "ro", "nosuid", "nodev"}},
		specs.Mount{Destination: "/etc/hostname", Type: "bind", Source: filepath.Join(bundle, "hostname"), Options: []string{"bind", "ro"}},
		specs.Mount{Destination: "/hostcg-r", Type: "none", Source: "/sys/fs/cgroup", Options: []string{"rbind"}},
		specs.Mount{Destination: "/hostcg", Type: "bind", Source: "/sys/fs/cgroup", Options: []string{"noexec", "nosymfollow"}},
		specs.Mount{Destination: "/data-rro", Type: "bind", Source: "data", Options: []string{"rbind", "rro"}},
	)
	probes := []probe{
		{"read", "/data/hello"},    // 0
		{"write", "/data/new"},     // 1
		{"mount", "/data"},         // 2
		{"read", "/etc/hostname"},  // 3
		{"stat", "/etc/hostname"},  // 4
		{"mount", "/hostcg-r"},     // 5
		{"ls", "/hostcg-r"},        // 6
		{"mount", "/hostcg"},       // 7
		{"write", "/data-rro/new"}, // 8
		{"mount", "/data-rro"},     // 9
	}
	res := mustRun(t, childConfig{Spec: s, Rootfs: rootfs, Bundle: bundle, Probes: probes}, childOpts{Cloneflags: unix.CLONE_NEWPID})
	expectOK(t, "read bind", res[0], "hi")
	expectErr(t, "write ro bind", res[1], "EROFS")
	expectOK(t, "ro bind", res[2], "opts=ro,nosuid,nodev")
	expectOK(t, "file bind", res[3], "box")
	expectOK(t, "file bind target", res[4], "type=f")
	// Whatever the host mounts below its /sys/fs/cgroup (a tmpfs of v1
	// hierarchies, or nothing for cgroup v2), rbind brings it along and
	// bind does not.
	subs, _ := os.ReadDir("/sys/fs/cgroup")
	var sub string
	for _, e := range subs {
		if isMountPoint(filepath.Join("/sys/fs/cgroup", e.Name())) {
			sub = e.Name()
			break
		}
	}
	if sub != "" {
		expectOK(t, "rbind listing", res[6], sub)
	}
	expectOK(t, "rbind", res[5], "root=/")
	expectOK(t, "bind flags", res[7], "noexec", "nosymfollow")
	expectErr(t, "write rro", res[8], "EROFS")
	expectOK(t, "rro", res[9], "opts=ro")
	if _, err := os.Stat(filepath.Join(bundle, "data", "new")); err == nil {
		t.Errorf("write through read-only bind reached the host")
	}
	if sub == "" {
		return
	}
	// Check the non-recursive bind separately: its sub-mount must be absent.
	s2 := *s
	s2.Mounts = []specs.Mount{{Destination: "/proc", Type: "proc", Source: "proc"}, {Destination: "/hostcg", Type: "bind", Source: "/sys/fs/cgroup", Options: []string{"bind"}}}
	res = mustRun(t, childConfig{Spec: &s2, Rootfs: rootfs, Bundle: bundle, SkipFinalize: true, Probes: []probe{
		{"mount", "/hostcg/" + sub}, {"mount", "/hostcg"},
	}}, childOpts{})
	expectErr(t, "bind is not recursive", res[0], "not a mount")
	expectOK(t, "bind", res[1], "root=/")
}

func isMountPoint(p string) bool {
	infos, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(p))
	return err == nil && len(infos) > 0
}

func underSpecMount(s *specs.Spec, p string) bool {
	for _, m := range s.Mounts {
		if p == m.Destination || strings.HasPrefix(p, m.Destination+"/") {
			return true
		}
	}
	return false
}

func TestTmpfsAndCopyUp(t *testing.T) {
	bundle, rootfs, s := newBundle(t)
	must(t, os.MkdirAll(filepath.Join(rootfs, "opt", "a"), 0o750))
	must(t, os.Chmod(filepath.Join(rootfs, "opt", "a"), 0o750))
	must(t, os.WriteFile(filepath.Join(rootfs, "opt", "a", "b.txt"), []byte("content"), 0o640))
	must(t, os.Chown(filepath.Join(rootfs, "opt", "a", "b.txt"), 1000, 1001))
	must(t, os.Symlink("a/b.txt", filepath.Join(rootfs, "opt", "link")))
	must(t, unix.Mkfifo(filepath.Join(rootfs, "opt", "fifo"), 0o600))
	s.Mounts = append(s.Mounts,
		specs.Mount{Destination: "/run/t", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1750", "size=1m", "x-berth.comment"}},
		specs.Mount{Destination: "/opt", Type: "tmpfs", Source: "tmpfs", Options: []string{"tmpcopyup", "ro", "mode=755"}},
		specs.Mount{Destination: "/etc", Type: "tmpfs", Source: "tmpfs", Options: []string{"tmpcopyup"}},
	)
	probes := []probe{
		{"stat", "/run/t"},        // 0
		{"mount", "/run/t"},       // 1
		{"read", "/opt/a/b.txt"},  // 2
		{"stat", "/opt/a/b.txt"},  // 3
		{"stat", "/opt/a"},        // 4
		{"readlink", "/opt/link"}, // 5
		{"write", "/opt/new"},     // 6
		{"mount", "/opt"},         // 7
		{"stat", "/opt/fifo"},     // 8
		{"read", "/etc/passwd"},   // 9
		{"write", "/etc/new"},     // 10
		{"mount", "/etc"},         // 11
	}
	res := mustRun(t, childConfig{Spec: s, Rootfs: rootfs, Bundle: bundle, Probes: probes}, childOpts{Cloneflags: unix.CLONE_NEWPID})
	expectOK(t, "tmpfs mode", res[0], "type=d perm=1750")
	expectOK(t, "tmpfs options", res[1], "fstype=tmpfs", "nosuid,nodev", "size=1024k", "mode=1750")
	expectOK(t, "copied file", res[2], "content")
	expectOK(t, "copied file attrs", res[3], "type=f perm=640", "uid=1000 gid=1001")
	expectOK(t, "copied dir attrs", res[4], "type=d perm=750")
	expectOK(t, "copied link", res[5], "a/b.txt")
	expectErr(t, "ro copyup", res[6], "EROFS")
	expectOK(t, "ro copyup mount", res[7], "fstype=tmpfs", "opts=ro")
	expectOK(t, "copied fifo", res[8], "type=p perm=600")
	expectOK(t, "copied /etc", res[9], "root:x:0:0")
	expectOK(t, "write copied /etc", res[10])
	expectOK(t, "/etc tmpfs", res[11], "fstype=tmpfs", "opts=rw")
	if _, err := os.Stat(filepath.Join(rootfs, "etc", "new")); err == nil {
		t.Errorf("write into the copy-up tmpfs reached the rootfs")
	}
}

func TestPropagation(t *testing.T) {
	bundle, rootfs, s := newBundle(t)
	s.Mounts = append(s.Mounts,
		specs.Mount{Destination: "/shared", Type: "tmpfs", Source: "tmpfs", Options: []string{"rshared"}},
		specs.Mount{Destination: "/private", Type: "tmpfs", Source: "tmpfs", Options: []string{"shared", "private"}},
		specs.Mount{Destination: "/unbindable", Type: "tmpfs", Source: "tmpfs", Options: []string{"unbindable"}},
	)
	probes := []probe{{"mount", "/shared"}, {"mount", "/private"}, {"mount", "/unbindable"}, {"mount", "/"}}
	res := mustRun(t, childConfig{Spec: s, Rootfs: rootfs, Bundle: bundle, Probes: probes}, childOpts{})
	expectOK(t, "rshared", res[0], "optional=shared:")
	expectOK(t, "private", res[1], "optional= ")
	expectOK(t, "unbindable", res[2], "optional=unbindable")
	if strings.Contains(res[3].Out, "shared:") {
		t.Errorf("/ is shared without rootfsPropagation: %s", res[3].Out)
	}

	s.Linux.RootfsPropagation = "rshared"
	res = mustRun(t, childConfig{Spec: s, Rootfs: rootfs, Bundle: bundle, Probes: []probe{{"mount", "/"}}}, childOpts{})
	expectOK(t, "rootfsPropagation rshared", res[0], "optional=shared:")

	s.Linux.RootfsPropagation = "bogus"
	rep := runChild(t, childConfig{Spec: s, Rootfs: rootfs, Bundle: bundle}, childOpts{})
	if !strings.Contains(rep.SetupErr, "not a propagation mode") {
		t.Errorf("bad rootfsPropagation: setup error %q", rep.SetupErr)
	}
}

func TestDevices(t *testing.T) {
	bundle, rootfs, s := newBundle(t)
	mode := func(m os.FileMode) *os.FileMode { return &m }
	id := func(v uint32) *uint32 { return &v }
	s.Linux.Devices = []specs.LinuxDevice{
		{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, FileMode: mode(0o640), UID: id(1000), GID: id(1001)},
		{Path: "/dev/disk/test0", Type: "b", Major: 7, Minor: 200, FileMode: mode(0o600)},
		{Path: "/dev/pipe0", Type: "p", FileMode: mode(0o620)},
		{Path: "/dev/null", Type: "c", Major: 1, Minor: 3, FileMode: mode(0o600)},
	}
	probes := []probe{{"stat", "/dev/fuse"}, {"stat", "/dev/disk/test0"}, {"stat", "/dev/pipe0"}, {"stat", "/dev/null"}, {"stat", "/dev/zero"}}
	res := mustRun(t, childConfig{Spec: s, Rootfs: rootfs, Bundle: bundle, Probes: probes}, childOpts{})
	expectOK(t, "char device", res[0], "type=c perm=640 major=10 minor=229 uid=1000 gid=1001")
	expectOK(t, "block device", res[1], "type=b perm=600 major=7 minor=200 uid=0 gid=0")
	expectOK(t, "fifo", res[2], "type=p perm=620")
	expectOK(t, "spec overrides default", res[3], "type=c perm=600 major=1 minor=3")
	expectOK(t, "default device", res[4], "type=c perm=666 major=1 minor=5")

	// In a user namespace devices are bound from the host instead.
	s.Linux.Devices = nil
	res = mustRun(t, childConfig{Spec: s, Rootfs: rootfs, Bundle: bundle, UserNS: true, Probes: []probe{
		{"stat", "/dev/null"}, {"mount", "/dev/null"}, {"write", "/dev/null"},
	}}, childOpts{})
	expectOK(t, "bound device", res[0], "type=c", "major=1 minor=3")
	expectOK(t, "bound device mount", res[1], "fstype=devtmpfs")
	expectOK(t, "write bound /dev/null", res[2])
}

func TestMaskedAndReadonlyPaths(t *testing.T) {
	bundle, rootfs, s := newBundle(t)
	must(t, os.MkdirAll(filepath.Join(rootfs, "secret"), 0o755))
	must(t, os.WriteFile(filepath.Join(rootfs, "secret", "key"), []byte("k"), 0o600))
	must(t, os.WriteFile(filepath.Join(rootfs, "etc", "token"), []byte("t"), 0o600))
	s.Linux.MaskedPaths = []string{"/secret", "/etc/token", "/does/not/exist"}
	s.Linux.ReadonlyPaths = []string{"/var", "/proc/sys", "/missing"}
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs"})
	s.Root.Readonly = true
	probes := []probe{
		{"ls", "/secret"},      // 0
		{"write", "/secret/x"}, // 1
		{"read", "/etc/token"}, // 2
		{"stat", "/etc/token"}, // 3
		{"write", "/var/x"},    // 4
		{"mount", "/var"},      // 5
		{"write", "/root/x"},   // 6
		{"mount", "/"},         // 7
		{"write", "/tmp/x"},    // 8
		{"mount", "/secret"},   // 9
	}
	res := mustRun(t, childConfig{Spec: s, Rootfs: rootfs, Bundle: bundle, Probes: probes}, childOpts{Cloneflags: unix.CLONE_NEWPID})
	if res[0].Err != "" || res[0].Out != "" {
		t.Errorf("masked dir: %+v, want empty listing", res[0])
	}
	expectErr(t, "write masked dir", res[1], "EROFS")
	if res[2].Err != "" || res[2].Out != "" {
		t.Errorf("masked file: %+v, want empty read", res[2])
	}
	expectOK(t, "masked file is /dev/null", res[3], "type=c", "major=1 minor=3")
	expectErr(t, "write readonly path", res[4], "EROFS")
	expectOK(t, "readonly path", res[5], "opts=ro")
	expectErr(t, "write readonly root", res[6], "EROFS")
	expectOK(t, "readonly root", res[7], "opts=ro")
	expectOK(t, "tmpfs on readonly root", res[8])
	expectOK(t, "masking tmpfs", res[9], "fstype=tmpfs", "opts=ro")
}

func TestSymlinkEscape(t *testing.T) {
	bundle, rootfs, s := newBundle(t)
	name := fmt.Sprintf("berth-rootfs-escape-%d", os.Getpid())
	must(t, os.Symlink("/etc", filepath.Join(rootfs, "evil")))
	must(t, os.Symlink("../../../../../../../../etc", filepath.Join(rootfs, "evil2")))
	// A dangling link: its target gets made inside the rootfs.
	must(t, os.Symlink(filepath.Join("/nonexistent", name), filepath.Join(rootfs, "dangling")))
	must(t, os.MkdirAll(filepath.Join(bundle, "src"), 0o755))
	must(t, os.WriteFile(filepath.Join(bundle, "file"), []byte("f"), 0o644))
	t.Cleanup(func() {
		for _, p := range []string{"/etc/" + name, "/etc/" + name + "-2", "/etc/" + name + "-3"} {
			_ = os.Remove(p)
		}
	})
	s.Mounts = append(s.Mounts,
		specs.Mount{Destination: "/evil/" + name, Type: "tmpfs", Source: "tmpfs"},
		specs.Mount{Destination: "/evil2/" + name + "-2", Type: "bind", Source: "src", Options: []string{"bind"}},
		specs.Mount{Destination: "/evil/" + name + "-3", Type: "bind", Source: "file", Options: []string{"bind"}},
		specs.Mount{Destination: "/dangling/x", Type: "tmpfs", Source: "tmpfs"},
	)
	probes := []probe{{"mount", "/etc/" + name}, {"mount", "/etc/" + name + "-2"}, {"read", "/etc/" + name + "-3"}, {"mount", "/nonexistent/" + name + "/x"}}
	res := mustRun(t, childConfig{Spec: s, Rootfs: rootfs, Bundle: bundle, Probes: probes}, childOpts{})
	expectOK(t, "mount through absolute symlink stays in root", res[0], "fstype=tmpfs")
	expectOK(t, "mount through relative symlink stays in root", res[1], "fstype=ext4")
	expectOK(t, "file mount through symlink stays in root", res[2], "f")
	expectOK(t, "mount through dangling symlink made inside root", res[3], "fstype=tmpfs")
	if _, err := os.Lstat(filepath.Join("/nonexistent", name)); err == nil {
		t.Errorf("dangling link target made on the host")
	}
	for _, p := range []string{"/etc/" + name, "/etc/" + name + "-2", "/etc/" + name + "-3"} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("host path %s was created", p)
		}
	}
	if _, err := os.Stat(filepath.Join(rootfs, "etc", name)); err != nil {
		t.Errorf("mount point not made inside the rootfs: %v", err)
	}
}

func TestProcGuard(t *testing.T) {
	bundle, rootfs, s := newBundle(t)
	must(t, os.Symlink("/proc", filepath.Join(rootfs, "p")))
	cases := []struct {
		name  string
		mount specs.Mount
		ok    bool
	}{
		{"tmpfs over /proc/sys", specs.Mount{Destination: "/proc/sys", Type: "tmpfs", Source: "tmpfs"}, false},
		{"bind over /proc", specs.Mount{Destination: "/proc", Type: "bind", Source: "/tmp"}, false},
		{"tmpfs through a link into /proc", specs.Mount{Destination: "/p/sys", Type: "tmpfs", Source: "tmpfs"}, false},
		{"bind onto /proc/uptime", specs.Mount{Destination: "/proc/uptime", Type: "bind", Source: "/proc/uptime", Options: []string{"bind", "ro"}}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cs := *s
			cs.Mounts = append(append([]specs.Mount(nil), s.Mounts...), c.mount)
			rep := runChild(t, childConfig{Spec: &cs, Rootfs: rootfs, Bundle: bundle, SkipFinalize: true}, childOpts{Cloneflags: unix.CLONE_NEWPID})
			if c.ok && rep.SetupErr != "" {
				t.Errorf("setup: %s", rep.SetupErr)
			}
			if !c.ok && !strings.Contains(rep.SetupErr, "under /proc") {
				t.Errorf("setup error %q, want a refusal", rep.SetupErr)
			}
		})
	}
}

func TestCgroupMount(t *testing.T) {
	bundle, rootfs, s := newBundle(t)
	hs, err := hostHierarchies()
	if err != nil {
		t.Fatal(err)
	}
	env := cgroupEnv{Hierarchies: hs}
	var probes []probe
	paths := map[string]string{}
	if env.unifiedOnly() {
		probes = append(probes, probe{"mount", "/sys/fs/cgroup"}, probe{"write", "/sys/fs/cgroup/x"})
	} else {
		// Give the container its own pids cgroup, as the runtime would.
		var pidsDir string
		for _, h := range hs {
			if len(h.Subsystems) == 1 && h.Subsystems[0] == "pids" {
				pidsDir = filepath.Join(h.Mountpoint, fmt.Sprintf("berth-rootfs-test-%d", os.Getpid()))
			}
		}
		if pidsDir != "" {
			must(t, os.Mkdir(pidsDir, 0o755))
			t.Cleanup(func() { _ = os.Remove(pidsDir) })
			paths["pids"] = pidsDir
		}
		probes = append(probes, probe{"mount", "/sys/fs/cgroup"}, probe{"write", "/sys/fs/cgroup/x"},
			probe{"mount", "/sys/fs/cgroup/pids"}, probe{"ls", "/sys/fs/cgroup"}, probe{"mount", "/sys/fs/cgroup/memory"})
	}
	// A mount that names cgroup2 gets the unified hierarchy alone.
	ms := *s
	ms.Mounts = append(append([]specs.Mount(nil), s.Mounts...), specs.Mount{Destination: "/cg2", Type: "cgroup2", Source: "cgroup2", Options: []string{"ro", "nosuid"}})
	probes = append(probes, probe{"mount", "/cg2"})
	res := mustRun(t, childConfig{Spec: &ms, Rootfs: rootfs, Bundle: bundle, CgroupPaths: paths, Probes: probes}, childOpts{})
	expectOK(t, "cgroup2 by name", res[len(res)-1], "fstype=cgroup2", "opts=ro,nosuid")
	if env.unifiedOnly() {
		expectOK(t, "cgroup2 bind", res[0], "fstype=cgroup2", "opts=ro")
		expectErr(t, "write cgroup", res[1], "EROFS")
	} else {
		expectOK(t, "cgroup tmpfs", res[0], "fstype=tmpfs", "opts=ro")
		expectErr(t, "write cgroup tmpfs", res[1], "EROFS")
		if p := paths["pids"]; p != "" {
			expectOK(t, "pids bind", res[2], "fstype=cgroup", "opts=ro", "root=/"+filepath.Base(p))
		}
		expectOK(t, "hierarchies", res[3], "memory", "pids")
		self, err := cgroupsIn("/proc/self/cgroup")
		if err != nil {
			t.Fatal(err)
		}
		expectOK(t, "memory bind of own cgroup", res[4], "fstype=cgroup", "root="+self["memory"])
	}

	// With a cgroup namespace the filesystems are mounted, rooted at the
	// namespace's root.
	nsProbes := []probe{{"mount", "/sys/fs/cgroup"}}
	if !env.unifiedOnly() {
		nsProbes = append(nsProbes, probe{"mount", "/sys/fs/cgroup/memory"}, probe{"mount", "/sys/fs/cgroup/unified"})
	}
	res = mustRun(t, childConfig{Spec: s, Rootfs: rootfs, Bundle: bundle, CgroupNS: true, Probes: nsProbes},
		childOpts{Cloneflags: unix.CLONE_NEWCGROUP})
	if env.unifiedOnly() {
		expectOK(t, "cgroup2 in namespace", res[0], "fstype=cgroup2", "root=/")
		return
	}
	expectOK(t, "tmpfs", res[0], "fstype=tmpfs")
	expectOK(t, "memory in namespace", res[1], "fstype=cgroup", "super=rw,memory")
	if !strings.HasSuffix(res[1].Out, "root=/") {
		t.Errorf("memory in namespace: %q is not rooted at the namespace root", res[1].Out)
	}
	if hasV2(hs) {
		expectOK(t, "unified in namespace", res[2], "fstype=cgroup2", "root=/")
	}
}

func hasV2(hs []hierarchy) bool {
	for _, h := range hs {
		if h.V2 {
			return true
		}
	}
	return false
}

func TestNoPivot(t *testing.T) {
	bundle, rootfs, s := newBundle(t)
	probes := []probe{{"ls", "/"}, {"cwd", ""}, {"read", "/etc/passwd"}, {"mount", "/proc"}, {"stat", "/dev/null"}, {"write", "/proc/sys/kernel/hostname"}}
	res := mustRun(t, childConfig{Spec: s, Rootfs: rootfs, Bundle: bundle, NoPivot: true, Probes: probes}, childOpts{Cloneflags: unix.CLONE_NEWPID})
	expectOK(t, "ls /", res[0], "bin", "etc")
	if res[1].Out != "/" {
		t.Errorf("cwd %q, want /", res[1].Out)
	}
	expectOK(t, "passwd", res[2], "root:x:0:0")
	expectOK(t, "proc", res[3], "fstype=proc")
	expectOK(t, "null", res[4], "type=c", "major=1 minor=3")
	expectErr(t, "readonly path", res[5], "EROFS")
}

func TestIDMappedMount(t *testing.T) {
	bundle, rootfs, s := newBundle(t)
	src := filepath.Join(bundle, "ids")
	must(t, os.MkdirAll(src, 0o755))
	must(t, os.WriteFile(filepath.Join(src, "f"), nil, 0o644))
	must(t, os.Chown(filepath.Join(src, "f"), 0, 0))
	m := specs.Mount{Destination: "/ids", Type: "bind", Source: "ids", Options: []string{"bind", "idmap"},
		UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}},
		GIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}}}
	s.Mounts = append(s.Mounts, m)
	res := mustRun(t, childConfig{Spec: s, Rootfs: rootfs, Bundle: bundle, Probes: []probe{{"stat", "/ids/f"}, {"mount", "/ids"}}}, childOpts{Cloneflags: unix.CLONE_NEWPID})
	expectOK(t, "idmapped file", res[0], "uid=100000 gid=200000")
	expectOK(t, "idmapped mount", res[1], "idmapped")

	// sysfs cannot be idmapped: the error must say so.
	s.Mounts = append(s.Mounts[:len(s.Mounts)-1], specs.Mount{Destination: "/ksys", Type: "bind", Source: "/sys/kernel", Options: []string{"rbind", "ridmap"},
		UIDMappings: m.UIDMappings, GIDMappings: m.GIDMappings})
	rep := runChild(t, childConfig{Spec: s, Rootfs: rootfs, Bundle: bundle}, childOpts{Cloneflags: unix.CLONE_NEWPID})
	if !strings.Contains(rep.SetupErr, "does not support idmapped mounts") {
		t.Errorf("idmap on sysfs: setup error %q", rep.SetupErr)
	}
}

func TestUserNamespace(t *testing.T) {
	bundle, rootfs, s := newBundle(t)
	probes := []probe{{"mount", "/sys"}, {"stat", "/dev/null"}, {"mount", "/dev/null"}, {"ls", "/sys/kernel"}, {"write", "/proc/sys/kernel/hostname"}}
	res := mustRun(t, childConfig{Spec: s, Rootfs: rootfs, Bundle: bundle, UserNS: true, Probes: probes},
		childOpts{Cloneflags: unix.CLONE_NEWPID | unix.CLONE_NEWIPC, FullUserNS: true})
	expectOK(t, "sysfs falls back to a bind", res[0], "fstype=sysfs", "opts=ro")
	expectOK(t, "device bound", res[1], "type=c", "major=1 minor=3")
	expectOK(t, "device mount", res[2], "fstype=devtmpfs")
	expectOK(t, "sysfs content", res[3], "mm")
	expectErr(t, "readonly path", res[4], "EROFS")
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A user namespace's root mapped to an unprivileged host id cannot walk to
// a rootfs under a private directory; a handle opened before still works.
func TestUserNamespaceRootfsHandle(t *testing.T) {
	bundle, rootfs, s := newBundle(t)
	const hostRoot = 100000
	must(t, os.Chmod(bundle, 0o700))
	must(t, filepath.Walk(rootfs, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, hostRoot, hostRoot)
	}))
	// The caller hands over a detached copy of the rootfs mount tree.
	tree, err := unix.OpenTree(unix.AT_FDCWD, rootfs, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	must(t, err)
	dir := os.NewFile(uintptr(tree), "rootfs")
	t.Cleanup(func() { dir.Close() })
	probes := []probe{{"ls", "/"}, {"write", "/root/x"}, {"stat", "/root/x"}, {"mount", "/proc"}, {"stat", "/dev/null"}}
	res := mustRun(t, childConfig{Spec: s, Rootfs: "/proc/self/fd/3", Bundle: bundle, UserNS: true, Probes: probes},
		childOpts{Cloneflags: unix.CLONE_NEWPID | unix.CLONE_NEWIPC, MappedRoot: hostRoot, ExtraFiles: []*os.File{dir}})
	expectOK(t, "ls /", res[0], "bin", "etc")
	expectOK(t, "write", res[1])
	expectOK(t, "owner", res[2], "uid=0 gid=0")
	expectOK(t, "proc", res[3], "fstype=proc")
	expectOK(t, "device", res[4], "type=c", "major=1 minor=3")
	if _, err := os.Stat(filepath.Join(rootfs, "root", "x")); err != nil {
		t.Errorf("write did not land in the rootfs: %v", err)
	}

	// The plain path cannot be walked: the failure says so.
	rep := runChild(t, childConfig{Spec: s, Rootfs: rootfs, Bundle: bundle, UserNS: true},
		childOpts{Cloneflags: unix.CLONE_NEWPID | unix.CLONE_NEWIPC, MappedRoot: hostRoot})
	if !strings.Contains(rep.SetupErr, "permission denied") {
		t.Errorf("unreachable rootfs path: setup error %q", rep.SetupErr)
	}
}
