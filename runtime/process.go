package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/runtime/caps"
	"github.com/berth-containers/berth/runtime/console"
	"github.com/berth-containers/berth/runtime/rootfs"
	"github.com/berth-containers/berth/runtime/seccomp"
)

// lookPath finds the program to exec inside the container, so that a
// missing binary fails create rather than start.
func lookPath(p *specs.Process) (string, error) {
	name := p.Args[0]
	if strings.Contains(name, "/") {
		if err := checkExecutable(name); err != nil {
			return "", fmt.Errorf("exec: %q: %w", name, err)
		}
		return name, nil
	}
	for _, dir := range filepath.SplitList(searchPath(p.Env)) {
		if dir == "" {
			dir = "."
		}
		cand := filepath.Join(dir, name)
		if checkExecutable(cand) == nil {
			return cand, nil
		}
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", name)
}

func checkExecutable(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st.IsDir() {
		return errors.New("is a directory")
	}
	if st.Mode().Perm()&0o111 == 0 {
		return errors.New("permission denied")
	}
	return nil
}

// rlimitNames maps the spec's names to resource numbers.
var rlimitNames = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE,
	"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK": unix.RLIMIT_STACK,
}

// setProcessAttrs applies what must be set while still privileged. It
// returns warnings for limits the host could not grant in full.
func setProcessAttrs(p *specs.Process) ([]string, error) {
	var warnings []string
	for _, r := range p.Rlimits {
		w, err := setRlimit(r)
		if err != nil {
			return nil, err
		}
		warnings = append(warnings, w...)
	}
	if p.OOMScoreAdj != nil {
		w, err := setOOMScoreAdj(*p.OOMScoreAdj)
		if err != nil {
			return nil, err
		}
		warnings = append(warnings, w...)
	}
	if p.Scheduler != nil {
		if err := setScheduler(p.Scheduler); err != nil {
			return nil, err
		}
	}
	if p.IOPriority != nil {
		if err := setIOPriority(p.IOPriority); err != nil {
			return nil, err
		}
	}
	if p.User.Umask != nil {
		unix.Umask(int(*p.User.Umask))
	} else {
		unix.Umask(0o022)
	}
	return warnings, nil
}

// setRlimit sets one limit. Raising a hard limit above ours needs
// CAP_SYS_RESOURCE; where the host denies it, the limit is clamped to the
// highest this host allows and a warning says so, instead of failing: an
// engine's defaults (podman asks for 1048576 open files) would otherwise
// make every container fail on such hosts.
func setRlimit(r specs.POSIXRlimit) ([]string, error) {
	res, ok := rlimitNames[r.Type]
	if !ok {
		return nil, fmt.Errorf("unknown rlimit %q", r.Type)
	}
	lim := unix.Rlimit{Cur: r.Soft, Max: r.Hard}
	err := unix.Prlimit(0, res, &lim, nil)
	if err == nil {
		return nil, nil
	}
	if !errors.Is(err, unix.EPERM) {
		return nil, fmt.Errorf("set %s: %w", r.Type, err)
	}
	var cur unix.Rlimit
	if gerr := unix.Prlimit(0, res, nil, &cur); gerr != nil || r.Hard <= cur.Max {
		return nil, fmt.Errorf("set %s: %w", r.Type, err)
	}
	lim = unix.Rlimit{Cur: min(r.Soft, cur.Max), Max: cur.Max}
	if err := unix.Prlimit(0, res, &lim, nil); err != nil {
		return nil, fmt.Errorf("set %s: %w", r.Type, err)
	}
	return []string{fmt.Sprintf("%s hard limit %d needs CAP_SYS_RESOURCE, which this host denies; set to soft %d hard %d", r.Type, r.Hard, lim.Cur, lim.Max)}, nil
}

// setOOMScoreAdj sets the OOM score adjustment. Lowering it needs
// CAP_SYS_RESOURCE; where the host denies it, the current (lowest
// allowed) value is kept and a warning says so.
func setOOMScoreAdj(v int) ([]string, error) {
	const path = "/proc/self/oom_score_adj"
	err := os.WriteFile(path, []byte(strconv.Itoa(v)), 0)
	if err == nil {
		return nil, nil
	}
	if !errors.Is(err, os.ErrPermission) {
		return nil, fmt.Errorf("set oomScoreAdj %d: %w", v, err)
	}
	cur, rerr := os.ReadFile(path)
	if rerr != nil {
		return nil, fmt.Errorf("set oomScoreAdj %d: %w", v, err)
	}
	return []string{fmt.Sprintf("oomScoreAdj %d needs CAP_SYS_RESOURCE, which this host denies; kept %s", v, strings.TrimSpace(string(cur)))}, nil
}

var schedPolicies = map[specs.LinuxSchedulerPolicy]uint32{
	specs.SchedOther: 0, specs.SchedFIFO: 1, specs.SchedRR: 2, specs.SchedBatch: 3,
	specs.SchedISO: 4, specs.SchedIdle: 5, specs.SchedDeadline: 6,
}

var schedFlags = map[specs.LinuxSchedulerFlag]uint64{
	specs.SchedFlagResetOnFork: 0x01, specs.SchedFlagReclaim: 0x02, specs.SchedFlagDLOverrun: 0x04,
	specs.SchedFlagKeepPolicy: 0x08, specs.SchedFlagKeepParams: 0x10, specs.SchedFlagUtilClampMin: 0x20,
	specs.SchedFlagUtilClampMax: 0x40,
}

func setScheduler(s *specs.Scheduler) error {
	pol, ok := schedPolicies[s.Policy]
	if !ok {
		return fmt.Errorf("scheduler: unknown policy %q", s.Policy)
	}
	attr := unix.SchedAttr{
		Size: unix.SizeofSchedAttr, Policy: pol, Priority: uint32(s.Priority),
		Runtime: s.Runtime, Deadline: s.Deadline, Period: s.Period,
	}
	if s.Nice != 0 {
		attr.Nice = s.Nice
	}
	for _, f := range s.Flags {
		v, ok := schedFlags[f]
		if !ok {
			return fmt.Errorf("scheduler: unknown flag %q", f)
		}
		attr.Flags |= v
	}
	if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
		return fmt.Errorf("scheduler %s: %w", s.Policy, err)
	}
	return nil
}

var ioClasses = map[specs.IOPriorityClass]int{
	specs.IOPRIO_CLASS_RT: 1, specs.IOPRIO_CLASS_BE: 2, specs.IOPRIO_CLASS_IDLE: 3,
}

func setIOPriority(p *specs.LinuxIOPriority) error {
	class, ok := ioClasses[p.Class]
	if !ok {
		return fmt.Errorf("ioPriority: unknown class %q", p.Class)
	}
	if p.Priority < 0 || p.Priority > 7 {
		return fmt.Errorf("ioPriority: priority %d out of range 0-7", p.Priority)
	}
	const whoProcess = 1
	prio := class<<13 | p.Priority
	if _, _, e := unix.Syscall(unix.SYS_IOPRIO_SET, whoProcess, 0, uintptr(prio)); e != 0 {
		return fmt.Errorf("ioPriority: %w", e)
	}
	return nil
}

// prepareCwd enters the process's working directory, creating it as
// runc does, and checks that it lies inside the container: a directory fd
// leaked from the host could otherwise serve as an escape (CVE-2024-21626).
func prepareCwd(cwd string) error {
	if err := unix.Chdir(cwd); err != nil {
		if !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("chdir to cwd %q: %w", cwd, err)
		}
		if err := os.MkdirAll(cwd, 0o755); err != nil {
			return fmt.Errorf("create cwd %q: %w", cwd, err)
		}
		if err := unix.Chdir(cwd); err != nil {
			return fmt.Errorf("chdir to cwd %q: %w", cwd, err)
		}
	}
	buf := make([]byte, unix.PathMax)
	n, err := unix.Getcwd(buf)
	if err != nil || n == 0 || buf[0] != '/' {
		return fmt.Errorf("cwd %q lies outside the container's root", cwd)
	}
	return nil
}

// dropPrivileges applies seccomp, capabilities, the user and
// no_new_privs in the order that keeps each step possible: a filter is
// loaded before capabilities go unless no_new_privs lets an unprivileged
// process load it, in which case it comes last so it filters the least of
// our own work.
//
// filter may be nil; it was compiled early, before rlimits could starve
// libseccomp of memory.
func dropPrivileges(sc *syncConn, p *specs.Process, filter *seccomp.Filter) ([]string, error) {
	if filter != nil && !p.NoNewPrivileges {
		if err := loadSeccomp(sc, filter); err != nil {
			return nil, err
		}
	}
	var set *caps.Set
	var warnings []string
	if p.Capabilities != nil {
		s, err := caps.New(p.Capabilities)
		if err != nil {
			return nil, err
		}
		set = s
		if len(s.Unknown) > 0 {
			warnings = append(warnings, fmt.Sprintf("unknown capabilities left out: %s", strings.Join(s.Unknown, ", ")))
		}
		if unheld := set.DropUnheld(); len(unheld) > 0 {
			warnings = append(warnings, fmt.Sprintf("capabilities this host cannot grant left out: %s", strings.Join(unheld, ", ")))
		}
		if err := set.ApplyBounding(); err != nil {
			return nil, err
		}
	}
	if err := setUser(p.User); err != nil {
		return nil, err
	}
	if set != nil {
		if err := set.Apply(); err != nil {
			return nil, err
		}
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return nil, fmt.Errorf("set no_new_privs: %w", err)
		}
	}
	if filter != nil && p.NoNewPrivileges {
		return warnings, loadSeccomp(sc, filter)
	}
	return warnings, nil
}

// compileSeccomp builds the spec's filter, through the cache under the
// state root, and returns it encoded for init, or nil when there is none.
// A failure to write the cache is only a warning.
func (r *Runtime) compileSeccomp(s *specs.Spec) ([]byte, error) {
	if s.Linux == nil || s.Linux.Seccomp == nil {
		return nil, nil
	}
	f, cacheErr, err := seccomp.CompileCached(s.Linux.Seccomp, filepath.Join(r.Root, seccompCacheDir))
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	if cacheErr != nil {
		r.warn(cacheErr.Error())
	}
	return f.MarshalBinary()
}

// decodeSeccomp turns the parent's encoded filter back into one to load,
// or returns nil when there is none.
func decodeSeccomp(raw []byte) (*seccomp.Filter, error) {
	if raw == nil {
		return nil, nil
	}
	f, err := seccomp.UnmarshalFilter(raw)
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	return f, nil
}

// withoutSeccomp returns s as init needs it: the same, less the seccomp
// section, which init gets compiled and which is the bulk of a default
// spec's JSON.
func withoutSeccomp(s *specs.Spec) *specs.Spec {
	if s.Linux == nil || s.Linux.Seccomp == nil {
		return s
	}
	cp, linux := *s, *s.Linux
	linux.Seccomp = nil
	cp.Linux = &linux
	return &cp
}

func loadSeccomp(sc *syncConn, f *seccomp.Filter) error {
	fd, err := f.Load()
	if err != nil {
		return fmt.Errorf("load seccomp filter: %w", err)
	}
	if fd < 0 {
		return nil
	}
	defer unix.Close(fd)
	if err := sc.send(message{Type: msgSeccompFd}, fd); err != nil {
		return err
	}
	_, err = sc.expect(msgSeccompDone)
	return err
}

// setUser switches to the process's user, keeping the permitted
// capabilities across setuid so caps.Apply can then set exactly the
// requested ones.
func setUser(u specs.User) error {
	groups := make([]int, 0, len(u.AdditionalGids))
	for _, g := range u.AdditionalGids {
		groups = append(groups, int(g))
	}
	// An empty list may be refused where setgroups is denied (a user
	// namespace without it); there is nothing to drop then.
	if err := unix.Setgroups(groups); err != nil && (len(groups) > 0 || !errors.Is(err, unix.EPERM)) {
		return fmt.Errorf("setgroups %v: %w", groups, err)
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("keep capabilities: %w", err)
	}
	if err := unix.Setresgid(int(u.GID), int(u.GID), int(u.GID)); err != nil {
		return fmt.Errorf("setgid %d: %w", u.GID, err)
	}
	if err := unix.Setresuid(int(u.UID), int(u.UID), int(u.UID)); err != nil {
		return fmt.Errorf("setuid %d: %w", u.UID, err)
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("clear keep-capabilities: %w", err)
	}
	return nil
}

// markFdsCloexec makes sure no fd but stdio and the preserved ones
// reaches the container's program (CVE-2024-21626).
func markFdsCloexec(from int) error {
	if err := unix.CloseRange(uint(from), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fmt.Errorf("mark fds close-on-exec: %w", err)
	}
	return nil
}

var personalities = map[specs.LinuxPersonalityDomain]uintptr{
	specs.PerLinux: 0x0000, specs.PerLinux32: 0x0008,
}

func setPersonality(cfg *initConfig) error {
	if cfg.Spec == nil || cfg.Spec.Linux == nil || cfg.Spec.Linux.Personality == nil {
		return nil
	}
	per, ok := personalities[cfg.Spec.Linux.Personality.Domain]
	if !ok {
		return fmt.Errorf("personality: unknown domain %q", cfg.Spec.Linux.Personality.Domain)
	}
	if _, _, e := unix.Syscall(unix.SYS_PERSONALITY, per, 0, 0); e != 0 {
		return fmt.Errorf("personality: %w", e)
	}
	return nil
}

// writeSysctls sets the container's sysctls, each only where a namespace
// of the container's own isolates it.
func writeSysctls(s *specs.Spec) error {
	if s.Linux == nil {
		return nil
	}
	for k, v := range s.Linux.Sysctl {
		if err := checkSysctl(s, k); err != nil {
			return err
		}
		path := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
		if err := os.WriteFile(path, []byte(v), 0); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", k, v, err)
		}
	}
	return nil
}

func checkSysctl(s *specs.Spec, key string) error {
	need := func(t specs.LinuxNamespaceType) error {
		if !hasNS(s, t) {
			return fmt.Errorf("sysctl %s needs a %s namespace of the container's own", key, t)
		}
		return nil
	}
	switch {
	case strings.HasPrefix(key, "net."):
		return need(specs.NetworkNamespace)
	case strings.HasPrefix(key, "fs.mqueue."), strings.HasPrefix(key, "kernel.shm"),
		strings.HasPrefix(key, "kernel.msg"), key == "kernel.sem", key == "kernel.sem_next_id":
		return need(specs.IPCNamespace)
	case key == "kernel.hostname", key == "kernel.domainname":
		return need(specs.UTSNamespace)
	}
	if strings.Contains(key, "/") || strings.Contains(key, "..") {
		return fmt.Errorf("invalid sysctl name %q", key)
	}
	// Any other sysctl is global: writing it would change the host.
	return fmt.Errorf("sysctl %s is not isolated by any namespace, so a container may not set it", key)
}

// checkLSM applies the process's AppArmor profile or SELinux label, and
// says clearly when the host has no such module instead of ignoring it.
func checkLSM(p *specs.Process) error {
	if p.ApparmorProfile != "" {
		if _, err := os.Stat("/sys/kernel/security/apparmor"); err != nil {
			return fmt.Errorf("apparmor profile %q requested, but AppArmor is not enabled on this host", p.ApparmorProfile)
		}
		attr := "/proc/self/attr/apparmor/exec"
		if _, err := os.Stat(attr); err != nil {
			attr = "/proc/self/attr/exec"
		}
		if err := os.WriteFile(attr, []byte("exec "+p.ApparmorProfile), 0); err != nil {
			return fmt.Errorf("apply apparmor profile %q: %w", p.ApparmorProfile, err)
		}
	}
	if p.SelinuxLabel != "" {
		if _, err := os.Stat("/sys/fs/selinux/enforce"); err != nil {
			return fmt.Errorf("selinux label %q requested, but SELinux is not enabled on this host", p.SelinuxLabel)
		}
		if err := os.WriteFile("/proc/self/attr/exec", []byte(p.SelinuxLabel), 0); err != nil {
			return fmt.Errorf("apply selinux label %q: %w", p.SelinuxLabel, err)
		}
	}
	return nil
}

// joinKeyring gives the container a session keyring of its own, so it
// cannot read the host's keys.
func joinKeyring(id string) error {
	if _, err := unix.KeyctlJoinSessionKeyring(id); err != nil {
		if errors.Is(err, unix.ENOSYS) {
			return nil
		}
		return fmt.Errorf("join session keyring: %w", err)
	}
	return nil
}

// newTimeNamespace makes a time namespace with the spec's offsets; the
// execve of the container's program moves it in.
func newTimeNamespace(offsets map[string]specs.LinuxTimeOffset) error {
	if err := unix.Unshare(unix.CLONE_NEWTIME); err != nil {
		return fmt.Errorf("new time namespace: %w", err)
	}
	var b strings.Builder
	for clock, off := range offsets {
		if clock != "monotonic" && clock != "boottime" {
			return fmt.Errorf("time offset for unknown clock %q", clock)
		}
		fmt.Fprintf(&b, "%s %d %d\n", clock, off.Secs, off.Nanosecs)
	}
	if b.Len() == 0 {
		return nil
	}
	if err := os.WriteFile("/proc/self/timens_offsets", []byte(b.String()), 0); err != nil {
		return fmt.Errorf("write time offsets: %w", err)
	}
	return nil
}

// setupConsole makes a pty from the container's devpts, sends its master
// to whoever waits on the console socket, and makes the slave our
// controlling terminal and stdio.
func setupConsole(cfg *initConfig, mountConsole bool) error {
	master, slave, err := console.NewPty()
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	defer master.Close()
	var w, h uint
	if cs := cfg.Process.ConsoleSize; cs != nil {
		w, h = cs.Width, cs.Height
	}
	if err := console.SendFd(cfg.ConsoleFd, master); err != nil {
		return fmt.Errorf("console: %w", err)
	}
	_ = unix.Close(cfg.ConsoleFd)
	if err := console.SetupSlave(slave, w, h); err != nil {
		return fmt.Errorf("console: %w", err)
	}
	if mountConsole {
		return rootfs.MountConsole(slave)
	}
	return nil
}
