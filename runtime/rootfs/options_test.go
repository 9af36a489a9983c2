package rootfs

import (
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseOptions(t *testing.T) {
	cases := []struct {
		name string
		in   []string
		want MountOptions
	}{
		{"empty", nil, MountOptions{}},
		{"bind ro", []string{"bind", "ro"}, MountOptions{Flags: unix.MS_BIND | unix.MS_RDONLY}},
		{"rbind nosuid nodev noexec", []string{"rbind", "nosuid", "nodev", "noexec"},
			MountOptions{Flags: unix.MS_BIND | unix.MS_REC | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC}},
		{"later wins: ro then rw", []string{"ro", "rw"}, MountOptions{Cleared: unix.MS_RDONLY}},
		{"later wins: rw then ro", []string{"rw", "ro"}, MountOptions{Flags: unix.MS_RDONLY}},
		{"clearing options", []string{"suid", "dev", "exec", "atime", "diratime", "async", "symfollow"},
			MountOptions{Cleared: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_SYNCHRONOUS | unix.MS_NOSYMFOLLOW}},
		{"atime and misc flags", []string{"noatime", "nodiratime", "strictatime", "relatime", "sync", "dirsync", "mand", "iversion", "lazytime", "silent", "nosymfollow", "remount", "defaults"},
			MountOptions{Flags: unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_STRICTATIME | unix.MS_RELATIME | unix.MS_SYNCHRONOUS |
				unix.MS_DIRSYNC | unix.MS_MANDLOCK | unix.MS_I_VERSION | unix.MS_LAZYTIME | unix.MS_SILENT | unix.MS_NOSYMFOLLOW | unix.MS_REMOUNT}},
		{"negations", []string{"norelatime", "nostrictatime", "nomand", "noiversion", "nolazytime", "loud"},
			MountOptions{Cleared: unix.MS_RELATIME | unix.MS_STRICTATIME | unix.MS_MANDLOCK | unix.MS_I_VERSION | unix.MS_LAZYTIME | unix.MS_SILENT}},
		{"propagation in order", []string{"rshared", "slave", "rprivate", "unbindable", "private", "shared", "rslave", "runbindable"},
			MountOptions{Propagation: []uintptr{
				unix.MS_SHARED | unix.MS_REC, unix.MS_SLAVE, unix.MS_PRIVATE | unix.MS_REC, unix.MS_UNBINDABLE,
				unix.MS_PRIVATE, unix.MS_SHARED, unix.MS_SLAVE | unix.MS_REC, unix.MS_UNBINDABLE | unix.MS_REC}}},
		{"data keeps order", []string{"nosuid", "mode=755", "size=65536k", "newinstance", "uid=5"},
			MountOptions{Flags: unix.MS_NOSUID, Data: "mode=755,size=65536k,newinstance,uid=5"}},
		{"userspace options stay out of data", []string{"x-systemd.automount", "X-mount.mkdir", "size=1m"},
			MountOptions{Data: "size=1m", Userspace: []string{"x-systemd.automount", "X-mount.mkdir"}}},
		{"tmpcopyup", []string{"tmpcopyup", "mode=1777"}, MountOptions{TmpCopyUp: true, Data: "mode=1777"}},
		{"idmap", []string{"bind", "idmap"}, MountOptions{Flags: unix.MS_BIND, IDMap: true}},
		{"ridmap", []string{"rbind", "ridmap"}, MountOptions{Flags: unix.MS_BIND | unix.MS_REC, IDMap: true, RecursiveIDMap: true}},
		{"recursive read-only and friends", []string{"rro", "rnosuid", "rnodev", "rnoexec", "rnodiratime", "rnosymfollow"},
			MountOptions{RecAttrSet: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV |
				unix.MOUNT_ATTR_NOEXEC | unix.MOUNT_ATTR_NODIRATIME | unix.MOUNT_ATTR_NOSYMFOLLOW}},
		{"recursive clears", []string{"rrw", "rsuid", "rdev", "rexec", "rdiratime", "rsymfollow"},
			MountOptions{RecAttrClr: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV |
				unix.MOUNT_ATTR_NOEXEC | unix.MOUNT_ATTR_NODIRATIME | unix.MOUNT_ATTR_NOSYMFOLLOW}},
		{"rro then rrw", []string{"rro", "rrw"}, MountOptions{RecAttrClr: unix.MOUNT_ATTR_RDONLY}},
		{"rnoatime", []string{"rnoatime"}, MountOptions{RecAttrSet: unix.MOUNT_ATTR_NOATIME, RecAttrClr: unix.MOUNT_ATTR__ATIME}},
		{"rstrictatime", []string{"rstrictatime"}, MountOptions{RecAttrSet: unix.MOUNT_ATTR_STRICTATIME, RecAttrClr: unix.MOUNT_ATTR__ATIME}},
		{"rnorelatime is strict", []string{"rnorelatime"}, MountOptions{RecAttrSet: unix.MOUNT_ATTR_STRICTATIME, RecAttrClr: unix.MOUNT_ATTR__ATIME}},
		{"rrelatime", []string{"rrelatime"}, MountOptions{RecAttrClr: unix.MOUNT_ATTR__ATIME}},
		{"ratime", []string{"ratime"}, MountOptions{RecAttrClr: unix.MOUNT_ATTR__ATIME}},
		{"rnostrictatime", []string{"rnostrictatime"}, MountOptions{RecAttrClr: unix.MOUNT_ATTR__ATIME}},
		{"last atime mode wins", []string{"rnoatime", "rstrictatime"}, MountOptions{RecAttrSet: unix.MOUNT_ATTR_STRICTATIME, RecAttrClr: unix.MOUNT_ATTR__ATIME}},
		{"empty option ignored", []string{"", "ro"}, MountOptions{Flags: unix.MS_RDONLY}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := ParseOptions(c.in)
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("ParseOptions(%q)\n got %+v\nwant %+v", c.in, got, c.want)
			}
		})
	}
}

func TestMountOptionsPredicates(t *testing.T) {
	cases := []struct {
		in                         []string
		bind, recursive, doRemount bool
	}{
		{[]string{"bind"}, true, false, false},
		{[]string{"rbind", "ro"}, true, true, true},
		{[]string{"rbind", "rw"}, true, true, true},
		{[]string{"rbind", "nosymfollow"}, true, true, true},
		{[]string{"rbind", "rshared", "mode=1"}, true, true, false},
		{[]string{"nosuid"}, false, false, true},
	}
	for _, c := range cases {
		o := ParseOptions(c.in)
		if o.Bind() != c.bind || o.Recursive() != c.recursive || o.NeedsRemount() != c.doRemount {
			t.Errorf("%q: bind=%v recursive=%v remount=%v, want %v %v %v", c.in, o.Bind(), o.Recursive(), o.NeedsRemount(), c.bind, c.recursive, c.doRemount)
		}
	}
}
