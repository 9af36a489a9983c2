//go:build linux && cgo

package nsenter

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/internal/testutil"
)

func TestConstructorJoins(t *testing.T) {
	testutil.RequiresRoot(t)
	h := holder(t, syscall.CLONE_NEWNET|syscall.CLONE_NEWUTS|syscall.CLONE_NEWNS|syscall.CLONE_NEWIPC|syscall.CLONE_NEWCGROUP)
	ns := func(n string) string { return "/proc/" + h + "/ns/" + n }
	env := Env(map[specs.LinuxNamespaceType]string{
		specs.UTSNamespace:     ns("uts"),
		specs.NetworkNamespace: ns("net"),
		specs.MountNamespace:   ns("mnt"),
		specs.IPCNamespace:     ns("ipc"),
		specs.CgroupNamespace:  ns("cgroup"),
	})
	got := report(t, reporter(env))
	want := namespaces(h)
	self := namespaces("self")
	if want["net"] == self["net"] || want["mnt"] == self["mnt"] {
		t.Fatalf("holder shares the test's namespaces: %v", want)
	}
	expect(t, got, want, "uts", "net", "mnt", "ipc", "cgroup")
	expect(t, got, self, "user", "pid")
	if v, ok := got["leftover"]; ok {
		t.Errorf("%s still set in the child: %q", envVar, v)
	}
}

func TestConstructorJoinsUserFirst(t *testing.T) {
	testutil.RequiresRoot(t)
	// The net, uts and mount namespaces belong to the new user namespace:
	// joining them needs the capabilities that joining it first gives.
	h := holder(t, syscall.CLONE_NEWUSER|syscall.CLONE_NEWNET|syscall.CLONE_NEWUTS|syscall.CLONE_NEWNS)
	ns := func(n string) string { return "/proc/" + h + "/ns/" + n }
	env := Env(map[specs.LinuxNamespaceType]string{
		specs.MountNamespace:   ns("mnt"),
		specs.NetworkNamespace: ns("net"),
		specs.UserNamespace:    ns("user"),
		specs.UTSNamespace:     ns("uts"),
	})
	got := report(t, reporter(env))
	expect(t, got, namespaces(h), "user", "net", "uts", "mnt")
}

func TestConstructorJoinsTime(t *testing.T) {
	testutil.RequiresRoot(t)
	// clone(2) cannot make a time namespace; unshare(1) can, for its
	// child.
	if _, err := exec.LookPath("unshare"); err != nil {
		testutil.Missing(t, "unshare(1) not installed")
	}
	cmd := exec.Command("unshare", "--time", "--fork", "--kill-child", "/bin/sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	children := fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid)
	var h string
	for deadline := time.Now().Add(5 * time.Second); h == ""; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("unshare started no child")
		}
		data, _ := os.ReadFile(children)
		h = strings.TrimSpace(string(data))
	}
	want := namespaces(h)
	if want["time"] == namespaces("self")["time"] {
		t.Fatalf("holder %s is not in a new time namespace", h)
	}
	got := report(t, reporter(Env(map[specs.LinuxNamespaceType]string{specs.TimeNamespace: "/proc/" + h + "/ns/time"})))
	expect(t, got, want, "time", "time_for_children")
}

func TestConstructorFailures(t *testing.T) {
	testutil.RequiresRoot(t)
	h := holder(t, syscall.CLONE_NEWPID)
	tests := []struct {
		name, value, want string
	}{
		{"missing path", "uts:/proc/self/ns/uts,net:/nonexistent/ns",
			"berth: join net namespace /nonexistent/ns: no such file or directory"},
		{"unknown type", "foo:/proc/self/ns/net",
			"berth: join foo namespace /proc/self/ns/net: invalid argument"},
		{"no colon", "net",
			"berth: join net namespace : invalid argument"},
		{"wrong kind of file", "net:/proc/self/ns/uts",
			"berth: join net namespace /proc/self/ns/uts: invalid argument"},
		{"not a namespace", "net:/dev/null",
			"berth: join net namespace /dev/null: invalid argument"},
		{"pid without being born there", "pid:/proc/" + h + "/ns/pid",
			"berth: join pid namespace /proc/" + h + "/ns/pid: invalid argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := reporter(envVar + "=" + tt.value)
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := runBounded(cmd)
			if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 1 {
				t.Fatalf("child: %v, want exit status 1 (stderr %q)", err, stderr.String())
			}
			if got := strings.ToLower(stderr.String()); got != tt.want+"\n" {
				t.Errorf("stderr = %q, want %q", got, tt.want+"\n")
			}
			if stdout.Len() != 0 {
				t.Errorf("child ran on after the failure: %q", stdout.String())
			}
		})
	}
}

func TestConstructorErrFd(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	missing := filepath.Join(t.TempDir(), "missing")
	cmd := reporter(envVar+"=mnt:"+missing, ErrFdEnv+"=3")
	cmd.ExtraFiles = []*os.File{w}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err = runBounded(cmd)
	w.Close()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("child: %v, want exit status 1", err)
	}
	buf := make([]byte, 4096)
	n, _ := r.Read(buf)
	want := "berth: join mnt namespace " + missing + ": No such file or directory\n"
	if string(buf[:n]) != want {
		t.Errorf("error fd got %q, want %q", buf[:n], want)
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr got %q, want nothing", stderr.String())
	}
}

func TestOnThreadIn(t *testing.T) {
	testutil.RequiresRoot(t)
	h := holder(t, syscall.CLONE_NEWPID|syscall.CLONE_NEWNET|syscall.CLONE_NEWUTS|syscall.CLONE_NEWIPC)
	ns := func(n string) string { return "/proc/" + h + "/ns/" + n }
	want := namespaces(h)
	self := namespaces("self")
	// The pid entry makes the constructor check that the child was born
	// in the holder's pid namespace.
	cmd := reporter(Env(map[specs.LinuxNamespaceType]string{specs.PIDNamespace: ns("pid")}))
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := OnThreadIn(map[specs.LinuxNamespaceType]string{
		specs.PIDNamespace:     ns("pid"),
		specs.NetworkNamespace: ns("net"),
		specs.UTSNamespace:     ns("uts"),
		specs.IPCNamespace:     ns("ipc"),
	}, func() error { return runBounded(cmd) })
	if err != nil {
		t.Fatalf("%v: %s", err, stderr.String())
	}
	got := map[string]string{}
	if err := json.Unmarshal([]byte(stdout.String()), &got); err != nil {
		t.Fatalf("reporter output %q: %v", stdout.String(), err)
	}
	expect(t, got, want, "pid", "net", "uts", "ipc")
	expect(t, got, self, "mnt", "user")

	// The thread was thrown away: the process and new children are where
	// they were.
	expect(t, namespaces("self"), self, nsNames...)
	for i := 0; i < 3; i++ {
		expect(t, report(t, reporter()), self, nsNames...)
	}
}

func TestOnThreadInSparesMainThread(t *testing.T) {
	testutil.RequiresRoot(t)
	h := holder(t, syscall.CLONE_NEWNET|syscall.CLONE_NEWUTS)
	want := namespaces(h)
	self := namespaces("self")
	paths := map[specs.LinuxNamespaceType]string{
		specs.NetworkNamespace: "/proc/" + h + "/ns/net",
		specs.UTSNamespace:     "/proc/" + h + "/ns/uts",
	}
	// The goroutine OnThreadIn starts may well be scheduled on the main
	// thread, whose namespaces are the ones /proc/self shows; try often.
	for i := 0; i < 50; i++ {
		var onThread string
		err := OnThreadIn(paths, func() error {
			if unix.Gettid() == unix.Getpid() {
				return fmt.Errorf("fn runs on the main thread")
			}
			var err error
			onThread, err = os.Readlink("/proc/thread-self/ns/net")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if onThread != want["net"] {
			t.Fatalf("run %d: fn ran in %s, want %s", i, onThread, want["net"])
		}
		if got := namespaces("self"); got["net"] != self["net"] || got["uts"] != self["uts"] {
			t.Fatalf("run %d: the process moved to net %s uts %s", i, got["net"], got["uts"])
		}
	}
}
