package runtime

import (
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"

	"github.com/berth-containers/berth/runtime/caps"
	"github.com/berth-containers/berth/runtime/cgroups"
	"github.com/berth-containers/berth/runtime/seccomp"
)

// mountOptions are the mount options berth understands, as `features`
// reports them.
var mountOptions = []string{
	"acl", "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec",
	"idmap", "iversion", "lazytime", "loud", "mand", "noacl", "noatime", "nodev",
	"nodiratime", "noexec", "noiversion", "nolazytime", "nomand", "norelatime",
	"nostrictatime", "nosuid", "nosymfollow", "private", "ratime", "rbind", "rdev",
	"rdiratime", "relatime", "remount", "rexec", "ridmap", "rnoatime", "rnodev",
	"rnodiratime", "rnoexec", "rnorelatime", "rnostrictatime", "rnosuid", "rnosymfollow",
	"ro", "rprivate", "rrelatime", "rro", "rrw", "rshared", "rslave", "rstrictatime",
	"rsuid", "rsymfollow", "runbindable", "rw", "shared", "silent", "slave",
	"strictatime", "suid", "symfollow", "sync", "tmpcopyup", "unbindable",
}

// Features describes what this build and host support, in the OCI
// features document format.
func Features() *features.Features {
	t, f := true, false
	mode := cgroups.Mode()
	v1 := mode == "v1" || mode == "hybrid"
	v2 := mode == "v2" || mode == "hybrid"
	apparmor := exists("/sys/kernel/security/apparmor")
	selinux := exists("/sys/fs/selinux/enforce")
	return &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"},
		MountOptions:  mountOptions,
		Linux: &features.Linux{
			Namespaces:   []string{"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"},
			Capabilities: caps.Known(),
			Cgroup:       &features.Cgroup{V1: &v1, V2: &v2, Systemd: &t, SystemdUser: &f, Rdma: &f},
			Seccomp:      seccomp.Features(),
			Apparmor:     &features.Apparmor{Enabled: &apparmor},
			Selinux:      &features.Selinux{Enabled: &selinux},
			IntelRdt:     &features.IntelRdt{Enabled: &f},
			MountExtensions: &features.MountExtensions{
				IDMap: &features.IDMap{Enabled: &t},
			},
		},
		Annotations: map[string]string{
			"org.opencontainers.runc.checkpoint.enabled": "false",
			"io.github.berth.runtime.version":            "1",
		},
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
