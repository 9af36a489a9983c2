package caps

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/internal/testutil"
)

// childEnv makes the test binary act as the child: it applies the
// capabilities given as JSON in the variable and prints its cap lines.
const childEnv = "BERTH_CAPS_TEST_CHILD"

// childUIDEnv, when set, makes the child switch to that uid with keep-caps
// between ApplyBounding and Apply, as a container's init does.
const childUIDEnv = "BERTH_CAPS_TEST_UID"

func TestMain(m *testing.M) {
	if v, ok := os.LookupEnv(childEnv); ok {
		if err := child(v, os.Getenv(childUIDEnv)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// child applies the capabilities in spec on a locked thread and prints that
// thread's capability lines from /proc.
func child(spec, uid string) error {
	runtime.LockOSThread()
	var c specs.LinuxCapabilities
	if err := json.Unmarshal([]byte(spec), &c); err != nil {
		return err
	}
	s, err := New(&c)
	if err != nil {
		return err
	}
	if err := s.ApplyBounding(); err != nil {
		return err
	}
	if uid != "" {
		id, err := strconv.Atoi(uid)
		if err != nil {
			return err
		}
		if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("keep caps: %w", err)
		}
		// This thread only: the sets are read back from this thread.
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(id), uintptr(id), uintptr(id)); e != 0 {
			return fmt.Errorf("setresuid: %w", e)
		}
	}
	if err := s.Apply(); err != nil {
		return err
	}
	status, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(status)
	return err
}

// runChild runs the child with c and returns its capability masks by
// /proc status field ("CapEff" ...).
func runChild(t *testing.T, c *specs.LinuxCapabilities, uid string) map[string]uint64 {
	t.Helper()
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"="+string(js), childUIDEnv+"="+uid)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v: %s", err, stderr.String())
	}
	masks := map[string]uint64{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":\t")
		if !ok || !strings.HasPrefix(k, "Cap") {
			continue
		}
		n, err := strconv.ParseUint(v, 16, 64)
		if err != nil {
			t.Fatalf("parse %s: %v", sc.Text(), err)
		}
		masks[k] = n
	}
	if len(masks) != 5 {
		t.Fatalf("child printed %d capability lines, want 5: %s", len(masks), out)
	}
	return masks
}

func mask(caps ...capability.Cap) uint64 {
	var m uint64
	for _, c := range caps {
		m |= 1 << uint(c)
	}
	return m
}

func TestApplyInChild(t *testing.T) {
	testutil.RequiresRoot(t)
	two := []string{"CAP_CHOWN", "CAP_NET_BIND_SERVICE"}
	want2 := mask(capability.CAP_CHOWN, capability.CAP_NET_BIND_SERVICE)
	tests := []struct {
		name string
		caps *specs.LinuxCapabilities
		uid  string
		want map[string]uint64
	}{
		{
			name: "root keeps listed",
			caps: &specs.LinuxCapabilities{
				Bounding:    append([]string{"CAP_KILL"}, two...),
				Effective:   two,
				Permitted:   two,
				Inheritable: two,
				Ambient:     []string{"CAP_NET_BIND_SERVICE"},
			},
			want: map[string]uint64{
				"CapBnd": want2 | mask(capability.CAP_KILL),
				"CapEff": want2, "CapPrm": want2, "CapInh": want2,
				"CapAmb": mask(capability.CAP_NET_BIND_SERVICE),
			},
		},
		{
			name: "after setuid with keep-caps",
			uid:  "65534",
			caps: &specs.LinuxCapabilities{
				Bounding:  two,
				Effective: []string{"CAP_CHOWN"},
				Permitted: two,
				Ambient:   nil,
			},
			want: map[string]uint64{
				"CapBnd": want2,
				"CapEff": mask(capability.CAP_CHOWN), "CapPrm": want2,
				"CapInh": 0, "CapAmb": 0,
			},
		},
		{
			name: "nothing",
			caps: &specs.LinuxCapabilities{},
			uid:  "65534",
			want: map[string]uint64{"CapBnd": 0, "CapEff": 0, "CapPrm": 0, "CapInh": 0, "CapAmb": 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runChild(t, tt.caps, tt.uid)
			for k, w := range tt.want {
				if got[k] != w {
					t.Errorf("%s = %016x, want %016x", k, got[k], w)
				}
			}
		})
	}
}

func TestNewUnknownNameIsLeftOut(t *testing.T) {
	s, err := New(&specs.LinuxCapabilities{Effective: []string{"CAP_CHOWN", "CAP_FOO"}, Bounding: []string{"CAP_FOO"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Effective) != 1 || s.Effective[0] != capability.CAP_CHOWN || len(s.Bounding) != 0 {
		t.Fatalf("sets = %+v, want only CAP_CHOWN effective", s)
	}
	if len(s.Unknown) != 1 || s.Unknown[0] != "CAP_FOO" {
		t.Fatalf("Unknown = %v, want [CAP_FOO] once", s.Unknown)
	}
}

func TestPlanDropsNewerThanKernel(t *testing.T) {
	// A kernel whose last capability is CAP_AUDIT_READ (37) knows neither
	// CAP_PERFMON, CAP_BPF nor CAP_CHECKPOINT_RESTORE.
	s, err := plan(&specs.LinuxCapabilities{
		Bounding: []string{"CAP_CHOWN", "CAP_BPF", "cap_audit_read", "CAP_CHOWN", "CAP_CHECKPOINT_RESTORE"},
	}, capability.CAP_AUDIT_READ)
	if err != nil {
		t.Fatal(err)
	}
	want := []capability.Cap{capability.CAP_CHOWN, capability.CAP_AUDIT_READ}
	if fmt.Sprint(s.Bounding) != fmt.Sprint(want) {
		t.Fatalf("bounding = %v, want %v", s.Bounding, want)
	}
	if len(s.Effective)+len(s.Permitted)+len(s.Inheritable)+len(s.Ambient) != 0 {
		t.Fatalf("unlisted sets not empty: %+v", s)
	}
}

func TestNewNil(t *testing.T) {
	s, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Bounding)+len(s.Effective)+len(s.Permitted)+len(s.Inheritable)+len(s.Ambient) != 0 {
		t.Fatalf("nil capabilities gave %+v, want empty sets", s)
	}
}

func TestToDrop(t *testing.T) {
	got := toDrop([]capability.Cap{0, 2}, 3)
	if fmt.Sprint(got) != fmt.Sprint([]capability.Cap{1, 3}) {
		t.Fatalf("toDrop = %v, want [1 3]", got)
	}
}

func TestKnown(t *testing.T) {
	names := Known()
	if len(names) != len(capability.ListKnown()) {
		t.Fatalf("Known has %d names, want %d", len(names), len(capability.ListKnown()))
	}
	has := map[string]bool{}
	for _, n := range names {
		if !strings.HasPrefix(n, "CAP_") || strings.ToUpper(n) != n {
			t.Errorf("badly formed name %q", n)
		}
		has[n] = true
	}
	for _, n := range []string{"CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_NET_BIND_SERVICE", "CAP_CHECKPOINT_RESTORE"} {
		if !has[n] {
			t.Errorf("Known lacks %s", n)
		}
	}
}

func TestDropUnheldKeepsHeld(t *testing.T) {
	s, err := New(&specs.LinuxCapabilities{Bounding: []string{"CAP_CHOWN", "CAP_KILL"}, Effective: []string{"CAP_CHOWN"}})
	if err != nil {
		t.Fatal(err)
	}
	bnd, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		t.Fatal(err)
	}
	dropped := s.DropUnheld()
	// CAP_CHOWN (0) and CAP_KILL (5) are held by any root test process and
	// by the usual unprivileged one's bounding set alike.
	if len(dropped) != 0 || len(s.Bounding) != 2 || len(s.Effective) != 1 {
		t.Fatalf("dropped %v, left %v %v (status %s)", dropped, s.Bounding, s.Effective, bnd)
	}
}
