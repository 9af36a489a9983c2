package seccomp

import (
	"encoding/binary"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

func uintp(v uint) *uint { return &v }

func allowWith(calls ...specs.LinuxSyscall) *specs.LinuxSeccomp {
	return &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: calls}
}

// mustCompile compiles cfg and releases the filter when the test ends.
func mustCompile(t *testing.T, cfg *specs.LinuxSeccomp) *Filter {
	t.Helper()
	f, err := Compile(cfg)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	t.Cleanup(f.Release)
	return f
}

func TestCompileRejectsBadValues(t *testing.T) {
	errnoRule := func(mod func(*specs.LinuxSyscall)) *specs.LinuxSeccomp {
		sc := specs.LinuxSyscall{Names: []string{"getcwd"}, Action: specs.ActErrno}
		mod(&sc)
		return allowWith(sc)
	}
	tests := []struct {
		name string
		cfg  *specs.LinuxSeccomp
		want string
	}{
		{"nil config", nil, "no seccomp config"},
		{"bad default action", &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_BOGUS"}, `unknown action "SCMP_ACT_BOGUS"`},
		{"empty default action", &specs.LinuxSeccomp{}, `unknown action ""`},
		{"bad rule action", errnoRule(func(s *specs.LinuxSyscall) { s.Action = "SCMP_ACT_MAYBE" }), `unknown action "SCMP_ACT_MAYBE"`},
		{"bad arch", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{"SCMP_ARCH_PDP11"}}, `unknown architecture "SCMP_ARCH_PDP11"`},
		{"bad flag", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_FAST"}}, `unknown seccomp flag "SECCOMP_FILTER_FLAG_FAST"`},
		{"bad operator", errnoRule(func(s *specs.LinuxSyscall) {
			s.Args = []specs.LinuxSeccompArg{{Index: 0, Value: 1, Op: "SCMP_CMP_ABOUT"}}
		}), `unknown operator "SCMP_CMP_ABOUT"`},
		{"argument index", errnoRule(func(s *specs.LinuxSyscall) {
			s.Args = []specs.LinuxSeccompArg{{Index: 6, Value: 1, Op: specs.OpEqualTo}}
		}), "argument index 6"},
		{"errnoRet on allow", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"getcwd"}, Action: specs.ActAllow, ErrnoRet: uintp(1)},
		}}, "errnoRet 1 is set but action SCMP_ACT_ALLOW"},
		{"defaultErrnoRet on kill", &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess, DefaultErrnoRet: uintp(1)}, "SCMP_ACT_KILL_PROCESS takes no errno"},
		{"errnoRet too big", errnoRule(func(s *specs.LinuxSyscall) { s.ErrnoRet = uintp(70000) }), "errnoRet 70000"},
		{"notify default", &specs.LinuxSeccomp{DefaultAction: specs.ActNotify, ListenerPath: "/x"}, "SCMP_ACT_NOTIFY cannot be the default"},
		{"notify write", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/x", Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdirat", "write"}, Action: specs.ActNotify},
		}}, "cannot be used for write"},
		{"notify without listener", allowWith(specs.LinuxSyscall{Names: []string{"mkdirat"}, Action: specs.ActNotify}), "needs a listenerPath"},
		{"metadata without listener", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerMetadata: "m"}, "listenerMetadata"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Compile(tt.cfg)
			if err == nil {
				f.Release()
				t.Fatal("compile succeeded")
			}
			if f != nil {
				t.Errorf("compile returned a filter with error %v", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
		})
	}
}

func TestAction(t *testing.T) {
	tests := []struct {
		act   specs.LinuxSeccompAction
		errno *uint
		want  libseccomp.ScmpAction
	}{
		{specs.ActErrno, nil, libseccomp.ActErrno.SetReturnCode(int16(unix.EPERM))},
		{specs.ActErrno, uintp(uint(unix.ENOSYS)), libseccomp.ActErrno.SetReturnCode(int16(unix.ENOSYS))},
		{specs.ActTrace, nil, libseccomp.ActTrace.SetReturnCode(int16(unix.EPERM))},
		{specs.ActTrace, uintp(42), libseccomp.ActTrace.SetReturnCode(42)},
		{specs.ActKill, nil, libseccomp.ActKillThread},
		{specs.ActKillThread, nil, libseccomp.ActKillThread},
		{specs.ActKillProcess, nil, libseccomp.ActKillProcess},
		{specs.ActTrap, nil, libseccomp.ActTrap},
		{specs.ActAllow, nil, libseccomp.ActAllow},
		{specs.ActLog, nil, libseccomp.ActLog},
		{specs.ActNotify, nil, libseccomp.ActNotify},
	}
	for _, tt := range tests {
		got, err := action(tt.act, tt.errno)
		if err != nil || got != tt.want {
			t.Errorf("action(%s, %v) = %v, %v; want %v", tt.act, tt.errno, got, err, tt.want)
		}
	}
}

func TestConditionSets(t *testing.T) {
	sets, err := conditionSets(nil)
	if err != nil || len(sets) != 1 || len(sets[0]) != 0 {
		t.Errorf("no args: got %v, %v; want one empty set", sets, err)
	}

	sets, err = conditionSets([]specs.LinuxSeccompArg{
		{Index: 0, Value: 1, Op: specs.OpEqualTo},
		{Index: 1, Value: 0xf, ValueTwo: 2, Op: specs.OpMaskedEqual},
	})
	want := [][]libseccomp.ScmpCondition{{
		{Argument: 0, Op: libseccomp.CompareEqual, Operand1: 1},
		{Argument: 1, Op: libseccomp.CompareMaskedEqual, Operand1: 0xf, Operand2: 2},
	}}
	if err != nil || !reflect.DeepEqual(sets, want) {
		t.Errorf("distinct args: got %v, %v; want %v", sets, err, want)
	}

	sets, err = conditionSets([]specs.LinuxSeccompArg{
		{Index: 0, Value: 1, Op: specs.OpEqualTo},
		{Index: 0, Value: 8, Op: specs.OpEqualTo},
		{Index: 1, Value: 3, Op: specs.OpGreaterThan},
	})
	want = [][]libseccomp.ScmpCondition{
		{{Argument: 0, Op: libseccomp.CompareEqual, Operand1: 1}},
		{{Argument: 0, Op: libseccomp.CompareEqual, Operand1: 8}},
		{{Argument: 1, Op: libseccomp.CompareGreater, Operand1: 3}},
	}
	if err != nil || !reflect.DeepEqual(sets, want) {
		t.Errorf("same arg: got %v, %v; want %v", sets, err, want)
	}
}

func TestPlanSkipsRulesEqualToDefault(t *testing.T) {
	cfg := &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"getcwd"}, Action: specs.ActErrno},                                     // the default: skipped
			{Names: []string{"mkdirat"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EPERM))}, // the default once resolved
			{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.ENOSYS))}, // differs by errno: kept
			{Names: []string{"read", "write"}, Action: specs.ActAllow},
		},
	}
	p, err := makePlan(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range p.rules {
		names = append(names, r.name)
	}
	if want := []string{"clone3", "read", "write"}; !slices.Equal(names, want) {
		t.Errorf("rules for %v, want %v", names, want)
	}

	// libseccomp itself refuses the skipped rule, which is why it is skipped.
	ctx, err := libseccomp.NewFilter(p.defaultAction)
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.Release()
	nr, err := libseccomp.GetSyscallFromName("getcwd")
	if err != nil {
		t.Fatal(err)
	}
	if err := ctx.AddRule(nr, p.defaultAction); err == nil {
		t.Error("libseccomp took a rule with the default action")
	}
	mustCompile(t, cfg)
}

func TestCompileSkipsUnknownSyscalls(t *testing.T) {
	known := mustCompile(t, allowWith(specs.LinuxSyscall{Names: []string{"getcwd"}, Action: specs.ActErrno}))
	withUnknown := mustCompile(t, allowWith(specs.LinuxSyscall{Names: []string{"no_such_syscall", "getcwd", "frobnicate2"}, Action: specs.ActErrno}))
	if !slices.Equal(known.prog, withUnknown.prog) {
		t.Error("unknown syscall names changed the program")
	}
	none := mustCompile(t, allowWith(specs.LinuxSyscall{Names: []string{"no_such_syscall"}, Action: specs.ActErrno}))
	if none.Instructions() >= known.Instructions() {
		t.Errorf("a filter of unknown syscalls has %d instructions, one with getcwd %d", none.Instructions(), known.Instructions())
	}
}

func TestCompileSameArgumentConditions(t *testing.T) {
	args := []specs.LinuxSeccompArg{
		{Index: 0, Value: 0, Op: specs.OpEqualTo},
		{Index: 0, Value: 8, Op: specs.OpEqualTo},
	}
	// Why the split exists: libseccomp refuses both conditions in one rule.
	ctx, err := libseccomp.NewFilter(libseccomp.ActAllow)
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.Release()
	nr, err := libseccomp.GetSyscallFromName("personality")
	if err != nil {
		t.Fatal(err)
	}
	sets, err := conditionSets(args[:1])
	if err != nil {
		t.Fatal(err)
	}
	c0 := sets[0][0]
	sets, err = conditionSets(args[1:])
	if err != nil {
		t.Fatal(err)
	}
	c1 := sets[0][0]
	if err := ctx.AddRuleConditional(nr, libseccomp.ActErrno.SetReturnCode(1), []libseccomp.ScmpCondition{c0, c1}); err == nil {
		t.Error("libseccomp took two conditions on one argument in one rule")
	}

	both := mustCompile(t, allowWith(specs.LinuxSyscall{Names: []string{"personality"}, Action: specs.ActErrno, Args: args}))
	single := mustCompile(t, allowWith(specs.LinuxSyscall{Names: []string{"personality"}, Action: specs.ActErrno, Args: args[:1]}))
	if both.Instructions() <= single.Instructions() {
		t.Errorf("two conditions give %d instructions, one gives %d", both.Instructions(), single.Instructions())
	}
}

func TestCompileEverything(t *testing.T) {
	cfg := &specs.LinuxSeccomp{
		DefaultAction:    specs.ActErrno,
		DefaultErrnoRet:  uintp(uint(unix.ENOSYS)),
		Architectures:    []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32, specs.ArchX86},
		Flags:            []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow, specs.LinuxSeccompFlagWaitKillableRecv, "SECCOMP_FILTER_FLAG_TSYNC"},
		ListenerPath:     "/run/agent.sock",
		ListenerMetadata: "meta",
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "exit_group", "socketcall"}, Action: specs.ActAllow},
			{Names: []string{"getcwd"}, Action: specs.ActLog},
			{Names: []string{"mkdirat"}, Action: specs.ActNotify},
			{Names: []string{"ptrace"}, Action: specs.ActTrace, ErrnoRet: uintp(7)},
			{Names: []string{"kexec_load"}, Action: specs.ActKill},
			{Names: []string{"reboot"}, Action: specs.ActKillProcess},
			{Names: []string{"swapon"}, Action: specs.ActKillThread},
			{Names: []string{"acct"}, Action: specs.ActTrap},
			{Names: []string{"open"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EACCES))},
			{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: 0, Op: specs.OpEqualTo}, {Index: 0, Value: 8, Op: specs.OpEqualTo},
			}},
			{Names: []string{"clone"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: unix.CLONE_NEWNS, ValueTwo: 0, Op: specs.OpMaskedEqual},
				{Index: 1, Value: 1, Op: specs.OpNotEqual},
				{Index: 2, Value: 1, Op: specs.OpLessThan},
				{Index: 3, Value: 1, Op: specs.OpLessEqual},
				{Index: 4, Value: 1, Op: specs.OpGreaterEqual},
				{Index: 5, Value: 1, Op: specs.OpGreaterThan},
			}},
		},
	}
	f := mustCompile(t, cfg)
	if !f.notify {
		t.Error("a filter with a notify rule does not ask for a listener")
	}
	wantFlags := uint(unix.SECCOMP_FILTER_FLAG_LOG | unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW |
		unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)
	if f.flags != wantFlags {
		t.Errorf("flags %#x, want %#x", f.flags, wantFlags)
	}
	native := mustCompile(t, &specs.LinuxSeccomp{DefaultAction: cfg.DefaultAction, Syscalls: cfg.Syscalls, ListenerPath: "/x"})
	if f.Instructions() <= native.Instructions() {
		t.Errorf("with x86 and x32 the program has %d instructions, without %d", f.Instructions(), native.Instructions())
	}
}

func TestWaitKillableNeedsListener(t *testing.T) {
	// Without a notify rule the kernel would refuse the flag, which means
	// nothing without a listener, so it is left out.
	f := mustCompile(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Flags:         []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagWaitKillableRecv},
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"getcwd"}, Action: specs.ActErrno}},
	})
	if f.notify || f.flags != 0 {
		t.Errorf("notify %v flags %#x, want no listener and no flags", f.notify, f.flags)
	}
}

func TestReleaseThenLoad(t *testing.T) {
	f, err := Compile(allowWith())
	if err != nil {
		t.Fatal(err)
	}
	if f.Instructions() == 0 {
		t.Error("empty program")
	}
	f.Release()
	f.Release()
	if _, err := f.Load(); err == nil || !strings.Contains(err.Error(), "released") {
		t.Errorf("load after release: %v", err)
	}
}

func TestDecodeProgram(t *testing.T) {
	for _, n := range []int{0, 12} {
		if _, err := decodeProgram(make([]byte, n)); err == nil {
			t.Errorf("%d bytes decoded", n)
		}
	}
	raw := make([]byte, 16)
	binary.NativeEndian.PutUint16(raw[0:], 0x06)
	raw[2], raw[3] = 1, 2
	binary.NativeEndian.PutUint32(raw[4:], 0x7fff0000)
	binary.NativeEndian.PutUint16(raw[8:], 0x15)
	binary.NativeEndian.PutUint32(raw[12:], 42)
	prog, err := decodeProgram(raw)
	want := []unix.SockFilter{{Code: 0x06, Jt: 1, Jf: 2, K: 0x7fff0000}, {Code: 0x15, K: 42}}
	if err != nil || !slices.Equal(prog, want) {
		t.Errorf("decoded %v, %v; want %v", prog, err, want)
	}
}

func TestFeatures(t *testing.T) {
	f := Features()
	if f.Enabled == nil || !*f.Enabled {
		t.Error("not enabled")
	}
	if len(f.Actions) != 9 || !slices.Contains(f.Actions, "SCMP_ACT_NOTIFY") || !slices.Contains(f.Actions, "SCMP_ACT_KILL_PROCESS") {
		t.Errorf("actions %v", f.Actions)
	}
	if len(f.Operators) != 7 || !slices.Contains(f.Operators, "SCMP_CMP_MASKED_EQ") {
		t.Errorf("operators %v", f.Operators)
	}
	for _, a := range []string{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"} {
		if !slices.Contains(f.Archs, a) {
			t.Errorf("archs %v lack %s", f.Archs, a)
		}
	}
	if !slices.IsSorted(f.Archs) {
		t.Errorf("archs %v not sorted", f.Archs)
	}
	known := []string{"SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"}
	if !slices.Equal(f.KnownFlags, known) {
		t.Errorf("known flags %v, want %v", f.KnownFlags, known)
	}
	for _, fl := range f.SupportedFlags {
		if !slices.Contains(known, fl) {
			t.Errorf("supported flag %s is not known", fl)
		}
	}
	if kernelAtLeast(t, 5, 19) && !slices.Equal(f.SupportedFlags, known) {
		t.Errorf("a 5.19+ kernel supports %v, want %v", f.SupportedFlags, known)
	}
}

func TestEnabled(t *testing.T) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	// The kernel lists "Seccomp:" in status exactly when it is built with
	// seccomp support.
	if want := strings.Contains(string(status), "\nSeccomp:"); Enabled() != want {
		t.Errorf("Enabled() = %v, want %v", Enabled(), want)
	}
}

func kernelAtLeast(t *testing.T, major, minor int) bool {
	t.Helper()
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	var ma, mi int
	if _, err := fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &ma, &mi); err != nil {
		t.Fatal(err)
	}
	return ma > major || (ma == major && mi >= minor)
}
