package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/registry/storage"
)

// Page sizes: a catalog request without n gets defaultCatalogPage
// repositories; no request gets more than maxPage entries at once, and
// the Link header leads to the rest.
const (
	defaultCatalogPage = 1000
	maxPage            = 10000
)

// listNames lists the base names directly under dir, sorted; a missing
// dir is empty.
func (r *Registry) listNames(ctx context.Context, dir string) ([]string, error) {
	paths, err := r.d.List(ctx, dir)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	out := make([]string, 0, len(paths))
	for _, p := range paths {
		out = append(out, path.Base(p))
	}
	sort.Strings(out)
	return out, nil
}

// page cuts one page out of the sorted list all, after last and at most
// n long (n < 0: the default, itself at most maxPage). more reports that
// entries remain after the page.
func page(all []string, last string, n int) (out []string, more bool) {
	start := sort.SearchStrings(all, last)
	if last != "" && start < len(all) && all[start] == last {
		start++
	}
	rest := all[start:]
	if n < 0 || n > len(rest) {
		return rest, false
	}
	return rest[:n], n < len(rest)
}

// pageParams reads n and last. A missing n is def; a malformed or
// negative one is refused.
func pageParams(q url.Values, def int) (n int, last string, err error) {
	n = def
	if s := q.Get("n"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			return 0, "", &Error{Code: CodeUnsupported, Status: http.StatusBadRequest,
				Message: fmt.Sprintf("invalid page size n=%q", s)}
		}
		n = v
	}
	if n > maxPage {
		n = maxPage
	}
	return n, q.Get("last"), nil
}

// writePage answers a listing: the JSON body, and when more remains a
// Link header to the next page, as the spec asks.
func writePage(w http.ResponseWriter, base string, n int, entries []string, more bool, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encode listing: %w", err)
	}
	if more && len(entries) > 0 {
		q := url.Values{"n": {strconv.Itoa(n)}, "last": {entries[len(entries)-1]}}
		w.Header().Set("Link", "<"+base+"?"+q.Encode()+`>; rel="next"`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	return nil
}

// tagsList serves GET /v2/<name>/tags/list.
func (r *Registry) tagsList(w http.ResponseWriter, req *http.Request, name string) error {
	ctx := req.Context()
	ok, err := r.exists(ctx, repoPath(name))
	if err != nil {
		return err
	}
	if !ok {
		return NewError(CodeNameUnknown, map[string]string{"name": name})
	}
	n, last, err := pageParams(req.URL.Query(), -1)
	if err != nil {
		return err
	}
	tags, err := r.listNames(ctx, tagsDir(name))
	if err != nil {
		return err
	}
	if n < 0 && len(tags) > maxPage {
		n = maxPage
	}
	out, more := page(tags, last, n)
	return writePage(w, "/v2/"+name+"/tags/list", n, out, more, struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{name, nonNil(out)})
}

// catalog serves GET /v2/_catalog.
func (r *Registry) catalog(w http.ResponseWriter, req *http.Request) error {
	n, last, err := pageParams(req.URL.Query(), defaultCatalogPage)
	if err != nil {
		return err
	}
	repos, err := r.Repositories(req.Context())
	if err != nil {
		return err
	}
	out, more := page(repos, last, n)
	return writePage(w, "/v2/_catalog", n, out, more, struct {
		Repositories []string `json:"repositories"`
	}{nonNil(out)})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Repositories lists every repository holding at least one manifest,
// sorted. It lists the directory tree under repositories/, descending
// into name components and stopping at the registry's own "_" entries,
// so its cost grows with the number of repositories, not of blobs.
func (r *Registry) Repositories(ctx context.Context) ([]string, error) {
	return r.repositories(ctx, func(c string) bool { return c == "_manifests" })
}

// AllRepositories lists every repository holding anything: manifests,
// blob links or upload sessions, sorted. The garbage collector walks
// these, as a repository with blobs pushed and no manifest yet is a push
// under way.
func (r *Registry) AllRepositories(ctx context.Context) ([]string, error) {
	return r.repositories(ctx, func(c string) bool { return c == "_manifests" || c == "_blobs" || c == "_uploads" })
}

// repositories lists the directories under repositories/ that hold an
// entry mark accepts.
func (r *Registry) repositories(ctx context.Context, mark func(string) bool) ([]string, error) {
	var out []string
	var visit func(prefix string, depth int) error
	visit = func(prefix string, depth int) error {
		if depth > maxNameLength/2+1 {
			return nil // deeper than any valid name
		}
		children, err := r.listNames(ctx, reposDir+"/"+prefix)
		if err != nil {
			return err
		}
		counted := false
		for _, c := range children {
			if mark(c) {
				if !counted {
					out = append(out, prefix)
					counted = true
				}
				continue
			}
			if strings.HasPrefix(c, "_") || !validComponent(c) {
				continue
			}
			if err := visit(prefix+"/"+c, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	top, err := r.listNames(ctx, reposDir)
	if err != nil {
		return nil, err
	}
	for _, c := range top {
		if !validComponent(c) {
			continue
		}
		if err := visit(c, 1); err != nil {
			return nil, err
		}
	}
	sort.Strings(out)
	return out, nil
}

// referrers serves GET /v2/<name>/referrers/<digest>: the manifests of
// the repository whose subject is the digest, from the per-subject index
// kept at push.
func (r *Registry) referrers(w http.ResponseWriter, req *http.Request, name, ref string) error {
	ctx := req.Context()
	subject, ok := parseDigest(ref)
	if !ok {
		return NewError(CodeDigestInvalid, map[string]string{"digest": ref})
	}
	filter := req.URL.Query().Get("artifactType")
	descs, err := r.listReferrers(ctx, name, subject)
	if err != nil {
		return err
	}
	index := ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{},
	}
	for _, desc := range descs {
		if filter == "" || desc.ArtifactType == filter {
			index.Manifests = append(index.Manifests, desc)
		}
	}
	b, err := json.Marshal(index)
	if err != nil {
		return fmt.Errorf("encode referrers: %w", err)
	}
	if filter != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	w.Header().Set("Content-Type", ocispec.MediaTypeImageIndex)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	return nil
}

// listReferrers reads the referrers entries of subject, skipping any whose
// manifest is gone (a delete that stopped half-way).
func (r *Registry) listReferrers(ctx context.Context, name string, subject digest.Digest) ([]ocispec.Descriptor, error) {
	dir := referrersDir(name, subject)
	var out []ocispec.Descriptor
	err := r.d.Walk(ctx, dir, func(info storage.Info) error {
		p := info.Path
		if !strings.HasPrefix(p, dir+"/") {
			p = dir + "/" + strings.TrimPrefix(p, "/")
		}
		b, err := r.readSmall(ctx, p, smallLimit)
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		var desc ocispec.Descriptor
		if json.Unmarshal(b, &desc) != nil {
			return nil
		}
		d, ok := parseDigest(desc.Digest.String())
		if !ok {
			return nil
		}
		live, err := r.exists(ctx, revisionLinkPath(name, d))
		if err != nil {
			return err
		}
		if live {
			out = append(out, desc)
		}
		return nil
	})
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list referrers of %s: %w", subject, err)
	}
	return out, nil
}
