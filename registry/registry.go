package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/registry/storage"
)

// DefaultMaxManifestSize is the largest manifest accepted when
// Options.MaxManifestSize is zero: the 4 MiB the spec asks registries
// and clients to support.
const DefaultMaxManifestSize = 4 << 20

// Options configure a Registry. The zero value is usable.
type Options struct {
	// MaxManifestSize bounds pushed manifests; larger ones are refused
	// with 413. Zero means DefaultMaxManifestSize.
	MaxManifestSize int64
	// DisableDelete refuses deleting manifests, tags and blobs with 405
	// UNSUPPORTED, as the spec allows.
	DisableDelete bool
	// OnError, when set, is told of every error answered with a 5xx (a
	// failing storage backend), which the client is not told the detail
	// of. The registry itself does not log.
	OnError func(r *http.Request, err error)
	// Partial, when set, names the repositories whose manifests may name
	// blobs and manifests not stored (yet): a pull-through cache stores
	// an upstream's manifest as soon as it is asked for, and its blobs
	// only when they are.
	Partial func(name string) bool
}

// Registry is an http.Handler that serves the OCI distribution API
// (spec v1.1) from a storage.Driver. It keeps no state of its own: every
// replica on one backend serves the same content, and an upload begun on
// one is continued and finished on another.
type Registry struct {
	d    storage.Driver
	opts Options
}

// New makes a Registry over d.
func New(d storage.Driver, opts Options) (*Registry, error) {
	if d == nil {
		return nil, errdefs.Invalid("registry: no storage driver")
	}
	if opts.MaxManifestSize < 0 {
		return nil, errdefs.Invalid("registry: negative manifest size limit %d", opts.MaxManifestSize)
	}
	if opts.MaxManifestSize == 0 {
		opts.MaxManifestSize = DefaultMaxManifestSize
	}
	return &Registry{d: d, opts: opts}, nil
}

// Driver is the storage the registry serves from, for the tools that
// work on the same layout (garbage collection).
func (r *Registry) Driver() storage.Driver { return r.d }

// ServeHTTP implements http.Handler.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	rt, ok := parseRoute(req.URL.Path)
	if !ok {
		WriteError(w, &Error{Code: CodeNameUnknown, Message: "no such endpoint", Status: http.StatusNotFound})
		return
	}
	if rt.kind != routeBase && rt.kind != routeCatalog && !validName(rt.name) {
		WriteError(w, NewError(CodeNameInvalid, map[string]string{"name": rt.name}))
		return
	}
	err := r.dispatch(w, req, rt)
	if err != nil {
		r.fail(w, req, err)
	}
}

// fail answers err: the spec's error body for an *Error or Errors, a
// bare 500 for anything else.
func (r *Registry) fail(w http.ResponseWriter, req *http.Request, err error) {
	var e *Error
	var es Errors
	var rns *rangeNotSatisfiable
	switch {
	case errors.As(err, &rns):
		uploadAccepted(w, http.StatusRequestedRangeNotSatisfiable, rns.name, rns.id, rns.size)
	case errors.As(err, &es):
		WriteError(w, es...)
	case errors.As(err, &e):
		WriteError(w, e)
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads the answer.
	default:
		if r.opts.OnError != nil {
			r.opts.OnError(req, err)
		}
		http.Error(w, "internal server error", http.StatusInternalServerError)
	}
}

// unsupported answers a method the endpoint does not take.
func unsupported(method string) error {
	return &Error{Code: CodeUnsupported, Message: fmt.Sprintf("method %s not allowed here", method)}
}

func (r *Registry) dispatch(w http.ResponseWriter, req *http.Request, rt route) error {
	m := req.Method
	switch rt.kind {
	case routeBase:
		if m != http.MethodGet && m != http.MethodHead {
			return unsupported(m)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "2")
		w.WriteHeader(http.StatusOK)
		if m == http.MethodGet {
			_, _ = io.WriteString(w, "{}")
		}
		return nil
	case routeCatalog:
		if m != http.MethodGet {
			return unsupported(m)
		}
		return r.catalog(w, req)
	case routeTags:
		if m != http.MethodGet {
			return unsupported(m)
		}
		return r.tagsList(w, req, rt.name)
	case routeReferrers:
		if m != http.MethodGet {
			return unsupported(m)
		}
		return r.referrers(w, req, rt.name, rt.ref)
	case routeManifest:
		return r.manifest(w, req, rt.name, rt.ref)
	case routeBlob:
		return r.blob(w, req, rt.name, rt.ref)
	case routeUploads:
		if m != http.MethodPost {
			return unsupported(m)
		}
		return r.startUpload(w, req, rt.name)
	case routeUpload:
		return r.upload(w, req, rt.name, rt.ref)
	}
	return unsupported(m)
}

type routeKind int

const (
	routeBase routeKind = iota
	routeCatalog
	routeManifest
	routeBlob
	routeUploads
	routeUpload
	routeTags
	routeReferrers
)

// route is what a request's path names.
type route struct {
	kind routeKind
	name string
	// ref is the manifest reference, blob or subject digest, or upload
	// session ID.
	ref string
}

// parseRoute reads /v2/<name>/<endpoint>. Names hold slashes and may even
// hold "manifests" or "blobs" as a component, so the endpoint is read
// from the end: the last one or two elements (a reference, digest or
// session ID never holds a slash) and the keyword before them.
func parseRoute(p string) (route, bool) {
	rest, ok := strings.CutPrefix(p, "/v2")
	if !ok {
		return route{}, false
	}
	switch rest {
	case "", "/":
		return route{kind: routeBase}, true
	case "/_catalog":
		return route{kind: routeCatalog}, true
	}
	rest, ok = strings.CutPrefix(rest, "/")
	if !ok {
		return route{}, false
	}
	segs := strings.Split(rest, "/")
	n := len(segs)
	if n < 3 {
		return route{}, false
	}
	name := func(k int) string { return strings.Join(segs[:n-k], "/") }
	last, kw := segs[n-1], segs[n-2]
	switch {
	case kw == "tags" && last == "list":
		return route{kind: routeTags, name: name(2)}, true
	case kw == "manifests" && last != "":
		return route{kind: routeManifest, name: name(2), ref: last}, true
	case kw == "referrers" && last != "":
		return route{kind: routeReferrers, name: name(2), ref: last}, true
	case kw == "blobs" && last != "" && last != "uploads":
		return route{kind: routeBlob, name: name(2), ref: last}, true
	case kw == "blobs" && last == "uploads":
		return route{kind: routeUploads, name: name(2)}, true
	case n >= 4 && kw == "uploads" && segs[n-3] == "blobs":
		if last == "" {
			return route{kind: routeUploads, name: name(3)}, true
		}
		return route{kind: routeUpload, name: name(3), ref: last}, true
	}
	return route{}, false
}

// readSmall reads a small object whole (links, tags, manifests), refusing
// one over limit bytes.
func (r *Registry) readSmall(ctx context.Context, p string, limit int64) ([]byte, error) {
	rc, err := r.d.Reader(ctx, p, 0)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("read %s: larger than %d bytes", p, limit)
	}
	return b, nil
}

// putSmall writes a small object whole.
func (r *Registry) putSmall(ctx context.Context, p string, b []byte) error {
	if _, err := r.d.Put(ctx, p, bytes.NewReader(b)); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

// exists reports whether the object at p exists.
func (r *Registry) exists(ctx context.Context, p string) (bool, error) {
	_, err := r.d.Stat(ctx, p)
	if errors.Is(err, errdefs.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stat %s: %w", p, err)
	}
	return true, nil
}

// remove deletes p; a missing p is not an error, since another replica
// may have removed it first.
func (r *Registry) remove(ctx context.Context, p string) error {
	if err := r.d.Delete(ctx, p); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return fmt.Errorf("delete %s: %w", p, err)
	}
	return nil
}

// smallLimit bounds links, tags and referrer descriptors read back.
const smallLimit = 64 << 10
