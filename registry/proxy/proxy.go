// Package proxy makes repositories of the registry a pull-through cache
// of upstream registries, chosen by name prefix: a pull of
// "mirror/library/busybox:1" is answered from the local store, and what
// it lacks is fetched from the upstream's "library/busybox:1" first and
// kept. Manifests are stored when asked for, blobs when asked for, so a
// cached index does not drag every platform's layers along (the
// registry accepts such partial manifests under a proxied prefix).
//
// A tag is looked up upstream on every pull (one HEAD) so that a moved
// tag is followed; when the upstream cannot be reached, the cached tag is
// served. Content by digest never changes and is served locally once
// cached. Pushes to a proxied prefix are refused.
package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-containers/berth/image/reference"
	"github.com/berth-containers/berth/image/remote"
)

// upstreamTimeout bounds the tag lookup that decides whether a cached tag
// is current.
const upstreamTimeout = 10 * time.Second

// Upstream is one cached registry.
type Upstream struct {
	// Prefix selects the local repositories it backs ("mirror/"); the
	// rest of the name is the upstream repository.
	Prefix string
	// URL is the upstream registry ("https://registry.example.com";
	// http:// for a plain-HTTP one).
	URL                string
	Username, Password string
}

type upstream struct {
	Upstream
	host   string
	client *remote.Client
}

// Cache is an http.Handler in front of the local registry.
type Cache struct {
	local http.Handler
	ups   []upstream
}

// New puts a cache of ups in front of local. local must accept partial
// manifests under the prefixes (see Prefixed).
func New(local http.Handler, ups []Upstream) (*Cache, error) {
	c := &Cache{local: local}
	for _, u := range ups {
		p, err := url.Parse(u.URL)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return nil, fmt.Errorf("proxy %s: upstream URL %q: want http(s)://host[:port]", u.Prefix, u.URL)
		}
		if !strings.HasSuffix(u.Prefix, "/") {
			u.Prefix += "/"
		}
		// Few retries: a client waits on the cache, and a cached tag is
		// served when the upstream does not answer.
		opts := remote.Options{NoDockerConfig: true, AuthFile: "/dev/null/none", UserAgent: "berth-registry-proxy",
			Retry: remote.RetryPolicy{MaxAttempts: 2, MaxElapsed: upstreamTimeout}}
		if p.Scheme == "http" {
			opts.InsecureRegistries = []string{p.Host}
		}
		user, pass, host := u.Username, u.Password, p.Host
		opts.Credentials = func(h string) (string, string, bool) { return user, pass, h == host && user != "" }
		client, err := remote.New(opts)
		if err != nil {
			return nil, err
		}
		c.ups = append(c.ups, upstream{Upstream: u, host: p.Host, client: client})
	}
	return c, nil
}

// Prefixed is the registry option (registry.Options.Partial) that lets
// the cache of ups store manifests before their blobs.
func Prefixed(ups []Upstream) func(name string) bool {
	return func(name string) bool {
		for _, u := range ups {
			p := u.Prefix
			if !strings.HasSuffix(p, "/") {
				p += "/"
			}
			if strings.HasPrefix(name, p) && len(name) > len(p) {
				return true
			}
		}
		return false
	}
}

func (c *Cache) upstreamFor(name string) (*upstream, bool) {
	for i := range c.ups {
		if strings.HasPrefix(name, c.ups[i].Prefix) && len(name) > len(c.ups[i].Prefix) {
			return &c.ups[i], true
		}
	}
	return nil, false
}

// ServeHTTP fills the cache for pulls under a proxied prefix, refuses
// pushes there, and hands everything to the local registry.
func (c *Cache) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	name, kind, ref, ok := parsePath(req.URL.Path)
	up, proxied := c.upstreamFor(name)
	if !proxied {
		c.local.ServeHTTP(w, req)
		return
	}
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		writeError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "repositories under "+up.Prefix+" are a read-only cache of "+up.URL)
		return
	}
	if !ok {
		c.local.ServeHTTP(w, req) // tags, referrers: what is cached
		return
	}
	var err error
	switch kind {
	case "manifests":
		err = c.fillManifest(req.Context(), up, name, ref)
	case "blobs":
		err = c.fillBlob(req.Context(), up, name, ref)
	}
	if err != nil && !errors.Is(err, errMissing) {
		writeError(w, http.StatusBadGateway, "UNKNOWN", "upstream "+up.URL+": "+err.Error())
		return
	}
	c.local.ServeHTTP(w, req)
}

// errMissing says the upstream does not have it either: the local
// registry then answers its usual 404.
var errMissing = errors.New("not found upstream")

// parsePath splits /v2/<name>/<kind>/<ref>; ok is true only for the
// manifests and blobs a pull fetches (not uploads, tags or referrers),
// but name is found for every repository endpoint.
func parsePath(p string) (name, kind, ref string, ok bool) {
	rest, found := strings.CutPrefix(p, "/v2/")
	if !found {
		return "", "", "", false
	}
	best, bestKind := -1, ""
	for _, k := range []string{"/manifests/", "/blobs/", "/tags/", "/referrers/"} {
		if i := strings.LastIndex(rest, k); i > best {
			best, bestKind = i, k
		}
	}
	if best <= 0 {
		return "", "", "", false
	}
	name, kind, ref = rest[:best], strings.Trim(bestKind, "/"), rest[best+len(bestKind):]
	ok = (kind == "manifests" || kind == "blobs") && ref != "" && !strings.Contains(ref, "/")
	return name, kind, ref, ok
}

func (u *upstream) ref(name string) reference.Reference {
	return reference.Reference{Domain: u.host, Path: strings.TrimPrefix(name, u.Prefix)}
}

// fillManifest makes sure the local registry holds the manifest ref
// names as the upstream has it now (or, upstream unreachable, as cached).
func (c *Cache) fillManifest(ctx context.Context, up *upstream, name, ref string) error {
	upRef := up.ref(name)
	d, err := digest.Parse(ref)
	if err == nil {
		if c.has(ctx, name, "manifests", ref) {
			return nil
		}
		upRef.Digest = d
	} else {
		upRef.Tag = ref
		lookup, cancel := context.WithTimeout(ctx, upstreamTimeout)
		desc, err := up.client.Resolve(lookup, upRef)
		cancel()
		switch {
		case err != nil && c.has(ctx, name, "manifests", ref):
			return nil // stale but there: better than nothing
		case err != nil:
			return upstreamError(err)
		case c.localDigest(ctx, name, ref) == desc.Digest:
			return nil
		}
	}
	desc, body, err := up.client.GetManifest(ctx, upRef)
	if err != nil {
		return upstreamError(err)
	}
	return c.store(ctx, "PUT", "/v2/"+name+"/manifests/"+ref, desc.MediaType, bytes.NewReader(body), http.StatusCreated)
}

// fillBlob makes sure the local registry holds the blob.
func (c *Cache) fillBlob(ctx context.Context, up *upstream, name, ref string) error {
	d, err := digest.Parse(ref)
	if err != nil || c.has(ctx, name, "blobs", ref) {
		return nil //nolint:nilerr // a bad digest: the local registry says so
	}
	size, err := up.client.BlobSize(ctx, up.ref(name), d)
	if err != nil {
		return upstreamError(err)
	}
	if size < 0 {
		return errMissing
	}
	rc, err := up.client.FetchBlob(ctx, up.ref(name), ocispec.Descriptor{Digest: d, Size: size})
	if err != nil {
		return upstreamError(err)
	}
	defer rc.Close()
	// The registry checks the digest as it stores: a corrupt transfer is
	// refused, not cached.
	return c.store(ctx, "POST", "/v2/"+name+"/blobs/uploads/?digest="+d.String(), "application/octet-stream", rc, http.StatusCreated)
}

// has asks the local registry (HEAD) whether it holds something.
func (c *Cache) has(ctx context.Context, name, kind, ref string) bool {
	rec := c.do(ctx, "HEAD", "/v2/"+name+"/"+kind+"/"+ref, "", nil)
	return rec.Code == http.StatusOK
}

// localDigest is the digest the local registry has for a tag, or "".
func (c *Cache) localDigest(ctx context.Context, name, tag string) digest.Digest {
	rec := c.do(ctx, "HEAD", "/v2/"+name+"/manifests/"+tag, "", nil)
	if rec.Code != http.StatusOK {
		return ""
	}
	return digest.Digest(rec.Header().Get("Docker-Content-Digest"))
}

// store writes through the local registry's own API, so everything it
// checks on a push is checked on what the cache keeps.
func (c *Cache) store(ctx context.Context, method, target, ctype string, body io.Reader, want int) error {
	rec := c.do(ctx, method, target, ctype, body)
	if rec.Code != want {
		return fmt.Errorf("cache %s: %d %s", target, rec.Code, strings.TrimSpace(rec.Body.String()))
	}
	return nil
}

func (c *Cache) do(ctx context.Context, method, target, ctype string, body io.Reader) *recorder {
	rec := &recorder{header: http.Header{}, Code: http.StatusOK}
	req, err := http.NewRequestWithContext(ctx, method, "http://cache"+target, body)
	if err != nil {
		rec.Code = http.StatusInternalServerError
		rec.Body.WriteString(err.Error())
		return rec
	}
	req.RequestURI = target
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	c.local.ServeHTTP(rec, req)
	return rec
}

// recorder is the answer of the local registry to a request of the
// cache: status, headers and a body, which are small (the cache stores
// blobs and manifests through it, and reads only statuses and headers).
type recorder struct {
	header http.Header
	Code   int
	Body   bytes.Buffer
	wrote  bool
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.Code, r.wrote = code, true
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.Body.Write(b)
}

// upstreamError turns a 404 upstream into errMissing.
func upstreamError(err error) error {
	var re *remote.ResponseError
	if errors.As(err, &re) && re.StatusCode == http.StatusNotFound {
		return errMissing
	}
	return err
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"errors":[{"code":%q,"message":%q}]}`+"\n", code, msg)
}
