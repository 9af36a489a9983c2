package image

import (
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/berth-containers/berth/image/content"
	"github.com/berth-containers/berth/image/mediatype"
	"github.com/berth-containers/berth/image/reference"
)

// LayerStore is what garbage collection needs from the snapshotter.
type LayerStore interface {
	// LayerDiffIDs lists the unpacked layers.
	LayerDiffIDs() ([]digest.Digest, error)
	// RemoveLayer deletes one unpacked layer.
	RemoveLayer(ctx context.Context, diffID digest.Digest) error
}

// PruneOptions choose what prune removes.
type PruneOptions struct {
	// All removes every image no container uses, not just dangling ones.
	All bool
	// InUse are image IDs (config digests) that containers use.
	InUse map[digest.Digest]bool
	// KeepLayers are layers containers' snapshots still stack on, by diff
	// ID, and layer blobs no image names but something else keeps (the
	// build cache), by digest.
	KeepLayers map[digest.Digest]bool
}

// PruneReport says what a prune removed.
type PruneReport struct {
	Images         []Image
	Blobs          []digest.Digest
	Layers         []digest.Digest
	SpaceReclaimed int64
}

// Prune removes dangling images (all unused ones with All), then every
// blob and layer no image references. It holds the store's GC lock
// exclusively, so no pull, load or import is half-way through; each step
// is idempotent, so a prune killed at any point is finished by the next.
func (s *Store) Prune(ctx context.Context, layers LayerStore, opts PruneOptions) (PruneReport, error) {
	var rep PruneReport
	gc, err := s.GCLock(ctx, true)
	if err != nil {
		return rep, err
	}
	defer func() { _ = gc.Unlock() }()
	err = s.update(ctx, func(rf *recordFile) error {
		for d, img := range rf.Images {
			if opts.InUse[img.Config] || (!opts.All && len(img.Names) > 0) {
				continue
			}
			rep.Images = append(rep.Images, *img)
			delete(rf.Images, d)
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	if err := s.collect(ctx, layers, opts.KeepLayers, &rep); err != nil {
		return rep, err
	}
	return rep, nil
}

// Collect removes blobs and layers that no image references and keep
// does not name (by digest or diff ID), without removing any image. rmi
// calls it after deleting records.
func (s *Store) Collect(ctx context.Context, layers LayerStore, keep map[digest.Digest]bool) (PruneReport, error) {
	var rep PruneReport
	gc, err := s.GCLock(ctx, true)
	if err != nil {
		return rep, err
	}
	defer func() { _ = gc.Unlock() }()
	return rep, s.collect(ctx, layers, keep, &rep)
}

func (s *Store) collect(ctx context.Context, layers LayerStore, keepLayers map[digest.Digest]bool, rep *PruneReport) error {
	blobs, diffIDs, err := s.referenced()
	if err != nil {
		return err
	}
	err = s.Content.Walk(func(i content.Info) error {
		if blobs[i.Digest] || keepLayers[i.Digest] {
			return nil
		}
		if err := s.Content.Delete(ctx, i.Digest); err != nil {
			return err
		}
		rep.Blobs = append(rep.Blobs, i.Digest)
		rep.SpaceReclaimed += i.Size
		return nil
	})
	if err != nil || layers == nil {
		return err
	}
	have, err := layers.LayerDiffIDs()
	if err != nil {
		return err
	}
	for _, d := range have {
		if diffIDs[d] || keepLayers[d] {
			continue
		}
		if err := layers.RemoveLayer(ctx, d); err != nil {
			return fmt.Errorf("remove layer %s: %w", ShortID(d), err)
		}
		rep.Layers = append(rep.Layers, d)
	}
	return nil
}

// referenced marks every blob and layer an image record needs: its
// manifest, config and layers, and the index it was pulled through.
func (s *Store) referenced() (map[digest.Digest]bool, map[digest.Digest]bool, error) {
	rf, err := s.load()
	if err != nil {
		return nil, nil, err
	}
	blobs := map[digest.Digest]bool{}
	diffIDs := map[digest.Digest]bool{}
	for _, img := range rf.Images {
		blobs[img.Target.Digest] = true
		blobs[img.Config] = true
		for _, d := range img.DiffIDs {
			diffIDs[d] = true
		}
		for _, rd := range img.RepoDigests {
			if r, err := reference.Parse(rd); err == nil && r.Digest != "" {
				blobs[r.Digest] = true
			}
		}
		mb, err := s.Content.ReadBlob(context.Background(), img.Target.Digest, mediatype.MaxManifestSize)
		if err != nil {
			continue // a record without its manifest keeps nothing more
		}
		m, err := ParseManifest(img.Target.MediaType, mb)
		if err != nil {
			continue
		}
		for _, l := range m.Layers {
			blobs[l.Digest] = true
		}
	}
	return blobs, diffIDs, nil
}
