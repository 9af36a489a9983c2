package snapshot

import (
	"context"
	_ "crypto/sha256" // digest algorithms layers may be named by
	_ "crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/internal/flock"
	"github.com/berth-containers/berth/snapshot/layer"
)

// LayerInfo describes one unpacked layer.
type LayerInfo struct {
	DiffID digest.Digest
	// Path is the layer's directory, used as an overlay lowerdir.
	Path string
	// Size is the space the unpacked layer takes on disk, in bytes.
	Size int64
	// Inodes is the number of files, directories and links in it.
	Inodes int64
}

// ApplyResult reports what ApplyLayer did.
type ApplyResult struct {
	// Existed is true when the layer was already unpacked (perhaps by
	// another process meanwhile); the stream was then not read at all.
	Existed bool
	// Stats describes the unpack; zero when Existed.
	Stats layer.ApplyStats
}

// layerDir validates diffID and returns its directory.
func (s *Snapshotter) layerDir(diffID digest.Digest) (string, error) {
	if err := diffID.Validate(); err != nil {
		return "", errdefs.Invalid("layer diffID %q: %v", diffID, err)
	}
	return filepath.Join(s.root, layersDir, string(diffID.Algorithm()), diffID.Encoded()), nil
}

func (s *Snapshotter) layerLock(diffID digest.Digest) string {
	return s.layerLockPath(string(diffID.Algorithm()), diffID.Encoded())
}

// LayerPath returns the directory of an unpacked layer, or an
// errdefs.ErrNotFound error.
func (s *Snapshotter) LayerPath(diffID digest.Digest) (string, error) {
	dir, err := s.layerDir(diffID)
	if err != nil {
		return "", err
	}
	if !exists(dir) {
		return "", errdefs.NotFound("layer %s is not unpacked", diffID)
	}
	return dir, nil
}

// HasLayer reports whether the layer with this diffID is unpacked.
func (s *Snapshotter) HasLayer(diffID digest.Digest) bool {
	_, err := s.LayerPath(diffID)
	return err == nil
}

// ApplyLayer unpacks the uncompressed layer tar r as the layer diffID,
// unless it is already there. It hashes the stream itself and keeps the
// layer only if the digest matches diffID, so a present layer always holds
// what its name says. The work happens in a temporary directory renamed
// into place when complete, under a per-layer lock, so concurrent calls
// from any number of processes unpack a layer once.
func (s *Snapshotter) ApplyLayer(ctx context.Context, diffID digest.Digest, r io.Reader) (ApplyResult, error) {
	dir, err := s.layerDir(diffID)
	if err != nil {
		return ApplyResult{}, err
	}
	if exists(dir) {
		return ApplyResult{Existed: true}, nil
	}
	lock, err := flock.Exclusive(ctx, s.layerLock(diffID))
	if err != nil {
		return ApplyResult{}, fmt.Errorf("lock layer %s: %w", diffID, err)
	}
	defer func() { _ = lock.Unlock() }()
	if exists(dir) { // another process finished it while we waited
		return ApplyResult{Existed: true}, nil
	}
	stats, err := s.unpack(ctx, diffID, dir, r)
	if err != nil {
		return ApplyResult{}, fmt.Errorf("apply layer %s: %w", diffID, err)
	}
	return ApplyResult{Stats: stats}, nil
}

func (s *Snapshotter) unpack(ctx context.Context, diffID digest.Digest, dir string, r io.Reader) (stats layer.ApplyStats, err error) {
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return stats, fmt.Errorf("make layer directory: %w", err)
	}
	tmp := filepath.Join(parent, tempName(tmpPrefix, diffID.Encoded()))
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return stats, fmt.Errorf("make temporary layer directory: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(tmp)
		}
	}()
	// The layer root is the merged root of a read-only stack; give it the
	// usual mode whatever the umask (a "./" entry may still change it).
	if err := os.Chmod(tmp, 0o755); err != nil {
		return stats, fmt.Errorf("chmod layer directory: %w", err)
	}
	d := diffID.Algorithm().Digester()
	stats, err = layer.Apply(ctx, tmp, io.TeeReader(r, d.Hash()))
	if err != nil {
		return stats, err
	}
	if got := d.Digest(); got != diffID {
		return stats, errdefs.Invalid("layer content has digest %s, not its diffID", got)
	}
	if err := syncDir(tmp, true); err != nil {
		return stats, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return stats, fmt.Errorf("move layer into place: %w", err)
	}
	return stats, syncDir(parent, false)
}

// syncDir makes a finished layer durable before it gets its real name:
// all of its filesystem when whole is set, else the directory entry.
func syncDir(dir string, whole bool) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer f.Close()
	if whole {
		err = unix.Syncfs(int(f.Fd()))
	} else {
		err = f.Sync()
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// RemoveLayer deletes an unpacked layer. It refuses, with an
// errdefs.ErrFailedPrecondition error, while a snapshot uses the layer.
func (s *Snapshotter) RemoveLayer(ctx context.Context, diffID digest.Digest) error {
	dir, err := s.layerDir(diffID)
	if err != nil {
		return err
	}
	lock, err := flock.Exclusive(ctx, s.layerLock(diffID))
	if err != nil {
		return fmt.Errorf("lock layer %s: %w", diffID, err)
	}
	defer func() { _ = lock.Unlock() }()
	if !exists(dir) {
		return errdefs.NotFound("layer %s is not unpacked", diffID)
	}
	snaps, err := s.Snapshots(ctx)
	if err != nil {
		return err
	}
	for _, sn := range snaps {
		for _, l := range sn.Layers {
			if l == diffID {
				return errdefs.Precondition("layer %s is used by snapshot %s", diffID, sn.Key)
			}
		}
	}
	if err := os.Remove(usagePath(dir)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove layer %s: %w", diffID, err)
	}
	return renameAway(dir, diffID.Encoded())
}

// Layers lists the unpacked layers with their size on disk, sorted by
// diffID.
func (s *Snapshotter) Layers(ctx context.Context) ([]LayerInfo, error) {
	algos, err := os.ReadDir(filepath.Join(s.root, layersDir))
	if err != nil {
		return nil, fmt.Errorf("read layers: %w", err)
	}
	var out []LayerInfo
	for _, a := range algos {
		entries, err := os.ReadDir(filepath.Join(s.root, layersDir, a.Name()))
		if err != nil {
			return nil, fmt.Errorf("read layers: %w", err)
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") || !e.IsDir() {
				continue
			}
			d := digest.NewDigestFromEncoded(digest.Algorithm(a.Name()), e.Name())
			if d.Validate() != nil {
				continue
			}
			info, err := s.layerInfo(ctx, d)
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed meanwhile
			}
			if err != nil {
				return nil, err
			}
			out = append(out, info)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].DiffID < out[j].DiffID })
	return out, nil
}

func (s *Snapshotter) layerInfo(ctx context.Context, d digest.Digest) (LayerInfo, error) {
	dir, err := s.layerDir(d)
	if err != nil {
		return LayerInfo{}, err
	}
	u, err := s.layerUsage(ctx, d, dir)
	if err != nil {
		return LayerInfo{}, fmt.Errorf("size of layer %s: %w", d, err)
	}
	return LayerInfo{DiffID: d, Path: dir, Size: u.Size, Inodes: u.Inodes}, nil
}

// usagePath caches a layer's disk usage next to it: layers never change,
// so one walk serves every later `images` and `system df`.
func usagePath(dir string) string {
	return filepath.Join(filepath.Dir(dir), usagePrefix+filepath.Base(dir))
}

// layerUsage reads the cached usage of a layer, walking it (and writing
// the cache) the first time. A missing or unreadable cache only costs a
// walk.
func (s *Snapshotter) layerUsage(ctx context.Context, d digest.Digest, dir string) (Usage, error) {
	cache := usagePath(dir)
	if b, err := os.ReadFile(cache); err == nil {
		var u Usage
		if json.Unmarshal(b, &u) == nil {
			return u, nil
		}
	}
	u, err := diskUsage(ctx, dir)
	if err != nil {
		return u, err
	}
	if b, err := json.Marshal(u); err == nil {
		// Written under a temporary name and renamed, so a reader never
		// sees half a cache; losing the race to another process is fine.
		tmp := cache + "." + d.Encoded()[:8] + strconv.Itoa(os.Getpid())
		if os.WriteFile(tmp, b, 0o600) == nil && os.Rename(tmp, cache) != nil {
			_ = os.Remove(tmp)
		}
	}
	return u, nil
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
