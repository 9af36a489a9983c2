package archive

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-containers/berth/image/mediatype"
	"github.com/berth-containers/berth/internal/ctxio"
	"github.com/berth-containers/berth/internal/errdefs"
)

// savedImage is an image to save with the documents Save read for it.
type savedImage struct {
	names    []string
	manifest ocispec.Descriptor
	mdata    []byte
	m        ocispec.Manifest
	cdata    []byte
	config   ocispec.Image
}

// savePlan is the archive to write: small files first, then each blob
// once. A blob with data is written from memory, one without is streamed
// from the source.
type savePlan struct {
	files []planFile
	blobs []planBlob
}

type planFile struct {
	name string
	data []byte
}

type planBlob struct {
	desc ocispec.Descriptor
	data []byte
}

// Save writes images to w as one archive of the given format, streaming
// layers from src as they are stored (compressed as pulled, see the
// package documentation). Images sharing blobs store them once; images
// with the same manifest become one entry with all their names.
//
// Manifests and configs are read and checked before the first byte is
// written; layers are checked against their digest as they stream, and a
// mismatch fails Save with the archive incomplete, so callers writing to a
// file should remove it on error.
func Save(ctx context.Context, w io.Writer, src BlobSource, images []Image, format Format) error {
	if format != DockerArchive && format != OCIArchive {
		return errdefs.Invalid("save: unknown archive format %v", format)
	}
	if len(images) == 0 {
		return errdefs.Invalid("save: no images to save")
	}
	imgs := make([]savedImage, 0, len(images))
	for _, img := range images {
		si, err := fetchImage(ctx, src, img, format)
		if err != nil {
			return fmt.Errorf("save %s: %w", format, err)
		}
		imgs = append(imgs, si)
	}
	p, err := planSave(format, imgs)
	if err != nil {
		return fmt.Errorf("save %s: %w", format, err)
	}
	if err := writeArchive(ctx, w, src, p); err != nil {
		return fmt.Errorf("save %s: %w", format, err)
	}
	return nil
}

// fetchImage reads and checks an image's manifest and config.
func fetchImage(ctx context.Context, src BlobSource, img Image, format Format) (savedImage, error) {
	si := savedImage{names: img.Names, manifest: img.Manifest}
	md, err := readDoc(ctx, src, img.Manifest)
	if err != nil {
		return si, fmt.Errorf("manifest: %w", err)
	}
	si.mdata = md
	var probe struct {
		MediaType string          `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
	}
	if err := json.Unmarshal(md, &probe); err != nil {
		return si, errdefs.Invalid("manifest %s: %v", img.Manifest.Digest, err)
	}
	mt := img.Manifest.MediaType
	if mt == "" {
		mt = probe.MediaType
	}
	if mediatype.IsIndex(mt) || probe.Manifests != nil {
		return si, errdefs.Invalid("image %s is an index: save takes a single-platform manifest", img.Manifest.Digest)
	}
	if mt == "" {
		mt = ocispec.MediaTypeImageManifest
	}
	if !mediatype.IsManifest(mt) {
		return si, errdefs.Invalid("manifest %s: unsupported media type %q", img.Manifest.Digest, mt)
	}
	si.manifest.MediaType = mt
	if err := json.Unmarshal(md, &si.m); err != nil {
		return si, errdefs.Invalid("manifest %s: %v", img.Manifest.Digest, err)
	}
	for i, d := range append([]ocispec.Descriptor{si.m.Config}, si.m.Layers...) {
		if err := d.Digest.Validate(); err != nil || d.Size < 0 {
			return si, errdefs.Invalid("manifest %s: bad descriptor %d: %q", img.Manifest.Digest, i, d.Digest)
		}
	}
	if si.cdata, err = readDoc(ctx, src, si.m.Config); err != nil {
		return si, fmt.Errorf("config: %w", err)
	}
	if format == OCIArchive && mt == mediatype.DockerManifest {
		if err := si.convertToOCI(); err != nil {
			return si, err
		}
	}
	if err := json.Unmarshal(si.cdata, &si.config); err != nil {
		return si, errdefs.Invalid("config %s: %v", si.m.Config.Digest, err)
	}
	// docker load pairs each layer with a diff ID; a mismatch is refused
	// there, so refuse it here, before writing anything.
	if format == DockerArchive && len(si.config.RootFS.DiffIDs) != len(si.m.Layers) {
		return si, errdefs.Invalid("image %s: %d layers but %d diff IDs in its config",
			img.Manifest.Digest, len(si.m.Layers), len(si.config.RootFS.DiffIDs))
	}
	return si, nil
}

// dockerToOCI maps the Docker schema 2 media types of configs and layers
// to their OCI equivalents.
var dockerToOCI = map[string]string{
	mediatype.DockerConfig:       ocispec.MediaTypeImageConfig,
	mediatype.DockerLayer:        ocispec.MediaTypeImageLayer,
	mediatype.DockerLayerGzip:    ocispec.MediaTypeImageLayerGzip,
	mediatype.DockerLayerZstd:    ocispec.MediaTypeImageLayerZstd,
	mediatype.DockerForeignLayer: ocispec.MediaTypeImageLayerNonDistributableGzip, //nolint:staticcheck // the OCI name for foreign layers
}

// convertToOCI rewrites a Docker schema 2 manifest as the OCI manifest of
// the same config and layers. An OCI archive must hold OCI manifests:
// skopeo and podman do not look at index.json entries of other media
// types, and convert the same way when they write one. The blobs are
// unchanged; only the manifest, and so its digest, is new.
func (si *savedImage) convertToOCI() error {
	m := si.m
	m.MediaType = ocispec.MediaTypeImageManifest
	if mt, ok := dockerToOCI[m.Config.MediaType]; ok {
		m.Config.MediaType = mt
	}
	m.Layers = append([]ocispec.Descriptor(nil), si.m.Layers...)
	for i, l := range m.Layers {
		if mt, ok := dockerToOCI[l.MediaType]; ok {
			m.Layers[i].MediaType = mt
		}
	}
	data, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	si.m, si.mdata = m, data
	si.manifest = ocispec.Descriptor{MediaType: m.MediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
	return nil
}

// readDoc reads a small blob whole and checks it.
func readDoc(ctx context.Context, src BlobSource, d ocispec.Descriptor) ([]byte, error) {
	if err := d.Digest.Validate(); err != nil {
		return nil, errdefs.Invalid("bad digest %q: %v", d.Digest, err)
	}
	if d.Size > MaxJSONSize {
		return nil, errdefs.Invalid("%s is %d bytes, more than %d", d.Digest, d.Size, MaxJSONSize)
	}
	rc, err := src.OpenBlob(ctx, d.Digest)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, MaxJSONSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", d.Digest, err)
	}
	if int64(len(b)) != d.Size || d.Digest.Algorithm().FromBytes(b) != d.Digest {
		return nil, errdefs.Invalid("stored blob %s does not match its descriptor", d.Digest)
	}
	return b, nil
}

// planSave lays out the archive. It only computes; writeArchive writes.
func planSave(format Format, imgs []savedImage) (savePlan, error) {
	var p savePlan
	groups := groupImages(imgs)
	var index []ocispec.Descriptor
	var items []dockerItem
	repos := map[string]map[string]string{}
	seen := map[digest.Digest]bool{}
	addBlob := func(d ocispec.Descriptor, data []byte) {
		if !seen[d.Digest] {
			seen[d.Digest] = true
			p.blobs = append(p.blobs, planBlob{desc: d, data: data})
		}
	}
	for _, si := range groups {
		index = append(index, indexEntries(format, si)...)
		addBlob(si.manifest, si.mdata)
		addBlob(si.m.Config, si.cdata)
		for _, l := range si.m.Layers {
			addBlob(l, nil)
		}
		if format != DockerArchive {
			continue
		}
		it := dockerItem{Config: blobPathOf(si.m.Config.Digest), RepoTags: []string{}, Layers: []string{}}
		for _, l := range si.m.Layers {
			it.Layers = append(it.Layers, blobPathOf(l.Digest))
		}
		for _, n := range tagNames(si.names) {
			it.RepoTags = append(it.RepoTags, n)
			repo, tag := splitTag(n)
			if ids := si.config.RootFS.DiffIDs; len(ids) > 0 {
				if repos[repo] == nil {
					repos[repo] = map[string]string{}
				}
				repos[repo][tag] = ids[len(ids)-1].Encoded()
			}
		}
		items = append(items, it)
	}
	idx := ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: index,
	}
	layout := ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion}
	files := []struct {
		name string
		v    any
		skip bool
	}{
		{fileOCILayout, layout, false},
		{fileIndex, idx, false},
		{fileManifest, items, format != DockerArchive},
		{fileRepositories, repos, format != DockerArchive || len(repos) == 0},
	}
	for _, f := range files {
		if f.skip {
			continue
		}
		data, err := json.Marshal(f.v)
		if err != nil {
			return p, fmt.Errorf("encode %s: %w", f.name, err)
		}
		p.files = append(p.files, planFile{name: f.name, data: data})
	}
	return p, nil
}

// groupImages merges images with the same manifest, keeping the first
// one's place and all names.
func groupImages(imgs []savedImage) []savedImage {
	var out []savedImage
	at := map[digest.Digest]int{}
	for _, si := range imgs {
		if i, ok := at[si.manifest.Digest]; ok {
			out[i].names = appendNew(out[i].names, si.names...)
			continue
		}
		at[si.manifest.Digest] = len(out)
		si.names = appendNew(nil, si.names...)
		out = append(out, si)
	}
	return out
}

// indexEntries are the index.json entries of an image: one per name, or
// one without a name. Docker writes the full name in
// io.containerd.image.name and only the tag in ref.name; in an OCI archive
// ref.name carries the full name, which is how skopeo and podman find it.
func indexEntries(format Format, si savedImage) []ocispec.Descriptor {
	base := ocispec.Descriptor{MediaType: si.manifest.MediaType, Digest: si.manifest.Digest, Size: si.manifest.Size}
	if si.config.OS != "" && si.config.Architecture != "" {
		base.Platform = &ocispec.Platform{OS: si.config.OS, Architecture: si.config.Architecture, Variant: si.config.Variant}
	}
	names := tagNames(si.names)
	if len(names) == 0 {
		return []ocispec.Descriptor{base}
	}
	out := make([]ocispec.Descriptor, 0, len(names))
	for _, n := range names {
		d := base
		ref := n
		if format == DockerArchive {
			_, ref = splitTag(n)
		}
		d.Annotations = map[string]string{annotationImageName: n, annotationRefName: ref}
		out = append(out, d)
	}
	return out
}

// tagNames keeps the names an archive can record: digest references
// cannot be RepoTags. A name without a tag gets ":latest", as docker save
// records it.
func tagNames(names []string) []string {
	var out []string
	for _, n := range names {
		if n == "" || strings.Contains(n, "@") {
			continue
		}
		if repo, tag := splitTag(n); !strings.HasSuffix(n, ":"+tag) {
			n = repo + ":" + tag
		}
		out = appendNew(out, n)
	}
	return out
}

// splitTag splits "host:port/repo:tag" into repository and tag ("latest"
// when there is none).
func splitTag(name string) (repo, tag string) {
	i := strings.LastIndex(name, ":")
	if i < 0 || i < strings.LastIndex(name, "/") {
		return name, "latest"
	}
	return name[:i], name[i+1:]
}

// epoch is the time stamp of every entry, so the same images always give
// the same archive.
var epoch = time.Unix(0, 0)

// writeArchive is the executor: it writes the plan as a tar stream.
func writeArchive(ctx context.Context, w io.Writer, src BlobSource, p savePlan) error {
	tw := tar.NewWriter(w)
	for _, f := range p.files {
		if err := writeEntry(tw, f.name, f.data); err != nil {
			return err
		}
	}
	dirs := map[string]bool{}
	for _, b := range p.blobs {
		if err := ctx.Err(); err != nil {
			return err
		}
		name := blobPathOf(b.desc.Digest)
		for _, dir := range []string{dirBlobs, path.Dir(name)} {
			if !dirs[dir] {
				dirs[dir] = true
				hdr := &tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, ModTime: epoch}
				if err := tw.WriteHeader(hdr); err != nil {
					return fmt.Errorf("write %s: %w", dir, err)
				}
			}
		}
		if b.data != nil {
			if err := writeEntry(tw, name, b.data); err != nil {
				return err
			}
			continue
		}
		if err := streamBlob(ctx, tw, src, name, b.desc); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("finish archive: %w", err)
	}
	return nil
}

func writeEntry(tw *tar.Writer, name string, data []byte) error {
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: epoch}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if _, err := tw.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// streamBlob copies a blob from the source into the archive, checking its
// size and digest on the way.
func streamBlob(ctx context.Context, tw *tar.Writer, src BlobSource, name string, d ocispec.Descriptor) error {
	rc, err := src.OpenBlob(ctx, d.Digest)
	if err != nil {
		return fmt.Errorf("open blob %s: %w", d.Digest, err)
	}
	defer rc.Close()
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: d.Size, ModTime: epoch}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	dg := d.Digest.Algorithm().Digester()
	n, err := io.Copy(tw, io.TeeReader(io.LimitReader(ctxio.Reader(ctx, rc), d.Size), dg.Hash()))
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if n != d.Size || dg.Digest() != d.Digest {
		return errdefs.Invalid("stored blob %s does not match its descriptor (%d bytes read, digest %s)",
			d.Digest, n, dg.Digest())
	}
	return nil
}
