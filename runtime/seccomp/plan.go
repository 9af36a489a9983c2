package seccomp

import (
	"errors"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// plan is an OCI seccomp config checked and translated into libseccomp's
// terms, before any libseccomp context exists. Every spelling mistake in a
// config is found here, so Compile fails on them without touching the
// kernel or the library's state.
type plan struct {
	defaultAction libseccomp.ScmpAction
	// arches are the extra architectures, checked against the spec's
	// names and without duplicates.
	arches []specs.Arch
	// flags are the seccomp(2) filter flags the config asks for; the
	// listener flags are added at load time from notify.
	flags uint
	// waitKillable asks for SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV; the
	// kernel accepts it only together with a listener.
	waitKillable bool
	rules        []rule
}

// rule is one libseccomp rule: a syscall name, the action, and the
// conditions that must all hold.
type rule struct {
	name   string
	action libseccomp.ScmpAction
	conds  []libseccomp.ScmpCondition
}

// actions maps the spec's action names to libseccomp's. SCMP_ACT_KILL is
// the historical name of SCMP_ACT_KILL_THREAD.
var actions = map[specs.LinuxSeccompAction]libseccomp.ScmpAction{
	specs.ActKill:        libseccomp.ActKillThread,
	specs.ActKillThread:  libseccomp.ActKillThread,
	specs.ActKillProcess: libseccomp.ActKillProcess,
	specs.ActTrap:        libseccomp.ActTrap,
	specs.ActErrno:       libseccomp.ActErrno,
	specs.ActTrace:       libseccomp.ActTrace,
	specs.ActAllow:       libseccomp.ActAllow,
	specs.ActLog:         libseccomp.ActLog,
	specs.ActNotify:      libseccomp.ActNotify,
}

// operators maps the spec's comparison names to libseccomp's.
var operators = map[specs.LinuxSeccompOperator]libseccomp.ScmpCompareOp{
	specs.OpNotEqual:     libseccomp.CompareNotEqual,
	specs.OpLessThan:     libseccomp.CompareLess,
	specs.OpLessEqual:    libseccomp.CompareLessOrEqual,
	specs.OpEqualTo:      libseccomp.CompareEqual,
	specs.OpGreaterEqual: libseccomp.CompareGreaterEqual,
	specs.OpGreaterThan:  libseccomp.CompareGreater,
	specs.OpMaskedEqual:  libseccomp.CompareMaskedEqual,
}

// arches maps the spec's architecture names to libseccomp's.
var arches = map[specs.Arch]libseccomp.ScmpArch{
	specs.ArchX86:         libseccomp.ArchX86,
	specs.ArchX86_64:      libseccomp.ArchAMD64,
	specs.ArchX32:         libseccomp.ArchX32,
	specs.ArchARM:         libseccomp.ArchARM,
	specs.ArchAARCH64:     libseccomp.ArchARM64,
	specs.ArchMIPS:        libseccomp.ArchMIPS,
	specs.ArchMIPS64:      libseccomp.ArchMIPS64,
	specs.ArchMIPS64N32:   libseccomp.ArchMIPS64N32,
	specs.ArchMIPSEL:      libseccomp.ArchMIPSEL,
	specs.ArchMIPSEL64:    libseccomp.ArchMIPSEL64,
	specs.ArchMIPSEL64N32: libseccomp.ArchMIPSEL64N32,
	specs.ArchPPC:         libseccomp.ArchPPC,
	specs.ArchPPC64:       libseccomp.ArchPPC64,
	specs.ArchPPC64LE:     libseccomp.ArchPPC64LE,
	specs.ArchS390:        libseccomp.ArchS390,
	specs.ArchS390X:       libseccomp.ArchS390X,
	specs.ArchPARISC:      libseccomp.ArchPARISC,
	specs.ArchPARISC64:    libseccomp.ArchPARISC64,
	specs.ArchRISCV64:     libseccomp.ArchRISCV64,
	specs.ArchLOONGARCH64: libseccomp.ArchLOONGARCH64,
	specs.ArchM68K:        libseccomp.ArchM68K,
	specs.ArchSH:          libseccomp.ArchSH,
	specs.ArchSHEB:        libseccomp.ArchSHEB,
}

// flags maps the spec's filter flags to seccomp(2) flag bits.
// SECCOMP_FILTER_FLAG_TSYNC maps to nothing: it would apply the filter to
// every thread of the loading process, but the filter is loaded by the
// thread that executes the container's program right after, and execve
// ends every other thread, so the container ends up filtered whole either
// way. Passing it would also make the kernel refuse a listener on kernels
// before 5.7. WAIT_KILLABLE_RECV is tracked apart (see plan.waitKillable).
var flags = map[specs.LinuxSeccompFlag]uint{
	specs.LinuxSeccompFlagLog:              unix.SECCOMP_FILTER_FLAG_LOG,
	specs.LinuxSeccompFlagSpecAllow:        unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW,
	specs.LinuxSeccompFlagWaitKillableRecv: 0,
	"SECCOMP_FILTER_FLAG_TSYNC":            0,
}

// notifyForbidden are syscalls that may not be sent to a listener: the
// container's init makes them after the filter is in place and before the
// listener fd has reached the agent (it writes and sends that very fd),
// so a notification there would wait for an agent that can never answer.
// runc refuses write for the same reason.
var notifyForbidden = map[string]bool{"write": true, "sendmsg": true}

// makePlan checks cfg and translates it. Names of syscalls are kept as
// names: resolving them needs libseccomp's tables, which build does.
func makePlan(cfg *specs.LinuxSeccomp) (*plan, error) {
	if cfg == nil {
		return nil, errors.New("no seccomp config")
	}
	p := &plan{}
	def, err := action(cfg.DefaultAction, cfg.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("default action: %w", err)
	}
	if cfg.DefaultAction == specs.ActNotify {
		// Every syscall of the init itself, including the one that hands
		// the listener fd out, would wait on a listener nobody holds.
		return nil, errors.New("default action: SCMP_ACT_NOTIFY cannot be the default action")
	}
	p.defaultAction = def
	if p.arches, err = planArches(cfg.Architectures); err != nil {
		return nil, err
	}
	if err := p.setFlags(cfg.Flags); err != nil {
		return nil, err
	}
	for i, sc := range cfg.Syscalls {
		if err := p.addSyscalls(i, sc); err != nil {
			return nil, err
		}
	}
	if cfg.ListenerMetadata != "" && cfg.ListenerPath == "" {
		return nil, errors.New("listenerMetadata is set without listenerPath")
	}
	if usesNotify(cfg) && cfg.ListenerPath == "" {
		return nil, errors.New("SCMP_ACT_NOTIFY needs a listenerPath to send the listener fd to")
	}
	return p, nil
}

func usesNotify(cfg *specs.LinuxSeccomp) bool {
	for _, sc := range cfg.Syscalls {
		if sc.Action == specs.ActNotify && len(sc.Names) > 0 {
			return true
		}
	}
	return false
}

// action translates a spec action and its optional errno. The errno rides
// in the 16-bit data field of SECCOMP_RET_ERRNO and SECCOMP_RET_TRACE; no
// other action carries one, and the spec says to fail when one is given.
func action(a specs.LinuxSeccompAction, errnoRet *uint) (libseccomp.ScmpAction, error) {
	act, ok := actions[a]
	if !ok {
		return libseccomp.ActInvalid, fmt.Errorf("unknown action %q", a)
	}
	if act != libseccomp.ActErrno && act != libseccomp.ActTrace {
		if errnoRet != nil {
			return libseccomp.ActInvalid, fmt.Errorf("errnoRet %d is set but action %s takes no errno", *errnoRet, a)
		}
		return act, nil
	}
	code := uint(unix.EPERM)
	if errnoRet != nil {
		code = *errnoRet
	}
	if code > 0xffff {
		return libseccomp.ActInvalid, fmt.Errorf("errnoRet %d of action %s does not fit in 16 bits", code, a)
	}
	return act.SetReturnCode(int16(uint16(code))), nil
}

// planArches checks the architecture names and drops duplicates. The
// native architecture needs no listing: every libseccomp filter has it.
func planArches(names []specs.Arch) ([]specs.Arch, error) {
	var out []specs.Arch
	seen := map[specs.Arch]bool{}
	for _, n := range names {
		if _, ok := arches[n]; !ok {
			return nil, fmt.Errorf("unknown architecture %q", n)
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out, nil
}

func (p *plan) setFlags(names []specs.LinuxSeccompFlag) error {
	for _, n := range names {
		bit, ok := flags[n]
		if !ok {
			return fmt.Errorf("unknown seccomp flag %q", n)
		}
		p.flags |= bit
		if n == specs.LinuxSeccompFlagWaitKillableRecv {
			p.waitKillable = true
		}
	}
	return nil
}

// addSyscalls adds the rules of the i-th syscalls entry. A rule whose
// action is the default action is left out: libseccomp refuses it, and it
// would change nothing.
func (p *plan) addSyscalls(i int, sc specs.LinuxSyscall) error {
	act, err := action(sc.Action, sc.ErrnoRet)
	if err != nil {
		return fmt.Errorf("syscalls[%d] %v: %w", i, sc.Names, err)
	}
	condSets, err := conditionSets(sc.Args)
	if err != nil {
		return fmt.Errorf("syscalls[%d] %v: %w", i, sc.Names, err)
	}
	if act == libseccomp.ActNotify {
		for _, n := range sc.Names {
			if notifyForbidden[n] {
				return fmt.Errorf("syscalls[%d]: SCMP_ACT_NOTIFY cannot be used for %s", i, n)
			}
		}
	}
	if act == p.defaultAction {
		return nil
	}
	for _, n := range sc.Names {
		for _, conds := range condSets {
			p.rules = append(p.rules, rule{name: n, action: act, conds: conds})
		}
	}
	return nil
}

// conditionSets translates the argument filters of one syscalls entry into
// the condition lists to add, each as its own rule.
//
// The spec means all conditions of an entry to hold together, and when
// each names a different argument that is what one libseccomp rule does.
// But libseccomp refuses a rule with two comparisons on the same argument
// (its BPF generator tests each argument once per rule). Profiles in use
// do put several comparisons on one argument, and runc and crun accept
// them by adding every condition as a separate rule, so that the action
// applies when any one of them holds. berth does the same, for the same
// profiles to mean the same thing under every runtime.
func conditionSets(args []specs.LinuxSeccompArg) ([][]libseccomp.ScmpCondition, error) {
	if len(args) == 0 {
		return [][]libseccomp.ScmpCondition{nil}, nil
	}
	conds := make([]libseccomp.ScmpCondition, 0, len(args))
	perIndex := map[uint]int{}
	for _, a := range args {
		c, err := condition(a)
		if err != nil {
			return nil, err
		}
		conds = append(conds, c)
		perIndex[a.Index]++
	}
	for _, n := range perIndex {
		if n > 1 {
			sets := make([][]libseccomp.ScmpCondition, len(conds))
			for i, c := range conds {
				sets[i] = []libseccomp.ScmpCondition{c}
			}
			return sets, nil
		}
	}
	return [][]libseccomp.ScmpCondition{conds}, nil
}

// condition translates one argument filter. For SCMP_CMP_MASKED_EQ the
// spec's value is the mask and valueTwo the value the masked argument must
// equal, which is the order libseccomp takes them in; the other operators
// use value alone.
func condition(a specs.LinuxSeccompArg) (libseccomp.ScmpCondition, error) {
	op, ok := operators[a.Op]
	if !ok {
		return libseccomp.ScmpCondition{}, fmt.Errorf("unknown operator %q", a.Op)
	}
	if a.Index > 5 {
		return libseccomp.ScmpCondition{}, fmt.Errorf("argument index %d out of range 0-5", a.Index)
	}
	if op == libseccomp.CompareMaskedEqual {
		return libseccomp.MakeCondition(a.Index, op, a.Value, a.ValueTwo)
	}
	return libseccomp.MakeCondition(a.Index, op, a.Value)
}
