package specgen

import (
	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ResolveUser resolves a -u value (uid, uid:gid, name, name:group) against
// the container's /etc/passwd and /etc/group, read safely inside rootfs,
// as exec --user needs; it also returns the user's home directory.
func ResolveUser(rootfs, user string) (specs.User, string, error) {
	passwd, err := readIDFile(rootfs, "/etc/passwd")
	if err != nil {
		return specs.User{}, "", err
	}
	group, err := readIDFile(rootfs, "/etc/group")
	if err != nil {
		return specs.User{}, "", err
	}
	return resolveUser(user, nil, passwd, group)
}

// MergeEnv applies overrides to base as Docker does: replacing a variable
// in place, appending new ones, removing names given without a value.
func MergeEnv(base, overrides []string) []string { return mergeEnv(base, overrides) }

// AllCapabilities lists every capability this build and kernel know: what
// --privileged grants.
func AllCapabilities() ([]string, error) { return hostCapabilities() }

// Resources validates a container's resource settings and translates them
// to the cgroup limits the runtime applies, for update.
func Resources(hc *container.HostConfig) (*specs.LinuxResources, error) {
	g := &generator{hc: hc, s: &specs.Spec{Linux: &specs.Linux{}}, host: (*Host)(nil).orDefault()}
	if err := g.resources(); err != nil {
		return nil, err
	}
	return g.s.Linux.Resources, nil
}
