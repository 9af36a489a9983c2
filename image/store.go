package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-containers/berth/image/content"
	"github.com/berth-containers/berth/image/reference"
	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/internal/flock"
)

// Image is one stored image: a single-platform manifest, the names that
// point at it, and what berth needs without reading blobs.
type Image struct {
	// Target is the image's manifest.
	Target ocispec.Descriptor `json:"target"`
	// Config is the config blob's digest; its hex is the image ID Docker
	// users know.
	Config digest.Digest `json:"config"`
	// DiffIDs are the uncompressed layer digests, base first.
	DiffIDs []digest.Digest `json:"diffIDs"`
	// Names are canonical references (docker.io/library/busybox:latest).
	Names []string `json:"names,omitempty"`
	// RepoDigests are name@digest forms the image was pulled or pushed as;
	// the digest may be an index's.
	RepoDigests []string `json:"repoDigests,omitempty"`
	// Created is when the image entered this store.
	Created time.Time `json:"created"`
}

// ID is the image ID: the config digest.
func (i Image) ID() digest.Digest { return i.Config }

// Store holds image records next to a content store. Records live in one
// JSON file replaced atomically under a lock, so concurrent berth
// processes see either the old or the new set, never a torn one.
type Store struct {
	root    string
	Content *content.Store
}

type recordFile struct {
	Images map[digest.Digest]*Image `json:"images"`
}

// OpenStore opens the image store rooted at root (content under
// root/content).
func OpenStore(root string) (*Store, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	cs, err := content.Open(filepath.Join(root, "content"))
	if err != nil {
		return nil, err
	}
	return &Store{root: root, Content: cs}, nil
}

// Root is the store's directory.
func (s *Store) Root() string { return s.root }

func (s *Store) recordsPath() string { return filepath.Join(s.root, "images.json") }

// GCLock is held shared by every command that adds content (pull, load,
// import, commit) for its whole run and exclusive by prune, so prune never
// removes a blob a running pull has written but not yet named.
func (s *Store) GCLock(ctx context.Context, exclusive bool) (*flock.Lock, error) {
	path := filepath.Join(s.root, "gc.lock")
	if exclusive {
		return flock.Exclusive(ctx, path)
	}
	return flock.Shared(ctx, path)
}

func (s *Store) load() (*recordFile, error) {
	rf := &recordFile{Images: map[digest.Digest]*Image{}}
	b, err := os.ReadFile(s.recordsPath())
	if errors.Is(err, fs.ErrNotExist) {
		return rf, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read image records: %w", err)
	}
	if err := json.Unmarshal(b, rf); err != nil {
		return nil, fmt.Errorf("image records %s are corrupt: %w", s.recordsPath(), err)
	}
	if rf.Images == nil {
		rf.Images = map[digest.Digest]*Image{}
	}
	return rf, nil
}

func (s *Store) save(rf *recordFile) error {
	b, err := json.MarshalIndent(rf, "", "  ")
	if err != nil {
		return fmt.Errorf("encode image records: %w", err)
	}
	tmp, err := os.CreateTemp(s.root, ".images-*.json")
	if err != nil {
		return fmt.Errorf("write image records: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write image records: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write image records: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.recordsPath()); err != nil {
		return fmt.Errorf("write image records: %w", err)
	}
	return nil
}

// update runs fn on the records under the store's lock and saves them when
// fn succeeds.
func (s *Store) update(ctx context.Context, fn func(*recordFile) error) error {
	l, err := flock.Exclusive(ctx, filepath.Join(s.root, "images.lock"))
	if err != nil {
		return err
	}
	defer func() { _ = l.Unlock() }()
	rf, err := s.load()
	if err != nil {
		return err
	}
	if err := fn(rf); err != nil {
		return err
	}
	return s.save(rf)
}

// List returns every image, newest first.
func (s *Store) List(_ context.Context) ([]Image, error) {
	rf, err := s.load()
	if err != nil {
		return nil, err
	}
	out := make([]Image, 0, len(rf.Images))
	for _, img := range rf.Images {
		out = append(out, *img)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.After(out[j].Created)
		}
		return out[i].Target.Digest < out[j].Target.Digest
	})
	return out, nil
}

// Put records img. Its names move to it from any image that had them, as
// `docker pull` and `docker tag` do; names and repo digests it already had
// are kept.
func (s *Store) Put(ctx context.Context, img Image) (Image, error) {
	var out Image
	err := s.update(ctx, func(rf *recordFile) error {
		cur, ok := rf.Images[img.Target.Digest]
		if !ok {
			cur = &Image{Target: img.Target, Config: img.Config, DiffIDs: img.DiffIDs, Created: img.Created}
			if cur.Created.IsZero() {
				cur.Created = time.Now().UTC()
			}
			rf.Images[img.Target.Digest] = cur
		}
		for _, n := range img.Names {
			takeName(rf, cur, n)
		}
		for _, rd := range img.RepoDigests {
			if !slices.Contains(cur.RepoDigests, rd) {
				cur.RepoDigests = append(cur.RepoDigests, rd)
			}
		}
		out = *cur
		return nil
	})
	return out, err
}

func takeName(rf *recordFile, to *Image, name string) {
	for _, other := range rf.Images {
		if other != to {
			other.Names = slices.DeleteFunc(other.Names, func(n string) bool { return n == name })
		}
	}
	if !slices.Contains(to.Names, name) {
		to.Names = append(to.Names, name)
	}
}

// Tag adds a name to the image that ref resolves to.
func (s *Store) Tag(ctx context.Context, src, name string) error {
	r, err := reference.Parse(name)
	if err != nil {
		return err
	}
	if r.Digest != "" {
		return errdefs.Invalid("refusing to create a tag with a digest reference: %s", name)
	}
	return s.update(ctx, func(rf *recordFile) error {
		img, err := resolve(rf, src)
		if err != nil {
			return err
		}
		takeName(rf, img, r.String())
		return nil
	})
}

// Untag removes one name; the image stays (dangling if it has no other).
func (s *Store) Untag(ctx context.Context, name string) (Image, error) {
	var out Image
	err := s.update(ctx, func(rf *recordFile) error {
		img, canon, err := byName(rf, name)
		if err != nil {
			return err
		}
		img.Names = slices.DeleteFunc(img.Names, func(n string) bool { return n == canon })
		out = *img
		return nil
	})
	return out, err
}

// Delete removes the record of the image whose manifest digest is d. Blobs
// and layers stay until prune collects what nothing references.
func (s *Store) Delete(ctx context.Context, d digest.Digest) error {
	return s.update(ctx, func(rf *recordFile) error {
		if _, ok := rf.Images[d]; !ok {
			return errdefs.NotFound("image %s not found", d)
		}
		delete(rf.Images, d)
		return nil
	})
}

// Get finds an image by name, name@digest, manifest digest, or (a prefix
// of) its ID, as docker does.
func (s *Store) Get(_ context.Context, ref string) (Image, error) {
	rf, err := s.load()
	if err != nil {
		return Image{}, err
	}
	img, err := resolve(rf, ref)
	if err != nil {
		return Image{}, err
	}
	return *img, nil
}

func resolve(rf *recordFile, ref string) (*Image, error) {
	if img := byID(rf, ref); img != nil {
		return img, nil
	}
	img, _, err := byName(rf, ref)
	return img, err
}

// byID matches a full digest (config or manifest) or an unambiguous prefix
// of at least 4 hex characters of an image ID.
func byID(rf *recordFile, ref string) *Image {
	hex := strings.TrimPrefix(ref, "sha256:")
	if len(hex) < 4 || strings.Trim(hex, "0123456789abcdef") != "" {
		return nil
	}
	var found *Image
	for _, img := range rf.Images {
		if img.Target.Digest.String() == ref {
			return img
		}
		if strings.HasPrefix(img.Config.Encoded(), hex) {
			if found != nil && found.Config != img.Config {
				return nil // ambiguous
			}
			found = img
		}
	}
	return found
}

func byName(rf *recordFile, name string) (*Image, string, error) {
	r, err := reference.Parse(name)
	if err != nil {
		return nil, "", err
	}
	canon := r.String()
	for _, img := range rf.Images {
		if r.Digest != "" {
			if img.Target.Digest == r.Digest && (r.Tag == "" || slices.Contains(img.Names, r.WithDigest("").String())) {
				return img, canon, nil
			}
			for _, rd := range img.RepoDigests {
				if rd == r.Name()+"@"+r.Digest.String() {
					return img, canon, nil
				}
			}
			continue
		}
		if slices.Contains(img.Names, canon) {
			return img, canon, nil
		}
	}
	return nil, "", errdefs.NotFound("no such image: %s", name)
}
