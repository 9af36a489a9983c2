package state

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/mount"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The test binary re-executed as another process: helperEnv names what it
// does, helperDB the database, helperIndex its number.
const (
	helperEnv   = "BERTH_STATE_TEST_HELPER"
	helperDB    = "BERTH_STATE_TEST_DB"
	helperIndex = "BERTH_STATE_TEST_INDEX"

	perProcess  = 5 // containers each "create" helper makes
	eventsPerTx = 3 // events each "stream" transaction adds
)

func runHelper(mode string) int {
	ctx := context.Background()
	var err error
	switch mode {
	case "create":
		err = helperCreate(ctx)
	case "stream":
		err = helperStream(ctx)
	default:
		err = fmt.Errorf("unknown helper mode %q", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// helperCreate makes perProcess containers, each with its event.
func helperCreate(ctx context.Context) error {
	s, err := Open(ctx, os.Getenv(helperDB))
	if err != nil {
		return err
	}
	defer s.Close()
	for j := range perProcess {
		c := sampleContainer(hexID(), fmt.Sprintf("p%s-%d", os.Getenv(helperIndex), j))
		err := s.Tx(ctx, func(tx *Tx) error {
			if err := tx.CreateContainer(ctx, c); err != nil {
				return err
			}
			return tx.AddEvent(ctx, Event{Type: "container", Action: "create", ActorID: c.ID})
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// helperStream commits transactions until it is killed (or a minute
// passes): each makes a volume, a container that mounts it, updates the
// container and adds eventsPerTx events, all tagged with its batch number.
// It prints "ready" after the first commit.
func helperStream(ctx context.Context) error {
	s, err := Open(ctx, os.Getenv(helperDB))
	if err != nil {
		return err
	}
	defer s.Close()
	cs, err := s.Containers(ctx)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(time.Minute)
	for i := len(cs); time.Now().Before(deadline); i++ {
		batch := strconv.Itoa(i)
		err := s.Tx(ctx, func(tx *Tx) error {
			if _, _, err := tx.CreateVolume(ctx, &Volume{Name: "v" + batch, Driver: "local"}); err != nil {
				return err
			}
			c := sampleContainer(hexID(), "s"+batch)
			c.State.Status = StatusCreated
			c.Mounts = []MountPoint{{Type: mount.TypeVolume, Name: "v" + batch, Destination: "/v"}}
			if err := tx.CreateContainer(ctx, c); err != nil {
				return err
			}
			for k := range eventsPerTx {
				if err := tx.AddEvent(ctx, Event{Type: "container", Action: "create", ActorID: c.ID,
					Attributes: map[string]string{"batch": batch, "k": strconv.Itoa(k)}}); err != nil {
					return err
				}
			}
			_, err := tx.UpdateContainer(ctx, c.ID, func(r *Container) error {
				r.State.Status = StatusRunning
				return nil
			})
			return err
		})
		if err != nil {
			return err
		}
		if i == len(cs) {
			fmt.Println("ready")
		}
	}
	return nil
}

// startHelper starts the test binary as a helper process; t.Cleanup kills
// it if the test has not waited for it.
func startHelper(t *testing.T, mode, db string, index int, stdout bool) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	self, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, helperDB+"="+db, helperIndex+"="+strconv.Itoa(index))
	cmd.Stderr = os.Stderr
	var out *bufio.Reader
	if stdout {
		pipe, err := cmd.StdoutPipe()
		require.NoError(t, err)
		out = bufio.NewReader(pipe)
	}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, out
}

// TestConcurrentProcesses starts 20 processes on a database none of them
// has created yet: they race on the schema and then on their inserts.
func TestConcurrentProcesses(t *testing.T) {
	db := filepath.Join(t.TempDir(), "state.db")
	const n = 20
	cmds := make([]*exec.Cmd, n)
	for i := range n {
		cmds[i], _ = startHelper(t, "create", db, i, false)
	}
	for i, cmd := range cmds {
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			assert.NoError(t, err, "process %d", i)
		case <-time.After(2 * time.Minute):
			t.Fatalf("process %d did not finish", i)
		}
	}
	ctx := context.Background()
	s, err := Open(ctx, db)
	require.NoError(t, err)
	defer s.Close()
	list, err := s.Containers(ctx)
	require.NoError(t, err)
	var want []string
	for i := range n {
		for j := range perProcess {
			want = append(want, fmt.Sprintf("p%d-%d", i, j))
		}
	}
	assert.ElementsMatch(t, want, names(list))
	evs, err := s.Events(ctx, EventQuery{})
	require.NoError(t, err)
	assert.Len(t, evs, n*perProcess)
}

// TestKillMidTransaction kills a writer with SIGKILL at random points of a
// stream of transactions, several times over one database, and checks
// after each that it opens, passes integrity_check and holds only whole
// transactions.
func TestKillMidTransaction(t *testing.T) {
	db := filepath.Join(t.TempDir(), "state.db")
	ctx := context.Background()
	last := 0
	for round := range 6 {
		cmd, out := startHelper(t, "stream", db, round, true)
		line, err := readLine(out, 30*time.Second)
		require.NoError(t, err, "round %d", round)
		require.Equal(t, "ready", line)
		time.Sleep(time.Duration(rand.IntN(40)) * time.Millisecond)
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		_ = cmd.Wait()

		n := checkWholeTransactions(t, ctx, db)
		assert.Greater(t, n, last, "round %d committed nothing", round)
		t.Logf("round %d: %d transactions committed in all", round, n)
		last = n
	}
}

// checkWholeTransactions opens the database, checks its integrity and that
// every batch is complete, and returns the number of batches.
func checkWholeTransactions(t *testing.T, ctx context.Context, db string) int {
	t.Helper()
	s, err := Open(ctx, db)
	require.NoError(t, err)
	defer s.Close()
	var integrity string
	require.NoError(t, s.db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&integrity))
	require.Equal(t, "ok", integrity)

	cs, err := s.Containers(ctx)
	require.NoError(t, err)
	vols, err := s.Volumes(ctx)
	require.NoError(t, err)
	evs, err := s.Events(ctx, EventQuery{})
	require.NoError(t, err)
	assert.Len(t, vols, len(cs))
	assert.Len(t, evs, eventsPerTx*len(cs))
	perBatch := map[string]int{}
	for _, e := range evs {
		perBatch[e.Attributes["batch"]]++
	}
	for i := range len(cs) {
		batch := strconv.Itoa(i)
		c, err := s.Container(ctx, "s"+batch)
		if !assert.NoError(t, err, "batch %s", batch) {
			continue
		}
		assert.Equal(t, StatusRunning, c.State.Status, "batch %s half updated", batch)
		assert.Equal(t, eventsPerTx, perBatch[batch], "batch %s events", batch)
		_, err = s.Volume(ctx, "v"+batch)
		assert.NoError(t, err, "batch %s volume", batch)
	}
	return len(cs)
}

// readLine reads one line from r, giving up after d.
func readLine(r *bufio.Reader, d time.Duration) (string, error) {
	type result struct {
		s   string
		err error
	}
	ch := make(chan result, 1)
	go func() {
		s, err := r.ReadString('\n')
		ch <- result{s, err}
	}()
	select {
	case res := <-ch:
		if res.err != nil {
			return "", res.err
		}
		return res.s[:len(res.s)-1], nil
	case <-time.After(d):
		return "", fmt.Errorf("no line within %v", d)
	}
}
