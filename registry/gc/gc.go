// Package gc collects the registry's garbage while it serves: blobs that
// no manifest of any repository names, and upload sessions abandoned long
// ago. It takes no lock and stops no request.
//
// Mark and sweep, made safe for concurrent pushes by time: a blob is
// deleted only when no manifest references it at marking time AND its
// data and every repository's link to it are older than the grace period.
// A push in progress writes its blobs (or, for content already stored,
// its repository links) before its manifest, so anything a push is about
// to reference was written or linked recently and is kept; the grace
// period must be longer than any push takes. What is left is one narrow
// race, documented in docs/REGISTRY.md: a client that only checked (HEAD)
// that an old, unreferenced blob exists in its repository, and pushes a
// manifest naming it while the sweep deletes it, gets MANIFEST_BLOB_UNKNOWN
// or a manifest with a missing blob; re-pushing repairs it.
package gc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/registry"
	"github.com/berth-containers/berth/registry/storage"
)

// Options tune a collection.
type Options struct {
	// Grace protects blobs written or linked this recently, and upload
	// sessions begun this recently (DefaultGrace if 0).
	Grace time.Duration
	// DryRun reports what would be deleted and deletes nothing.
	DryRun bool
}

// DefaultGrace is the grace period when none is given.
const DefaultGrace = time.Hour

// Report is what a collection found and did.
type Report struct {
	Started        time.Time
	Duration       time.Duration
	Repositories   int
	Manifests      int
	Blobs          int
	BlobsDeleted   int
	BytesFreed     int64
	UploadsDeleted int
}

// Run collects once.
func Run(ctx context.Context, r *registry.Registry, opts Options) (Report, error) {
	if opts.Grace <= 0 {
		opts.Grace = DefaultGrace
	}
	rep := Report{Started: time.Now()}
	cutoff := rep.Started.Add(-opts.Grace)
	keep, err := mark(ctx, r, cutoff, opts.DryRun, &rep)
	if err != nil {
		return rep, err
	}
	err = r.WalkBlobs(ctx, func(d digest.Digest, info storage.Info) error {
		rep.Blobs++
		if keep[d] || info.ModTime.After(cutoff) {
			return nil
		}
		if !opts.DryRun {
			if err := r.DeleteBlob(ctx, d); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
				return fmt.Errorf("delete blob %s: %w", d, err)
			}
		}
		rep.BlobsDeleted++
		rep.BytesFreed += info.Size
		return nil
	})
	rep.Duration = time.Since(rep.Started)
	return rep, err
}

// mark collects what must stay: every manifest of every repository and
// what it references, and every blob linked since cutoff. It also ends
// upload sessions begun before cutoff.
func mark(ctx context.Context, r *registry.Registry, cutoff time.Time, dryRun bool, rep *Report) (map[digest.Digest]bool, error) {
	repos, err := r.AllRepositories(ctx)
	if err != nil {
		return nil, fmt.Errorf("list repositories: %w", err)
	}
	rep.Repositories = len(repos)
	keep := map[digest.Digest]bool{}
	for _, name := range repos {
		err := r.WalkManifests(ctx, name, func(desc ocispec.Descriptor) error {
			rep.Manifests++
			keep[desc.Digest] = true
			b, err := r.ReadManifest(ctx, desc.Digest)
			if errors.Is(err, errdefs.ErrNotFound) {
				return nil // deleted meanwhile
			}
			if err != nil {
				return fmt.Errorf("read manifest %s of %s: %w", desc.Digest, name, err)
			}
			refs, err := registry.References(b)
			if err != nil {
				return nil //nolint:nilerr // an unreadable manifest keeps nothing alive but itself
			}
			for _, d := range refs {
				keep[d] = true
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		err = r.WalkBlobLinks(ctx, name, func(d digest.Digest, linked time.Time) error {
			if linked.After(cutoff) {
				keep[d] = true
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("blob links of %s: %w", name, err)
		}
		if err := purgeUploads(ctx, r, name, cutoff, dryRun, rep); err != nil {
			return nil, err
		}
	}
	return keep, nil
}

// purgeUploads ends the repository's upload sessions begun before cutoff.
func purgeUploads(ctx context.Context, r *registry.Registry, name string, cutoff time.Time, dryRun bool, rep *Report) error {
	var old []string
	err := r.WalkUploads(ctx, name, func(id string, started time.Time) error {
		if started.Before(cutoff) {
			old = append(old, id)
		}
		return nil
	})
	if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return fmt.Errorf("uploads of %s: %w", name, err)
	}
	for _, id := range old {
		if dryRun {
			rep.UploadsDeleted++
			continue
		}
		if err := r.CancelUpload(ctx, name, id); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return fmt.Errorf("purge upload %s of %s: %w", id, name, err)
		}
		rep.UploadsDeleted++
	}
	return nil
}

// Loop collects every interval until ctx ends, reporting each run.
func Loop(ctx context.Context, r *registry.Registry, interval time.Duration, opts Options, report func(Report, error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			rep, err := Run(ctx, r, opts)
			report(rep, err)
		}
	}
}
