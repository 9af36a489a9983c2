// Package engine composes berth's parts: the image store, the snapshotter,
// registries and (later) containers, networks and volumes. The CLI and the
// API servers call it; it is the only package that imports them all.
package engine

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-containers/berth/image"
	"github.com/berth-containers/berth/image/remote"
	"github.com/berth-containers/berth/snapshot"
)

// DefaultRoot is where berth keeps its state unless told otherwise.
const DefaultRoot = "/var/lib/berth"

// Options configure an Engine.
type Options struct {
	// Root holds images, layers and container state.
	Root string
	// Registry configures registry access (auth file, insecure
	// registries, TLS).
	Registry remote.Options
}

// Engine is an open berth store.
type Engine struct {
	root      string
	Images    *image.Store
	Snapshots *snapshot.Snapshotter
	registry  *remote.Client
	cs        containerState
}

// Open opens (creating if needed) the store under opts.Root.
func Open(opts Options) (*Engine, error) {
	if opts.Root == "" {
		opts.Root = DefaultRoot
	}
	// Monitors and container specs carry the root: it must not depend on
	// the working directory.
	if r, err := filepath.Abs(opts.Root); err == nil {
		opts.Root = r
	}
	if err := os.MkdirAll(opts.Root, 0o711); err != nil {
		return nil, fmt.Errorf("open %s: %w", opts.Root, err)
	}
	imgs, err := image.OpenStore(filepath.Join(opts.Root, "images"))
	if err != nil {
		return nil, err
	}
	snaps, err := snapshot.New(filepath.Join(opts.Root, "snapshots"))
	if err != nil {
		return nil, err
	}
	reg, err := remote.New(opts.Registry)
	if err != nil {
		return nil, err
	}
	return &Engine{root: opts.Root, Images: imgs, Snapshots: snaps, registry: reg}, nil
}

// Root is the engine's state directory.
func (e *Engine) Root() string { return e.root }
