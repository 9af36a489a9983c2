package runtime

import (
	"math"
	"os"
	"strings"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/runtime/caps"
	"github.com/berth-containers/berth/runtime/cinit"
	"github.com/berth-containers/berth/runtime/rootfs"
	"github.com/berth-containers/berth/runtime/seccomp"
)

// EnvInitKind set to "go" makes every container's init the Go one, for
// comparisons and debugging; by default a container whose configuration
// the C init (runtime/cinit) can carry out gets that.
const EnvInitKind = "BERTH_INIT"

// wantsCInit reports whether a new container's init can start as the C
// init: nothing it needs may happen only in the Go init (hooks inside the
// container, user or time namespaces, namespaces joined by
// the constructor, a seccomp listener, LSM labels, scheduling classes,
// a personality, no pivot_root). The plan may still turn out impossible
// once the init runs; it then gets a Go bootstrap (see compilePlan).
func wantsCInit(cfg *initConfig, l *launcher) bool {
	s := cfg.Spec
	if !cinit.Available || os.Getenv(EnvInitKind) == "go" || !rootfs.HaveOpenat2() {
		return false
	}
	if cfg.Exec || cfg.UserNS || cfg.NewTimeNS || cfg.NoPivot || len(l.joinEarly) > 0 {
		return false
	}
	p := s.Process
	if p.ApparmorProfile != "" || p.SelinuxLabel != "" || p.Scheduler != nil || p.IOPriority != nil {
		return false
	}
	if h := s.Hooks; h != nil {
		//nolint:staticcheck // prestart is deprecated but still used by tools.
		if len(h.Prestart)+len(h.CreateRuntime)+len(h.CreateContainer)+len(h.StartContainer) > 0 {
			return false
		}
	}
	if s.Linux != nil && (s.Linux.Personality != nil || s.Linux.Seccomp != nil && s.Linux.Seccomp.ListenerPath != "") {
		return false
	}
	return true
}

// compilePlan writes the whole life of init (initContainer and
// finishProcess) as a C init plan; false means the Go init must do it.
func compilePlan(cfg *initConfig) ([]byte, bool) {
	s, p := cfg.Spec, cinit.NewPlan()
	if cfg.ConsoleFd == 0 {
		// A terminal's setup makes its own session.
		p.Add(cinit.OpSetsid)
	}
	if cfg.NewCgroupNS {
		p.Add(cinit.OpContext, "new cgroup namespace")
		p.Add(cinit.OpUnshare, uint64(unix.CLONE_NEWCGROUP))
	}
	ok := rootfs.CompileSetup(rootfs.CompileOptions{
		Options: rootfs.Options{
			Spec: s, Rootfs: cfg.Rootfs, Bundle: cfg.Bundle, CgroupPaths: cfg.CgroupPaths,
			CgroupNS: hasNS(s, specs.CgroupNamespace),
		},
		InitPid: cfg.InitPid,
	}, p)
	if !ok || !planConsole(cfg, p) || !planNames(s, p) || !rootfs.CompileFinalize(s, p) {
		return nil, false
	}
	if !cfg.NoNewKeyring {
		p.Add(cinit.OpContext, "")
		p.Add(cinit.OpKeyring, cfg.ID)
	}
	if !planProcess(cfg, p) {
		return nil, false
	}
	return p.Bytes(), true
}

// planConsole covers setupConsole.
func planConsole(cfg *initConfig, p *cinit.Plan) bool {
	if cfg.ConsoleFd == 0 {
		return true
	}
	var w, h uint
	if cs := cfg.Process.ConsoleSize; cs != nil {
		w, h = cs.Width, cs.Height
	}
	if w > math.MaxUint16 || h > math.MaxUint16 {
		return false
	}
	p.Add(cinit.OpContext, "")
	p.Add(cinit.OpConsole, cfg.ConsoleFd, uint64(w), uint64(h))
	return true
}

// planNames covers setNames and writeSysctls.
func planNames(s *specs.Spec, p *cinit.Plan) bool {
	if (s.Hostname != "" || s.Domainname != "") && !hasNS(s, specs.UTSNamespace) {
		return false
	}
	if s.Hostname != "" {
		p.Add(cinit.OpHostname, s.Hostname)
	}
	if s.Domainname != "" {
		p.Add(cinit.OpDomainname, s.Domainname)
	}
	if s.Linux == nil {
		return true
	}
	for k, v := range s.Linux.Sysctl {
		if checkSysctl(s, k) != nil {
			return false
		}
		p.Add(cinit.OpContext, "sysctl "+k+"="+v)
		p.Add(cinit.OpWrite, "/proc/sys/"+strings.ReplaceAll(k, ".", "/"), v)
	}
	return true
}

// planProcess covers finishProcess for a new container.
func planProcess(cfg *initConfig, p *cinit.Plan) bool {
	proc := cfg.Process
	if len(proc.Args) == 0 {
		return false
	}
	p.Add(cinit.OpContext, "")
	p.Add(cinit.OpLookPath, proc.Args[0], searchPath(proc.Env))
	var flags uint32
	var prog []byte
	if cfg.SeccompFilter != nil {
		var notify bool
		var err error
		if flags, notify, prog, err = seccomp.SplitEncoded(cfg.SeccompFilter); err != nil || notify {
			return false
		}
	}
	for _, r := range proc.Rlimits {
		res, ok := rlimitNames[r.Type]
		if !ok {
			return false
		}
		p.Add(cinit.OpRlimit, res, r.Soft, r.Hard, r.Type)
	}
	if proc.OOMScoreAdj != nil {
		p.Add(cinit.OpOOM, *proc.OOMScoreAdj)
	}
	umask := uint64(0o022)
	if proc.User.Umask != nil {
		umask = uint64(*proc.User.Umask)
	}
	p.Add(cinit.OpUmask, umask)
	p.Add(cinit.OpCwd, proc.Cwd)
	p.Add(cinit.OpCloexec, 3+cfg.PreserveFds)
	if prog != nil && !proc.NoNewPrivileges {
		p.Add(cinit.OpSeccomp, flags, prog)
	}
	if !planCaps(proc, p) {
		return false
	}
	if proc.NoNewPrivileges {
		p.Add(cinit.OpNNP)
		if prog != nil {
			p.Add(cinit.OpSeccomp, flags, prog)
		}
	}
	p.Add(cinit.OpReady)
	if cfg.UseFifo {
		p.Add(cinit.OpFifo, cfg.FifoFd)
	}
	p.Add(cinit.OpExec, proc.Args, proc.Env)
	return true
}

// planCaps covers the capability and user part of dropPrivileges. The
// init inherits this process's bounding set, so what it cannot hold is
// known here.
func planCaps(proc *specs.Process, p *cinit.Plan) bool {
	var set *caps.Set
	if proc.Capabilities != nil {
		s, err := caps.New(proc.Capabilities)
		if err != nil {
			return false
		}
		set = s
		if len(s.Unknown) > 0 {
			p.Add(cinit.OpWarn, "unknown capabilities left out: "+strings.Join(s.Unknown, ", "))
		}
		if unheld := set.DropUnheld(); len(unheld) > 0 {
			p.Add(cinit.OpWarn, "capabilities this host cannot grant left out: "+strings.Join(unheld, ", "))
		}
		last, err := capability.LastCap()
		if err != nil {
			return false
		}
		p.Add(cinit.OpCapBound, capMask(set.Bounding), uint64(last))
	}
	groups := make([]uint64, 0, len(proc.User.AdditionalGids))
	for _, g := range proc.User.AdditionalGids {
		groups = append(groups, uint64(g))
	}
	p.Add(cinit.OpUser, uint64(proc.User.UID), uint64(proc.User.GID), groups)
	if set != nil {
		p.Add(cinit.OpCapSet, capMask(set.Effective), capMask(set.Permitted), capMask(set.Inheritable), capMask(set.Ambient))
	}
	return true
}

func capMask(cs []capability.Cap) uint64 {
	var m uint64
	for _, c := range cs {
		if c < 64 {
			m |= 1 << uint(c)
		}
	}
	return m
}

// searchPath is the PATH lookPath searches.
func searchPath(env []string) string {
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	return path
}
