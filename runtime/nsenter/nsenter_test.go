package nsenter

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// reportEnv makes the test binary print the namespaces it runs in (after
// the constructor has run) as JSON and exit.
const reportEnv = "BERTH_NSENTER_TEST_REPORT"

// nsNames are the /proc/<pid>/ns entries compared.
var nsNames = []string{"user", "ipc", "uts", "net", "pid", "pid_for_children", "cgroup", "time", "time_for_children", "mnt"}

func TestMain(m *testing.M) {
	if _, ok := os.LookupEnv(reportEnv); ok {
		r := namespaces("self")
		if v, ok := os.LookupEnv(envVar); ok {
			r["leftover"] = v
		}
		if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// namespaces reads the namespace links of /proc/<pid>/ns.
func namespaces(pid string) map[string]string {
	r := map[string]string{}
	for _, n := range nsNames {
		l, err := os.Readlink("/proc/" + pid + "/ns/" + n)
		if err != nil {
			l = "error: " + err.Error()
		}
		r[n] = l
	}
	return r
}

// holder starts a process that sits in new namespaces made with flags
// (and uid/gid maps for a user namespace); it is killed at cleanup.
func holder(t *testing.T, flags uintptr) string {
	t.Helper()
	cmd := exec.Command("/bin/sleep", "600")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: flags}
	if flags&syscall.CLONE_NEWUSER != 0 {
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 65536}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 65536}}
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start namespace holder: %v", err)
	}
	t.Cleanup(func() {
		// SIGKILL: a pid namespace's init ignores other signals from
		// outside.
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return fmt.Sprint(cmd.Process.Pid)
}

// reporter returns a command that re-executes the test binary to report
// its namespaces, with extra environment entries.
func reporter(env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(append(os.Environ(), reportEnv+"=1"), env...)
	return cmd
}

// report runs cmd and decodes its report.
func report(t *testing.T, cmd *exec.Cmd) map[string]string {
	t.Helper()
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := runBounded(cmd); err != nil {
		t.Fatalf("reporter: %v: %s", err, stderr.String())
	}
	r := map[string]string{}
	if err := json.Unmarshal([]byte(stdout.String()), &r); err != nil {
		t.Fatalf("reporter output %q: %v", stdout.String(), err)
	}
	return r
}

// runBounded runs cmd, killing it after 30 s.
func runBounded(cmd *exec.Cmd) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	timer := time.AfterFunc(30*time.Second, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	return cmd.Wait()
}

// expect checks that got has want's value for each of names.
func expect(t *testing.T, got, want map[string]string, names ...string) {
	t.Helper()
	for _, n := range names {
		if got[n] == "" || got[n] != want[n] {
			t.Errorf("%s namespace = %q, want %q", n, got[n], want[n])
		}
	}
}

func TestNoEnvChangesNothing(t *testing.T) {
	got := report(t, reporter())
	expect(t, got, namespaces("self"), nsNames...)
}

func TestOnThreadInErrors(t *testing.T) {
	called := false
	fn := func() error { called = true; return nil }
	err := OnThreadIn(map[specs.LinuxNamespaceType]string{specs.MountNamespace: "/proc/self/ns/mnt"}, fn)
	if err == nil || !strings.Contains(err.Error(), "mount namespace") {
		t.Errorf("mount: err = %v, want a refusal", err)
	}
	err = OnThreadIn(map[specs.LinuxNamespaceType]string{specs.NetworkNamespace: "/nonexistent"}, fn)
	if err == nil || !strings.Contains(err.Error(), "/nonexistent") {
		t.Errorf("missing path: err = %v", err)
	}
	if called {
		t.Error("fn ran although joining failed")
	}
	wantErr := fmt.Errorf("from fn")
	if err := OnThreadIn(nil, func() error { return wantErr }); !errors.Is(err, wantErr) {
		t.Errorf("fn's error not returned: %v", err)
	}
}

func TestEnv(t *testing.T) {
	got := Env(map[specs.LinuxNamespaceType]string{
		specs.MountNamespace:   "/proc/9/ns/mnt",
		specs.NetworkNamespace: "/run/netns/a:b",
		specs.UserNamespace:    "/proc/9/ns/user",
		specs.TimeNamespace:    "/proc/9/ns/time",
		specs.PIDNamespace:     "/proc/9/ns/pid",
		"bogus":                "/x",
	})
	want := "_BERTH_NSENTER=user:/proc/9/ns/user,net:/run/netns/a:b,pid:/proc/9/ns/pid,time:/proc/9/ns/time,mnt:/proc/9/ns/mnt,bogus:/x"
	if got != want {
		t.Errorf("Env = %q\nwant  %q", got, want)
	}
	if got := Env(nil); got != "_BERTH_NSENTER=" {
		t.Errorf("Env(nil) = %q", got)
	}
}

func TestThreadPlanOrder(t *testing.T) {
	plan, err := threadPlan(map[specs.LinuxNamespaceType]string{
		specs.CgroupNamespace: "c", specs.PIDNamespace: "p", specs.IPCNamespace: "i",
		specs.NetworkNamespace: "n", specs.UTSNamespace: "u",
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, j := range plan {
		got = append(got, j.path)
	}
	if strings.Join(got, "") != "iunpc" {
		t.Errorf("order = %v, want ipc uts net pid cgroup", got)
	}
	for _, bad := range []specs.LinuxNamespaceType{specs.UserNamespace, specs.MountNamespace, specs.TimeNamespace} {
		if _, err := threadPlan(map[specs.LinuxNamespaceType]string{bad: "/x"}); err == nil {
			t.Errorf("%s accepted for a thread", bad)
		}
	}
}
