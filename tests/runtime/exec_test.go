package runtime_test

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/runtime/console"
)

func TestExec(t *testing.T) {
	h := newHarness(t)
	id := h.id()
	h.must("run", "-d", "--bundle", h.bundle("echo hi > /tmp/marker; sleep 30", func(s *specs.Spec) {
		s.Process.Env = append(s.Process.Env, "FROM_SPEC=1")
	}), id)
	h.waitStatus(id, "running")
	deadline := time.Now().Add(5 * time.Second)
	var out string
	for time.Now().Before(deadline) {
		if out, _, _ = h.exec("exec", id, "cat", "/tmp/marker"); out == "hi\n" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	assert.Equal(t, "hi\n", out, "exec sees the container's filesystem")

	out = h.must("exec", "--env", "EXTRA=2", "--cwd", "/tmp", "--user", "1000:1000", id,
		"sh", "-c", `echo $FROM_SPEC $EXTRA; pwd; id -u; echo $$; readlink /proc/self/ns/pid`)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 5, out)
	assert.Equal(t, "1 2", lines[0])
	assert.Equal(t, "/tmp", lines[1])
	assert.Equal(t, "1000", lines[2])
	assert.NotEqual(t, "1", lines[3], "exec'd process is not pid 1")
	initNS, err := os.Readlink("/proc/" + strconv.Itoa(h.state(id).Pid) + "/ns/pid")
	require.NoError(t, err)
	assert.Equal(t, initNS, lines[4], "exec joins the container's pid namespace")

	_, _, code := h.exec("exec", id, "sh", "-c", "exit 7")
	assert.Equal(t, 7, code)

	proc := specs.Process{Args: []string{"sh", "-c", "echo from-process-json"}, Cwd: "/", Env: []string{"PATH=/bin"}}
	pj := filepath.Join(t.TempDir(), "process.json")
	writeJSON(t, pj, proc)
	assert.Equal(t, "from-process-json\n", h.must("exec", "--process", pj, id))

	pidFile := filepath.Join(t.TempDir(), "pid")
	h.must("exec", "-d", "--pid-file", pidFile, id, "sleep", "5")
	assert.NotEmpty(t, readFile(t, pidFile))

	h.must("kill", id, "KILL")
	h.waitStatus(id, "stopped")
	_, stderr, code := h.exec("exec", id, "true")
	assert.NotEqual(t, 0, code)
	assert.Contains(t, stderr, "stopped")
}

func TestTerminalThroughConsoleSocket(t *testing.T) {
	h := newHarness(t)
	b := h.bundle("tty; stty size; ls -l /dev/console", func(s *specs.Spec) {
		s.Process.Terminal = true
		s.Process.ConsoleSize = &specs.Box{Height: 30, Width: 100}
	})
	// The C init (the default) and the Go init give the same terminal.
	for _, kind := range []string{"", "go"} {
		out, threads := terminalRun(t, h, b, kind)
		if kind == "" {
			assert.Equal(t, 1, threads, "the C init set up the terminal")
		}
		assert.Contains(t, out, "/dev/pts/0", "init %q", kind)
		assert.Contains(t, out, "30 100", "init %q", kind)
		assert.Regexp(t, `(?m)^c.* 136, +0 .*/dev/console`, out, "init %q: the terminal bound on /dev/console", kind)
	}

	_, stderr, code := h.exec("create", "--bundle", b, h.id())
	assert.NotEqual(t, 0, code)
	assert.Contains(t, stderr, "console-socket")
}

// terminalRun creates and starts bundle b with a terminal, the init kind
// forced as BERTH_INIT, and returns what the terminal showed and how many
// threads the init had while it waited for start.
func terminalRun(t *testing.T, h *harness, b, kind string) (string, int) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	require.NoError(t, err)
	defer l.Close()
	got := make(chan *os.File, 1)
	go func() {
		f, err := console.RecvMaster(l)
		if err == nil {
			got <- f
		}
		close(got)
	}()
	id := h.id()
	cmd := h.cmd("create", "--console-socket", sock, "--bundle", b, id)
	cmd.Env = append(os.Environ(), "BERTH_INIT="+kind)
	_, stderr, code := runBounded(t, cmd, nil)
	require.Equal(t, 0, code, stderr)
	var master *os.File
	select {
	case master = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no terminal master received")
	}
	require.NotNil(t, master)
	defer master.Close()
	threads := h.threads(id)
	h.must("start", id)
	buf := make([]byte, 4096)
	var out strings.Builder
	_ = master.SetReadDeadline(time.Now().Add(10 * time.Second))
	for !strings.Contains(out.String(), "console") {
		n, err := master.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			break
		}
	}
	h.waitStatus(id, "stopped")
	h.must("delete", id)
	return out.String(), threads
}
