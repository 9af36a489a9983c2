package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/registry/storage"
)

// These walk the layout for maintenance (garbage collection, purging
// abandoned uploads); the HTTP API does not use them.

// WalkBlobs calls fn for every blob in the shared store, manifests
// included, with its data's size and time of writing, in lexical order of
// digest algorithm and encoding.
func (r *Registry) WalkBlobs(ctx context.Context, fn func(d digest.Digest, info storage.Info) error) error {
	err := r.d.Walk(ctx, blobsDir, func(info storage.Info) error {
		d, ok := blobDigestFromPath(info.Path)
		if !ok {
			return nil
		}
		return fn(d, info)
	})
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	return err
}

// blobDigestFromPath reads the digest back from
// [blobs/]<alg>/<xx>/<hex>/data.
func blobDigestFromPath(p string) (digest.Digest, bool) {
	p = strings.TrimPrefix(p, blobsDir+"/")
	parts := strings.Split(p, "/")
	if len(parts) != 4 || parts[3] != "data" {
		return "", false
	}
	return parseDigest(parts[0] + ":" + parts[2])
}

// WalkBlobLinks calls fn for every blob the repository links (layers
// and configs pushed or mounted into it), with the link's time of
// writing: a blob linked again is in use again, even before a manifest
// names it.
func (r *Registry) WalkBlobLinks(ctx context.Context, name string, fn func(d digest.Digest, linked time.Time) error) error {
	if !validName(name) {
		return errdefs.Invalid("repository name %q is invalid", name)
	}
	dir := repoPath(name) + "/_blobs"
	err := r.d.Walk(ctx, dir, func(info storage.Info) error {
		parts := strings.Split(strings.TrimPrefix(info.Path, dir+"/"), "/")
		if len(parts) != 3 || parts[2] != "link" {
			return nil
		}
		d, ok := parseDigest(parts[0] + ":" + parts[1])
		if !ok {
			return nil
		}
		return fn(d, info.ModTime)
	})
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	return err
}

// ReadManifest reads the bytes of a manifest from the shared store.
func (r *Registry) ReadManifest(ctx context.Context, d digest.Digest) ([]byte, error) {
	return r.readSmall(ctx, blobDataPath(d), r.opts.MaxManifestSize)
}

// DeleteBlob removes the data of blob d from the shared store. It does
// not look for references: that is the garbage collector's job, which
// calls it only for blobs no repository's manifests or links hold.
func (r *Registry) DeleteBlob(ctx context.Context, d digest.Digest) error {
	return r.remove(ctx, strings.TrimSuffix(blobDataPath(d), "/data"))
}

// WalkManifests calls fn with the descriptor of every manifest of the
// repository.
func (r *Registry) WalkManifests(ctx context.Context, name string, fn func(ocispec.Descriptor) error) error {
	if !validName(name) {
		return errdefs.Invalid("repository name %q is invalid", name)
	}
	err := r.d.Walk(ctx, revisionsDir(name), func(info storage.Info) error {
		if !strings.HasSuffix(info.Path, "/link") {
			return nil
		}
		b, err := r.readSmall(ctx, info.Path, smallLimit)
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		var desc ocispec.Descriptor
		if err := json.Unmarshal(b, &desc); err != nil {
			return fmt.Errorf("manifest link %s: %w", info.Path, err)
		}
		return fn(desc)
	})
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	return err
}

// References lists the digests a manifest's bytes refer to: config,
// layers, blobs and child manifests (not the subject, which a referrer
// does not keep alive).
func References(manifest []byte) ([]digest.Digest, error) {
	var doc manifestDoc
	if err := json.Unmarshal(manifest, &doc); err != nil {
		return nil, errdefs.Invalid("manifest: %v", err)
	}
	doc.Subject = nil
	descs := allDescriptors(doc)
	out := make([]digest.Digest, 0, len(descs))
	for _, d := range descs {
		out = append(out, d.Digest)
	}
	return out, nil
}

// WalkUploads calls fn for every open upload session of the repository
// with the time it began, so that abandoned ones can be purged with
// CancelUpload.
func (r *Registry) WalkUploads(ctx context.Context, name string, fn func(id string, started time.Time) error) error {
	if !validName(name) {
		return errdefs.Invalid("repository name %q is invalid", name)
	}
	ids, err := r.listNames(ctx, repoPath(name)+"/_uploads")
	if err != nil {
		return err
	}
	for _, id := range ids {
		if !validUploadID(id) {
			continue
		}
		b, err := r.readSmall(ctx, uploadStartedPath(name, id), smallLimit)
		if errors.Is(err, errdefs.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		started, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b)))
		if err != nil {
			started = time.Time{} // unreadable: as old as can be
		}
		if err := fn(id, started); err != nil {
			return err
		}
	}
	return nil
}

// CancelUpload removes an upload session and its data, as DELETE on the
// session URL does.
func (r *Registry) CancelUpload(ctx context.Context, name, id string) error {
	if !validName(name) || !validUploadID(id) {
		return errdefs.Invalid("upload %s of %q: invalid", id, name)
	}
	if fw, err := r.d.Writer(ctx, uploadDataPath(name, id), true); err == nil {
		if err := fw.Cancel(ctx); err != nil {
			return fmt.Errorf("cancel upload %s: %w", id, err)
		}
	}
	return r.remove(ctx, uploadDir(name, id))
}
