package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/moby/sys/mountinfo"
	"github.com/opencontainers/go-digest"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/internal/flock"
)

const metaFile = "snapshot.json"

// maxKeyLen bounds a snapshot key; keys become directory and lock names.
const maxKeyLen = 128

// Info describes one container snapshot.
type Info struct {
	Key string `json:"key"`
	// Layers are the diffIDs beneath it, bottom first as Prepare got them.
	Layers   []digest.Digest `json:"layers"`
	Readonly bool            `json:"readonly"`
	Created  time.Time       `json:"created"`
}

// validKey accepts the names the engine uses for snapshots (container IDs
// and the like), which must be safe as one path component.
func validKey(key string) error {
	if key == "" || len(key) > maxKeyLen {
		return errdefs.Invalid("snapshot key %q must be 1 to %d characters", key, maxKeyLen)
	}
	for i, c := range key {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || (c != '_' && c != '.' && c != '-')) {
			return errdefs.Invalid("snapshot key %q: use letters, digits, '_', '.' and '-', starting with a letter or digit", key)
		}
	}
	return nil
}

func (s *Snapshotter) activePath(key string) string {
	return filepath.Join(s.root, activeDir, key)
}

// Prepare makes the container snapshot key over layers, given bottom first
// as in an image config's rootfs.diff_ids, and returns the mounts that
// assemble it. All layers must be unpacked. A read-only snapshot has no
// upper directory: one layer is a read-only bind mount, several a
// read-only overlay. A writable one is an overlay with upper and work
// directories under active/<key>; with no layers at all it is a bind
// mount of an empty upper directory.
func (s *Snapshotter) Prepare(ctx context.Context, key string, layers []digest.Digest, readonly bool) ([]Mount, error) {
	if err := validKey(key); err != nil {
		return nil, err
	}
	// Shared locks keep RemoveLayer away until the snapshot records its
	// layers.
	for _, l := range layers {
		if _, err := s.LayerPath(l); err != nil {
			return nil, err
		}
		lock, err := flock.Shared(ctx, s.layerLock(l))
		if err != nil {
			return nil, fmt.Errorf("lock layer %s: %w", l, err)
		}
		defer func() { _ = lock.Unlock() }()
		if _, err := s.LayerPath(l); err != nil {
			return nil, err
		}
	}
	lock, err := flock.Exclusive(ctx, s.keyLockPath(key))
	if err != nil {
		return nil, fmt.Errorf("lock snapshot %s: %w", key, err)
	}
	defer func() { _ = lock.Unlock() }()
	if exists(s.activePath(key)) {
		return nil, errdefs.AlreadyExists("snapshot %s already exists", key)
	}
	meta := Info{Key: key, Layers: append([]digest.Digest(nil), layers...), Readonly: readonly, Created: time.Now().UTC()}
	if err := s.create(meta); err != nil {
		return nil, fmt.Errorf("prepare snapshot %s: %w", key, err)
	}
	return s.mounts(meta), nil
}

// create builds the snapshot directory under a dot-name and renames it
// into place once complete.
func (s *Snapshotter) create(meta Info) (err error) {
	tmp := filepath.Join(s.root, activeDir, tempName(tmpPrefix, meta.Key))
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(tmp)
		}
	}()
	if err := os.Mkdir(filepath.Join(tmp, "upper"), 0o755); err != nil {
		return err
	}
	if err := os.Chmod(filepath.Join(tmp, "upper"), 0o755); err != nil {
		return err
	}
	if !meta.Readonly {
		if err := os.Mkdir(filepath.Join(tmp, "work"), 0o700); err != nil {
			return err
		}
	}
	data, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, metaFile), data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, s.activePath(meta.Key))
}

func (s *Snapshotter) readMeta(key string) (Info, error) {
	if err := validKey(key); err != nil {
		return Info{}, err
	}
	data, err := os.ReadFile(filepath.Join(s.activePath(key), metaFile))
	if errors.Is(err, fs.ErrNotExist) {
		return Info{}, errdefs.NotFound("snapshot %s does not exist", key)
	}
	if err != nil {
		return Info{}, fmt.Errorf("read snapshot %s: %w", key, err)
	}
	var meta Info
	if err := json.Unmarshal(data, &meta); err != nil {
		return Info{}, fmt.Errorf("read snapshot %s: %w", key, err)
	}
	return meta, nil
}

// mounts computes the mounts of a snapshot from its record.
func (s *Snapshotter) mounts(meta Info) []Mount {
	lowers := make([]string, 0, len(meta.Layers))
	for i := len(meta.Layers) - 1; i >= 0; i-- {
		dir, _ := s.layerDir(meta.Layers[i]) // validated by Prepare
		lowers = append(lowers, dir)
	}
	dir := s.activePath(meta.Key)
	work := ""
	if !meta.Readonly {
		work = filepath.Join(dir, "work")
	}
	return planMounts(lowers, filepath.Join(dir, "upper"), work, meta.Readonly)
}

// Mounts returns the mounts of an existing snapshot again.
func (s *Snapshotter) Mounts(key string) ([]Mount, error) {
	meta, err := s.readMeta(key)
	if err != nil {
		return nil, err
	}
	return s.mounts(meta), nil
}

// UpperDir returns the directory holding a writable snapshot's changes,
// the input of layer.Diff for commit and build.
func (s *Snapshotter) UpperDir(key string) (string, error) {
	meta, err := s.readMeta(key)
	if err != nil {
		return "", err
	}
	if meta.Readonly {
		return "", errdefs.Precondition("snapshot %s is read-only and has no changes", key)
	}
	return filepath.Join(s.activePath(key), "upper"), nil
}

// Usage returns the space taken by a snapshot's own changes.
func (s *Snapshotter) Usage(ctx context.Context, key string) (Usage, error) {
	if _, err := s.readMeta(key); err != nil {
		return Usage{}, err
	}
	u, err := diskUsage(ctx, filepath.Join(s.activePath(key), "upper"))
	if err != nil {
		return Usage{}, fmt.Errorf("usage of snapshot %s: %w", key, err)
	}
	return u, nil
}

// Snapshots lists the container snapshots, sorted by key.
func (s *Snapshotter) Snapshots(ctx context.Context) ([]Info, error) {
	entries, err := os.ReadDir(filepath.Join(s.root, activeDir))
	if err != nil {
		return nil, fmt.Errorf("read snapshots: %w", err)
	}
	var out []Info
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		meta, err := s.readMeta(e.Name())
		if errors.Is(err, errdefs.ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, meta)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Remove deletes a snapshot and its changes. The caller unmounts it first;
// Remove refuses, with an errdefs.ErrFailedPrecondition error, while an
// overlay in this mount namespace still uses its upper directory.
func (s *Snapshotter) Remove(ctx context.Context, key string) error {
	if err := validKey(key); err != nil {
		return err
	}
	lock, err := flock.Exclusive(ctx, s.keyLockPath(key))
	if err != nil {
		return fmt.Errorf("lock snapshot %s: %w", key, err)
	}
	defer func() { _ = lock.Unlock() }()
	dir := s.activePath(key)
	if !exists(dir) {
		return errdefs.NotFound("snapshot %s does not exist", key)
	}
	mounted, err := upperInUse(filepath.Join(dir, "upper"))
	if err != nil {
		return err
	}
	if mounted != "" {
		return errdefs.Precondition("snapshot %s is still mounted at %s", key, mounted)
	}
	return renameAway(dir, key)
}

// upperInUse returns the mount point of an overlay using upper, if any.
func upperInUse(upper string) (string, error) {
	ms, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("overlay"))
	if err != nil {
		return "", fmt.Errorf("read mounts: %w", err)
	}
	for _, m := range ms {
		for _, o := range strings.Split(m.VFSOptions, ",") {
			if o == "upperdir="+upper {
				return m.Mountpoint, nil
			}
		}
	}
	return "", nil
}
