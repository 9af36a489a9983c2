package specgen

import (
	"slices"
	"strconv"
	"strings"

	"github.com/moby/profiles/seccomp"
	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-containers/berth/internal/errdefs"
)

// DefaultCapabilities is Docker's default capability set.
var DefaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// capabilities gives the process Docker's capability set: the defaults
// tweaked by CapAdd/CapDrop, or every capability when privileged. The
// bounding, effective and permitted sets are equal; inheritable and
// ambient stay empty, as in Docker.
func (g *generator) capabilities() error {
	caps, err := g.capabilitySet()
	if err != nil {
		return err
	}
	set := func() []string { return slices.Clone(caps) }
	g.s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: set(), Effective: set(), Permitted: set()}
	return nil
}

func (g *generator) capabilitySet() ([]string, error) {
	if g.hc.Privileged {
		return g.host.Capabilities()
	}
	return tweakCapabilities(DefaultCapabilities, g.hc.CapAdd, g.hc.CapDrop, g.host.Capabilities)
}

// tweakCapabilities applies Docker's rules: "ALL" in adds gives every
// capability less the drops; "ALL" in drops gives exactly the adds;
// otherwise the drops leave the basics and the adds join them.
func tweakCapabilities(basics, adds, drops []string, all func() ([]string, error)) ([]string, error) {
	if len(adds) == 0 && len(drops) == 0 {
		return slices.Clone(basics), nil
	}
	drop, err := normalizeCapabilities(drops)
	if err != nil {
		return nil, err
	}
	add, err := normalizeCapabilities(adds)
	if err != nil {
		return nil, err
	}
	var out []string
	switch {
	case slices.Contains(add, "ALL"):
		everything, err := all()
		if err != nil {
			return nil, err
		}
		for _, c := range everything {
			if !slices.Contains(drop, c) {
				out = append(out, c)
			}
		}
	case slices.Contains(drop, "ALL"):
		out = add
	default:
		for _, c := range basics {
			if !slices.Contains(drop, c) {
				out = append(out, c)
			}
		}
		out = append(out, add...)
	}
	return dedupe(out), nil
}

// normalizeCapabilities upper-cases names and adds the "CAP_" prefix,
// keeping "ALL" as is; unknown names are refused.
func normalizeCapabilities(names []string) ([]string, error) {
	known := knownCapabilities()
	var out []string
	for _, n := range names {
		c := strings.ToUpper(strings.TrimSpace(n))
		if c == "ALL" {
			out = append(out, c)
			continue
		}
		if !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		if !known[c] {
			return nil, errdefs.Invalid("unknown capability: %q", c)
		}
		out = append(out, c)
	}
	return out, nil
}

// knownCapabilities is every capability name this build knows.
func knownCapabilities() map[string]bool {
	m := map[string]bool{}
	for _, c := range capability.ListKnown() {
		m["CAP_"+strings.ToUpper(c.String())] = true
	}
	return m
}

func dedupe(in []string) []string {
	var out []string
	for _, s := range in {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// securityOpts is what --security-opt asked for.
type securityOpts struct {
	noNewPrivileges bool
	// seccomp is "" (the default profile), "unconfined", or a profile:
	// a JSON document or the path of a file holding one.
	seccomp string
	// unconfinedPaths clears the masked and read-only paths
	// (systempaths=unconfined).
	unconfinedPaths bool
	// writableCgroups leaves /sys/fs/cgroup writable.
	writableCgroups bool
}

// parseSecurityOpts reads Docker's --security-opt values, "key=value" or
// the older "key:value". AppArmor and SELinux are absent here: only their
// "off" settings are accepted, as no-ops.
func parseSecurityOpts(opts []string) (securityOpts, error) {
	var s securityOpts
	for _, opt := range opts {
		if opt == "no-new-privileges" {
			s.noNewPrivileges = true
			continue
		}
		key, value, ok := strings.Cut(opt, "=")
		if !ok {
			key, value, ok = strings.Cut(opt, ":")
		}
		if !ok {
			return s, errdefs.Invalid("invalid --security-opt %q: want key=value", opt)
		}
		switch key {
		case "no-new-privileges":
			b, err := strconv.ParseBool(value)
			if err != nil {
				return s, errdefs.Invalid("invalid --security-opt %q: no-new-privileges takes true or false", opt)
			}
			s.noNewPrivileges = b
		case "seccomp":
			if value == "" {
				return s, errdefs.Invalid("invalid --security-opt %q: seccomp needs a profile", opt)
			}
			s.seccomp = value
		case "apparmor":
			if value != "unconfined" {
				return s, errdefs.Invalid("invalid --security-opt %q: AppArmor is not available, only apparmor=unconfined is accepted", opt)
			}
		case "label":
			if value != "disable" {
				return s, errdefs.Invalid("invalid --security-opt %q: SELinux is not available, only label=disable is accepted", opt)
			}
		case "systempaths":
			if value != "unconfined" {
				return s, errdefs.Invalid("invalid --security-opt %q: systempaths only takes unconfined", opt)
			}
			s.unconfinedPaths = true
		case "writable-cgroups":
			b, err := strconv.ParseBool(value)
			if err != nil {
				return s, errdefs.Invalid("invalid --security-opt %q: writable-cgroups takes true or false", opt)
			}
			s.writableCgroups = b
		default:
			return s, errdefs.Invalid("invalid --security-opt %q: unknown option %s", opt, key)
		}
	}
	return s, nil
}

// seccomp sets the seccomp filter: none for privileged or unconfined
// containers, else the given profile or Docker's default. It runs after
// the capabilities are final, because profile rules are kept or dropped
// by the capabilities the container holds.
func (g *generator) seccomp() error {
	if g.hc.Privileged || g.sec.seccomp == "unconfined" {
		return nil
	}
	var (
		prof *specs.LinuxSeccomp
		err  error
	)
	switch p := g.sec.seccomp; {
	case p == "" || p == "builtin":
		prof, err = seccomp.GetDefaultProfile(g.s)
	case strings.HasPrefix(strings.TrimSpace(p), "{"):
		// The docker CLI sends the profile's content, not its path.
		prof, err = loadProfile([]byte(p), g.s)
	default:
		data, rerr := g.host.ReadFile(p)
		if rerr != nil {
			return errdefs.Invalid("read seccomp profile %s: %v", p, rerr)
		}
		prof, err = loadProfile(data, g.s)
		if err != nil {
			return errdefs.Invalid("seccomp profile %s: %v", p, err)
		}
	}
	if err != nil {
		return errdefs.Invalid("seccomp profile: %v", err)
	}
	g.s.Linux.Seccomp = prof
	return nil
}

// loadProfile decodes a Docker seccomp profile (JSON) for spec s.
func loadProfile(data []byte, s *specs.Spec) (*specs.LinuxSeccomp, error) {
	return seccomp.LoadProfile(string(data), s)
}
