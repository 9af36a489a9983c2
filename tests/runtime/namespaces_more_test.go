package runtime_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// A new time namespace carries the configured offsets: the kernel shows
// them in /proc/self/timens_offsets, and /proc/uptime (boottime) moves by
// the boottime offset. A process exec'd later joins the same namespace.
func TestTimeNamespaceOffsets(t *testing.T) {
	h := newHarness(t)
	const monoSecs, bootSecs = 365 * 86400, 10 * 86400
	edit := func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
		s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{
			"monotonic": {Secs: monoSecs},
			"boottime":  {Secs: bootSecs, Nanosecs: 500},
		}
	}
	hostBefore := hostUptime(t)
	out, stderr, code := h.runOut(h.bundle("cat /proc/self/timens_offsets; echo --; cat /proc/uptime; readlink /proc/self/ns/time", edit))
	hostAfter := hostUptime(t)
	require.Equal(t, 0, code, stderr)
	offsets, rest, ok := strings.Cut(out, "--\n")
	require.True(t, ok, out)
	assert.Equal(t, map[string][2]int64{"monotonic": {monoSecs, 0}, "boottime": {bootSecs, 500}}, parseTimensOffsets(t, offsets))

	lines := strings.Split(strings.TrimSpace(rest), "\n")
	require.Len(t, lines, 2, rest)
	up, err := strconv.ParseFloat(strings.Fields(lines[0])[0], 64)
	require.NoError(t, err, lines[0])
	assert.GreaterOrEqual(t, up, hostBefore+bootSecs-0.01, "uptime inside counts from the shifted boot")
	assert.LessOrEqual(t, up, hostAfter+bootSecs+1, "uptime inside is shifted by the boottime offset only")
	hostNS, err := os.Readlink("/proc/self/ns/time")
	require.NoError(t, err)
	assert.NotEqual(t, hostNS, lines[1], "the program runs in a time namespace of its own")

	// exec joins the container's time namespace, offsets and all.
	id := h.id()
	h.must("run", "-d", "--bundle", h.bundle("sleep 30", edit), id)
	pid := h.state(id).Pid
	initNS, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/time", pid))
	require.NoError(t, err)
	assert.NotEqual(t, hostNS, initNS)
	out = h.must("exec", id, "sh", "-c", "readlink /proc/self/ns/time; cat /proc/self/timens_offsets")
	ns, offsets, _ := strings.Cut(out, "\n")
	assert.Equal(t, initNS, ns, "exec joins the container's time namespace")
	assert.Equal(t, map[string][2]int64{"monotonic": {monoSecs, 0}, "boottime": {bootSecs, 500}}, parseTimensOffsets(t, offsets))

	// Offsets need a time namespace, and only these two clocks have them.
	_, stderr, code = h.runOut(h.bundle("true", func(s *specs.Spec) {
		s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 5}}
	}))
	assert.NotEqual(t, 0, code)
	assert.Contains(t, stderr, "time namespace")
	_, stderr, code = h.runOut(h.bundle("true", func(s *specs.Spec) {
		edit(s)
		s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"realtime": {Secs: 5}}
	}))
	assert.NotEqual(t, 0, code)
	assert.Contains(t, stderr, "realtime")
}

func hostUptime(t *testing.T) float64 {
	t.Helper()
	f := strings.Fields(readFile(t, "/proc/uptime"))
	require.NotEmpty(t, f)
	v, err := strconv.ParseFloat(f[0], 64)
	require.NoError(t, err)
	return v
}

// parseTimensOffsets reads "<clock> <secs> <nanosecs>" lines.
func parseTimensOffsets(t *testing.T, s string) map[string][2]int64 {
	t.Helper()
	out := map[string][2]int64{}
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		f := strings.Fields(line)
		require.Len(t, f, 3, "timens_offsets line %q", line)
		secs, err := strconv.ParseInt(f[1], 10, 64)
		require.NoError(t, err)
		nsecs, err := strconv.ParseInt(f[2], 10, 64)
		require.NoError(t, err)
		out[f[0]] = [2]int64{secs, nsecs}
	}
	return out
}

// --no-pivot moves the rootfs onto / and chroots: the container still sees
// exactly its rootfs, the host's root mount is not reachable from its
// mount table, and nothing is left mounted on the host afterwards.
func TestNoPivotRoot(t *testing.T) {
	h := newHarness(t)
	hostRoot := mountAt(t, readFile(t, "/proc/self/mountinfo"), "/")
	require.NotNil(t, hostRoot, "host has a / mount")
	b := h.bundle(`ls -1 / | tr '\n' ' '; echo; test -e /etc/debian_version && echo host-etc-visible || echo own-etc; echo --; cat /proc/self/mountinfo`, nil)
	out, stderr, code := h.exec("run", "--no-pivot", "--bundle", b, h.id())
	require.Equal(t, 0, code, stderr)
	head, mountinfo, ok := strings.Cut(out, "--\n")
	require.True(t, ok, out)
	lines := strings.Split(strings.TrimSpace(head), "\n")
	require.Len(t, lines, 2, head)

	entries, err := os.ReadDir(rootfsOf(b))
	require.NoError(t, err)
	var want []string
	for _, e := range entries {
		want = append(want, e.Name())
	}
	got := strings.Fields(lines[0])
	sort.Strings(got)
	sort.Strings(want)
	assert.Equal(t, want, got, "/ inside is the bundle's rootfs")
	assert.Equal(t, "own-etc", lines[1])

	root := mountAt(t, mountinfo, "/")
	require.NotNil(t, root, "container has a / mount: %s", mountinfo)
	assert.True(t, strings.HasSuffix(root.root, "/rootfs"), "container / is the rootfs bind, got root %q", root.root)
	for _, m := range parseMountinfo(t, mountinfo) {
		assert.False(t, m.majMin == hostRoot.majMin && m.root == hostRoot.root,
			"the host's root mount is visible inside at %s", m.point)
	}
	for _, m := range parseMountinfo(t, readFile(t, "/proc/self/mountinfo")) {
		assert.False(t, strings.HasPrefix(m.point, b+"/"), "mount left on the host: %s", m.point)
	}
}

type mountEntry struct{ majMin, root, point, opts, fstype, superOpts string }

func parseMountinfo(t *testing.T, s string) []mountEntry {
	t.Helper()
	var out []mountEntry
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		require.True(t, ok && len(f) >= 6 && len(g) >= 3, "mountinfo line %q", line)
		out = append(out, mountEntry{majMin: f[2], root: f[3], point: f[4], opts: f[5], fstype: g[0], superOpts: g[2]})
	}
	return out
}

// mountAt returns the topmost mount at point, or nil.
func mountAt(t *testing.T, mountinfo, point string) *mountEntry {
	t.Helper()
	var found *mountEntry
	for _, m := range parseMountinfo(t, mountinfo) {
		if m.point == point {
			m := m
			found = &m
		}
	}
	return found
}

// tmpfsDir mounts a small tmpfs on a fresh directory and removes both when
// the test ends.
func tmpfsDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "berth-idmap-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	require.NoError(t, unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=1m,mode=755"))
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// An idmapped bind mount shows a file owned by uid/gid X on disk as owned
// by the mapped id, inside only; ids outside the mapping show as the
// overflow id. A filesystem that refuses idmapping fails the create with
// an error that says so.
func TestIDMappedBindMount(t *testing.T) {
	h := newHarness(t)
	src := tmpfsDir(t)
	owned, rootOwned := filepath.Join(src, "owned"), filepath.Join(src, "root-owned")
	require.NoError(t, os.WriteFile(owned, []byte("data\n"), 0o644))
	require.NoError(t, os.Chown(owned, 1000, 1001))
	require.NoError(t, os.WriteFile(rootOwned, nil, 0o644))
	require.NoError(t, os.Chown(rootOwned, 0, 0))
	require.NoError(t, os.Chmod(src, 0o755))

	idmapMount := func(dest, source string, opts ...string) specs.Mount {
		return specs.Mount{Destination: dest, Type: "bind", Source: source, Options: opts,
			UIDMappings: []specs.LinuxIDMapping{{ContainerID: 1000, HostID: 2000, Size: 10}},
			GIDMappings: []specs.LinuxIDMapping{{ContainerID: 1000, HostID: 3000, Size: 10}}}
	}
	for _, opts := range [][]string{{"bind", "idmap"}, {"rbind", "ridmap"}} {
		t.Run(opts[1], func(t *testing.T) {
			b := h.bundle("stat -c '%u:%g' /idm/owned /idm/root-owned; cat /idm/owned; grep ' /idm ' /proc/self/mountinfo", func(s *specs.Spec) {
				s.Mounts = append(s.Mounts, idmapMount("/idm", src, opts...))
			})
			out, stderr, code := h.runOut(b)
			require.Equal(t, 0, code, stderr)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			require.Len(t, lines, 4, out)
			assert.Equal(t, "2000:3001", lines[0], "disk 1000:1001 shows through the mappings")
			assert.Equal(t, fmt.Sprintf("%d:%d", overflowID(t, "uid"), overflowID(t, "gid")), lines[1], "an unmapped owner shows as the overflow id")
			assert.Equal(t, "data", lines[2])
			assert.Contains(t, lines[3], "idmapped", "the kernel marks the mount idmapped")

			var st unix.Stat_t
			require.NoError(t, unix.Stat(owned, &st))
			assert.Equal(t, [2]uint32{1000, 1001}, [2]uint32{st.Uid, st.Gid}, "the host's view is unchanged")
		})
	}

	t.Run("refused", func(t *testing.T) {
		id := h.id()
		b := h.bundle("true", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, idmapMount("/ksys", "/sys/kernel", "rbind", "idmap"))
		})
		_, stderr, code := h.exec("run", "--bundle", b, id)
		assert.NotEqual(t, 0, code)
		assert.Contains(t, stderr, "idmapped mount")
		assert.Contains(t, stderr, "does not support idmapped mounts")
		assert.NoDirExists(t, filepath.Join(h.root, id), "no state left")

		b = h.bundle("true", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/t", Type: "tmpfs", Source: "tmpfs", Options: []string{"idmap"},
				UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1, Size: 1}},
				GIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1, Size: 1}}})
		})
		_, stderr, code = h.runOut(b)
		assert.NotEqual(t, 0, code)
		assert.Contains(t, stderr, "bind mounts only")
	})
}

// overflowID is the id the kernel shows for an owner it cannot map.
func overflowID(t *testing.T, kind string) int {
	t.Helper()
	v, err := strconv.Atoi(strings.TrimSpace(readFile(t, "/proc/sys/fs/overflow"+kind)))
	require.NoError(t, err)
	return v
}
