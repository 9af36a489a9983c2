package containers_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// statusField reads one field of /proc/self/status as printed by a
// command in the container.
func statusField(status, name string) string {
	for _, l := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(l, name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// hostConfig decodes a container's HostConfig by its JSON keys, as
// Docker's API spells them.
func (s *store) hostConfig(ref string) map[string]any {
	s.t.Helper()
	var hc map[string]any
	if err := json.Unmarshal([]byte(s.field(ref, "{{json .HostConfig}}")), &hc); err != nil {
		s.t.Fatalf("HostConfig of %s: %v", ref, err)
	}
	return hc
}

func TestResourceLimitsInCgroups(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	script := `cd /sys/fs/cgroup && cat memory/memory.limit_in_bytes memory/memory.memsw.limit_in_bytes cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us cpu/cpu.shares cpuset/cpuset.cpus pids/pids.max`
	out := s.must("run", "--rm", "-m", "64m", "--memory-swap", "128m", "--cpus", "0.5", "--cpu-shares", "512",
		"--cpuset-cpus", "0", "--pids-limit", "50", "bb", "sh", "-c", script)
	want := "67108864\n134217728\n50000\n100000\n512\n0\n50\n"
	if out != want {
		t.Errorf("cgroup limits inside:\n%s\nwant:\n%s", out, want)
	}
	// Without limits: none, and the default shares.
	out = s.must("run", "--rm", "bb", "sh", "-c", `cd /sys/fs/cgroup && cat cpu/cpu.cfs_quota_us cpu/cpu.shares pids/pids.max`)
	if out != "-1\n1024\nmax\n" {
		t.Errorf("cgroup defaults inside: %q", out)
	}
	// Docker's view of /sys/fs/cgroup on a v1 host: the v1 controllers.
	out = s.must("run", "--rm", "bb", "ls", "/sys/fs/cgroup")
	for _, c := range []string{"memory", "cpu", "cpuset", "pids", "devices", "freezer", "blkio"} {
		if !lineSet(out)[c] {
			t.Errorf("/sys/fs/cgroup lacks %s: %q", c, out)
		}
	}
	// The limits are recorded.
	s.must("create", "--name", "lim", "-m", "64m", "--memory-swap", "128m", "--cpus", "0.5", "--cpu-shares", "512", "--cpuset-cpus", "0", "--pids-limit", "50", "bb")
	hc := s.hostConfig("lim")
	for k, v := range map[string]float64{"Memory": 64 << 20, "MemorySwap": 128 << 20, "NanoCpus": 5e8, "CpuShares": 512, "PidsLimit": 50} {
		if hc[k] != v {
			t.Errorf("HostConfig.%s %v, want %v", k, hc[k], v)
		}
	}
	if hc["CpusetCpus"] != "0" {
		t.Errorf("HostConfig.CpusetCpus %v", hc["CpusetCpus"])
	}
	// Bad values are refused up front.
	s.failsWith(125, "run", "--rm", "-m", "64m", "--memory-swap", "32m", "bb", "true")
	s.failsWith(125, "run", "--rm", "--cpus", "-1", "bb", "true")
}

func TestSecurityAndProcessOptions(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)

	status := s.must("run", "--rm", "bb", "cat", "/proc/self/status")
	if c := capEff(t, status); c != 0xa80425fb {
		t.Errorf("default CapEff %#x", c)
	}
	if got := statusField(status, "Seccomp"); got != "2" {
		t.Errorf("default Seccomp %q, want 2 (filter)", got)
	}
	if got := statusField(status, "NoNewPrivs"); got != "0" {
		t.Errorf("default NoNewPrivs %q", got)
	}

	status = s.must("run", "--rm", "--cap-add", "SYS_ADMIN", "--cap-drop", "CHOWN", "bb", "cat", "/proc/self/status")
	const chown, sysAdmin = 1 << 0, 1 << 21
	if c := capEff(t, status); c != (0xa80425fb|sysAdmin)&^chown {
		t.Errorf("--cap-add SYS_ADMIN --cap-drop CHOWN: CapEff %#x", c)
	}
	if got, _, code := s.run(nil, "run", "--rm", "--cap-drop", "ALL", "bb", "chown", "nobody", "/tmp"); code == 0 {
		t.Errorf("--cap-drop ALL: chown worked: %q", got)
	}
	status = s.must("run", "--rm", "--security-opt", "no-new-privileges", "--security-opt", "seccomp=unconfined", "bb", "cat", "/proc/self/status")
	if statusField(status, "NoNewPrivs") != "1" || statusField(status, "Seccomp") != "0" {
		t.Errorf("no-new-privileges, seccomp=unconfined: NoNewPrivs %q Seccomp %q", statusField(status, "NoNewPrivs"), statusField(status, "Seccomp"))
	}
	out := s.must("run", "--rm", "--privileged", "bb", "sh", "-c", "cat /proc/self/status; echo DEVICES; ls /dev; echo MOUNTS; mount")
	if c := capEff(t, out); c&sysAdmin == 0 || c&^0xa80425fb == 0 {
		t.Errorf("--privileged: CapEff %#x", c)
	}
	if statusField(out, "Seccomp") != "0" {
		t.Errorf("--privileged: Seccomp %q, want 0", statusField(out, "Seccomp"))
	}
	devs := strings.Split(strings.SplitN(strings.SplitN(out, "DEVICES\n", 2)[1], "MOUNTS\n", 2)[0], "\n")
	if !lineSet(strings.Join(devs, "\n"))["loop0"] && len(devs) < 30 {
		t.Errorf("--privileged: /dev has only %v", devs)
	}
	if !regexp.MustCompile(`sysfs on /sys type sysfs \(rw`).MatchString(out) {
		t.Errorf("--privileged: /sys not read-write:\n%s", out)
	}

	// --device: the node, readable and writable.
	if got := s.must("run", "--rm", "--device", "/dev/null:/dev/mynull", "bb", "sh", "-c", "stat -c '%t,%T %F' /dev/mynull && echo x > /dev/mynull && echo ok"); got != "1,3 character special file\nok\n" {
		t.Errorf("--device /dev/null:/dev/mynull: %q", got)
	}
	// A node of a device Docker does not allow (/dev/mem) can be made but
	// not opened: the device cgroup denies it.
	if out, _, code := s.run(nil, "run", "--rm", "bb", "sh", "-c", "mknod /tmp/mem c 1 1 && head -c 1 /tmp/mem"); code == 0 {
		t.Errorf("/dev/mem was readable: %q", out)
	}

	// -h, -w, -u, --entrypoint.
	if got := s.must("run", "--rm", "-h", "myhost", "bb", "hostname"); got != "myhost\n" {
		t.Errorf("-h: %q", got)
	}
	if got := s.must("run", "--rm", "-w", "/made/by/run", "bb", "pwd"); got != "/made/by/run\n" {
		t.Errorf("-w creates the directory: %q", got)
	}
	if got := s.must("run", "--rm", "-u", "1000:1000", "bb", "id"); got != "uid=1000 gid=1000 groups=1000\n" {
		t.Errorf("-u 1000:1000: %q", got)
	}
	if got := s.must("run", "--rm", "-u", "nobody", "bb", "id"); got != "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n" {
		t.Errorf("-u nobody: %q", got)
	}
	if got := s.must("run", "--rm", "--entrypoint", "/bin/echo", "bb", "a", "b"); got != "a b\n" {
		t.Errorf("--entrypoint: %q", got)
	}
	if got := s.must("run", "--rm", "--entrypoint", "", "bb", "echo", "reset"); got != "reset\n" {
		t.Errorf(`--entrypoint "": %q`, got)
	}
	// -w on a read-only root: Docker makes the directory before.
	if got, errOut, code := s.run(nil, "run", "--rm", "--read-only", "-w", "/work", "bb", "pwd"); code != 0 || got != "/work\n" {
		t.Errorf("--read-only -w /work: exit %d, %q, %s (Docker prints /work)", code, got, errOut)
	}

	// -e, --env-file, -l.
	envFile := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(envFile, []byte("# c\nEF=file\nBOTH=file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := s.must("run", "--rm", "-e", "E1=v", "--env-file", envFile, "-e", "BOTH=flag", "bb", "env")
	for _, w := range []string{"E1=v", "EF=file", "BOTH=flag", "HOSTNAME=", "HOME=/root", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"} {
		if !strings.Contains(env, w) {
			t.Errorf("env lacks %s:\n%s", w, env)
		}
	}
	s.must("create", "--name", "lab", "-l", "a=1", "-l", "b", "bb")
	if got := s.field("lab", "{{json .Config.Labels}}"); got != `{"a":"1","b":""}` {
		t.Errorf("-l: labels %s", got)
	}

	// --ulimit.
	if got := s.must("run", "--rm", "--ulimit", "nofile=1024:2048", "bb", "sh", "-c", "ulimit -n; ulimit -Hn"); got != "1024\n2048\n" {
		t.Errorf("--ulimit nofile=1024:2048: %q", got)
	}
}

func TestFilesystemOptions(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	out, _, code := s.run(nil, "run", "--rm", "--read-only", "--tmpfs", "/run:size=1m,mode=1777", "bb", "sh", "-c",
		"touch /x 2>&1; touch /run/ok && echo run-ok; touch /tmp/t 2>&1; touch /dev/shm/s && echo shm-ok; stat -c %a /run; mount")
	if code != 0 {
		t.Fatalf("--read-only run: exit %d: %s", code, out)
	}
	for _, want := range []string{"Read-only file system", "run-ok", "shm-ok", "1777\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("--read-only --tmpfs: output lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`(?m)^overlay on / type overlay \(ro,`).MatchString(out) {
		t.Errorf("--read-only: / not mounted ro:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^tmpfs on /run type tmpfs \(rw,nosuid,nodev,noexec,relatime,size=1024k`).MatchString(out) {
		t.Errorf("--tmpfs /run:size=1m: mount line missing:\n%s", out)
	}
	// /dev/shm: 64m by default, --shm-size otherwise.
	if got := s.must("run", "--rm", "bb", "sh", "-c", "mount | grep ' /dev/shm '"); !strings.Contains(got, "size=65536k") {
		t.Errorf("default /dev/shm: %q", got)
	}
	if got := s.must("run", "--rm", "--shm-size", "32m", "bb", "sh", "-c", "mount | grep ' /dev/shm '"); !strings.Contains(got, "size=32768k") {
		t.Errorf("--shm-size 32m: %q", got)
	}
	// --sysctl in the container's own namespaces.
	if got := s.must("run", "--rm", "--sysctl", "net.ipv4.ip_forward=1", "--sysctl", "kernel.msgmax=12345", "bb", "cat", "/proc/sys/net/ipv4/ip_forward", "/proc/sys/kernel/msgmax"); got != "1\n12345\n" {
		t.Errorf("--sysctl: %q", got)
	}
	// A sysctl outside the container's namespaces is refused.
	s.failsWith(125, "run", "--rm", "--sysctl", "vm.swappiness=10", "bb", "true")
	if host, err := os.ReadFile("/proc/sys/kernel/msgmax"); err == nil && strings.TrimSpace(string(host)) == "12345" {
		t.Error("--sysctl changed the host's kernel.msgmax")
	}
}

func TestUpdateRunningContainer(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	s.must("run", "-d", "--name", "up", "-m", "64m", "bb", "sleep", "600")
	if out := s.must("update", "-m", "128m", "--memory-swap", "256m", "--cpus", "0.25", "--pids-limit", "20", "--restart", "on-failure:2", "up"); out != "up\n" {
		t.Errorf("update printed %q, want the name", out)
	}
	got := s.must("exec", "up", "sh", "-c", "cd /sys/fs/cgroup && cat memory/memory.limit_in_bytes memory/memory.memsw.limit_in_bytes cpu/cpu.cfs_quota_us pids/pids.max")
	if got != "134217728\n268435456\n25000\n20\n" {
		t.Errorf("after update, cgroup limits: %q", got)
	}
	hc := s.hostConfig("up")
	for k, v := range map[string]float64{"Memory": 128 << 20, "MemorySwap": 256 << 20, "NanoCpus": 25e7, "PidsLimit": 20} {
		if hc[k] != v {
			t.Errorf("after update, HostConfig.%s %v, want %v", k, hc[k], v)
		}
	}
	if rp, _ := hc["RestartPolicy"].(map[string]any); rp["Name"] != "on-failure" || rp["MaximumRetryCount"] != float64(2) {
		t.Errorf("after update, RestartPolicy %v", hc["RestartPolicy"])
	}
	// The limits survive a restart. A manual restart is no failure: the
	// restart policy does not start the container a second time.
	s.must("restart", "-t", "0", "up")
	time.Sleep(time.Second)
	if got := s.field("up", "{{.State.Status}} {{.RestartCount}}"); got != "running 0" {
		t.Fatalf("a second after restart (policy on-failure:2): %q, want \"running 0\"; State.Error %q", got, s.field("up", "{{.State.Error}}"))
	}
	if got := s.must("exec", "up", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"); got != "134217728\n" {
		t.Errorf("after update and restart: memory limit %q", got)
	}

	// The updated restart policy is in effect: a failing container is
	// restarted twice, then left exited.
	s.must("run", "-d", "--name", "flaky", "bb", "sh", "-c", "while [ ! -e /tmp/fail ]; do sleep 0.05; done; exit 1")
	s.must("update", "--restart", "on-failure:2", "flaky")
	s.must("exec", "flaky", "touch", "/tmp/fail")
	s.waitFor(30*time.Second, "two restarts and the end", func() bool {
		return s.field("flaky", "{{.RestartCount}} {{.State.Status}}") == "2 exited"
	})
	time.Sleep(time.Second)
	if got := s.field("flaky", "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}"); got != "2 exited 1" {
		t.Errorf("after the retries: %q, want \"2 exited 1\"; State.Error %q", got, s.field("flaky", "{{.State.Error}}"))
	}
	// --restart always together with --rm is refused; update of an unknown
	// container fails.
	s.failsWith(1, "update", "-m", "64m", "nosuch")
}

func TestTopAndStats(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	s.must("run", "-d", "--name", "tp", "-m", "64m", "bb", "sh", "-c", "sleep 600 & sleep 601; wait")
	s.must("run", "-d", "--name", "other", "bb", "sleep", "600")
	s.must("run", "--name", "gone", "bb", "true")
	s.waitFor(10*time.Second, "both sleeps", func() bool {
		out, _, _ := s.run(nil, "top", "tp")
		return strings.Contains(out, "sleep 600") && strings.Contains(out, "sleep 601")
	})

	out := s.must("top", "tp")
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if !regexp.MustCompile(`^UID +PID +PPID +C +STIME +TTY +TIME +CMD$`).MatchString(lines[0]) {
		t.Errorf("top header %q", lines[0])
	}
	if len(lines) != 4 { // sh, two sleeps
		t.Errorf("top shows %d processes:\n%s", len(lines)-1, out)
	}
	// The PIDs are the host's.
	pid := s.field("tp", "{{.State.Pid}}")
	if !regexp.MustCompile(`(?m)^root +` + pid + ` `).MatchString(out) {
		t.Errorf("top does not show the container's pid %s:\n%s", pid, out)
	}
	out = s.must("top", "tp", "-o", "pid,comm")
	lines = strings.Split(strings.TrimRight(out, "\n"), "\n")
	if !regexp.MustCompile(`^ *PID +COMMAND$`).MatchString(lines[0]) || len(lines) != 4 || !strings.Contains(out, "sleep") {
		t.Errorf("top -o pid,comm:\n%s", out)
	}
	out = s.must("top", "tp", "aux")
	if !strings.HasPrefix(out, "USER ") || strings.Count(out, "\n") != 4 || !strings.Contains(out, "sleep 601\n") {
		t.Errorf("top aux:\n%s", out)
	}
	if errOut := s.failsWith(1, "top", "gone"); !strings.Contains(errOut, "is not running") {
		t.Errorf("top of an exited container: %q", errOut)
	}

	// stats --no-stream: Docker's columns, one row per running container.
	out = s.must("stats", "--no-stream")
	lines = strings.Split(strings.TrimRight(out, "\n"), "\n")
	if lines[0] != "CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O   BLOCK I/O   PIDS" {
		t.Errorf("stats header %q", lines[0])
	}
	if len(lines) != 3 {
		t.Fatalf("stats --no-stream: %d rows, want 2 (the running ones):\n%s", len(lines)-1, out)
	}
	row := ""
	for _, l := range lines[1:] {
		if strings.Fields(l)[1] == "tp" {
			row = l
		}
	}
	if !regexp.MustCompile(`^[0-9a-f]{12} +tp +\d+\.\d\d% +\d+(\.\d+)?[KMG]?i?B / 64MiB +\d+\.\d\d% +\S+ / \S+ +\S+ / \S+ +3$`).MatchString(row) {
		t.Errorf("stats row of tp %q (want MEM limit 64MiB and 3 PIDS)", row)
	}
	got := s.must("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "other")
	if got != "other 1\n" {
		t.Errorf("stats --format of one container: %q", got)
	}
	js := s.must("stats", "--no-stream", "--format", "json", "tp")
	var m map[string]any
	if err := json.Unmarshal([]byte(js), &m); err != nil {
		t.Errorf("stats --format json: %v: %q", err, js)
	} else if lim := strings.TrimSpace(strings.SplitN(m["MemUsage"].(string), "/", 2)[1]); lim != "64MiB" {
		t.Errorf("stats json MemUsage %v", m["MemUsage"])
	}
}

func TestPidsLimitStopsForks(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	// An inner shell tries 100 background sleeps (it gives up at the first
	// fork that fails); the outer one reads with builtins how many tasks
	// the cgroup holds, and kills them all.
	loop := `sh -c 'i=0; while [ $i -lt 100 ]; do sleep 30 & i=$((i+1)); done' 2>/dev/null
read n < /sys/fs/cgroup/pids/pids.current; echo "current=$n"; kill -9 -1 2>/dev/null; exit 0`
	start := time.Now()
	out, errOut, code := s.run(nil, "run", "--rm", "--pids-limit", "10", "bb", "sh", "-c", loop)
	if code != 0 {
		t.Fatalf("fork loop: exit %d: %s", code, errOut)
	}
	if d := time.Since(start); d > time.Minute {
		t.Errorf("fork loop took %s", d)
	}
	m := regexp.MustCompile(`current=(\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("fork loop output %q", out)
	}
	if n, _ := strconv.Atoi(m[1]); n > 10 || n < 2 {
		t.Errorf("with --pids-limit 10, the cgroup holds %d tasks", n)
	}
	// Without the limit the same loop makes all its children.
	out = s.must("run", "--rm", "bb", "sh", "-c", loop)
	if !strings.Contains(out, "current=101") {
		t.Errorf("without a limit: %q, want current=101", out)
	}
}
