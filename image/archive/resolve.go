package archive

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-containers/berth/image/mediatype"
	"github.com/berth-containers/berth/internal/errdefs"
)

// loadPlan is what the resolve step decided: the images found, and the
// documents Load still has to write to the sink (configs of old docker
// archives, which live outside blobs/, and the manifests Load made).
type loadPlan struct {
	images []Loaded
	writes []pendingBlob
}

// pendingBlob is a document to write to the sink.
type pendingBlob struct {
	desc ocispec.Descriptor
	data []byte
}

// dockerItem is one entry of a docker archive's manifest.json.
type dockerItem struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// detect tells the archive's format from the files it holds.
func (s *scan) detect() (Format, error) {
	switch {
	case s.has(fileManifest):
		return DockerArchive, nil
	case s.has(fileOCILayout) || s.has(fileIndex):
		return OCIArchive, nil
	case s.has(fileRepositories):
		return 0, errdefs.Invalid("unknown archive format: a docker archive without manifest.json (docker before 1.10) is not supported")
	}
	return 0, errdefs.Invalid("unknown archive format: neither manifest.json (docker-archive) nor oci-layout and index.json (oci-archive)")
}

// plan makes sense of a scanned archive.
func (s *scan) plan(f Format) (loadPlan, error) {
	if f == DockerArchive {
		return s.resolveDocker()
	}
	return s.resolveOCI()
}

// doc returns the in-memory JSON document of an entry.
func doc(e *entry, what string) ([]byte, error) {
	if e.data == nil || e.kind != kindJSON {
		return nil, errdefs.Invalid("%s is not a JSON document of at most %d bytes", what, MaxJSONSize)
	}
	return e.data, nil
}

func (s *scan) document(name string) ([]byte, error) {
	e, ok := s.entries[name]
	if !ok {
		return nil, errdefs.Invalid("archive has no %s", name)
	}
	return doc(e, name)
}

// resolveOCI reads index.json and checks that everything it names is
// present.
func (s *scan) resolveOCI() (loadPlan, error) {
	var p loadPlan
	b, err := s.document(fileOCILayout)
	if err != nil {
		return p, err
	}
	var layout ocispec.ImageLayout
	if err := json.Unmarshal(b, &layout); err != nil {
		return p, errdefs.Invalid("decode oci-layout: %v", err)
	}
	if !strings.HasPrefix(layout.Version, "1.") {
		return p, errdefs.Invalid("unsupported OCI image layout version %q", layout.Version)
	}
	idx, err := s.index()
	if err != nil {
		return p, err
	}
	if len(idx.Manifests) == 0 {
		return p, errdefs.Invalid("index.json names no images")
	}
	var g grouper
	for i, d := range idx.Manifests {
		what := fmt.Sprintf("index.json entry %d", i)
		d.MediaType, err = s.mediaType(d, what)
		if err != nil {
			return p, err
		}
		cfg, err := s.checkGraph(d, what, 0)
		if err != nil {
			return p, err
		}
		name := d.Annotations[annotationImageName]
		if name == "" {
			name = d.Annotations[annotationRefName]
		}
		var names []string
		if name != "" {
			names = []string{name}
		}
		g.add(Loaded{Names: names, Manifest: plainDescriptor(d), Config: cfg})
	}
	p.images = g.images
	return p, nil
}

func (s *scan) index() (ocispec.Index, error) {
	var idx ocispec.Index
	b, err := s.document(fileIndex)
	if err != nil {
		return idx, err
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		return idx, errdefs.Invalid("decode index.json: %v", err)
	}
	if idx.SchemaVersion != 2 {
		return idx, errdefs.Invalid("index.json: unsupported schemaVersion %d", idx.SchemaVersion)
	}
	return idx, nil
}

// mediaType returns the descriptor's media type, or the one the document
// itself declares when the descriptor leaves it out.
func (s *scan) mediaType(d ocispec.Descriptor, what string) (string, error) {
	if d.MediaType != "" {
		return d.MediaType, nil
	}
	e, err := s.blob(d, what)
	if err != nil {
		return "", err
	}
	b, err := doc(e, what)
	if err != nil {
		return "", err
	}
	probe, err := mediatype.Read(b)
	if err != nil {
		return "", errdefs.Invalid("%s: decode %s: %v", what, d.Digest, err)
	}
	if mt := probe.Guess(); mt != "" {
		return mt, nil
	}
	return "", errdefs.Invalid("%s: %s is neither a manifest nor an index", what, d.Digest)
}

// checkGraph checks that a manifest's config and layers, or an index's
// manifests, are in the archive, and returns the manifest's config digest.
// An index may name manifests the archive does not hold (docker save
// writes indexes with only the platforms it has), but not only those.
func (s *scan) checkGraph(d ocispec.Descriptor, what string, depth int) (digest.Digest, error) {
	if depth > maxIndexDepth {
		return "", errdefs.Invalid("%s: indexes nested more than %d deep", what, maxIndexDepth)
	}
	e, err := s.blob(d, what)
	if err != nil {
		return "", err
	}
	b, err := doc(e, fmt.Sprintf("%s (%s)", what, d.Digest))
	if err != nil {
		return "", err
	}
	switch {
	case mediatype.IsManifest(d.MediaType):
		var m ocispec.Manifest
		if err := json.Unmarshal(b, &m); err != nil {
			return "", errdefs.Invalid("%s: decode manifest %s: %v", what, d.Digest, err)
		}
		if _, err := s.blob(m.Config, fmt.Sprintf("%s: config", what)); err != nil {
			return "", err
		}
		for i, l := range m.Layers {
			if len(l.URLs) > 0 && !s.has(blobPathOf(l.Digest)) {
				continue // a non-distributable layer, fetched from its URLs
			}
			if _, err := s.blob(l, fmt.Sprintf("%s: layer %d", what, i)); err != nil {
				return "", err
			}
		}
		return m.Config.Digest, nil
	case mediatype.IsIndex(d.MediaType):
		var idx ocispec.Index
		if err := json.Unmarshal(b, &idx); err != nil {
			return "", errdefs.Invalid("%s: decode index %s: %v", what, d.Digest, err)
		}
		held := 0
		for i, c := range idx.Manifests {
			if c.Digest.Validate() != nil || !s.has(blobPathOf(c.Digest)) {
				continue
			}
			cwhat := fmt.Sprintf("%s: manifest %d", what, i)
			if c.MediaType, err = s.mediaType(c, cwhat); err != nil {
				return "", err
			}
			if _, err := s.checkGraph(c, cwhat, depth+1); err != nil {
				return "", err
			}
			held++
		}
		if held == 0 {
			return "", errdefs.Invalid("%s: the archive holds none of the manifests of index %s", what, d.Digest)
		}
		return "", nil
	}
	return "", errdefs.Invalid("%s: unsupported media type %q", what, d.MediaType)
}

// resolveDocker reads manifest.json, finds every file it names and
// describes each image by a manifest.
func (s *scan) resolveDocker() (loadPlan, error) {
	var p loadPlan
	b, err := s.document(fileManifest)
	if err != nil {
		return p, err
	}
	var items []dockerItem
	if err := json.Unmarshal(b, &items); err != nil {
		return p, errdefs.Invalid("decode manifest.json: %v", err)
	}
	if len(items) == 0 {
		return p, errdefs.Invalid("manifest.json lists no images")
	}
	known := s.knownManifests()
	pending := map[digest.Digest]bool{}
	var g grouper
	for i, it := range items {
		l, writes, err := s.dockerImage(i, it, known)
		if err != nil {
			return p, err
		}
		for _, w := range writes {
			if !pending[w.desc.Digest] {
				pending[w.desc.Digest] = true
				p.writes = append(p.writes, w)
			}
		}
		g.add(l)
	}
	p.images = g.images
	return p, nil
}

// dockerImage resolves one manifest.json entry.
func (s *scan) dockerImage(i int, it dockerItem, known map[string]ocispec.Descriptor) (Loaded, []pendingBlob, error) {
	var writes []pendingBlob
	what := fmt.Sprintf("manifest.json entry %d", i)
	ce, err := s.resolve(it.Config, what+": config")
	if err != nil {
		return Loaded{}, nil, err
	}
	cb, err := doc(ce, fmt.Sprintf("%s: config %q", what, it.Config))
	if err != nil {
		return Loaded{}, nil, err
	}
	cfg := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: ce.digest, Size: ce.size}
	if !ce.stored {
		writes = append(writes, pendingBlob{desc: cfg, data: cb})
	}
	var config ocispec.Image
	if err := json.Unmarshal(cb, &config); err != nil {
		return Loaded{}, nil, errdefs.Invalid("%s: decode config %q: %v", what, it.Config, err)
	}
	diffIDs := config.RootFS.DiffIDs
	if len(diffIDs) != len(it.Layers) {
		return Loaded{}, nil, errdefs.Invalid("%s: %d layers, but the config lists %d diff IDs", what, len(it.Layers), len(diffIDs))
	}
	layers := make([]ocispec.Descriptor, len(it.Layers))
	for j, name := range it.Layers {
		le, err := s.resolve(name, fmt.Sprintf("%s: layer %d", what, j))
		if err != nil {
			return Loaded{}, nil, err
		}
		if !le.stored || le.kind == kindJSON {
			return Loaded{}, nil, errdefs.Invalid("%s: layer %q is not a layer file", what, name)
		}
		if le.kind == kindTar && le.digest != diffIDs[j] {
			return Loaded{}, nil, errdefs.Invalid("%s: layer %q has digest %s, but the config says %s",
				what, name, le.digest, diffIDs[j])
		}
		layers[j] = ocispec.Descriptor{MediaType: layerMediaType(le.kind), Digest: le.digest, Size: le.size}
	}
	m, ok := known[manifestKey(cfg.Digest, layers)]
	if !ok {
		var data []byte
		m, data, err = synthesize(cfg, layers)
		if err != nil {
			return Loaded{}, nil, err
		}
		writes = append(writes, pendingBlob{desc: m, data: data})
	}
	return Loaded{Names: it.RepoTags, Manifest: m, Config: cfg.Digest}, writes, nil
}

// knownManifests collects the manifests index.json leads to (the Docker 25
// layout has them), keyed by config and layers, so that loading keeps the
// image's own manifest and digest. The archive's manifest.json rules: a
// broken index.json is simply not used.
func (s *scan) knownManifests() map[string]ocispec.Descriptor {
	known := map[string]ocispec.Descriptor{}
	idx, err := s.index()
	if err != nil {
		return known
	}
	var walk func(ds []ocispec.Descriptor, depth int)
	walk = func(ds []ocispec.Descriptor, depth int) {
		for _, d := range ds {
			e, err := s.blob(d, "index.json")
			if err != nil || depth > maxIndexDepth {
				continue
			}
			if d.MediaType, err = s.mediaType(d, "index.json"); err != nil {
				continue
			}
			b, err := doc(e, "index.json")
			if err != nil {
				continue
			}
			switch {
			case mediatype.IsManifest(d.MediaType):
				var m ocispec.Manifest
				if json.Unmarshal(b, &m) == nil {
					known[manifestKey(m.Config.Digest, m.Layers)] = plainDescriptor(d)
				}
			case mediatype.IsIndex(d.MediaType):
				var child ocispec.Index
				if json.Unmarshal(b, &child) == nil {
					walk(child.Manifests, depth+1)
				}
			}
		}
	}
	walk(idx.Manifests, 0)
	return known
}

func manifestKey(cfg digest.Digest, layers []ocispec.Descriptor) string {
	var sb strings.Builder
	sb.WriteString(cfg.String())
	for _, l := range layers {
		sb.WriteString(" ")
		sb.WriteString(l.Digest.String())
	}
	return sb.String()
}

// synthesize makes the OCI manifest of an image that came without one.
func synthesize(cfg ocispec.Descriptor, layers []ocispec.Descriptor) (ocispec.Descriptor, []byte, error) {
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    cfg,
		Layers:    layers,
	}
	data, err := json.Marshal(m)
	if err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("encode manifest: %w", err)
	}
	return ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageManifest,
		Digest:    digest.FromBytes(data),
		Size:      int64(len(data)),
	}, data, nil
}

// plainDescriptor drops the annotations that named the image in the
// archive: they describe the archive, not the manifest.
func plainDescriptor(d ocispec.Descriptor) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size, Platform: d.Platform}
}

// grouper merges entries for the same manifest into one Loaded with all
// their names, keeping the archive's order.
type grouper struct {
	images []Loaded
	at     map[digest.Digest]int
}

func (g *grouper) add(l Loaded) {
	if g.at == nil {
		g.at = map[digest.Digest]int{}
	}
	i, ok := g.at[l.Manifest.Digest]
	if !ok {
		g.at[l.Manifest.Digest] = len(g.images)
		l.Names = appendNew(nil, l.Names...)
		g.images = append(g.images, l)
		return
	}
	g.images[i].Names = appendNew(g.images[i].Names, l.Names...)
}

// appendNew appends the names not yet in list.
func appendNew(list []string, names ...string) []string {
	for _, n := range names {
		dup := false
		for _, have := range list {
			dup = dup || have == n
		}
		if !dup {
			list = append(list, n)
		}
	}
	return list
}
