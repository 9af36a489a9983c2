package remote

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-containers/berth/image/mediatype"
	"github.com/berth-containers/berth/internal/errdefs"
)

func descOf(b []byte) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: "application/octet-stream", Digest: digest.FromBytes(b), Size: int64(len(b))}
}

func TestPushBlobChunked(t *testing.T) {
	for _, tt := range []struct {
		name   string
		reader func([]byte) io.Reader
	}{
		{"stream", func(b []byte) io.Reader { return streamOnly{bytes.NewReader(b)} }},
		{"readerat", func(b []byte) io.Reader { return bytes.NewReader(b) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeRegistry(t)
			c := testClient(t, Options{ChunkSize: 100})
			data := patterned(250, 1)
			desc := descOf(data)
			if err := c.PushBlob(context.Background(), f.ref("a/b", ""), desc, tt.reader(data)); err != nil {
				t.Fatal(err)
			}
			if got, ok := f.blob("a/b", desc.Digest); !ok || !bytes.Equal(got, data) {
				t.Fatalf("registry has %d bytes (%v), want the 250 pushed", len(got), ok)
			}
			if want := []string{"0-99", "100-199", "200-249"}; !reflect.DeepEqual(f.ranges, want) {
				t.Fatalf("Content-Range headers = %v, want %v", f.ranges, want)
			}
			if n := f.requests("PUT"); n != 1 {
				t.Fatalf("%d PUTs, want 1", n)
			}
		})
	}
}

func TestPushBlobMonolithic(t *testing.T) {
	f := newFakeRegistry(t)
	c := testClient(t, Options{ChunkSize: 100})
	for _, data := range [][]byte{patterned(100, 2), {}} {
		desc := descOf(data)
		if err := c.PushBlob(context.Background(), f.ref("a/b", ""), desc, streamOnly{bytes.NewReader(data)}); err != nil {
			t.Fatalf("push %d bytes: %v", len(data), err)
		}
		if got, ok := f.blob("a/b", desc.Digest); !ok || !bytes.Equal(got, data) {
			t.Fatalf("registry has %d bytes (%v), want %d", len(got), ok, len(data))
		}
	}
	if n := f.requests("PATCH"); n != 0 {
		t.Fatalf("%d PATCHes for blobs within the monolithic limit", n)
	}
	// A short reader fails instead of pushing a truncated blob.
	data := patterned(80, 3)
	err := c.PushBlob(context.Background(), f.ref("a/b", ""), descOf(data), streamOnly{bytes.NewReader(data[:50])})
	if err == nil {
		t.Fatal("push from a short reader succeeded")
	}
	// Wrong content is refused by the registry and reported.
	desc := descOf(data)
	err = c.PushBlob(context.Background(), f.ref("a/b", ""), desc, bytes.NewReader(patterned(80, 4)))
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("push of mismatched content: %v, want a 400 invalid argument", err)
	}
}

func TestMount(t *testing.T) {
	f := newFakeRegistry(t)
	c := testClient(t, Options{})
	ctx := context.Background()
	data := patterned(300, 5)
	desc := descOf(data)
	f.putBlob("src/repo", data)

	ok, err := c.MountBlob(ctx, f.ref("dst/repo", ""), f.ref("src/repo", ""), desc.Digest)
	if err != nil || !ok {
		t.Fatalf("MountBlob = %v, %v; want mounted", ok, err)
	}
	if _, ok := f.blob("dst/repo", desc.Digest); !ok {
		t.Fatal("blob not in the target after mount")
	}

	// A source without the blob: the registry opens a session instead,
	// which MountBlob cancels.
	other := patterned(200, 6)
	ok, err = c.MountBlob(ctx, f.ref("dst/repo", ""), f.ref("nowhere", ""), digest.FromBytes(other))
	if err != nil || ok {
		t.Fatalf("MountBlob from a repository without the blob = %v, %v", ok, err)
	}
	if n := f.requests("DELETE"); n != 1 {
		t.Fatalf("%d DELETEs of the refused mount's session, want 1", n)
	}

	// MountOrPushBlob uploads through the session the refused mount opened.
	posts := f.requests("POST")
	ok, err = c.MountOrPushBlob(ctx, f.ref("dst/repo", ""), f.ref("nowhere", ""), descOf(other), bytes.NewReader(other))
	if err != nil || ok {
		t.Fatalf("MountOrPushBlob = %v, %v; want pushed", ok, err)
	}
	if got, _ := f.blob("dst/repo", digest.FromBytes(other)); !bytes.Equal(got, other) {
		t.Fatal("blob not pushed after the refused mount")
	}
	if n := f.requests("POST") - posts; n != 1 {
		t.Fatalf("%d POSTs for mount-or-push, want 1 (the session is reused)", n)
	}

	// Another registry: no mount, and no request.
	before := len(f.log)
	foreign := f.ref("src/repo", "")
	foreign.Domain = "elsewhere.example"
	if ok, err := c.MountBlob(ctx, f.ref("dst/repo", ""), foreign, desc.Digest); ok || err != nil || len(f.log) != before {
		t.Fatalf("cross-registry MountBlob = %v, %v after %d requests", ok, err, len(f.log)-before)
	}
}

func TestRetries(t *testing.T) {
	f := newFakeRegistry(t)
	c := testClient(t, Options{})
	ctx := context.Background()
	d := f.putManifest("a/b", "v1", ocispec.MediaTypeImageManifest, []byte(`{"schemaVersion":2}`))
	var failures atomic.Int32
	f.hook = func(w http.ResponseWriter, r *http.Request) bool {
		if failures.Add(-1) >= 0 {
			if r.Method == http.MethodHead {
				w.Header().Set("Retry-After", "0")
				w.WriteHeader(http.StatusTooManyRequests)
			} else {
				writeErr(w, http.StatusServiceUnavailable, "UNAVAILABLE")
			}
			return true
		}
		return false
	}

	failures.Store(2)
	desc, err := c.Resolve(ctx, f.ref("a/b", "v1"))
	if err != nil || desc.Digest != d {
		t.Fatalf("Resolve after two 429s = %v, %v", desc, err)
	}
	if n := f.requests("HEAD"); n != 3 {
		t.Fatalf("%d HEADs, want 3", n)
	}

	// Bounded: four attempts, then the last error.
	failures.Store(100)
	_, _, err = c.GetManifest(ctx, f.ref("a/b", "v1"))
	var re *ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("GetManifest against a failing registry: %v", err)
	}
	if n := f.requests("GET /v2/a/b/manifests"); n != 4 {
		t.Fatalf("%d GETs, want MaxAttempts = 4", n)
	}

	// POST is not idempotent: one try.
	failures.Store(100)
	posts := f.requests("POST")
	if err := c.PushBlob(ctx, f.ref("a/b", ""), descOf([]byte("x")), strings.NewReader("x")); err == nil {
		t.Fatal("PushBlob succeeded against a failing registry")
	}
	if n := f.requests("POST") - posts; n != 1 {
		t.Fatalf("%d POSTs, want 1", n)
	}

	// A dropped connection is retried.
	failures.Store(0)
	var drops atomic.Int32
	drops.Store(1)
	f.hook = func(w http.ResponseWriter, r *http.Request) bool {
		if drops.Add(-1) >= 0 {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return true
		}
		return false
	}
	if _, _, err := c.GetManifest(ctx, f.ref("a/b", "v1")); err != nil {
		t.Fatalf("GetManifest after a dropped connection: %v", err)
	}
}

func TestFetchBlobRedirect(t *testing.T) {
	data := patterned(5000, 7)
	var sawAuth atomic.Value
	sawAuth.Store("")
	storage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawAuth.Store(r.Header.Get("Authorization"))
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
	}))
	t.Cleanup(storage.Close)
	f := newFakeRegistry(t)
	f.hook = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("Authorization") != "Basic "+base64.StdEncoding.EncodeToString([]byte("u:p")) {
			w.Header().Set("WWW-Authenticate", `Basic realm="fake"`)
			writeErr(w, http.StatusUnauthorized, "UNAUTHORIZED")
			return true
		}
		if strings.Contains(r.URL.Path, "/blobs/") {
			http.Redirect(w, r, storage.URL+"/bucket/blob?sig=1", http.StatusTemporaryRedirect)
			return true
		}
		return false
	}
	c := testClient(t, Options{})
	if err := c.Login(context.Background(), f.host(), "u", "p"); err != nil {
		t.Fatal(err)
	}
	rc, err := c.FetchBlob(context.Background(), f.ref("a/b", ""), descOf(data))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, %v", len(got), err)
	}
	if a := sawAuth.Load().(string); a != "" {
		t.Fatalf("credentials leaked to the storage host: %q", a)
	}
}

func TestFetchBlobResume(t *testing.T) {
	data := patterned(100000, 8)
	for _, honourRange := range []bool{true, false} {
		t.Run(fmt.Sprintf("range=%v", honourRange), func(t *testing.T) {
			f := newFakeRegistry(t)
			d := f.putBlob("a/b", data)
			var cuts atomic.Int32
			cuts.Store(2)
			f.hook = func(w http.ResponseWriter, r *http.Request) bool {
				if !strings.Contains(r.URL.Path, "/blobs/") {
					return false
				}
				if !honourRange {
					r.Header.Del("Range")
				}
				if cuts.Add(-1) < 0 {
					return false
				}
				// Send a third of what is asked for, then drop the connection.
				start := 0
				if rg := r.Header.Get("Range"); rg != "" {
					_, _ = fmt.Sscanf(rg, "bytes=%d-", &start)
					w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(data)-1, len(data)))
					w.Header().Set("Content-Length", fmt.Sprint(len(data)-start))
					w.WriteHeader(http.StatusPartialContent)
				} else {
					w.Header().Set("Content-Length", fmt.Sprint(len(data)))
					w.WriteHeader(http.StatusOK)
				}
				_, _ = w.Write(data[start : start+(len(data)-start)/3])
				w.(http.Flusher).Flush()
				if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
					conn.Close()
				}
				return true
			}
			c := testClient(t, Options{})
			rc, err := c.FetchBlob(context.Background(), f.ref("a/b", ""), descOf(data))
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err != nil || digest.FromBytes(got) != d {
				t.Fatalf("read %d bytes, %v; want the whole blob", len(got), err)
			}
			if n := f.requests("GET"); n != 3 {
				t.Fatalf("%d GETs, want 3 (two resumes)", n)
			}
		})
	}

	t.Run("bounded", func(t *testing.T) {
		f := newFakeRegistry(t)
		f.putBlob("a/b", data)
		f.hook = func(w http.ResponseWriter, r *http.Request) bool {
			if !strings.Contains(r.URL.Path, "/blobs/") {
				return false
			}
			w.Header().Set("Content-Length", fmt.Sprint(len(data)))
			_, _ = w.Write(data[:10])
			w.(http.Flusher).Flush()
			if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
				conn.Close()
			}
			return true
		}
		c := testClient(t, Options{MaxResumes: 2})
		rc, err := c.FetchBlob(context.Background(), f.ref("a/b", ""), descOf(data))
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		if _, err := io.ReadAll(rc); err == nil {
			t.Fatal("a blob that never arrives read without error")
		}
		if n := f.requests("GET"); n != 3 {
			t.Fatalf("%d GETs, want 1 + MaxResumes = 3", n)
		}
	})

	t.Run("length", func(t *testing.T) {
		f := newFakeRegistry(t)
		f.putBlob("a/b", data)
		c := testClient(t, Options{})
		desc := descOf(data)
		desc.Size--
		if _, err := c.FetchBlob(context.Background(), f.ref("a/b", ""), desc); err == nil {
			t.Fatal("a blob longer than its descriptor was accepted")
		}
	})
}

// TestBearerChallenge checks that the client answers a bearer challenge
// with a token request carrying its scopes and credentials, and reuses the
// token.
func TestBearerChallenge(t *testing.T) {
	f := newFakeRegistry(t)
	var tokenRequests atomic.Int32
	var lastScope atomic.Value
	f.hook = func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/token" {
			tokenRequests.Add(1)
			u, p, _ := r.BasicAuth()
			if u != "alice" || p != "secret" || r.URL.Query().Get("service") != "fake" {
				writeErr(w, http.StatusUnauthorized, "UNAUTHORIZED")
				return true
			}
			scope := strings.Join(r.URL.Query()["scope"], " ")
			lastScope.Store(scope)
			fmt.Fprintf(w, `{"token":%q}`, base64.RawURLEncoding.EncodeToString([]byte("granted:"+scope)))
			return true
		}
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		granted, _ := base64.RawURLEncoding.DecodeString(tok)
		need := "repository:a/b:pull"
		if r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch {
			need = "repository:a/b:pull,push"
		}
		challenge := fmt.Sprintf(`Bearer realm="%s/token",service="fake",scope="%s"`, f.srv.URL, need)
		if r.URL.Path == "/v2/" {
			need, challenge = "", fmt.Sprintf(`Bearer realm="%s/token",service="fake"`, f.srv.URL)
		}
		if !strings.HasPrefix(string(granted), "granted:") || !strings.Contains(string(granted), need) {
			w.Header().Set("WWW-Authenticate", challenge)
			writeErr(w, http.StatusUnauthorized, "UNAUTHORIZED")
			return true
		}
		return false
	}
	ctx := context.Background()
	c := testClient(t, Options{})
	data := []byte("hello")
	f.putBlob("a/b", data)

	// No credentials: the token server refuses, and the error says so.
	if _, err := c.BlobExists(ctx, f.ref("a/b", ""), digest.FromBytes(data)); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("BlobExists without credentials: %v, want unauthorized", err)
	}
	if err := c.Login(ctx, f.host(), "alice", "secret"); err != nil {
		t.Fatal(err)
	}
	tokenRequests.Store(0)
	for i := 0; i < 3; i++ {
		ok, err := c.BlobExists(ctx, f.ref("a/b", ""), digest.FromBytes(data))
		if err != nil || !ok {
			t.Fatalf("BlobExists = %v, %v", ok, err)
		}
	}
	if n := tokenRequests.Load(); n != 1 {
		t.Fatalf("%d token requests for three pulls, want 1 (cached)", n)
	}
	if s := lastScope.Load(); s != "repository:a/b:pull" {
		t.Fatalf("token scope = %q", s)
	}
	// Pushing needs push too: one more token, for both actions at once.
	big := patterned(250, 9)
	c2 := testClient(t, Options{AuthFile: c.AuthFile(), ChunkSize: 100})
	if err := c2.PushBlob(ctx, f.ref("a/b", ""), descOf(big), streamOnly{bytes.NewReader(big)}); err != nil {
		t.Fatal(err)
	}
	if s := lastScope.Load(); s != "repository:a/b:pull,push" {
		t.Fatalf("push token scope = %q", s)
	}
	if err := c.Login(ctx, f.host(), "alice", "wrong"); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("Login with a wrong password: %v, want unauthorized", err)
	}
}

func TestManifestChecks(t *testing.T) {
	f := newFakeRegistry(t)
	c := testClient(t, Options{})
	ctx := context.Background()
	body := []byte(`{"schemaVersion":2,"mediaType":"` + ocispec.MediaTypeImageIndex + `","manifests":[]}`)
	d := f.putManifest("a/b", "v1", ocispec.MediaTypeImageIndex, body)

	desc, err := c.Resolve(ctx, f.ref("a/b", "v1"))
	if err != nil || desc.Digest != d || desc.Size != int64(len(body)) || desc.MediaType != ocispec.MediaTypeImageIndex {
		t.Fatalf("Resolve = %+v, %v", desc, err)
	}
	if got, err := c.FetchManifest(ctx, f.ref("a/b", ""), desc); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("FetchManifest = %q, %v", got, err)
	}
	if _, err := c.Resolve(ctx, f.ref("a/b", "nope")); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Resolve of a missing tag: %v, want not found", err)
	}
	wrong := desc
	wrong.Size++
	if _, err := c.FetchManifest(ctx, f.ref("a/b", ""), wrong); err == nil {
		t.Fatal("FetchManifest accepted a size mismatch")
	}
	wrong = desc
	wrong.Size = mediatype.MaxManifestSize + 1
	if _, err := c.FetchManifest(ctx, f.ref("a/b", ""), wrong); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("FetchManifest of an oversized descriptor: %v", err)
	}

	// A registry that lies about the digest, and one that answers HEAD
	// without one (Resolve then falls back to GET).
	f.hook = func(w http.ResponseWriter, r *http.Request) bool {
		switch {
		case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/manifests/liar"):
			w.Header().Set("Docker-Content-Digest", digest.FromString("other").String())
			_, _ = w.Write(body)
			return true
		case strings.HasSuffix(r.URL.Path, "/manifests/bare"):
			w.Header().Set("Content-Type", "application/json")
			if r.Method == http.MethodGet {
				_, _ = w.Write(body)
			}
			return true
		case strings.HasSuffix(r.URL.Path, "/manifests/huge"):
			_, _ = w.Write(bytes.Repeat([]byte(" "), mediatype.MaxManifestSize+10))
			return true
		}
		return false
	}
	if _, _, err := c.GetManifest(ctx, f.ref("a/b", "liar")); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("GetManifest with a wrong Docker-Content-Digest: %v", err)
	}
	desc, err = c.Resolve(ctx, f.ref("a/b", "bare"))
	if err != nil || desc.Digest != d || desc.MediaType != ocispec.MediaTypeImageIndex {
		t.Fatalf("Resolve through GET = %+v, %v", desc, err)
	}
	if _, _, err := c.GetManifest(ctx, f.ref("a/b", "huge")); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("GetManifest of a huge body: %v", err)
	}
	f.hook = nil

	// Push, then list tags over two pages.
	pushed, err := c.PushManifest(ctx, f.ref("a/b", "v2"), ocispec.MediaTypeImageIndex, body)
	if err != nil || pushed.Digest != d {
		t.Fatalf("PushManifest = %+v, %v", pushed, err)
	}
	f.hook = func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasSuffix(r.URL.Path, "/tags/list") && r.URL.Query().Get("last") == "" {
			w.Header().Set("Link", `</v2/a/b/tags/list?last=v1&n=1>; rel="next"`)
			fmt.Fprint(w, `{"name":"a/b","tags":["v0"]}`)
			return true
		}
		return false
	}
	tags, err := c.Tags(ctx, f.ref("a/b", ""))
	if err != nil || len(tags) != 3 || tags[0] != "v0" {
		t.Fatalf("Tags = %v, %v", tags, err)
	}
}

// TestTLS: loopback registries are tried over HTTPS first (without
// verification, as docker treats them insecure) and over HTTP when HTTPS
// fails; other hosts are verified.
func TestTLS(t *testing.T) {
	var sawTLS atomic.Bool
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawTLS.Store(r.TLS != nil)
		writeErr(w, http.StatusNotFound, "NAME_UNKNOWN")
	}))
	t.Cleanup(srv.Close)
	c := testClient(t, Options{})
	ref := testRef(strings.TrimPrefix(srv.URL, "https://"), "a")
	if _, err := c.Tags(context.Background(), ref); !errors.Is(err, errdefs.ErrNotFound) || !sawTLS.Load() {
		t.Fatalf("Tags over TLS: %v (TLS seen: %v)", err, sawTLS.Load())
	}

	plain := newFakeRegistry(t)
	if _, err := c.Tags(context.Background(), plain.ref("a", "")); err != nil {
		t.Fatalf("Tags over the HTTP fallback: %v", err)
	}

	// Verification: the test server's certificate is unknown to the
	// system roots and known to a pool holding it.
	get := func(tr http.RoundTripper) error {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v2/", nil)
		resp, err := tr.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	var unknown x509.UnknownAuthorityError
	var verr *x509.CertificateInvalidError
	if err := get(newTransport(Options{}, false)); err == nil || (!errors.As(err, &unknown) && !errors.As(err, &verr) && !strings.Contains(err.Error(), "certificate")) {
		t.Fatalf("unverified certificate accepted: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	if err := get(newTransport(Options{RootCAs: pool}, false)); err != nil {
		t.Fatalf("trusted certificate refused: %v", err)
	}
}
