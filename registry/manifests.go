package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-containers/berth/image/mediatype"
	"github.com/berth-containers/berth/internal/errdefs"
)

// Docker schema 1 manifests are long deprecated; the registry refuses
// them rather than store what it cannot validate.
const (
	dockerSchema1       = "application/vnd.docker.distribution.manifest.v1+json"
	dockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

// manifestRef is a manifest reference from a URL: a tag or a digest.
type manifestRef struct {
	tag    string
	digest digest.Digest
}

// parseManifestRef reads a reference: anything with a colon must be a
// digest the registry stores, anything else a valid tag.
func parseManifestRef(ref string) (manifestRef, error) {
	if strings.Contains(ref, ":") {
		d, ok := parseDigest(ref)
		if !ok {
			return manifestRef{}, NewError(CodeDigestInvalid, map[string]string{"digest": ref})
		}
		return manifestRef{digest: d}, nil
	}
	if !validTag(ref) {
		return manifestRef{}, &Error{Code: CodeManifestInvalid, Message: "invalid tag",
			Detail: map[string]string{"tag": ref}}
	}
	return manifestRef{tag: ref}, nil
}

// manifest serves /v2/<name>/manifests/<reference>.
func (r *Registry) manifest(w http.ResponseWriter, req *http.Request, name, ref string) error {
	mr, err := parseManifestRef(ref)
	if err != nil {
		return err
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead:
		return r.getManifest(w, req, name, mr)
	case http.MethodPut:
		return r.putManifest(w, req, name, mr)
	case http.MethodDelete:
		return r.deleteManifest(w, req, name, mr)
	}
	return unsupported(req.Method)
}

// resolveTag reads the digest a tag points to.
func (r *Registry) resolveTag(ctx context.Context, name, tag string) (digest.Digest, error) {
	b, err := r.readSmall(ctx, tagPath(name, tag), smallLimit)
	if errors.Is(err, errdefs.ErrNotFound) {
		return "", NewError(CodeManifestUnknown, map[string]string{"tag": tag})
	}
	if err != nil {
		return "", err
	}
	d, ok := parseDigest(strings.TrimSpace(string(b)))
	if !ok {
		return "", fmt.Errorf("tag %s of %s: bad digest %q", tag, name, b)
	}
	return d, nil
}

// manifestDesc reads the descriptor the repository keeps for manifest d,
// or MANIFEST_UNKNOWN.
func (r *Registry) manifestDesc(ctx context.Context, name string, d digest.Digest) (ocispec.Descriptor, error) {
	b, err := r.readSmall(ctx, revisionLinkPath(name, d), smallLimit)
	if errors.Is(err, errdefs.ErrNotFound) {
		return ocispec.Descriptor{}, NewError(CodeManifestUnknown, map[string]string{"digest": d.String()})
	}
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	var desc ocispec.Descriptor
	if err := json.Unmarshal(b, &desc); err != nil || desc.Digest != d {
		return ocispec.Descriptor{}, fmt.Errorf("manifest link %s of %s: corrupt", d, name)
	}
	return desc, nil
}

func (r *Registry) getManifest(w http.ResponseWriter, req *http.Request, name string, mr manifestRef) error {
	ctx := req.Context()
	d := mr.digest
	if mr.tag != "" {
		var err error
		if d, err = r.resolveTag(ctx, name, mr.tag); err != nil {
			return err
		}
	}
	desc, err := r.manifestDesc(ctx, name, d)
	if err != nil {
		return err
	}
	var body io.ReadCloser
	if req.Method == http.MethodGet {
		body, err = r.d.Reader(ctx, blobDataPath(d), 0)
		if errors.Is(err, errdefs.ErrNotFound) {
			return NewError(CodeManifestUnknown, map[string]string{"digest": d.String()})
		}
		if err != nil {
			return fmt.Errorf("read manifest %s: %w", d, err)
		}
		defer body.Close()
	}
	h := w.Header()
	h.Set("Content-Type", desc.MediaType)
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Content-Length", strconv.FormatInt(desc.Size, 10))
	h.Set("ETag", `"`+d.String()+`"`)
	w.WriteHeader(http.StatusOK)
	if body != nil {
		// Headers are sent; a failure now can only cut the body short,
		// which the client sees against Content-Length.
		_, _ = io.Copy(w, io.LimitReader(body, desc.Size))
	}
	return nil
}

// manifestDoc is every field of a manifest or index the registry checks.
type manifestDoc struct {
	SchemaVersion *int                 `json:"schemaVersion"`
	MediaType     string               `json:"mediaType"`
	ArtifactType  string               `json:"artifactType"`
	Config        *ocispec.Descriptor  `json:"config"`
	Layers        []ocispec.Descriptor `json:"layers"`
	// Blobs is the field artifact manifests of the 1.1 release
	// candidates listed their content in.
	Blobs       []ocispec.Descriptor `json:"blobs"`
	Manifests   []ocispec.Descriptor `json:"manifests"`
	Subject     *ocispec.Descriptor  `json:"subject"`
	Annotations map[string]string    `json:"annotations"`
}

// pushedManifest is a manifest accepted for storing.
type pushedManifest struct {
	body []byte
	doc  manifestDoc
	desc ocispec.Descriptor
	// subject is the manifest's subject digest, "" without one.
	subject digest.Digest
}

func (r *Registry) putManifest(w http.ResponseWriter, req *http.Request, name string, mr manifestRef) error {
	ctx := req.Context()
	tags, err := pushTags(req, mr)
	if err != nil {
		return err
	}
	body, err := r.readManifestBody(req)
	if err != nil {
		return err
	}
	pm, err := parseManifest(body, req.Header.Get("Content-Type"), mr)
	if err != nil {
		return err
	}
	if r.opts.Partial == nil || !r.opts.Partial(name) {
		if err := r.checkReferences(ctx, name, pm); err != nil {
			return err
		}
	}
	if err := r.storeManifest(ctx, name, pm, tags); err != nil {
		return err
	}
	h := w.Header()
	h.Set("Location", "/v2/"+name+"/manifests/"+pm.desc.Digest.String())
	h.Set("Docker-Content-Digest", pm.desc.Digest.String())
	if pm.subject != "" {
		h.Set("OCI-Subject", pm.subject.String())
	}
	if mr.digest != "" {
		for _, t := range tags {
			h.Add("OCI-Tag", t)
		}
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// pushTags is the tags a push sets: the reference's tag, or the ?tag=
// parameters of a push by digest. All are checked before anything is
// stored.
func pushTags(req *http.Request, mr manifestRef) ([]string, error) {
	if mr.tag != "" {
		return []string{mr.tag}, nil
	}
	tags := req.URL.Query()["tag"]
	for _, t := range tags {
		if !validTag(t) {
			return nil, &Error{Code: CodeManifestInvalid, Message: "invalid tag", Detail: map[string]string{"tag": t}}
		}
	}
	return tags, nil
}

// readManifestBody reads the body, refusing one over the size limit with
// 413 before reading it all.
func (r *Registry) readManifestBody(req *http.Request) ([]byte, error) {
	limit := r.opts.MaxManifestSize
	tooLarge := &Error{Code: CodeSizeInvalid, Status: http.StatusRequestEntityTooLarge,
		Message: fmt.Sprintf("manifest larger than %d bytes", limit)}
	if req.ContentLength > limit {
		return nil, tooLarge
	}
	b, err := io.ReadAll(io.LimitReader(req.Body, limit+1))
	if err != nil {
		return nil, &Error{Code: CodeManifestInvalid, Message: "read manifest: " + err.Error()}
	}
	if int64(len(b)) > limit {
		return nil, tooLarge
	}
	return b, nil
}

// genericContentType reports a Content-Type that says nothing about the
// kind of manifest, which lax clients send.
func genericContentType(ct string) bool {
	switch ct {
	case "", "application/json", "application/octet-stream", "text/plain":
		return true
	}
	return false
}

func invalidManifest(format string, args ...any) error {
	return &Error{Code: CodeManifestInvalid, Message: fmt.Sprintf(format, args...)}
}

// parseManifest checks a pushed document on its own: JSON, media type,
// digest, and the shape its media type asks for.
func parseManifest(body []byte, contentType string, mr manifestRef) (pushedManifest, error) {
	var doc manifestDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		return pushedManifest{}, invalidManifest("manifest is not a JSON object: %v", err)
	}
	ct := ""
	if contentType != "" {
		parsed, _, err := mime.ParseMediaType(contentType)
		if err != nil {
			return pushedManifest{}, invalidManifest("bad Content-Type %q", contentType)
		}
		ct = parsed
	}
	mt := ct
	switch {
	case genericContentType(ct):
		mt = doc.MediaType
		if mt == "" {
			mt = mediatype.Probe{Config: rawIf(doc.Config != nil), Manifests: rawIf(doc.Manifests != nil)}.Guess()
		}
	case doc.MediaType != "" && doc.MediaType != ct:
		return pushedManifest{}, invalidManifest("mediaType %q does not match Content-Type %q", doc.MediaType, ct)
	}
	if mt == "" {
		return pushedManifest{}, invalidManifest("manifest media type unknown: no Content-Type and no mediaType")
	}
	if err := checkShape(mt, doc); err != nil {
		return pushedManifest{}, err
	}
	d := digest.SHA256.FromBytes(body)
	if mr.digest != "" {
		d = mr.digest.Algorithm().FromBytes(body)
		if d != mr.digest {
			return pushedManifest{}, &Error{Code: CodeDigestInvalid,
				Message: "manifest digest does not match the reference",
				Detail:  map[string]string{"digest": mr.digest.String(), "computed": d.String()}}
		}
	}
	pm := pushedManifest{body: body, doc: doc,
		desc: ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(len(body))}}
	if doc.Subject != nil {
		sd, ok := parseDigest(doc.Subject.Digest.String())
		if !ok {
			return pushedManifest{}, invalidManifest("subject digest %q invalid or unsupported", doc.Subject.Digest)
		}
		pm.subject = sd
	}
	return pm, nil
}

// rawIf stands in for a present field when guessing the media type.
func rawIf(present bool) json.RawMessage {
	if present {
		return json.RawMessage("{}")
	}
	return nil
}

// checkShape checks the fields the media type requires and every
// descriptor present. Media types other than the image manifest and index
// kinds (artifacts) are taken in any shape, their descriptors checked.
func checkShape(mt string, doc manifestDoc) error {
	switch {
	case mt == dockerSchema1 || mt == dockerSchema1Signed:
		return invalidManifest("docker schema 1 manifests are not supported")
	case mediatype.IsManifest(mt):
		if doc.SchemaVersion == nil || *doc.SchemaVersion != 2 {
			return invalidManifest("schemaVersion must be 2")
		}
		if doc.Config == nil {
			return invalidManifest("image manifest has no config")
		}
		if doc.Manifests != nil {
			return invalidManifest("image manifest has a manifests field")
		}
	case mediatype.IsIndex(mt):
		if doc.SchemaVersion == nil || *doc.SchemaVersion != 2 {
			return invalidManifest("schemaVersion must be 2")
		}
		if doc.Config != nil || doc.Layers != nil {
			return invalidManifest("index has a config or layers field")
		}
	default:
		if !validMediaType(mt) {
			return invalidManifest("media type %q is malformed", mt)
		}
	}
	for _, desc := range allDescriptors(doc) {
		if err := checkDescriptor(desc); err != nil {
			return err
		}
	}
	return nil
}

// allDescriptors is every descriptor of the document, subject included.
func allDescriptors(doc manifestDoc) []ocispec.Descriptor {
	var out []ocispec.Descriptor
	if doc.Config != nil {
		out = append(out, *doc.Config)
	}
	out = append(out, doc.Layers...)
	out = append(out, doc.Blobs...)
	out = append(out, doc.Manifests...)
	if doc.Subject != nil {
		out = append(out, *doc.Subject)
	}
	return out
}

func checkDescriptor(desc ocispec.Descriptor) error {
	if err := desc.Digest.Validate(); err != nil {
		return invalidManifest("descriptor digest %q: %v", desc.Digest, err)
	}
	if desc.Size < 0 {
		return invalidManifest("descriptor %s: negative size", desc.Digest)
	}
	if !validMediaType(desc.MediaType) {
		return invalidManifest("descriptor %s: media type %q is malformed", desc.Digest, desc.MediaType)
	}
	return nil
}

// validMediaType checks the RFC 6838 shape type "/" subtype, each of
// restricted-name characters, with no parameters.
func validMediaType(mt string) bool {
	typ, sub, ok := strings.Cut(mt, "/")
	return ok && restrictedName(typ) && restrictedName(sub)
}

func restrictedName(s string) bool {
	if s == "" || len(s) > 127 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case i > 0 && strings.IndexByte("!#$&-^_.+", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// nondistributable reports layers that registries are not given
// (foreign layers), so their absence is no error.
func nondistributable(mt string) bool {
	return mt == mediatype.DockerForeignLayer || strings.Contains(mt, ".nondistributable.")
}

// checkReferences refuses a manifest whose blobs or child manifests the
// repository does not hold, with one MANIFEST_BLOB_UNKNOWN per missing
// digest. The subject need not exist: referrers may be pushed first.
func (r *Registry) checkReferences(ctx context.Context, name string, pm pushedManifest) error {
	var missing Errors
	note := func(d digest.Digest) {
		missing = append(missing, NewError(CodeManifestBlobUnknown, map[string]string{"digest": d.String()}))
	}
	var blobs []ocispec.Descriptor
	if pm.doc.Config != nil {
		blobs = append(blobs, *pm.doc.Config)
	}
	blobs = append(blobs, pm.doc.Layers...)
	blobs = append(blobs, pm.doc.Blobs...)
	for _, b := range blobs {
		if nondistributable(b.MediaType) {
			continue
		}
		ok, err := r.inRepo(ctx, name, b.Digest)
		if err != nil {
			return err
		}
		if !ok {
			note(b.Digest)
		}
	}
	for _, m := range pm.doc.Manifests {
		ok, err := r.exists(ctx, revisionLinkPath(name, m.Digest))
		if err != nil {
			return err
		}
		if !ok {
			note(m.Digest)
		}
	}
	if len(missing) > 0 {
		return missing
	}
	return nil
}

// referrerDesc is the descriptor the referrers API lists for pm: its
// artifactType, else its config's media type for an image manifest.
func referrerDesc(pm pushedManifest) ocispec.Descriptor {
	desc := pm.desc
	desc.ArtifactType = pm.doc.ArtifactType
	if desc.ArtifactType == "" && pm.doc.Config != nil && !mediatype.IsIndex(desc.MediaType) {
		desc.ArtifactType = pm.doc.Config.MediaType
	}
	desc.Annotations = pm.doc.Annotations
	return desc
}

// storeManifest writes the manifest in the order that keeps every
// reader's view whole: the bytes, then the repository's link to them,
// then the referrers entry, and the tags last, so a tag never names a
// manifest that is not there.
func (r *Registry) storeManifest(ctx context.Context, name string, pm pushedManifest, tags []string) error {
	d := pm.desc.Digest
	present, err := r.exists(ctx, blobDataPath(d))
	if err != nil {
		return err
	}
	if !present {
		if _, err := r.d.Put(ctx, blobDataPath(d), bytes.NewReader(pm.body)); err != nil {
			return fmt.Errorf("store manifest %s: %w", d, err)
		}
	}
	link, err := json.Marshal(pm.desc)
	if err != nil {
		return fmt.Errorf("encode manifest link: %w", err)
	}
	if err := r.putSmall(ctx, revisionLinkPath(name, d), link); err != nil {
		return err
	}
	if pm.subject != "" {
		ref, err := json.Marshal(referrerDesc(pm))
		if err != nil {
			return fmt.Errorf("encode referrer: %w", err)
		}
		if err := r.putSmall(ctx, referrerPath(name, pm.subject, d), ref); err != nil {
			return err
		}
	}
	for _, t := range tags {
		if err := r.putSmall(ctx, tagPath(name, t), []byte(d.String())); err != nil {
			return err
		}
	}
	return nil
}

func (r *Registry) deleteManifest(w http.ResponseWriter, req *http.Request, name string, mr manifestRef) error {
	if r.opts.DisableDelete {
		return &Error{Code: CodeUnsupported, Message: "deletes are disabled"}
	}
	ctx := req.Context()
	if mr.tag != "" {
		ok, err := r.exists(ctx, tagPath(name, mr.tag))
		if err != nil {
			return err
		}
		if !ok {
			return NewError(CodeManifestUnknown, map[string]string{"tag": mr.tag})
		}
		if err := r.remove(ctx, tagPath(name, mr.tag)); err != nil {
			return err
		}
	} else if err := r.deleteRevision(ctx, name, mr.digest); err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// deleteRevision removes manifest d from the repository: the tags that
// name it first (so none dangles), then its link, then its referrers
// entry (so an entry never outlives its manifest for long; the referrers
// API also skips entries whose manifest is gone).
func (r *Registry) deleteRevision(ctx context.Context, name string, d digest.Digest) error {
	desc, err := r.manifestDesc(ctx, name, d)
	if err != nil {
		return err
	}
	subject, err := r.subjectOf(ctx, desc)
	if err != nil {
		return err
	}
	tags, err := r.listNames(ctx, tagsDir(name))
	if err != nil {
		return err
	}
	for _, t := range tags {
		td, err := r.resolveTag(ctx, name, t)
		var e *Error
		if errors.As(err, &e) {
			continue // removed meanwhile
		}
		if err != nil {
			return err
		}
		if td == d {
			if err := r.remove(ctx, tagPath(name, t)); err != nil {
				return err
			}
		}
	}
	if err := r.remove(ctx, revisionDir(name, d)); err != nil {
		return err
	}
	if subject != "" {
		return r.remove(ctx, referrerPath(name, subject, d))
	}
	return nil
}

// subjectOf reads the subject digest of a stored manifest, "" for none
// (or when its bytes are already gone).
func (r *Registry) subjectOf(ctx context.Context, desc ocispec.Descriptor) (digest.Digest, error) {
	b, err := r.readSmall(ctx, blobDataPath(desc.Digest), max(desc.Size, r.opts.MaxManifestSize))
	if errors.Is(err, errdefs.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	var doc struct {
		Subject *ocispec.Descriptor `json:"subject"`
	}
	if json.Unmarshal(b, &doc) != nil || doc.Subject == nil {
		return "", nil
	}
	d, ok := parseDigest(doc.Subject.Digest.String())
	if !ok {
		return "", nil
	}
	return d, nil
}
