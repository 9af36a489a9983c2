// Package snapshot keeps unpacked image layers on disk and turns stacks of
// them into overlayfs mounts for containers. It returns mounts; it does not
// decide who mounts them or where.
//
// Layout under the root:
//
//	layers/<algorithm>/<hex>/       one unpacked layer per diffID (a lowerdir)
//	layers/<algorithm>/.tmp-<hex>-* a layer being unpacked
//	layers/<algorithm>/.rm-<hex>-*  a layer being removed
//	active/<key>/upper, work        a container snapshot's overlay dirs
//	active/<key>/snapshot.json      its layers and whether it is read-only
//	active/.tmp-<key>-*, .rm-<key>-* snapshots being made or removed
//	locks/                          one flock file per layer and per key
//
// A layer or snapshot appears under its final name only through rename(2)
// once complete, so a process killed half way leaves only a dot-named
// directory, which New removes when nobody holds its lock.
package snapshot

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/internal/flock"
)

const (
	layersDir = "layers"
	activeDir = "active"
	locksDir  = "locks"

	tmpPrefix = ".tmp-"
	rmPrefix  = ".rm-"
	// usagePrefix names a layer's cached disk usage.
	usagePrefix = ".usage-"
)

// Snapshotter stores layers and container snapshots under one directory.
// It is safe for use by several goroutines and several processes at once.
type Snapshotter struct {
	root string
}

// New opens (making it if needed) a snapshotter rooted at root and removes
// what killed processes left behind. The root must be an absolute path
// without ',' or ':', which overlay mount options cannot carry.
func New(root string) (*Snapshotter, error) {
	if !filepath.IsAbs(root) {
		return nil, errdefs.Invalid("snapshot root %q is not an absolute path", root)
	}
	if strings.ContainsAny(root, ",:") {
		return nil, errdefs.Invalid("snapshot root %q contains ',' or ':', which overlay options cannot carry", root)
	}
	root = filepath.Clean(root)
	for _, d := range []string{"", layersDir, activeDir, locksDir} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			return nil, fmt.Errorf("make snapshot directory: %w", err)
		}
	}
	s := &Snapshotter{root: root}
	if err := s.cleanLeftovers(); err != nil {
		return nil, err
	}
	return s, nil
}

// Root returns the directory the snapshotter lives in.
func (s *Snapshotter) Root() string { return s.root }

// cleanLeftovers removes dot-named directories of unpacks, snapshot
// creations and removals that a killed process abandoned. One whose lock
// is held belongs to a live process and is left alone.
func (s *Snapshotter) cleanLeftovers() error {
	algos, err := os.ReadDir(filepath.Join(s.root, layersDir))
	if err != nil {
		return fmt.Errorf("read layers: %w", err)
	}
	for _, a := range algos {
		if !a.IsDir() {
			continue
		}
		dir := filepath.Join(s.root, layersDir, a.Name())
		err := s.sweep(dir, func(id string) string { return s.layerLockPath(a.Name(), id) })
		if err != nil {
			return err
		}
	}
	return s.sweep(filepath.Join(s.root, activeDir), s.keyLockPath)
}

// sweep removes the leftovers in dir whose lock (named by lockOf from the
// id in the leftover's name) can be taken.
func (s *Snapshotter) sweep(dir string, lockOf func(id string) string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	for _, e := range entries {
		id, ok := leftoverID(e.Name())
		if !ok {
			continue
		}
		l, got, err := flock.TryExclusive(lockOf(id))
		if err != nil {
			return err
		}
		if !got {
			continue
		}
		err = os.RemoveAll(filepath.Join(dir, e.Name()))
		_ = l.Unlock()
		if err != nil {
			return fmt.Errorf("remove leftover %s: %w", e.Name(), err)
		}
	}
	return nil
}

// leftoverID extracts the layer hex or snapshot key from a temporary name
// ".tmp-<id>-<random>" or ".rm-<id>-<random>".
func leftoverID(name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, tmpPrefix)
	if !ok {
		rest, ok = strings.CutPrefix(name, rmPrefix)
	}
	if !ok {
		return "", false
	}
	i := strings.LastIndexByte(rest, '-')
	if i <= 0 {
		return "", false
	}
	return rest[:i], true
}

// tempName makes a fresh dot-name for id in the form leftoverID parses.
func tempName(prefix, id string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return prefix + id + "-" + hex.EncodeToString(b[:])
}

// renameAway moves dir to a dot-name (so it stops existing under its real
// name at once) and then deletes it.
func renameAway(dir, id string) error {
	doomed := filepath.Join(filepath.Dir(dir), tempName(rmPrefix, id))
	if err := os.Rename(dir, doomed); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	if err := os.RemoveAll(doomed); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}

func (s *Snapshotter) layerLockPath(algo, hex string) string {
	return filepath.Join(s.root, locksDir, "layer-"+algo+"-"+hex+".lock")
}

func (s *Snapshotter) keyLockPath(key string) string {
	return filepath.Join(s.root, locksDir, "active-"+key+".lock")
}
