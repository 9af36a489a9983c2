package specgen

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-containers/berth/internal/errdefs"
)

func TestResolveUser(t *testing.T) {
	passwd := []byte("# comment\nroot:x:0:0:root:/root:/bin/sh\nbroken:x:abc:0::/:/bin/sh\nalice:x:1000:100:Alice:/home/alice:/bin/sh\nbob:x:1001:1001::/home/bob:/bin/sh\n")
	group := []byte("root:x:0:\nusers:x:100:\nstaff:x:50:alice,bob\ndev:x:60:alice\nbob:x:1001:\n")
	tests := []struct {
		spec     string
		groupAdd []string
		passwd   []byte
		group    []byte
		want     specs.User
		home     string
		err      string
	}{
		{spec: "", passwd: passwd, group: group, want: specs.User{AdditionalGids: []uint32{0}}, home: "/root"},
		{spec: "alice", passwd: passwd, group: group, want: specs.User{UID: 1000, GID: 100, AdditionalGids: []uint32{100, 50, 60}}, home: "/home/alice"},
		{spec: "1000", passwd: passwd, group: group, want: specs.User{UID: 1000, GID: 100, AdditionalGids: []uint32{100, 50, 60}}, home: "/home/alice"},
		{spec: "alice:staff", passwd: passwd, group: group, want: specs.User{UID: 1000, GID: 50, AdditionalGids: []uint32{50}}, home: "/home/alice"},
		{spec: "alice:7", passwd: passwd, group: group, want: specs.User{UID: 1000, GID: 7, AdditionalGids: []uint32{7}}, home: "/home/alice"},
		{spec: "5000", passwd: passwd, group: group, want: specs.User{UID: 5000, AdditionalGids: []uint32{0}}, home: "/"},
		{spec: "5000:5000", passwd: nil, group: nil, want: specs.User{UID: 5000, GID: 5000, AdditionalGids: []uint32{5000}}, home: "/"},
		{spec: "bob", groupAdd: []string{"dev", "77", "staff"}, passwd: passwd, group: group, want: specs.User{UID: 1001, GID: 1001, AdditionalGids: []uint32{1001, 50, 60, 77}}, home: "/home/bob"},
		{spec: "", passwd: nil, group: nil, want: specs.User{AdditionalGids: []uint32{0}}, home: "/"},
		{spec: "carol", passwd: passwd, group: group, err: "unable to find user carol: no matching entries in passwd file"},
		{spec: "carol", passwd: nil, group: nil, err: "unable to find user carol: no matching entries in passwd file"},
		{spec: "broken", passwd: passwd, group: group, err: "unable to find user broken"},
		{spec: "alice:wheel", passwd: passwd, group: group, err: "unable to find group wheel: no matching entries in group file"},
		{spec: "-1", passwd: passwd, group: group, err: "uid out of range"},
		{spec: "1:-5", passwd: passwd, group: group, err: "gid out of range"},
	}
	for _, tc := range tests {
		t.Run(tc.spec+"/"+strings.Join(tc.groupAdd, ","), func(t *testing.T) {
			u, home, err := resolveUser(tc.spec, tc.groupAdd, tc.passwd, tc.group)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("error %v, want invalid %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			equal(t, "user", u, tc.want)
			equal(t, "home", home, tc.home)
		})
	}
}

// TestPasswdSymlinkStaysInRoot: an image whose /etc/passwd is a symlink
// pointing out of its root must not make us read the host's file.
func TestPasswdSymlinkStaysInRoot(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "rootfs")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{filepath.Join(root, "etc"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "passwd"), []byte("escapee:x:4242:4242::/:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{
		"relative": "../../outside/passwd",
		"absolute": outside + "/passwd",
	} {
		t.Run(name, func(t *testing.T) {
			link := filepath.Join(root, "etc", "passwd")
			_ = os.Remove(link)
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			data, err := readIDFile(root, "/etc/passwd")
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if strings.Contains(string(data), "escapee") {
				t.Fatalf("read the file outside the root through a symlink")
			}
			in := baseInput(t)
			in.Rootfs = root
			in.Config.User = "escapee"
			if _, err := Generate(in); err == nil || !strings.Contains(err.Error(), "unable to find user escapee") {
				t.Fatalf("error %v, want the user not found", err)
			}
			in.Config.User = "4242"
			s := generate(t, in)
			equal(t, "numeric user", s.Process.User.UID, uint32(4242))
		})
	}
	// A symlink that stays inside the root is followed within it.
	if err := os.WriteFile(filepath.Join(root, "passwd.real"), []byte("inside:x:7:7::/in:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(root, "etc", "passwd")
	_ = os.Remove(link)
	if err := os.Symlink("/passwd.real", link); err != nil {
		t.Fatal(err)
	}
	data, err := readIDFile(root, "/etc/passwd")
	if err != nil || !strings.Contains(string(data), "inside") {
		t.Fatalf("in-root symlink: %q, %v", data, err)
	}
}

func TestReadIDFileRejectsNonRegular(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc", "passwd"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := readIDFile(root, "/etc/passwd"); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("error %v, want not a regular file", err)
	}
}

func TestMountOrderAndReplacement(t *testing.T) {
	in := baseInput(t)
	in.Mounts = []specs.Mount{
		{Destination: "/data/cache/x", Type: "bind", Source: "/h/x", Options: []string{"rbind"}},
		{Destination: "/data", Type: "bind", Source: "/h/data", Options: []string{"rbind"}},
		{Destination: "/dev/shm", Type: "bind", Source: "/h/shm", Options: []string{"rbind"}},
		{Destination: "/etc/hosts", Type: "bind", Source: "/h/hosts", Options: []string{"rbind", "ro"}},
		{Destination: "/data/cache", Type: "bind", Source: "/h/cache", Options: []string{"rbind"}},
	}
	in.HostConfig.Tmpfs = map[string]string{"/run": "size=64m,mode=1777,exec", "/data/tmp": ""}
	s := generate(t, in)
	equal(t, "order", destinations(s), []string{
		"/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue",
		"/data", "/run", "/dev/shm", "/etc/hosts", "/data/cache", "/data/tmp",
		"/etc/resolv.conf", "/etc/hostname", "/data/cache/x",
	})
	equal(t, "user shm", mountAt(s, "/dev/shm").Source, "/h/shm")
	equal(t, "user hosts", mountAt(s, "/etc/hosts").Source, "/h/hosts")
	equal(t, "tmpfs", mountAt(s, "/run"), &specs.Mount{Destination: "/run", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "rprivate", "size=64m", "mode=1777", "exec"}})
	equal(t, "plain tmpfs", mountAt(s, "/data/tmp").Options, []string{"noexec", "nosuid", "nodev", "rprivate"})

	// A user /dev replaces every standard mount below it.
	in = baseInput(t)
	in.Mounts = []specs.Mount{{Destination: "/dev", Type: "bind", Source: "/h/dev", Options: []string{"rbind"}}}
	s = generate(t, in)
	equal(t, "with /dev", destinations(s), []string{"/proc", "/sys", "/sys/fs/cgroup", "/dev", "/etc/resolv.conf", "/etc/hostname", "/etc/hosts"})
}

func TestMergeMountOptions(t *testing.T) {
	equal(t, "merge", mergeMountOptions([]string{"noexec", "nosuid", "nodev", "rprivate", "size=1m", "exec", "size=2m", "rshared", "ro", "rw"}),
		[]string{"nosuid", "nodev", "exec", "size=2m", "rshared", "rw"})
	equal(t, "tmpfs", TmpfsOptions(""), []string{"noexec", "nosuid", "nodev", "rprivate"})
}

func TestSeccompProfiles(t *testing.T) {
	hasSyscall := func(s *specs.Spec, name string) bool {
		for _, sc := range s.Linux.Seccomp.Syscalls {
			if sc.Action == specs.ActAllow && slices.Contains(sc.Names, name) {
				return true
			}
		}
		return false
	}
	in := baseInput(t)
	s := generate(t, in)
	if s.Linux.Seccomp == nil {
		t.Fatal("no default profile")
	}
	if hasSyscall(s, "mount") {
		t.Error("mount allowed without CAP_SYS_ADMIN")
	}
	if !hasSyscall(s, "read") {
		t.Error("read not allowed by the default profile")
	}

	// The capability-dependent rules follow the final capability set.
	in = baseInput(t)
	in.HostConfig.CapAdd = []string{"SYS_ADMIN"}
	if s := generate(t, in); !hasSyscall(s, "mount") {
		t.Error("mount not allowed with CAP_SYS_ADMIN")
	}
	in = baseInput(t)
	in.HostConfig.CapDrop = []string{"ALL"}
	in.HostConfig.CapAdd = []string{"SYS_ADMIN"}
	if s := generate(t, in); !hasSyscall(s, "mount") {
		t.Error("mount not allowed with only CAP_SYS_ADMIN")
	}

	for _, opt := range []string{"seccomp=unconfined", "seccomp:unconfined"} {
		in = baseInput(t)
		in.HostConfig.SecurityOpt = []string{opt}
		if s := generate(t, in); s.Linux.Seccomp != nil {
			t.Errorf("%s: profile still set", opt)
		}
	}
	in = baseInput(t)
	in.HostConfig.Privileged = true
	if s := generate(t, in); s.Linux.Seccomp != nil {
		t.Error("privileged: profile still set")
	}

	for name, opt := range map[string]string{
		"file":   "seccomp=/profiles/tiny.json",
		"inline": `seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["chmod"],"action":"SCMP_ACT_ERRNO"}]}`,
	} {
		in = baseInput(t)
		in.HostConfig.SecurityOpt = []string{opt}
		s := generate(t, in)
		equal(t, name, s.Linux.Seccomp, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"chmod"}, Action: specs.ActErrno}}})
	}
	in = baseInput(t)
	in.HostConfig.SecurityOpt = []string{"seccomp=builtin"}
	if s := generate(t, in); s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != specs.ActErrno {
		t.Error("builtin: not the default profile")
	}
}

func TestFiles(t *testing.T) {
	equal(t, "hostname", string(Hostname("web")), "web\n")
	equal(t, "hosts", string(Hosts("web", []string{"db:10.0.0.2", "v6=[fd00::1]", "bad entry", "x:notanip"})),
		"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"+
			"10.0.0.2\tdb\nfd00::1\tv6\n127.0.0.1\tweb\n")

	host := []byte("# host\nnameserver 127.0.0.53\nnameserver ::1\nnameserver 192.168.1.1\nsearch lan example.org\noptions edns0 trust-ad\nsortlist 1.2.3.4\n")
	equal(t, "from host", string(ResolvConf(host, nil, nil, nil)),
		"# Generated by berth.\nnameserver 192.168.1.1\nsearch lan example.org\noptions edns0 trust-ad\n")
	equal(t, "only loopback", string(ResolvConf([]byte("nameserver 127.0.0.53\noptions edns0\n"), nil, nil, nil)),
		"# Generated by berth.\nnameserver 8.8.8.8\nnameserver 8.8.4.4\noptions edns0\n")
	equal(t, "overrides", string(ResolvConf(host, []netip.Addr{netip.MustParseAddr("1.1.1.1"), netip.MustParseAddr("2606:4700::1111")}, []string{"corp"}, []string{"ndots:2"})),
		"# Generated by berth.\nnameserver 1.1.1.1\nnameserver 2606:4700::1111\nsearch corp\noptions ndots:2\n")
	equal(t, "no search", string(ResolvConf(host, nil, []string{"."}, nil)),
		"# Generated by berth.\nnameserver 192.168.1.1\noptions edns0 trust-ad\n")
	equal(t, "empty host", string(ResolvConf(nil, nil, nil, nil)),
		"# Generated by berth.\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n")

	for _, bad := range []string{"nohost", ":1.2.3.4", "db:host-gateway", "a b:1.2.3.4"} {
		if _, _, err := ParseExtraHost(bad); err == nil {
			t.Errorf("ParseExtraHost(%q) accepted", bad)
		}
	}
}

func TestParseBind(t *testing.T) {
	tests := []struct {
		in   string
		want mount.Mount
		err  string
	}{
		{in: "/data", want: mount.Mount{Type: mount.TypeVolume, Target: "/data"}},
		{in: "vol:/data", want: mount.Mount{Type: mount.TypeVolume, Source: "vol", Target: "/data"}},
		{in: "/host/:/data/", want: mount.Mount{Type: mount.TypeBind, Source: "/host", Target: "/data"}},
		{in: "/host:/data:ro", want: mount.Mount{Type: mount.TypeBind, Source: "/host", Target: "/data", ReadOnly: true}},
		{in: "/host:/data:rw,rshared,z", want: mount.Mount{Type: mount.TypeBind, Source: "/host", Target: "/data", BindOptions: &mount.BindOptions{Propagation: "rshared"}}},
		{in: "vol:/data:nocopy,ro", want: mount.Mount{Type: mount.TypeVolume, Source: "vol", Target: "/data", ReadOnly: true, VolumeOptions: &mount.VolumeOptions{NoCopy: true}}},
		{in: "", err: "invalid volume specification: ''"},
		{in: ":/data", err: "invalid volume specification: ':/data'"},
		{in: "/data:rw", err: "invalid volume specification: '/data:rw'"},
		{in: "a:b:c:d", err: "invalid volume specification: 'a:b:c:d'"},
		{in: "/a:/b:rx", err: "invalid mode: rx"},
		{in: "/a:/b:ro,rw", err: "invalid mode: ro,rw"},
		{in: "/a:b", err: `invalid volume specification: '/a:b': invalid mount config for type "bind": invalid mount path: 'b' mount path must be absolute`},
		{in: "/a:/", err: "destination can't be '/'"},
		{in: "data", err: "mount path must be absolute"},
		{in: "/a:/b:nocopy", err: "field VolumeOptions must not be specified"},
		{in: "vol:/b:rshared", err: "field BindOptions must not be specified"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseBind(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("error %v, want invalid %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			equal(t, "mount", got, tc.want)
		})
	}
}

func TestParseMountFlag(t *testing.T) {
	tests := []struct {
		in   string
		want mount.Mount
		err  string
	}{
		{in: "type=bind,source=/h,target=/c,readonly,bind-propagation=rslave",
			want: mount.Mount{Type: mount.TypeBind, Source: "/h", Target: "/c", ReadOnly: true, BindOptions: &mount.BindOptions{Propagation: "rslave"}}},
		{in: "type=bind,src=/h,dst=/c,ro=false,bind-recursive=writable",
			want: mount.Mount{Type: mount.TypeBind, Source: "/h", Target: "/c", BindOptions: &mount.BindOptions{ReadOnlyNonRecursive: true}}},
		{in: "src=vol,destination=/c,volume-nocopy,volume-subpath=sub,volume-driver=local,volume-opt=o=1",
			want: mount.Mount{Type: mount.TypeVolume, Source: "vol", Target: "/c", VolumeOptions: &mount.VolumeOptions{NoCopy: true, Subpath: "sub", DriverConfig: &mount.Driver{Name: "local", Options: map[string]string{"o": "1"}}}}},
		{in: "type=tmpfs,target=/t,tmpfs-size=64m,tmpfs-mode=1770",
			want: mount.Mount{Type: mount.TypeTmpfs, Target: "/t", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 64 << 20, Mode: 0o1770}}},
		{in: "type=bind,source=/h", err: "target is required"},
		{in: "type=bind,target=/c", err: "field Source must not be empty"},
		{in: "type=bind,source=/h,target=/c,foo=bar", err: "unexpected key 'foo' in 'foo=bar'"},
		{in: "type=bind,source=/h,target=/c,weird", err: "invalid field 'weird' must be a key=value pair"},
		{in: "type=bind,source=/h,target=/c,readonly=maybe", err: "invalid value for readonly: maybe"},
		{in: "type=volume,source=v,target=/c,tmpfs-size=1m", err: "cannot mix 'tmpfs-*' options with mount type 'volume'"},
		{in: "type=tmpfs,target=/c,volume-nocopy", err: "cannot mix 'volume-*' options with mount type 'tmpfs'"},
		{in: "type=volume,source=v,target=/c,bind-propagation=shared", err: "cannot mix 'bind-*' options with mount type 'volume'"},
		{in: "type=tmpfs,target=/c,tmpfs-size=lots", err: "invalid value for tmpfs-size: lots"},
		{in: "type=tmpfs,target=/c,tmpfs-mode=999", err: "invalid value for tmpfs-mode: 999"},
		{in: "type=tmpfs,source=x,target=/c", err: "field Source must not be specified"},
		{in: "type=npipe,source=x,target=/c", err: "mount type unknown"},
		{in: "type=bind,source=/h,target=/c,bind-propagation=sideways", err: "invalid propagation mode: sideways"},
		{in: "type=volume,target=/c,volume-subpath=x", err: "anonymous volumes"},
		{in: "type=volume,source=v,target=/c,volume-subpath=../x", err: "subpath must be a relative path"},
		{in: `type=bind,"source=/h`, err: "invalid --mount"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseMountFlag(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("error %v, want invalid %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			equal(t, "mount", got, tc.want)
		})
	}
}

func TestMountToSpec(t *testing.T) {
	tests := []struct {
		name   string
		m      mount.Mount
		source string
		want   specs.Mount
		err    string
	}{
		{name: "bind", m: mount.Mount{Type: mount.TypeBind, Source: "/h", Target: "/c/"}, source: "/h",
			want: specs.Mount{Destination: "/c", Type: "bind", Source: "/h", Options: []string{"rbind", "rprivate"}}},
		{name: "bind ro", m: mount.Mount{Type: mount.TypeBind, Source: "/h", Target: "/c", ReadOnly: true, BindOptions: &mount.BindOptions{Propagation: "rshared"}}, source: "/h",
			want: specs.Mount{Destination: "/c", Type: "bind", Source: "/h", Options: []string{"rbind", "ro", "rro", "rshared"}}},
		{name: "bind ro non-recursive", m: mount.Mount{Type: mount.TypeBind, Source: "/h", Target: "/c", ReadOnly: true, BindOptions: &mount.BindOptions{ReadOnlyNonRecursive: true}}, source: "/h",
			want: specs.Mount{Destination: "/c", Type: "bind", Source: "/h", Options: []string{"rbind", "ro", "rprivate"}}},
		{name: "bind non-recursive", m: mount.Mount{Type: mount.TypeBind, Source: "/h", Target: "/c", ReadOnly: true, BindOptions: &mount.BindOptions{NonRecursive: true}}, source: "/h",
			want: specs.Mount{Destination: "/c", Type: "bind", Source: "/h", Options: []string{"bind", "ro", "rprivate"}}},
		{name: "volume", m: mount.Mount{Type: mount.TypeVolume, Source: "vol", Target: "/c"}, source: "/var/lib/berth/volumes/vol/_data",
			want: specs.Mount{Destination: "/c", Type: "bind", Source: "/var/lib/berth/volumes/vol/_data", Options: []string{"rbind"}}},
		{name: "tmpfs", m: mount.Mount{Type: mount.TypeTmpfs, Target: "/t", ReadOnly: true, TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 3 << 20, Mode: 0o700, Options: [][]string{{"exec"}}}},
			want: specs.Mount{Destination: "/t", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "rprivate", "ro", "mode=700", "size=3m", "exec"}}},
		{name: "tmpfs bad option", m: mount.Mount{Type: mount.TypeTmpfs, Target: "/t", TmpfsOptions: &mount.TmpfsOptions{Options: [][]string{{"suid"}}}}, err: "invalid tmpfs option: suid"},
		{name: "no source", m: mount.Mount{Type: mount.TypeVolume, Source: "vol", Target: "/c"}, err: "must be an absolute path"},
		{name: "image", m: mount.Mount{Type: mount.TypeImage, Source: "img", Target: "/c"}, source: "/x", err: "mount type unknown"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := MountToSpec(tc.m, tc.source)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("error %v, want invalid %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			equal(t, "mount", got, tc.want)
		})
	}
}

func TestParseDevice(t *testing.T) {
	for in, want := range map[string]container.DeviceMapping{
		"/dev/fuse":              {PathOnHost: "/dev/fuse", PathInContainer: "/dev/fuse", CgroupPermissions: "rwm"},
		"/dev/fuse:r":            {PathOnHost: "/dev/fuse", PathInContainer: "/dev/fuse", CgroupPermissions: "r"},
		"/dev/sda:/dev/xvda":     {PathOnHost: "/dev/sda", PathInContainer: "/dev/xvda", CgroupPermissions: "rwm"},
		"/dev/sda:/dev/xvda:rw":  {PathOnHost: "/dev/sda", PathInContainer: "/dev/xvda", CgroupPermissions: "rw"},
		"/dev/sda:/dev/xvda:rwx": {},
		"dev/sda":                {},
		"/a:/b:rw:x":             {},
	} {
		got, err := ParseDevice(in)
		if want.PathOnHost == "" {
			if err == nil || !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("ParseDevice(%q) = %v, want an invalid error", in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseDevice(%q): %v", in, err)
			continue
		}
		equal(t, in, got, want)
	}
}

// TestHostDevices reads real device nodes through the default helper.
func TestHostDevices(t *testing.T) {
	devs, err := hostDevices("/dev/null")
	if err != nil {
		t.Fatalf("stat /dev/null: %v", err)
	}
	if len(devs) != 1 || devs[0].Type != "c" || devs[0].Major != 1 || devs[0].Minor != 3 || devs[0].Path != "/dev/null" {
		t.Fatalf("/dev/null: %+v", devs)
	}
	if _, err := hostDevices("/etc/hostname"); !errors.Is(err, errNotDevice) {
		t.Errorf("regular file: %v, want not a device", err)
	}
	all, err := hostDevices("/dev")
	if err != nil {
		t.Fatalf("walk /dev: %v", err)
	}
	var paths []string
	for _, d := range all {
		paths = append(paths, d.Path)
		if strings.HasPrefix(d.Path, "/dev/pts/") || d.Path == "/dev/console" {
			t.Errorf("walk kept %s", d.Path)
		}
	}
	if !slices.Contains(paths, "/dev/null") || !slices.Contains(paths, "/dev/zero") {
		t.Errorf("walk of /dev misses null or zero: %v", paths)
	}
	caps, err := hostCapabilities()
	if err != nil || !slices.Contains(caps, "CAP_SYS_ADMIN") || !slices.Contains(caps, "CAP_CHOWN") {
		t.Errorf("host capabilities %v, %v", caps, err)
	}
	if hostCPUs() < 1 {
		t.Error("no CPUs")
	}
}

func TestCgroupsPath(t *testing.T) {
	for parent, want := range map[string]string{"": "/id", "berth": "/berth/id", "/a/b/": "/a/b/id", "/": "/id"} {
		equal(t, parent, cgroupsPath(parent, "id"), want)
	}
}
