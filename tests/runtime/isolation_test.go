package runtime_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestNamespaces(t *testing.T) {
	h := newHarness(t)
	out, stderr, code := h.runOut(h.bundle("echo $$; echo $(ls /sys/class/net); readlink /proc/self/ns/net", nil))
	require.Equal(t, 0, code, stderr)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 3, out)
	assert.Equal(t, "1", lines[0], "the program is pid 1 of its pid namespace")
	assert.Equal(t, "lo", lines[1], "a new network namespace has only lo")
	host, err := os.Readlink("/proc/self/ns/net")
	require.NoError(t, err)
	assert.NotEqual(t, host, lines[2])
}

func TestJoinNamespaceByPath(t *testing.T) {
	h := newHarness(t)
	holder := h.id()
	h.must("run", "-d", "--bundle", h.bundle("sleep 30", nil), holder)
	pid := h.state(holder).Pid
	nsPath := fmt.Sprintf("/proc/%d/ns/net", pid)
	want, err := os.Readlink(nsPath)
	require.NoError(t, err)
	b := h.bundle("readlink /proc/self/ns/net; readlink /proc/self/ns/uts", func(s *specs.Spec) {
		for i := range s.Linux.Namespaces {
			switch s.Linux.Namespaces[i].Type {
			case specs.NetworkNamespace:
				s.Linux.Namespaces[i].Path = nsPath
			case specs.UTSNamespace:
				s.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/uts", pid)
			}
		}
		s.Hostname = ""
	})
	out, stderr, code := h.runOut(b)
	require.Equal(t, 0, code, stderr)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	assert.Equal(t, want, lines[0])

	b = h.bundle("true", func(s *specs.Spec) {
		for i := range s.Linux.Namespaces {
			if s.Linux.Namespaces[i].Type == specs.NetworkNamespace {
				s.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/uts", pid)
			}
		}
	})
	_, stderr, code = h.runOut(b)
	assert.NotEqual(t, 0, code)
	assert.Contains(t, stderr, "another type")
}

func TestUserNamespace(t *testing.T) {
	h := newHarness(t)
	b := h.bundle("id -u; cat /proc/self/uid_map; touch /tmp/x && stat -c %u /tmp/x", func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	})
	// The mapped root must be able to reach and write its rootfs.
	require.NoError(t, chownTree(rootfsOf(b), 100000))
	for dir := b; dir != "/"; dir = filepath.Dir(dir) {
		require.NoError(t, os.Chmod(dir, 0o755))
	}
	out, stderr, code := h.runOut(b)
	require.Equal(t, 0, code, stderr)
	fields := strings.Fields(out)
	require.GreaterOrEqual(t, len(fields), 5, out)
	assert.Equal(t, "0", fields[0])
	assert.Equal(t, []string{"0", "100000", "65536"}, fields[1:4])
	assert.Equal(t, "0", fields[4])
}

func chownTree(root string, id int) error {
	return filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, id, id)
	})
}

func TestMountsAndPaths(t *testing.T) {
	h := newHarness(t)
	hostDir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(hostDir, "f"), []byte("from-host\n"), 0o644))
	b := h.bundle(`cat /data/f; touch /data/g 2>/dev/null && echo rw || echo ro;
grep ' /scratch ' /proc/self/mounts | grep -o 'size=[0-9]*k';
cat /proc/timer_list | wc -c; touch /proc/sys/x 2>/dev/null || echo sys-ro;
touch /newfile 2>/dev/null || echo root-ro`, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts,
			specs.Mount{Destination: "/data", Type: "bind", Source: hostDir, Options: []string{"rbind", "ro"}},
			specs.Mount{Destination: "/scratch", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1024k", "mode=700"}},
		)
		s.Root.Readonly = true
	})
	out, stderr, code := h.runOut(b)
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "from-host\nro\nsize=1024k\n0\nsys-ro\nroot-ro\n", out)
	assert.NoFileExists(t, filepath.Join(hostDir, "g"))
}

func TestDevices(t *testing.T) {
	h := newHarness(t)
	mode := os.FileMode(0o620)
	uid := uint32(7)
	b := h.bundle("stat -c '%t %T %a %u' /dev/null /dev/mydev; echo x > /dev/null && echo null-ok; ls -l /dev/ptmx /dev/fd | cut -c1", func(s *specs.Spec) {
		s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/mydev", Type: "c", Major: 1, Minor: 5, FileMode: &mode, UID: &uid}}
	})
	out, stderr, code := h.runOut(b)
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, "1 3 666 0\n1 5 620 7\nnull-ok\nl\nl\n", out)
}

func TestCgroupLimitsAndUpdate(t *testing.T) {
	h := newHarness(t)
	limit := int64(64 << 20)
	pids := int64(50)
	b := h.bundle("sleep 30", func(s *specs.Spec) {
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
		s.Linux.Resources.Pids = &specs.LinuxPids{Limit: &pids}
	})
	id := h.id()
	h.must("run", "-d", "--bundle", b, id)
	pid := h.state(id).Pid
	memFile, pidsFile := cgroupFiles(t, pid)
	assert.Equal(t, fmt.Sprint(limit), strings.TrimSpace(readFile(t, memFile)))
	assert.Equal(t, "50", strings.TrimSpace(readFile(t, pidsFile)))

	h.must("update", "--memory", "32m", "--pids-limit", "20", id)
	assert.Equal(t, fmt.Sprint(32<<20), strings.TrimSpace(readFile(t, memFile)))
	assert.Equal(t, "20", strings.TrimSpace(readFile(t, pidsFile)))

	stats := h.must("events", "--stats", id)
	assert.Contains(t, stats, `"type":"stats"`)
	assert.Contains(t, stats, `"memory"`)
}

// cgroupFiles finds the memory limit and pids.max files of pid's cgroup on
// either layout.
func cgroupFiles(t *testing.T, pid int) (string, string) {
	t.Helper()
	data := readFile(t, fmt.Sprintf("/proc/%d/cgroup", pid))
	var unified, mem, pids string
	for _, line := range strings.Split(strings.TrimSpace(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		switch parts[1] {
		case "":
			unified = parts[2]
		case "memory":
			mem = parts[2]
		case "pids":
			pids = parts[2]
		}
	}
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return filepath.Join("/sys/fs/cgroup", unified, "memory.max"), filepath.Join("/sys/fs/cgroup", unified, "pids.max")
	}
	return filepath.Join("/sys/fs/cgroup/memory", mem, "memory.limit_in_bytes"), filepath.Join("/sys/fs/cgroup/pids", pids, "pids.max")
}
