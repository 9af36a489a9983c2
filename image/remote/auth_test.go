package remote

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/opencontainers/go-digest"
)

// tokenAuth puts a fake registry behind bearer auth with a token server
// at /token on the same host. Tokens name the scopes they grant; each
// request needs pull (or pull,push to write) on its repository, and a
// mount needs pull on its source too.
type tokenAuth struct {
	f *fakeRegistry
	// answer writes the token server's reply for granted scopes.
	answer func(w http.ResponseWriter, r *http.Request, granted string)

	mu       sync.Mutex
	requests []string // the scopes of each token request, space-separated
	authz    []string // the Authorization of each token request
}

func newTokenAuth(t *testing.T) *tokenAuth {
	ta := &tokenAuth{f: newFakeRegistry(t)}
	ta.answer = func(w http.ResponseWriter, _ *http.Request, granted string) {
		fmt.Fprintf(w, `{"token":%q}`, granted)
	}
	ta.f.hook = ta.serve
	return ta
}

func grant(scopes string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("granted:" + scopes))
}

func (ta *tokenAuth) serve(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.Path == "/token" {
		var scopes []string
		if r.Method == http.MethodPost {
			_ = r.ParseForm()
			scopes = strings.Fields(r.PostForm.Get("scope"))
		} else {
			scopes = r.URL.Query()["scope"]
		}
		s := strings.Join(scopes, " ")
		ta.mu.Lock()
		ta.requests = append(ta.requests, s)
		ta.authz = append(ta.authz, r.Header.Get("Authorization"))
		ta.mu.Unlock()
		ta.answer(w, r, grant(s))
		return true
	}
	if r.URL.Path == "/v2/" {
		return false
	}
	repo, _, _, _ := split(r.URL.Path)
	need := []string{"repository:" + repo + ":pull"}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		need[0] += ",push"
	}
	if from := r.URL.Query().Get("from"); from != "" {
		need = append(need, "repository:"+from+":pull")
	}
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	granted, _ := base64.RawURLEncoding.DecodeString(tok)
	have, _ := strings.CutPrefix(string(granted), "granted:")
	for _, n := range need {
		if !slices.Contains(strings.Fields(have), n) {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="fake",scope=%q`, ta.f.srv.URL, need[0]))
			writeErr(w, http.StatusUnauthorized, "UNAUTHORIZED")
			return true
		}
	}
	return false
}

func (ta *tokenAuth) tokenRequests() []string {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	return slices.Clone(ta.requests)
}

// TestTokenScopes: one token per set of scopes, asked for once and
// reused; writes ask for pull,push, mounts for the source's pull in the
// same token.
func TestTokenScopes(t *testing.T) {
	ta := newTokenAuth(t)
	f := ta.f
	ctx := context.Background()
	c := testClient(t, Options{})
	data := []byte("layer")
	d := f.putBlob("a/b", data)

	var want []string
	step := func(name string, newTokens ...string) {
		t.Helper()
		want = append(want, newTokens...)
		if got := ta.tokenRequests(); !slices.Equal(got, want) {
			t.Fatalf("after %s: token requests %q, want %q", name, got, want)
		}
	}
	for range 2 {
		if ok, err := c.BlobExists(ctx, f.ref("a/b", ""), d); err != nil || !ok {
			t.Fatalf("BlobExists(a/b) = %v, %v", ok, err)
		}
	}
	step("two pulls of a/b", "repository:a/b:pull")
	if ok, err := c.BlobExists(ctx, f.ref("c/d", ""), d); err != nil || ok {
		t.Fatalf("BlobExists(c/d) = %v, %v", ok, err)
	}
	step("a pull of c/d", "repository:c/d:pull")
	if _, err := c.BlobExists(ctx, f.ref("a/b", ""), d); err != nil {
		t.Fatal(err)
	}
	step("a third pull of a/b")

	other := []byte("other")
	if err := c.PushBlob(ctx, f.ref("a/b", ""), descOf(other), bytes.NewReader(other)); err != nil {
		t.Fatalf("PushBlob: %v", err)
	}
	step("a push to a/b", "repository:a/b:pull,push")

	if ok, err := c.MountBlob(ctx, f.ref("c/d", ""), f.ref("a/b", ""), d); err != nil || !ok {
		t.Fatalf("MountBlob = %v, %v", ok, err)
	}
	step("a mount from a/b into c/d", "repository:a/b:pull repository:c/d:pull,push")
	if ok, err := c.MountBlob(ctx, f.ref("c/d", ""), f.ref("a/b", ""), digest.FromBytes(other)); err != nil || !ok {
		t.Fatalf("second MountBlob = %v, %v", ok, err)
	}
	step("a second mount")

	// Without scopes in the context, the challenge's scope is asked for.
	req, err := http.NewRequest(http.MethodHead, f.srv.URL+"/v2/e/f/blobs/"+d.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.authc.Load().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("HEAD e/f = %d, want 404 once authorized", resp.StatusCode)
	}
	step("a request without scopes", "repository:e/f:pull")

	// An expired (refused) token is replaced, once.
	c2 := testClient(t, Options{})
	c2.authc.Load().cache.headers[cacheKey(f.host(), schemeBearer, "repository:a/b:pull")] = "Bearer expired"
	c2.authc.Load().cache.schemes[f.host()] = schemeBearer
	if _, err := c2.BlobExists(ctx, f.ref("a/b", ""), d); err != nil {
		t.Fatalf("BlobExists with an expired token: %v", err)
	}
	step("a pull with an expired token", "repository:a/b:pull")

	// The same when only the challenge names the scope of the expired
	// token: it is tried, refused, and replaced.
	c3 := testClient(t, Options{})
	c3.authc.Load().cache.headers[cacheKey(f.host(), schemeBearer, "repository:a/b:pull")] = "Bearer expired"
	c3.authc.Load().cache.schemes[f.host()] = schemeBearer
	req, err = http.NewRequest(http.MethodHead, f.srv.URL+"/v2/a/b/blobs/"+d.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err = c3.authc.Load().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD a/b with an expired cached token = %d, want 200", resp.StatusCode)
	}
	step("a request whose challenge names an expired token's scope", "repository:a/b:pull")

	ta.mu.Lock()
	defer ta.mu.Unlock()
	for _, a := range ta.authz {
		if a != "" {
			t.Fatalf("anonymous token request sent Authorization %q", a)
		}
	}
}

// TestTokenCredentials: the token request carries the user's basic
// credentials; an identity token is traded with an OAuth2 POST; either
// answer field is accepted; a registry token is used as it is.
func TestTokenCredentials(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name  string
		entry string
		check func(r *http.Request) error
		field string
	}{
		{"basic", `{"auth":"` + b64("alice:secret") + `"}`, func(r *http.Request) error {
			if u, p, _ := r.BasicAuth(); r.Method != http.MethodGet || u != "alice" || p != "secret" || r.URL.Query().Get("service") != "fake" {
				return fmt.Errorf("%s with user %q", r.Method, u)
			}
			return nil
		}, "token"},
		{"access_token", `{"auth":"` + b64("alice:secret") + `"}`, func(*http.Request) error { return nil }, "access_token"},
		{"identity token", `{"identitytoken":"refresh-1"}`, func(r *http.Request) error {
			if r.Method != http.MethodPost || r.Header.Get("Authorization") != "" {
				return fmt.Errorf("%s, Authorization %q", r.Method, r.Header.Get("Authorization"))
			}
			f := r.PostForm
			if f.Get("grant_type") != "refresh_token" || f.Get("refresh_token") != "refresh-1" ||
				f.Get("service") != "fake" || f.Get("client_id") != oauthClientID || f.Get("scope") != "repository:a/b:pull" {
				return fmt.Errorf("form %v", f)
			}
			return nil
		}, "access_token"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ta := newTokenAuth(t)
			var bad atomic.Value
			ta.answer = func(w http.ResponseWriter, r *http.Request, granted string) {
				if err := tt.check(r); err != nil {
					bad.Store(err.Error())
					writeErr(w, http.StatusUnauthorized, "UNAUTHORIZED")
					return
				}
				fmt.Fprintf(w, `{%q:%q}`, tt.field, granted)
			}
			authFile := filepath.Join(t.TempDir(), "auth.json")
			if err := os.WriteFile(authFile, []byte(`{"auths":{"`+ta.f.host()+`":`+tt.entry+`}}`), 0o600); err != nil {
				t.Fatal(err)
			}
			c := testClient(t, Options{AuthFile: authFile})
			d := ta.f.putBlob("a/b", []byte("x"))
			if ok, err := c.BlobExists(ctx, ta.f.ref("a/b", ""), d); err != nil || !ok {
				t.Fatalf("BlobExists = %v, %v (token server saw: %v)", ok, err, bad.Load())
			}
		})
	}

	t.Run("registry token", func(t *testing.T) {
		ta := newTokenAuth(t)
		authFile := filepath.Join(t.TempDir(), "auth.json")
		entry := `{"registrytoken":"` + grant("repository:a/b:pull") + `"}`
		if err := os.WriteFile(authFile, []byte(`{"auths":{"`+ta.f.host()+`":`+entry+`}}`), 0o600); err != nil {
			t.Fatal(err)
		}
		c := testClient(t, Options{AuthFile: authFile})
		d := ta.f.putBlob("a/b", []byte("x"))
		if ok, err := c.BlobExists(ctx, ta.f.ref("a/b", ""), d); err != nil || !ok {
			t.Fatalf("BlobExists = %v, %v", ok, err)
		}
		if n := len(ta.tokenRequests()); n != 0 {
			t.Fatalf("%d token requests with a registry token, want 0", n)
		}
	})
}

// TestStorageChallenge: a 401 from the storage host a blob redirects to
// is not answered with the registry's credentials or a token.
func TestStorageChallenge(t *testing.T) {
	var storageAuth atomic.Value
	storageAuth.Store("")
	var storageHits atomic.Int32
	storage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		storageHits.Add(1)
		storageAuth.Store(r.Header.Get("Authorization"))
		w.Header().Set("WWW-Authenticate", `Basic realm="storage"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(storage.Close)
	ta := newTokenAuth(t)
	inner := ta.f.hook
	ta.f.hook = func(w http.ResponseWriter, r *http.Request) bool {
		if inner(w, r) {
			return true
		}
		if strings.Contains(r.URL.Path, "/blobs/") {
			http.Redirect(w, r, storage.URL+"/blob", http.StatusTemporaryRedirect)
			return true
		}
		return false
	}
	c := testClient(t, Options{})
	data := []byte("x")
	_, err := c.FetchBlob(context.Background(), ta.f.ref("a/b", ""), descOf(data))
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("FetchBlob = %v, want the storage's unauthorized", err)
	}
	if n := storageHits.Load(); n != 1 {
		t.Fatalf("storage saw %d requests, want 1", n)
	}
	if a := storageAuth.Load().(string); a != "" {
		t.Fatalf("registry token sent to the storage host: %q", a)
	}
	if got := ta.tokenRequests(); !slices.Equal(got, []string{"repository:a/b:pull"}) {
		t.Fatalf("token requests %q", got)
	}
}

// TestChallengeBodyOnce: a request whose body cannot be produced again is
// not sent twice; the caller gets an error.
func TestChallengeBodyOnce(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("WWW-Authenticate", `Basic realm="r"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(srv.Close)
	a := newAuthorizer(srv.Client(), "test", func(context.Context, string) (credential, error) {
		return credential{Username: "u", Password: "p"}, nil
	})
	req, err := http.NewRequest(http.MethodPatch, srv.URL+"/v2/a/blobs/uploads/1", io.NopCloser(strings.NewReader("data")))
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := a.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("Do = %d, want an error", resp.StatusCode)
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
}

// TestBasicNoCredentials: a basic challenge without credentials is
// unauthorized, without a second request.
func TestBasicNoCredentials(t *testing.T) {
	f := newFakeRegistry(t)
	f.hook = func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("WWW-Authenticate", `Basic realm="r"`)
		writeErr(w, http.StatusUnauthorized, "UNAUTHORIZED")
		return true
	}
	c := testClient(t, Options{})
	if _, err := c.BlobExists(context.Background(), f.ref("a/b", ""), digest.FromString("x")); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("BlobExists = %v, want unauthorized", err)
	}
	if n := f.requests("HEAD"); n != 1 {
		t.Fatalf("%d HEADs, want 1", n)
	}
}
