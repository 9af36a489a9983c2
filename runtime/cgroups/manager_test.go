package cgroups

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/berth-containers/berth/internal/testutil"
	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/systemd"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var testSeq atomic.Int32

// testID returns a container id no other test run uses at the same time.
func testID() string {
	return fmt.Sprintf("berth-cgtest-%d-%d", os.Getpid(), testSeq.Add(1))
}

// sleepCommand finds a sleep binary.
func sleepCommand(t *testing.T) []string {
	t.Helper()
	if _, err := os.Stat("/bin/busybox"); err == nil {
		return []string{"/bin/busybox", "sleep", "600"}
	}
	if _, err := os.Stat("/bin/sleep"); err == nil {
		return []string{"/bin/sleep", "600"}
	}
	t.Fatal("neither /bin/busybox nor /bin/sleep exists")
	return nil
}

// startSleeper starts a child that sleeps until the test kills it.
func startSleeper(t *testing.T) *exec.Cmd {
	t.Helper()
	argv := sleepCommand(t)
	cmd := exec.Command(argv[0], argv[1:]...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", argv, err)
	}
	return cmd
}

// stop kills and reaps a child, waiting at most a few seconds.
func stop(t testing.TB, cmd *exec.Cmd) {
	if cmd.ProcessState != nil {
		return
	}
	_ = cmd.Process.Kill()
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Errorf("pid %d did not exit after SIGKILL", cmd.Process.Pid)
	}
}

// harness holds what a root test made, so that one cleanup undoes it all
// in the right order: thaw, kill and reap the children, remove the cgroups.
type harness struct {
	t     *testing.T
	m     *Manager
	procs []*exec.Cmd
}

// newHarness makes a Manager for cfg and registers the cleanup.
func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	testutil.RequiresRoot(t)
	m, err := New(cfg)
	mustNoErr(t, err)
	h := &harness{t: t, m: m}
	t.Cleanup(h.cleanup)
	return h
}

// spawn starts a sleeping child whose cleanup the harness owns.
func (h *harness) spawn() *exec.Cmd {
	h.t.Helper()
	cmd := startSleeper(h.t)
	h.procs = append(h.procs, cmd)
	return cmd
}

func (h *harness) cleanup() {
	// Frozen processes cannot die: thaw first (harmless when thawed).
	_ = h.m.Thaw()
	for _, cmd := range h.procs {
		stop(h.t, cmd)
	}
	if err := h.m.Destroy(); err != nil {
		h.t.Errorf("cleanup: %v", err)
	}
	for ctrl, p := range h.m.Paths() {
		if _, err := os.Stat(p); err == nil {
			h.t.Errorf("cleanup: %s cgroup %s still exists", ctrl, p)
		}
	}
}

// readFile returns a cgroup file's contents without the trailing newline.
func readFile(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	mustNoErr(t, err)
	return strings.TrimSpace(string(b))
}

// procs lists the pids in a cgroup's cgroup.procs.
func procs(t *testing.T, dir string) []int {
	t.Helper()
	var out []int
	for _, f := range strings.Fields(readFile(t, dir, "cgroup.procs")) {
		pid, err := strconv.Atoi(f)
		mustNoErr(t, err)
		out = append(out, pid)
	}
	return out
}

// ownCgroup reads this process's cgroup for a v1 controller ("" = v2).
func ownCgroup(t *testing.T, controller string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/cgroup")
	mustNoErr(t, err)
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if slices.Contains(strings.Split(parts[1], ","), controller) || (controller == "" && parts[1] == "") {
			return parts[2]
		}
	}
	t.Fatalf("no %q line in /proc/self/cgroup", controller)
	return ""
}

func limitsSpec() *specs.LinuxResources {
	return &specs.LinuxResources{
		Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
		Memory:  &specs.LinuxMemory{Limit: ptr[int64](64 << 20)},
		CPU:     &specs.LinuxCPU{Shares: ptr[uint64](512), Quota: ptr[int64](20000), Period: ptr[uint64](100000)},
		Pids:    &specs.LinuxPids{Limit: ptr[int64](32)},
	}
}

// checkLimits reads the limits of limitsSpec (with memory and pids as
// given) back from the host's cgroup files.
func checkLimits(t *testing.T, m *Manager, mem int64, pids int) {
	t.Helper()
	paths := m.Paths()
	if Mode() == ModeV2 {
		dir := paths[""]
		eq(t, strconv.FormatInt(mem, 10), readFile(t, dir, "memory.max"))
		eq(t, "20000 100000", readFile(t, dir, "cpu.max"))
		eq(t, strconv.FormatUint(cgroups.ConvertCPUSharesToCgroupV2Value(512), 10), readFile(t, dir, "cpu.weight"))
		eq(t, strconv.Itoa(pids), readFile(t, dir, "pids.max"))
		return
	}
	eq(t, strconv.FormatInt(mem, 10), readFile(t, paths["memory"], "memory.limit_in_bytes"))
	eq(t, "512", readFile(t, paths["cpu"], "cpu.shares"))
	eq(t, "20000", readFile(t, paths["cpu"], "cpu.cfs_quota_us"))
	eq(t, "100000", readFile(t, paths["cpu"], "cpu.cfs_period_us"))
	eq(t, strconv.Itoa(pids), readFile(t, paths["pids"], "pids.max"))
}

func TestManagerLifecycle(t *testing.T) {
	id := testID()
	cfg := Config{
		ID:        id,
		Resources: limitsSpec(),
		Devices:   []specs.LinuxDevice{{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229}},
	}
	h := newHarness(t, cfg)
	m := h.m
	child := h.spawn()
	mustNoErr(t, m.Apply(child.Process.Pid))

	paths := m.Paths()
	mode := Mode()
	t.Logf("mode %s, paths %v", mode, paths)

	// The default cgroup is "<id>" under the runtime's own cgroup.
	if mode == ModeV2 {
		// On v2 the runtime's own cgroup holds processes, so no child of
		// it could have controllers enabled: its parent is used instead.
		eq(t, filepath.Join("/sys/fs/cgroup", filepath.Dir(ownCgroup(t, "")), id), paths[""])
	} else {
		for _, ctrl := range []string{"memory", "cpu", "cpuacct", "pids", "devices", "freezer"} {
			eq(t, filepath.Join("/sys/fs/cgroup", ctrl, ownCgroup(t, ctrl), id), paths[ctrl])
		}
	}
	if mode == ModeHybrid {
		// The container also gets a cgroup in the unified hierarchy.
		eq(t, filepath.Join("/sys/fs/cgroup/unified", ownCgroup(t, ""), id), paths[""])
	}
	for ctrl, p := range paths {
		isTrue(t, slices.Contains(procs(t, p), child.Process.Pid), "pid %d not in %s cgroup %s", child.Process.Pid, ctrl, p)
	}

	checkLimits(t, m, 64<<20, 32)
	if mode != ModeV2 {
		list := strings.Split(readFile(t, paths["devices"], "devices.list"), "\n")
		for _, want := range []string{"c 1:3 rwm", "c 1:9 rwm", "c 136:* rwm", "c 5:2 rwm", "c 10:229 rwm", "c *:* m", "b *:* m"} {
			isTrue(t, slices.Contains(list, want), "devices.list lacks %q: %v", want, list)
		}
		isTrue(t, !slices.Contains(list, "a *:* rwm"), "devices.list still allows everything: %v", list)
	}

	// Freeze and thaw.
	st, err := m.FreezerState()
	mustNoErr(t, err)
	eq(t, Thawed, st)
	mustNoErr(t, m.Freeze())
	st, err = m.FreezerState()
	mustNoErr(t, err)
	eq(t, Frozen, st)
	if mode != ModeV2 {
		eq(t, "FROZEN", readFile(t, paths["freezer"], "freezer.state"))
	}
	mustNoErr(t, m.Thaw())
	st, err = m.FreezerState()
	mustNoErr(t, err)
	eq(t, Thawed, st)

	// Join a second process, as exec does; Pids sees both.
	second := h.spawn()
	mustNoErr(t, m.Join(second.Process.Pid))
	pids, err := m.Pids()
	mustNoErr(t, err)
	slices.Sort(pids)
	want := []int{child.Process.Pid, second.Process.Pid}
	slices.Sort(want)
	eq(t, want, pids)

	// Stats.
	s, err := m.Stats()
	mustNoErr(t, err)
	eq(t, uint64(2), s.Pids.Current)
	eq(t, uint64(32), s.Pids.Limit)
	eq(t, uint64(64<<20), s.Memory.Usage.Limit)
	_, err = json.Marshal(s)
	mustNoErr(t, err)

	// Update: new memory and pids limits; what the update leaves out
	// (cpu) keeps its value.
	mustNoErr(t, m.Set(&specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: ptr[int64](128 << 20)},
		Pids:   &specs.LinuxPids{Limit: ptr[int64](64)},
	}))
	checkLimits(t, m, 128<<20, 64)
	eq(t, int64(128<<20), *m.State().Resources.Memory.Limit)
	eq(t, uint64(512), *m.State().Resources.CPU.Shares)

	// A later command rebuilds the Manager from the saved state.
	b, err := json.Marshal(m.State())
	mustNoErr(t, err)
	var saved State
	mustNoErr(t, json.Unmarshal(b, &saved))
	eq(t, m.State(), saved)
	loaded, err := Load(saved)
	mustNoErr(t, err)
	eq(t, paths, loaded.Paths())
	lpids, err := loaded.Pids()
	mustNoErr(t, err)
	slices.Sort(lpids)
	eq(t, want, lpids)
	mustNoErr(t, loaded.Set(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](100)}}))
	checkLimits(t, loaded, 128<<20, 100)
	mustNoErr(t, loaded.Freeze())
	st, err = m.FreezerState()
	mustNoErr(t, err)
	eq(t, Frozen, st)
	mustNoErr(t, loaded.Thaw())

	// Destroy refuses while processes remain, and kills nothing.
	isTrue(t, loaded.Destroy() != nil, "Destroy succeeded with live processes")
	isTrue(t, syscall.Kill(child.Process.Pid, 0) == nil, "Destroy killed the container's process")

	// Once the processes are gone, Destroy removes every cgroup, and a
	// second Destroy of the same cgroups is not an error.
	stop(t, child)
	stop(t, second)
	mustNoErr(t, loaded.Destroy())
	for ctrl, p := range paths {
		_, err := os.Stat(p)
		isTrue(t, errors.Is(err, os.ErrNotExist), "%s cgroup %s still exists (%v)", ctrl, p, err)
	}
	mustNoErr(t, loaded.Destroy())
	again, err := Load(saved)
	mustNoErr(t, err)
	mustNoErr(t, again.Destroy())
}

func TestManagerAbsolutePath(t *testing.T) {
	id := testID()
	h := newHarness(t, Config{ID: id, Path: "/" + id + "/../" + id, Resources: &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](5)}}})
	child := h.spawn()
	mustNoErr(t, h.m.Apply(child.Process.Pid))
	paths := h.m.Paths()
	if Mode() == ModeV2 {
		eq(t, "/sys/fs/cgroup/"+id, paths[""])
		eq(t, "5", readFile(t, paths[""], "pids.max"))
		return
	}
	eq(t, "/sys/fs/cgroup/pids/"+id, paths["pids"])
	eq(t, "/sys/fs/cgroup/memory/"+id, paths["memory"])
	eq(t, "5", readFile(t, paths["pids"], "pids.max"))
	isTrue(t, slices.Contains(procs(t, paths["memory"]), child.Process.Pid), "child not in %s", paths["memory"])
}

func TestManagerNoResources(t *testing.T) {
	h := newHarness(t, Config{ID: testID()})
	child := h.spawn()
	mustNoErr(t, h.m.Apply(child.Process.Pid))
	pids, err := h.m.Pids()
	mustNoErr(t, err)
	eq(t, []int{child.Process.Pid}, pids)
	if Mode() != ModeV2 {
		// Without rules of its own the container gets the default
		// devices and nothing else.
		list := strings.Split(readFile(t, h.m.Paths()["devices"], "devices.list"), "\n")
		isTrue(t, !slices.Contains(list, "a *:* rwm"), "devices.list allows everything: %v", list)
		isTrue(t, slices.Contains(list, "c 1:3 rwm"), "devices.list lacks /dev/null: %v", list)
		mustLen(t, list, len(defaultDevices))
	}
}

func TestNewMissingController(t *testing.T) {
	testutil.RequiresRoot(t)
	have, err := hostControllers()
	mustNoErr(t, err)
	if have["hugetlb"] {
		t.Skip("this host has the hugetlb controller")
	}
	_, err = New(Config{ID: testID(), Resources: &specs.LinuxResources{
		HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 2 << 20}},
	}})
	errContains(t, err, "hugepageLimits is set but this host has no hugetlb cgroup controller")
	isTrue(t, errors.Is(err, ErrNotSupported), "error does not wrap ErrNotSupported: %v", err)

	// An empty request for the missing controller is fine.
	m, err := New(Config{ID: testID(), Resources: &specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{}}})
	mustNoErr(t, err)
	isTrue(t, len(m.Paths()) > 0, "no paths computed")

	// And so is an update that leaves the missing controller alone, while
	// one that sets it fails the same way.
	h := newHarness(t, Config{ID: testID()})
	child := h.spawn()
	mustNoErr(t, h.m.Apply(child.Process.Pid))
	err = h.m.Set(&specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 2 << 20}}})
	isTrue(t, errors.Is(err, ErrNotSupported), "update with hugepageLimits: %v", err)
}

func TestNewCreatesNothing(t *testing.T) {
	testutil.RequiresRoot(t)
	m, err := New(Config{ID: testID(), Resources: limitsSpec()})
	mustNoErr(t, err)
	paths := m.Paths()
	isTrue(t, len(paths) > 0, "no paths computed")
	for ctrl, p := range paths {
		_, err := os.Stat(p)
		isTrue(t, errors.Is(err, os.ErrNotExist), "New created the %s cgroup %s", ctrl, p)
	}
}

func TestNewUnifiedOnV1(t *testing.T) {
	if Mode() == ModeV2 {
		t.Skip("host is cgroup v2, where unified is allowed")
	}
	_, err := New(Config{ID: testID(), Resources: &specs.LinuxResources{Unified: map[string]string{"memory.high": "1000000"}}})
	errContains(t, err, "linux.resources.unified needs cgroup v2")
}

func TestNewSystemdNotRunning(t *testing.T) {
	if systemd.IsRunningSystemd() {
		t.Skip("systemd is running on this host")
	}
	_, err := New(Config{ID: testID(), Systemd: true})
	errContains(t, err, "systemd is not running")
}

func TestLoadModeMismatch(t *testing.T) {
	other := ModeV2
	if Mode() == ModeV2 {
		other = ModeV1
	}
	_, err := Load(State{Mode: other, ID: "x", Paths: map[string]string{}})
	errContains(t, err, "cgroup host")
}

func TestSetDevices(t *testing.T) {
	if Mode() == ModeV2 {
		t.Skip("v2 device rules are an eBPF program with no file to read back")
	}
	h := newHarness(t, Config{ID: testID(), Resources: &specs.LinuxResources{
		Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
	}})
	child := h.spawn()
	mustNoErr(t, h.m.Apply(child.Process.Pid))
	dir := h.m.Paths()["devices"]
	list := strings.Split(readFile(t, dir, "devices.list"), "\n")
	isTrue(t, !slices.Contains(list, "c 10:200 rwm"), "tun allowed before the update: %v", list)

	// An update without device rules leaves them alone.
	mustNoErr(t, h.m.Set(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](10)}}))
	eq(t, list, strings.Split(readFile(t, dir, "devices.list"), "\n"))

	// One with rules replaces the spec's rules; the defaults stay.
	mustNoErr(t, h.m.Set(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: ptr[int64](10), Minor: ptr[int64](200), Access: "rwm"},
	}}))
	list = strings.Split(readFile(t, dir, "devices.list"), "\n")
	isTrue(t, slices.Contains(list, "c 10:200 rwm"), "tun not allowed after the update: %v", list)
	isTrue(t, slices.Contains(list, "c 1:3 rwm"), "/dev/null lost in the update: %v", list)
	eq(t, "10", readFile(t, h.m.Paths()["pids"], "pids.max"))
}
