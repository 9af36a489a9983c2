package remote

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
	"github.com/berth-containers/berth/image/reference"
	"github.com/berth-containers/berth/internal/errdefs"
)

// target is what a manifest URL ends in: the digest when there is one (it
// pins the content), else the tag.
func target(ref reference.Reference) (string, error) {
	switch {
	case ref.Digest != "":
		return ref.Digest.String(), nil
	case ref.Tag != "":
		return ref.Tag, nil
	}
	return "", errdefs.Invalid("reference %s has neither tag nor digest", ref.String())
}

func (c *Client) manifestRequest(ctx context.Context, method string, ref reference.Reference, tagOrDigest string, extraAccept string) (*http.Request, error) {
	r, err := c.repository(ctx, ref)
	if err != nil {
		return nil, err
	}
	req, err := newRequest(r.scope(ctx, actionPull), method, r.base+"/manifests/"+tagOrDigest, nil)
	if err != nil {
		return nil, err
	}
	accept := mediatype.Manifests
	if extraAccept != "" && !mediatype.IsManifestOrIndex(extraAccept) {
		accept = append([]string{extraAccept}, accept...)
	}
	req.Header.Set("Accept", strings.Join(accept, ", "))
	return req, nil
}

// Resolve finds the descriptor that ref names, by tag or by digest, with
// a HEAD request; when the registry's answer lacks the digest, the size
// or a manifest media type, it fetches the manifest and computes them.
func (c *Client) Resolve(ctx context.Context, ref reference.Reference) (ocispec.Descriptor, error) {
	t, err := target(ref)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	req, err := c.manifestRequest(ctx, http.MethodHead, ref, t, "")
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	resp, err := c.do(req)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("resolve %s: %w", ref.String(), err)
	}
	drainClose(resp.Body)
	switch resp.StatusCode {
	case http.StatusOK:
		if desc, ok := descriptorFromHeaders(resp.Header, ref); ok {
			return desc, nil
		}
	case http.StatusNotFound:
		return ocispec.Descriptor{}, fmt.Errorf("resolve %s: %w", ref.String(), notFound(resp, "manifest unknown"))
	case http.StatusUnauthorized, http.StatusForbidden:
		return ocispec.Descriptor{}, fmt.Errorf("resolve %s: %w", ref.String(), responseError(resp))
	}
	// Registries that answer HEAD badly still answer GET.
	desc, _, err := c.GetManifest(ctx, ref)
	return desc, err
}

// notFound makes the error for a 404 to a HEAD request, which has no body
// to explain it.
func notFound(resp *http.Response, code string) error {
	var err *ResponseError
	if !errors.As(responseError(resp), &err) {
		return responseError(resp)
	}
	err.Errors = []ErrorDetail{{Code: strings.ToUpper(strings.ReplaceAll(code, " ", "_"))}}
	return err
}

// descriptorFromHeaders builds the descriptor from a HEAD answer when it
// says everything needed.
func descriptorFromHeaders(h http.Header, ref reference.Reference) (ocispec.Descriptor, bool) {
	mt := mediaType(h.Get("Content-Type"))
	size, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64)
	if !mediatype.IsManifestOrIndex(mt) || err != nil || size <= 0 {
		return ocispec.Descriptor{}, false
	}
	d, err := digest.Parse(h.Get("Docker-Content-Digest"))
	if err != nil {
		return ocispec.Descriptor{}, false
	}
	if ref.Digest != "" && d != ref.Digest {
		return ocispec.Descriptor{}, false
	}
	return ocispec.Descriptor{MediaType: mt, Digest: d, Size: size}, true
}

// mediaType strips parameters ("; charset=utf-8").
func mediaType(ct string) string {
	if mt, _, err := mime.ParseMediaType(ct); err == nil {
		return mt
	}
	return strings.TrimSpace(ct)
}

// GetManifest fetches the manifest or index ref names (by digest when it
// has one, else by tag) and verifies it against ref's digest or, for a
// tag, against the Docker-Content-Digest the registry sends.
func (c *Client) GetManifest(ctx context.Context, ref reference.Reference) (ocispec.Descriptor, []byte, error) {
	t, err := target(ref)
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	req, err := c.manifestRequest(ctx, http.MethodGet, ref, t, "")
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	resp, err := c.expect(req, http.StatusOK)
	if err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("fetch manifest %s: %w", ref.String(), err)
	}
	defer resp.Body.Close()
	b, err := readManifest(resp)
	if err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("fetch manifest %s: %w", ref.String(), err)
	}
	want := ref.Digest
	if want == "" {
		want, _ = digest.Parse(resp.Header.Get("Docker-Content-Digest"))
	}
	if want == "" {
		want = digest.FromBytes(b)
	}
	if err := verify(want, b); err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("fetch manifest %s: %w", ref.String(), err)
	}
	desc := ocispec.Descriptor{MediaType: manifestMediaType(resp.Header.Get("Content-Type"), b), Digest: want, Size: int64(len(b))}
	return desc, b, nil
}

// FetchManifest fetches the manifest or index desc describes from ref's
// repository, checking its size and digest.
func (c *Client) FetchManifest(ctx context.Context, ref reference.Reference, desc ocispec.Descriptor) ([]byte, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, errdefs.Invalid("fetch manifest from %s: descriptor digest %q: %v", ref.Name(), desc.Digest, err)
	}
	if desc.Size > mediatype.MaxManifestSize {
		return nil, errdefs.Invalid("fetch manifest %s@%s: %d bytes is more than the %d allowed", ref.Name(), desc.Digest, desc.Size, mediatype.MaxManifestSize)
	}
	req, err := c.manifestRequest(ctx, http.MethodGet, ref, desc.Digest.String(), desc.MediaType)
	if err != nil {
		return nil, err
	}
	resp, err := c.expect(req, http.StatusOK)
	if err != nil {
		return nil, fmt.Errorf("fetch manifest %s@%s: %w", ref.Name(), desc.Digest, err)
	}
	defer resp.Body.Close()
	b, err := readManifest(resp)
	if err != nil {
		return nil, fmt.Errorf("fetch manifest %s@%s: %w", ref.Name(), desc.Digest, err)
	}
	if desc.Size > 0 && int64(len(b)) != desc.Size {
		return nil, errdefs.Invalid("fetch manifest %s@%s: got %d bytes, descriptor says %d", ref.Name(), desc.Digest, len(b), desc.Size)
	}
	if err := verify(desc.Digest, b); err != nil {
		return nil, fmt.Errorf("fetch manifest %s@%s: %w", ref.Name(), desc.Digest, err)
	}
	return b, nil
}

// readManifest reads a manifest body, refusing more than mediatype.MaxManifestSize.
func readManifest(resp *http.Response) ([]byte, error) {
	if resp.ContentLength > mediatype.MaxManifestSize {
		return nil, errdefs.Invalid("manifest of %d bytes is more than the %d allowed", resp.ContentLength, mediatype.MaxManifestSize)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, mediatype.MaxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	if len(b) > mediatype.MaxManifestSize {
		return nil, errdefs.Invalid("manifest is more than the %d bytes allowed", mediatype.MaxManifestSize)
	}
	return b, nil
}

// verify checks b against d.
func verify(d digest.Digest, b []byte) error {
	if err := d.Validate(); err != nil {
		return errdefs.Invalid("digest %q: %v", d, err)
	}
	if got := d.Algorithm().FromBytes(b); got != d {
		return errdefs.Invalid("content digest %s does not match %s", got, d)
	}
	return nil
}

// manifestMediaType prefers the Content-Type when it names a manifest
// type, and otherwise reads the mediaType field, or guesses from the
// fields present (OCI documents may omit mediaType).
func manifestMediaType(contentType string, b []byte) string {
	if mt := mediaType(contentType); mediatype.IsManifestOrIndex(mt) {
		return mt
	}
	probe, err := mediatype.Read(b)
	if err != nil || probe.Guess() == "" {
		return mediaType(contentType)
	}
	return probe.Guess()
}

// PushManifest uploads a manifest or index under ref's tag (or, without a
// tag, under its digest) and returns its descriptor. When ref has a
// digest, the content must match it.
func (c *Client) PushManifest(ctx context.Context, ref reference.Reference, mediaType string, b []byte) (ocispec.Descriptor, error) {
	if len(b) > mediatype.MaxManifestSize {
		return ocispec.Descriptor{}, errdefs.Invalid("push manifest %s: %d bytes is more than the %d allowed", ref.String(), len(b), mediatype.MaxManifestSize)
	}
	if mediaType == "" {
		return ocispec.Descriptor{}, errdefs.Invalid("push manifest %s: no media type", ref.String())
	}
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
	if ref.Digest != "" {
		if err := verify(ref.Digest, b); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("push manifest %s: %w", ref.String(), err)
		}
		desc.Digest = ref.Digest
	}
	t := ref.Tag
	if t == "" {
		t = desc.Digest.String()
	}
	r, err := c.repository(ctx, ref)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	req, err := newRequest(r.scope(ctx, actionPull, actionPush), http.MethodPut, r.base+"/manifests/"+t, bytes.NewReader(b))
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	req.Header.Set("Content-Type", mediaType)
	resp, err := c.expect(req, http.StatusCreated, http.StatusOK) //nolint:bodyclose // drainClose closes it
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("push manifest %s: %w", ref.String(), err)
	}
	drainClose(resp.Body)
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != desc.Digest.String() {
		// Registries hash what they received; another digest means the
		// manifest was changed on the way or stored differently.
		return desc, fmt.Errorf("push manifest %s: registry stored digest %s, expected %s", ref.String(), got, desc.Digest)
	}
	return desc, nil
}

// maxTagPages bounds the pages Tags follows.
const maxTagPages = 10000

// Tags lists the tags of ref's repository, following pagination.
func (c *Client) Tags(ctx context.Context, ref reference.Reference) ([]string, error) {
	r, err := c.repository(ctx, ref)
	if err != nil {
		return nil, err
	}
	ctx = r.scope(ctx, actionPull)
	next := r.base + "/tags/list"
	var tags []string
	for page := 0; next != ""; page++ {
		if page >= maxTagPages {
			return nil, fmt.Errorf("list tags of %s: more than %d pages", ref.Name(), maxTagPages)
		}
		req, err := newRequest(ctx, http.MethodGet, next, nil)
		if err != nil {
			return nil, err
		}
		resp, err := c.expect(req, http.StatusOK)
		if err != nil {
			return nil, fmt.Errorf("list tags of %s: %w", ref.Name(), err)
		}
		var body struct {
			Tags []string `json:"tags"`
		}
		err = json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&body)
		next, _ = nextLink(resp)
		resp.Body.Close()
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("list tags of %s: decode: %w", ref.Name(), err)
		}
		tags = append(tags, body.Tags...)
	}
	return tags, nil
}

// nextLink reads `Link: <url>; rel="next"`, resolved against the request.
func nextLink(resp *http.Response) (string, error) {
	for _, link := range resp.Header.Values("Link") {
		for _, part := range strings.Split(link, ",") {
			u, params, ok := strings.Cut(strings.TrimSpace(part), ";")
			if !ok || !strings.Contains(strings.ReplaceAll(params, " ", ""), `rel="next"`) {
				continue
			}
			u = strings.Trim(strings.TrimSpace(u), "<>")
			abs, err := resp.Request.URL.Parse(u)
			if err != nil {
				return "", fmt.Errorf("parse link %q: %w", u, err)
			}
			return abs.String(), nil
		}
	}
	return "", nil
}
