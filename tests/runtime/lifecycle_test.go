package runtime_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRunExitCodes(t *testing.T) {
	h := newHarness(t)
	out, stderr, code := h.runOut(h.bundle("echo hello; exit 3", nil))
	assert.Equal(t, 3, code, stderr)
	assert.Equal(t, "hello\n", out)

	// A program killed by signal 9 makes run exit 128+9, as shells do.
	id := h.id()
	done := make(chan int, 1)
	go func() {
		_, _, code := h.exec("run", "--bundle", h.bundle("sleep 30", nil), id)
		done <- code
	}()
	h.waitStatusFromAbsent(id, "running")
	h.must("kill", id, "KILL")
	select {
	case code = <-done:
		assert.Equal(t, 137, code)
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return after its container was killed")
	}
}

func TestLifecycle(t *testing.T) {
	h := newHarness(t)
	b := h.bundle("sleep 30", nil)
	id := h.id()
	pidFile := filepath.Join(t.TempDir(), "pid")
	h.must("create", "--bundle", b, "--pid-file", pidFile, id)

	st := h.state(id)
	assert.Equal(t, specs.ContainerState("created"), st.Status)
	assert.Equal(t, b, st.Bundle)
	assert.Equal(t, strconv.Itoa(st.Pid), readFile(t, pidFile))

	// A second create with the same id must fail and keep the first.
	_, stderr, code := h.exec("create", "--bundle", b, id)
	assert.NotEqual(t, 0, code)
	assert.Contains(t, stderr, "already exists")

	h.must("start", id)
	h.waitStatus(id, "running")
	_, stderr, code = h.exec("start", id)
	assert.NotEqual(t, 0, code, "start of a running container must fail")
	assert.Contains(t, stderr, "not created")

	_, stderr, code = h.exec("delete", id)
	assert.NotEqual(t, 0, code, "delete of a running container needs --force")
	assert.Contains(t, stderr, "not stopped")

	h.must("kill", id, "KILL")
	h.waitStatus(id, "stopped")
	h.must("delete", id)
	_, stderr, code = h.exec("state", id)
	assert.NotEqual(t, 0, code)
	assert.Contains(t, stderr, "does not exist")
	assert.NoDirExists(t, filepath.Join(h.root, id))
}

func TestDeleteCreatedAndForce(t *testing.T) {
	h := newHarness(t)
	b := h.bundle("sleep 30", nil)
	created := h.id()
	h.must("create", "--bundle", b, created)
	pid := h.state(created).Pid
	_, stderr, code := h.exec("delete", created)
	assert.NotEqual(t, 0, code, "a created container is not stopped")
	assert.Contains(t, stderr, "not stopped")
	h.must("delete", "--force", created)
	assert.Eventually(t, func() bool {
		_, err := os.Stat("/proc/" + strconv.Itoa(pid))
		return os.IsNotExist(err)
	}, 5*time.Second, 20*time.Millisecond, "init of a deleted container must be gone")

	running := h.id()
	h.must("run", "-d", "--bundle", b, running)
	h.must("delete", "--force", running)
	h.must("delete", "--force", "no-such-container") // idempotent, as runc
}

func TestKillSignalsAndAll(t *testing.T) {
	h := newHarness(t)
	b := h.bundle("trap 'exit 42' USR1; sleep 30 & wait", nil)
	id := h.id()
	h.must("run", "-d", "--bundle", b, id)
	h.must("kill", id, "SIGUSR1")
	h.waitStatus(id, "stopped")

	id2 := h.id()
	h.must("run", "-d", "--bundle", h.bundle("sleep 30 & sleep 30 & wait", nil), id2)
	var pids []int
	require.NoError(t, json.Unmarshal([]byte(h.must("ps", "--format", "json", id2)), &pids))
	assert.GreaterOrEqual(t, len(pids), 3, "init and two sleeps")
	h.must("kill", "--all", id2, "9")
	h.waitStatus(id2, "stopped")

	_, stderr, code := h.exec("kill", id2, "NOSUCHSIG")
	assert.NotEqual(t, 0, code)
	assert.Contains(t, stderr, "unknown signal")
}

func TestListAndState(t *testing.T) {
	h := newHarness(t)
	id := h.id()
	h.must("run", "-d", "--bundle", h.bundle("sleep 30", nil), id)
	var list []map[string]any
	require.NoError(t, json.Unmarshal([]byte(h.must("list", "--format", "json")), &list))
	require.Len(t, list, 1)
	assert.Equal(t, id, list[0]["id"])
	assert.Equal(t, "running", list[0]["status"])
	table := h.must("list")
	assert.Contains(t, table, "ID")
	assert.Contains(t, table, id)
	assert.Equal(t, id+"\n", h.must("list", "-q"))
}

func TestPauseResume(t *testing.T) {
	h := newHarness(t)
	id := h.id()
	h.must("run", "-d", "--bundle", h.bundle("sleep 30", nil), id)
	h.must("pause", id)
	assert.Equal(t, specs.ContainerState("paused"), h.state(id).Status)
	_, _, code := h.exec("pause", id)
	assert.NotEqual(t, 0, code, "pausing a paused container fails")
	h.must("resume", id)
	assert.Equal(t, specs.ContainerState("running"), h.state(id).Status)
}

func TestFailedCreateLeavesNothing(t *testing.T) {
	h := newHarness(t)
	b := h.bundle("true", func(s *specs.Spec) { s.Process.Args = []string{"/no/such/binary"} })
	id := h.id()
	_, stderr, code := h.exec("create", "--bundle", b, id)
	assert.NotEqual(t, 0, code)
	assert.Contains(t, stderr, "/no/such/binary")
	assert.Equal(t, 1, strings.Count(strings.TrimSpace(stderr), "\n")+1, "one clear line: %q", stderr)
	assert.NoDirExists(t, filepath.Join(h.root, id), "no state left")
	for _, ctrl := range []string{"memory", "pids", "unified"} {
		matches, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", ctrl, "*", id))
		direct, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", ctrl, id))
		assert.Empty(t, append(matches, direct...), "no cgroup left under %s", ctrl)
	}
	entries, err := os.ReadDir(h.root)
	require.NoError(t, err)
	assert.Empty(t, entries)
}

func TestBadConfigIsRefused(t *testing.T) {
	h := newHarness(t)
	b := h.bundle("true", func(s *specs.Spec) { s.Version = "2.0.0" })
	_, stderr, code := h.exec("run", "--bundle", b, h.id())
	assert.NotEqual(t, 0, code)
	assert.Contains(t, stderr, "ociVersion")
	_, stderr, code = h.exec("run", "--bundle", b, "bad/id")
	assert.NotEqual(t, 0, code)
	assert.Contains(t, stderr, "invalid container id")
}
