package state

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/internal/errdefs"
)

// TestMain lets the test binary stand in for a second berth process: the
// multi-process tests re-execute it with helperEnv set.
func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode))
	}
	os.Exit(m.Run())
}

func newStore(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(context.Background(), path)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s, path
}

// hexID draws a container ID.
func hexID() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand does not fail on Linux
	return hex.EncodeToString(b[:])
}

// sampleContainer fills every field, so round trips check them all.
func sampleContainer(id, name string) *Container {
	started := time.Date(2026, 11, 23, 13, 0, 0, 123456789, time.UTC)
	return &Container{
		ID: id, Name: name, Image: "busybox", ImageID: "sha256:" + id,
		Created: time.Date(2026, 11, 23, 12, 0, 0, 1, time.UTC),
		Config: &container.Config{
			Image: "busybox", Cmd: []string{"sh", "-c", "echo hi"}, Env: []string{"A=b"},
			Labels: map[string]string{"app": "web"},
		},
		HostConfig: &container.HostConfig{
			AutoRemove:    true,
			RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyOnFailure, MaximumRetryCount: 3},
			LogConfig:     container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "1m"}},
		},
		Mounts: []MountPoint{{Type: mount.TypeBind, Source: "/srv", Destination: "/data", Mode: "ro", Propagation: "rprivate"}},
		State: State{
			Status: StatusRunning, Pid: 42, MonitorPid: 41, StartedAt: started,
			Health: &container.Health{Status: container.Healthy, FailingStreak: 1, Log: []*container.HealthcheckResult{
				{Start: started, End: started.Add(time.Second), ExitCode: 0, Output: "ok"},
			}},
		},
		RestartCount: 2,
		LogPath:      "/var/lib/berth/containers/" + id + "/" + id + "-json.log",
		Net: NetConfig{
			Firewall:        []string{"direction=egress,action=deny,proto=tcp,port=443"},
			FirewallDefault: "ingress=deny",
			Routes:          []string{"10.9.0.0/16,via=172.18.0.5"},
		},
	}
}

func TestOpenCreatesPrivateFileAndSchema(t *testing.T) {
	s, path := newStore(t)
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	var mode string
	require.NoError(t, s.db.QueryRow("PRAGMA journal_mode").Scan(&mode))
	assert.Equal(t, "wal", mode)
	var fk, sync int
	require.NoError(t, s.db.QueryRow("PRAGMA foreign_keys").Scan(&fk))
	require.NoError(t, s.db.QueryRow("PRAGMA synchronous").Scan(&sync))
	assert.Equal(t, 1, fk)
	assert.Equal(t, 1, sync, "synchronous=NORMAL")
	v, err := userVersion(context.Background(), s.db)
	require.NoError(t, err)
	assert.Equal(t, schemaVersion(), v)
	// The write-ahead log copies the database's mode.
	require.NoError(t, s.AddEvent(context.Background(), Event{Type: "container", Action: "create"}))
	st, err = os.Stat(path + "-wal")
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
}

func TestOpenRefusesOddPath(t *testing.T) {
	_, err := Open(context.Background(), filepath.Join(t.TempDir(), "a?b"))
	assert.ErrorIs(t, err, errdefs.ErrInvalidArgument)
}

// TestReopenSkipsSchema relies on version 1's CREATE TABLEs failing when
// run twice: reopening succeeds only if they do not run again. It also
// measures what every CLI command pays to open the store.
func TestReopenSkipsSchema(t *testing.T) {
	ctx := context.Background()
	s, path := newStore(t)
	require.NoError(t, s.CreateContainer(ctx, sampleContainer(hexID(), "keep")))
	require.NoError(t, s.Close())

	const rounds = 50
	times := make([]time.Duration, 0, rounds)
	for range rounds {
		start := time.Now()
		s2, err := Open(ctx, path)
		times = append(times, time.Since(start))
		require.NoError(t, err)
		require.NoError(t, s2.Close())
	}
	slices.Sort(times)
	median := times[rounds/2]
	t.Logf("Open on an existing store: median %v, min %v, max %v", median, times[0], times[rounds-1])
	assert.Less(t, median, 5*time.Millisecond)

	s3, err := Open(ctx, path)
	require.NoError(t, err)
	defer s3.Close()
	c, err := s3.Container(ctx, "keep")
	require.NoError(t, err)
	assert.Equal(t, "keep", c.Name)
}

func BenchmarkOpenExisting(b *testing.B) {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "state.db")
	s, err := Open(ctx, path)
	require.NoError(b, err)
	require.NoError(b, s.Close())
	for b.Loop() {
		s, err := Open(ctx, path)
		if err != nil {
			b.Fatal(err)
		}
		_ = s.Close()
	}
}

func TestMigrationToNextVersion(t *testing.T) {
	ctx := context.Background()
	s, path := newStore(t)
	require.NoError(t, s.CreateContainer(ctx, sampleContainer(hexID(), "old")))
	require.NoError(t, s.Close())

	saved := migrations
	t.Cleanup(func() { migrations = saved })
	migrations = append(slices.Clone(saved), `CREATE TABLE scratch (name TEXT PRIMARY KEY);`)

	s2, err := Open(ctx, path)
	require.NoError(t, err)
	defer s2.Close()
	v, err := userVersion(ctx, s2.db)
	require.NoError(t, err)
	assert.Equal(t, len(saved)+1, v)
	_, err = s2.db.Exec(`INSERT INTO scratch (name) VALUES ('bridge')`)
	require.NoError(t, err)
	_, err = s2.Container(ctx, "old")
	require.NoError(t, err, "data survives the migration")
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	s, path := newStore(t)
	_, err := s.db.Exec("PRAGMA user_version = 99")
	require.NoError(t, err)
	require.NoError(t, s.Close())
	_, err = Open(ctx, path)
	assert.ErrorIs(t, err, errdefs.ErrFailedPrecondition)
	assert.ErrorContains(t, err, "schema version 99")
}

func TestContainerRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	want := sampleContainer(hexID(), "web")
	require.NoError(t, s.CreateContainer(ctx, want))

	got, err := s.Container(ctx, want.ID)
	require.NoError(t, err)
	assert.Equal(t, want, got)

	list, err := s.Containers(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, want, list[0])

	got, err = s.UpdateContainer(ctx, want.ID, func(c *Container) error {
		c.State.Status = StatusExited
		c.State.ExitCode = 137
		c.State.OOMKilled = true
		c.State.FinishedAt = time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC)
		c.RestartCount++
		return nil
	})
	require.NoError(t, err)
	again, err := s.Container(ctx, "web")
	require.NoError(t, err)
	assert.Equal(t, got, again)
	assert.Equal(t, 137, again.State.ExitCode)
	assert.True(t, again.State.OOMKilled)
	assert.Equal(t, 3, again.RestartCount)

	var status string
	require.NoError(t, s.db.QueryRow("SELECT status FROM containers WHERE id = ?", want.ID).Scan(&status))
	assert.Equal(t, StatusExited, status, "the status column follows the record")

	require.NoError(t, s.DeleteContainer(ctx, want.ID))
	_, err = s.Container(ctx, want.ID)
	assert.ErrorIs(t, err, errdefs.ErrNotFound)
	assert.EqualError(t, err, "no such container: "+want.ID)
	assert.ErrorIs(t, s.DeleteContainer(ctx, want.ID), errdefs.ErrNotFound)
	_, err = s.UpdateContainer(ctx, want.ID, func(*Container) error { return nil })
	assert.ErrorIs(t, err, errdefs.ErrNotFound)
}

func TestCreateContainerDefaults(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	c := &Container{ID: hexID(), Name: "/slash"}
	require.NoError(t, s.CreateContainer(ctx, c))
	got, err := s.Container(ctx, "/slash")
	require.NoError(t, err)
	assert.Equal(t, "slash", got.Name)
	assert.Equal(t, StatusCreated, got.State.Status)
	assert.WithinDuration(t, time.Now(), got.Created, time.Minute)
	assert.Nil(t, got.Config)
	assert.Nil(t, got.State.Health)

	for _, bad := range []*Container{
		{ID: "abc", Name: "short-id"},
		{ID: "Z" + hexID()[1:], Name: "not-hex"},
		{ID: hexID()},
	} {
		assert.ErrorIs(t, s.CreateContainer(ctx, bad), errdefs.ErrInvalidArgument, bad.ID)
	}
}

func TestContainerNameConflict(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	first := sampleContainer(hexID(), "x")
	require.NoError(t, s.CreateContainer(ctx, first))

	err := s.CreateContainer(ctx, sampleContainer(hexID(), "x"))
	assert.ErrorIs(t, err, errdefs.ErrAlreadyExists)
	assert.EqualError(t, err, fmt.Sprintf(`the container name "/x" is already in use by container %q`, first.ID))

	err = s.CreateContainer(ctx, sampleContainer(first.ID, "y"))
	assert.ErrorIs(t, err, errdefs.ErrAlreadyExists)
	assert.ErrorContains(t, err, first.ID)

	list, err := s.Containers(ctx)
	require.NoError(t, err)
	assert.Len(t, list, 1)
}

// Names are not hex, so no ID prefix can match them by chance.
func TestRenameKeepsNamesUnique(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	a, b := sampleContainer(hexID(), "alpha"), sampleContainer(hexID(), "beta")
	require.NoError(t, s.CreateContainer(ctx, a))
	require.NoError(t, s.CreateContainer(ctx, b))

	_, err := s.UpdateContainer(ctx, b.ID, func(c *Container) error { c.Name = "alpha"; return nil })
	assert.ErrorIs(t, err, errdefs.ErrAlreadyExists)
	assert.EqualError(t, err, fmt.Sprintf(`the container name "/alpha" is already in use by container %q`, a.ID))

	got, err := s.UpdateContainer(ctx, b.ID, func(c *Container) error { c.Name = "/gamma"; return nil })
	require.NoError(t, err)
	assert.Equal(t, "gamma", got.Name)
	_, err = s.Container(ctx, "beta")
	assert.ErrorIs(t, err, errdefs.ErrNotFound)
	_, err = s.Container(ctx, "gamma")
	require.NoError(t, err)

	// Keeping its own name is no conflict.
	_, err = s.UpdateContainer(ctx, a.ID, func(c *Container) error { c.RestartCount = 9; return nil })
	require.NoError(t, err)

	_, err = s.UpdateContainer(ctx, a.ID, func(c *Container) error { c.ID = b.ID; return nil })
	assert.ErrorIs(t, err, errdefs.ErrInvalidArgument)
}

func TestUpdateContainerAtomic(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	c := sampleContainer(hexID(), "atomic")
	require.NoError(t, s.CreateContainer(ctx, c))
	boom := errors.New("boom")
	_, err := s.UpdateContainer(ctx, c.ID, func(r *Container) error {
		r.Name = "renamed"
		r.State.Status = StatusDead
		r.Mounts = nil
		return boom
	})
	assert.ErrorIs(t, err, boom)
	got, err := s.Container(ctx, c.ID)
	require.NoError(t, err)
	assert.Equal(t, c, got)
}

func TestContainerRefResolution(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	mk := func(id, name string) *Container {
		c := sampleContainer(id, name)
		require.NoError(t, s.CreateContainer(ctx, c))
		return c
	}
	pad := func(p string) string { return p + hexID()[len(p):] }
	abc1 := mk(pad("abc1"), "first")
	abc2 := mk(pad("abc2"), "second")
	// A name that looks like an ID prefix: Docker takes the name first.
	named := mk(pad("def0"), "abc1")
	// A name equal to another container's full ID: the ID wins.
	mk(pad("ee"), abc2.ID)

	cases := []struct {
		ref  string
		want *Container
		err  error
	}{
		{ref: abc1.ID, want: abc1},
		{ref: abc2.ID, want: abc2},
		{ref: "first", want: abc1},
		{ref: "/second", want: abc2},
		{ref: "abc1", want: named},
		{ref: "abc2", want: abc2},
		{ref: "def", want: named},
		{ref: "abc", err: errdefs.ErrInvalidArgument},
		{ref: "a", err: errdefs.ErrInvalidArgument},
		{ref: "0000", err: errdefs.ErrNotFound},
		{ref: "nope", err: errdefs.ErrNotFound},
		{ref: "ABC2", err: errdefs.ErrNotFound},
		{ref: "", err: errdefs.ErrInvalidArgument},
	}
	for _, tc := range cases {
		got, err := s.Container(ctx, tc.ref)
		if tc.err != nil {
			assert.ErrorIs(t, err, tc.err, tc.ref)
			continue
		}
		if assert.NoError(t, err, tc.ref) {
			assert.Equal(t, tc.want.ID, got.ID, tc.ref)
		}
	}
	_, err := s.Container(ctx, "abc")
	assert.EqualError(t, err, "multiple IDs found with provided prefix: abc")
}

func TestContainersNewestFirst(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var want []string
	for i := range 5 {
		c := sampleContainer(hexID(), fmt.Sprintf("c%d", i))
		c.Created = base.Add(time.Duration(i) * time.Second)
		require.NoError(t, s.CreateContainer(ctx, c))
		want = append([]string{c.Name}, want...)
	}
	list, err := s.Containers(ctx)
	require.NoError(t, err)
	var got []string
	for _, c := range list {
		got = append(got, c.Name)
	}
	assert.Equal(t, want, got)
}

func TestVolumes(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	v := &Volume{Name: "data", Driver: "local", Mountpoint: "/var/lib/berth/volumes/data/_data",
		Labels: map[string]string{"a": "b"}, Options: map[string]string{"o": "p"}}
	got, created, err := s.CreateVolume(ctx, v)
	require.NoError(t, err)
	assert.True(t, created)
	assert.False(t, got.Created.IsZero())

	again, created, err := s.CreateVolume(ctx, &Volume{Name: "data", Driver: "other"})
	require.NoError(t, err)
	assert.False(t, created, "create is idempotent")
	assert.Equal(t, "local", again.Driver, "the stored volume comes back")

	_, _, err = s.CreateVolume(ctx, &Volume{Name: "anon", Anonymous: true, Driver: "local"})
	require.NoError(t, err)
	one, err := s.Volume(ctx, "data")
	require.NoError(t, err)
	assert.Equal(t, v.Labels, one.Labels)
	assert.Equal(t, v.Options, one.Options)
	assert.True(t, v.Created.Equal(one.Created))
	list, err := s.Volumes(ctx)
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, "anon", list[0].Name)
	assert.True(t, list[0].Anonymous)

	_, _, err = s.CreateVolume(ctx, &Volume{})
	assert.ErrorIs(t, err, errdefs.ErrInvalidArgument)

	// A mounted volume cannot go until its container does.
	c := sampleContainer(hexID(), "user")
	c.Mounts = append(c.Mounts, MountPoint{Type: mount.TypeVolume, Name: "data", Destination: "/d", RW: true})
	require.NoError(t, s.CreateContainer(ctx, c))
	err = s.DeleteVolume(ctx, "data")
	assert.ErrorIs(t, err, errdefs.ErrFailedPrecondition)
	assert.EqualError(t, err, fmt.Sprintf("remove data: volume is in use - [%s]", c.ID))

	// Unmounting through an update releases it.
	_, err = s.UpdateContainer(ctx, c.ID, func(r *Container) error {
		r.Mounts = r.Mounts[:1]
		return nil
	})
	require.NoError(t, err)
	require.NoError(t, s.DeleteVolume(ctx, "data"))
	_, err = s.Volume(ctx, "data")
	assert.ErrorIs(t, err, errdefs.ErrNotFound)
	assert.ErrorIs(t, s.DeleteVolume(ctx, "data"), errdefs.ErrNotFound)

	// Deleting the container releases its volumes too.
	_, err = s.UpdateContainer(ctx, c.ID, func(r *Container) error {
		r.Mounts = append(r.Mounts, MountPoint{Type: mount.TypeVolume, Name: "anon", Destination: "/a"})
		return nil
	})
	require.NoError(t, err)
	assert.ErrorIs(t, s.DeleteVolume(ctx, "anon"), errdefs.ErrFailedPrecondition)
	require.NoError(t, s.DeleteContainer(ctx, c.ID))
	require.NoError(t, s.DeleteVolume(ctx, "anon"))

	// A container cannot mount a volume that does not exist.
	c2 := sampleContainer(hexID(), "dangling")
	c2.Mounts = []MountPoint{{Type: mount.TypeVolume, Name: "ghost", Destination: "/g"}}
	assert.ErrorIs(t, s.CreateContainer(ctx, c2), errdefs.ErrNotFound)
	_, err = s.Container(ctx, "dangling")
	assert.ErrorIs(t, err, errdefs.ErrNotFound, "the failed create left nothing")
}

func TestTxIsAtomic(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	c := sampleContainer(hexID(), "tx")
	boom := errors.New("boom")
	err := s.Tx(ctx, func(tx *Tx) error {
		if _, _, err := tx.CreateVolume(ctx, &Volume{Name: "v"}); err != nil {
			return err
		}
		if err := tx.CreateContainer(ctx, c); err != nil {
			return err
		}
		if err := tx.AddEvent(ctx, Event{Type: "container", Action: "create", ActorID: c.ID}); err != nil {
			return err
		}
		seen, err := tx.Container(ctx, "tx")
		if err != nil {
			return err
		}
		assert.Equal(t, c.ID, seen.ID, "a transaction sees its own writes")
		return boom
	})
	assert.ErrorIs(t, err, boom)
	_, err = s.Container(ctx, "tx")
	assert.ErrorIs(t, err, errdefs.ErrNotFound)
	_, err = s.Volume(ctx, "v")
	assert.ErrorIs(t, err, errdefs.ErrNotFound)
	evs, err := s.Events(ctx, EventQuery{})
	require.NoError(t, err)
	assert.Empty(t, evs)

	require.NoError(t, s.Tx(ctx, func(tx *Tx) error {
		if err := tx.CreateContainer(ctx, c); err != nil {
			return err
		}
		if _, err := tx.UpdateContainer(ctx, c.ID, func(r *Container) error { r.State.Status = StatusExited; return nil }); err != nil {
			return err
		}
		return tx.AddEvent(ctx, Event{Type: "container", Action: "die", ActorID: c.ID})
	}))
	got, err := s.Container(ctx, "tx")
	require.NoError(t, err)
	assert.Equal(t, StatusExited, got.State.Status)
	evs, err = s.Events(ctx, EventQuery{})
	require.NoError(t, err)
	assert.Len(t, evs, 1)

	// A panic in fn rolls back and leaves the store usable.
	assert.Panics(t, func() {
		_ = s.Tx(ctx, func(tx *Tx) error {
			_ = tx.DeleteContainer(ctx, c.ID)
			panic("oops")
		})
	})
	_, err = s.Container(ctx, "tx")
	require.NoError(t, err)
	require.NoError(t, s.AddEvent(ctx, Event{Type: "container", Action: "start"}))
}

func TestEvents(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	base := time.Date(2026, 11, 23, 13, 0, 0, 0, time.UTC)
	for i := range 5 {
		require.NoError(t, s.AddEvent(ctx, Event{
			Time: base.Add(time.Duration(i) * time.Minute), Type: "container", Action: "start",
			ActorID: fmt.Sprint(i), Attributes: map[string]string{"name": fmt.Sprint("c", i), "image": "busybox"},
		}))
	}
	require.NoError(t, s.AddEvent(ctx, Event{Type: "image", Action: "pull", ActorID: "busybox"}))
	now := time.Now()

	all, err := s.Events(ctx, EventQuery{})
	require.NoError(t, err)
	require.Len(t, all, 6)
	for i, e := range all {
		assert.Equal(t, int64(i+1), e.Seq)
	}
	assert.Equal(t, map[string]string{"name": "c2", "image": "busybox"}, all[2].Attributes)
	assert.True(t, base.Add(2*time.Minute).Equal(all[2].Time))
	assert.WithinDuration(t, time.Now(), all[5].Time, time.Minute, "time filled in")
	assert.Nil(t, all[5].Attributes)

	seqs := func(q EventQuery) []int64 {
		evs, err := s.Events(ctx, q)
		require.NoError(t, err)
		var out []int64
		for _, e := range evs {
			out = append(out, e.Seq)
		}
		return out
	}
	assert.Equal(t, []int64{4, 5, 6}, seqs(EventQuery{AfterSeq: 3}))
	assert.Equal(t, []int64{2, 3, 4}, seqs(EventQuery{Since: base.Add(time.Minute), Until: base.Add(3 * time.Minute)}))
	assert.Equal(t, []int64{3, 4}, seqs(EventQuery{AfterSeq: 2, Limit: 2}))
	assert.Equal(t, []int64{6}, seqs(EventQuery{Since: now.Add(-time.Minute)}))
	assert.Empty(t, seqs(EventQuery{AfterSeq: 6}))
}

func TestEventPruning(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	const extra = 25
	require.NoError(t, s.Tx(ctx, func(tx *Tx) error {
		for i := range MaxEvents + extra - 1 {
			if err := tx.AddEvent(ctx, Event{Type: "container", Action: "exec_start", ActorID: fmt.Sprint(i)}); err != nil {
				return err
			}
		}
		return nil
	}))
	require.NoError(t, s.AddEvent(ctx, Event{Type: "container", Action: "destroy"}))
	evs, err := s.Events(ctx, EventQuery{})
	require.NoError(t, err)
	require.Len(t, evs, MaxEvents)
	assert.Equal(t, int64(extra+1), evs[0].Seq, "the oldest went")
	assert.Equal(t, int64(MaxEvents+extra), evs[len(evs)-1].Seq)
	assert.Equal(t, "destroy", evs[len(evs)-1].Action)
}

func TestConcurrentGoroutines(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	const n = 20
	errs := make(chan error, n)
	for i := range n {
		go func() {
			c := sampleContainer(hexID(), fmt.Sprintf("g%d", i))
			err := s.Tx(ctx, func(tx *Tx) error {
				if err := tx.CreateContainer(ctx, c); err != nil {
					return err
				}
				return tx.AddEvent(ctx, Event{Type: "container", Action: "create", ActorID: c.ID})
			})
			errs <- err
		}()
	}
	for range n {
		select {
		case err := <-errs:
			assert.NoError(t, err)
		case <-time.After(60 * time.Second):
			t.Fatal("concurrent creates did not finish")
		}
	}
	list, err := s.Containers(ctx)
	require.NoError(t, err)
	assert.Len(t, list, n)
	evs, err := s.Events(ctx, EventQuery{})
	require.NoError(t, err)
	assert.Len(t, evs, n)
}

func names(cs []*Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	sort.Strings(out)
	return out
}
