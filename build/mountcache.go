package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/internal/errdefs"
)

// cacheMount is a directory kept between builds, by id (the target when
// no id is given). Its content is not part of the step's key. sharing=
// shared (the default) lets steps use it at once, locked makes them take
// turns, private gives a step that finds it in use a fresh directory of
// its own, thrown away after.
func (r *buildRun) cacheMount(ctx context.Context, m *instructions.Mount, target string) (specs.Mount, string, func(), error) {
	if r.b.MountCacheDir == "" {
		return specs.Mount{}, "", nil, errdefs.Invalid("RUN --mount=type=cache needs a cache directory")
	}
	id := m.CacheID
	if id == "" {
		id = target
	}
	sum := sha256.Sum256([]byte(id))
	dir := filepath.Join(r.b.MountCacheDir, hex.EncodeToString(sum[:]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return specs.Mount{}, "", nil, fmt.Errorf("cache mount %s: %w", id, err)
	}
	dir, release, err := r.shareCache(ctx, dir, m.CacheSharing)
	if err != nil {
		return specs.Mount{}, "", release, fmt.Errorf("cache mount %s: %w", id, err)
	}
	if m.UID != nil || m.GID != nil || m.Mode != nil {
		if err := ownDir(dir, m.UID, m.GID, m.Mode); err != nil {
			return specs.Mount{}, "", release, err
		}
	}
	opts := []string{"rbind", "rw"}
	if m.ReadOnly {
		opts[1] = "ro"
	}
	return specs.Mount{Destination: target, Type: "bind", Source: dir, Options: opts},
		"cache " + id + " " + target, release, nil
}

// shareCache takes the lock a cache mount's sharing mode asks for, on a
// file beside the directory, and returns the directory to mount: dir, or
// for a private mount of a directory in use, a fresh one.
func (r *buildRun) shareCache(ctx context.Context, dir string, mode instructions.ShareMode) (string, func(), error) {
	how := unix.LOCK_SH
	switch mode {
	case instructions.MountSharingLocked, instructions.MountSharingPrivate:
		how = unix.LOCK_EX
	}
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDONLY, 0o600)
	if err != nil {
		return "", nil, err
	}
	if mode == instructions.MountSharingPrivate {
		err = unix.Flock(int(lock.Fd()), how|unix.LOCK_NB)
		if errors.Is(err, unix.EWOULDBLOCK) {
			lock.Close()
			tmp, err := os.MkdirTemp(r.o.TempDir, "cache-private-")
			return tmp, func() { os.RemoveAll(tmp) }, err
		}
	} else {
		err = flockWait(ctx, lock, how)
	}
	if err == nil {
		// The lock file's time is the mount's last use, for prune.
		now := time.Now()
		err = os.Chtimes(lock.Name(), now, now)
	}
	if err != nil {
		lock.Close()
		return "", nil, err
	}
	return dir, func() { lock.Close() }, nil
}

// flockWait takes a lock, waiting as long as ctx allows: steps holding a
// locked cache take as long as they take.
func flockWait(ctx context.Context, f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ownDir sets a cache mount's owner and mode as its flags ask.
func ownDir(dir string, uid, gid, mode *uint64) error {
	u, g := -1, -1
	if uid != nil {
		u = int(*uid)
	}
	if gid != nil {
		g = int(*gid)
	}
	if err := os.Chown(dir, u, g); err != nil {
		return fmt.Errorf("cache mount: %w", err)
	}
	if mode != nil {
		if err := os.Chmod(dir, os.FileMode(*mode)&os.ModePerm); err != nil {
			return fmt.Errorf("cache mount: %w", err)
		}
	}
	return nil
}

// PruneMountCache removes the RUN --mount=type=cache directories under dir
// that no build is using: all of them, or those unused for at least until
// (0: none by age). It returns the bytes reclaimed.
func PruneMountCache(ctx context.Context, dir string, all bool, until time.Duration) (int64, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("mount cache: %w", err)
	}
	var reclaimed int64
	for _, e := range entries {
		if ctx.Err() != nil {
			return reclaimed, ctx.Err()
		}
		if !e.IsDir() {
			continue
		}
		n, err := pruneMount(filepath.Join(dir, e.Name()), all, until)
		if err != nil {
			return reclaimed, err
		}
		reclaimed += n
	}
	return reclaimed, nil
}

// pruneMount removes one cache mount directory if it is due and unused.
func pruneMount(dir string, all bool, until time.Duration) (int64, error) {
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDONLY, 0o600)
	if err != nil {
		return 0, fmt.Errorf("mount cache: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return 0, nil // in use
	}
	fi, err := lock.Stat()
	if err != nil {
		return 0, fmt.Errorf("mount cache: %w", err)
	}
	if !all && (until <= 0 || time.Since(fi.ModTime()) < until) {
		return 0, nil
	}
	size := treeSize(dir)
	if err := os.RemoveAll(dir); err != nil {
		return 0, fmt.Errorf("mount cache: %w", err)
	}
	if err := os.Remove(lock.Name()); err != nil {
		return size, fmt.Errorf("mount cache: %w", err)
	}
	return size, nil
}

// treeSize is the sum of the sizes of the regular files under dir, as
// far as they can be read.
func treeSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil // a size is an estimate: unreadable parts count as 0
	})
	return n
}
