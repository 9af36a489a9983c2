package auth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
)

func TestRequired(t *testing.T) {
	for _, tc := range []struct {
		method, target string
		want           string
	}{
		{"GET", "/v2/", ""},
		{"GET", "/v2/_catalog", "registry:catalog:*"},
		{"GET", "/v2/team/app/manifests/v1", "repository:team/app:pull"},
		{"HEAD", "/v2/app/blobs/sha256:aa", "repository:app:pull"},
		{"PUT", "/v2/app/manifests/v1", "repository:app:push"},
		{"PATCH", "/v2/app/blobs/uploads/123", "repository:app:push"},
		{"DELETE", "/v2/app/manifests/sha256:aa", "repository:app:delete"},
		{"GET", "/v2/a/tags/list", "repository:a:pull"},
		{"GET", "/v2/a/referrers/sha256:aa", "repository:a:pull"},
		{"POST", "/v2/dst/blobs/uploads/?mount=sha256:aa&from=src", "repository:dst:push repository:src:pull"},
		{"GET", "/v2/manifests/blobs/x", "repository:manifests:pull"},
	} {
		need, known := Required(httptest.NewRequest(tc.method, tc.target, nil))
		require.True(t, known, tc.target)
		var got []string
		for _, a := range need {
			got = append(got, a.String())
		}
		assert.Equal(t, tc.want, strings.Join(got, " "), "%s %s", tc.method, tc.target)
	}
	_, known := Required(httptest.NewRequest("GET", "/metrics", nil))
	assert.False(t, known)
}

func TestParseScope(t *testing.T) {
	a, ok := ParseScope("repository:host:5000/app:pull,push")
	require.True(t, ok)
	assert.Equal(t, Access{Type: "repository", Name: "host:5000/app", Actions: []string{"pull", "push"}}, a)
	for _, bad := range []string{"", "repository", "repository:app", "repository:app:"} {
		_, ok := ParseScope(bad)
		assert.False(t, ok, bad)
	}
}

func TestPolicy(t *testing.T) {
	p := Policy{Rules: []Rule{
		{Users: []string{"alice"}, Repositories: []string{"team/*"}, Actions: []string{Pull, Push}},
		{Users: []string{Anyone}, Repositories: []string{"public"}, Actions: []string{Pull}},
		{Users: []string{Anonymous}, Repositories: []string{"open"}, Actions: []string{Pull}},
		{Users: []string{"root"}, Repositories: []string{"**"}, Actions: []string{"*"}},
	}}
	require.NoError(t, p.Check())
	want := Access{Type: "repository", Name: "team/app", Actions: []string{Pull, Push, Delete}}
	assert.Equal(t, []string{Pull, Push}, p.Grant("alice", want).Actions)
	assert.Empty(t, p.Grant("bob", want).Actions)
	assert.Equal(t, []string{Pull}, p.Grant("bob", Access{Type: "repository", Name: "public", Actions: []string{Pull, Push}}).Actions)
	assert.Empty(t, p.Grant(Anonymous, Access{Type: "repository", Name: "public", Actions: []string{Pull}}).Actions, "Anyone means authenticated")
	assert.Equal(t, []string{Pull}, p.Grant(Anonymous, Access{Type: "repository", Name: "open", Actions: []string{Pull}}).Actions)
	assert.Empty(t, p.Grant("alice", Access{Type: "repository", Name: "team/a/b", Actions: []string{Pull}}).Actions, "* is one level")
	assert.Equal(t, []string{Pull, Push, Delete}, p.Grant("root", want).Actions)
	catalog := Access{Type: "registry", Name: "catalog", Actions: []string{"*"}}
	assert.Equal(t, []string{"*"}, p.Grant("root", catalog).Actions)
	assert.Empty(t, p.Grant("alice", catalog).Actions)

	assert.Error(t, Policy{Rules: []Rule{{Users: []string{"a"}, Repositories: []string{"x"}, Actions: []string{"write"}}}}.Check())
	assert.Error(t, Policy{Rules: []Rule{{Users: []string{"a"}, Repositories: []string{"["}, Actions: []string{Pull}}}}.Check())
	assert.Error(t, Policy{Rules: []Rule{{Users: []string{"a"}}}}.Check())
}

func htpasswdFor(t *testing.T, users map[string]string) *Htpasswd {
	t.Helper()
	var b strings.Builder
	b.WriteString("# users\n")
	for u, p := range users {
		h, err := bcrypt.GenerateFromPassword([]byte(p), bcrypt.MinCost)
		require.NoError(t, err)
		b.WriteString(u + ":" + string(h) + "\n")
	}
	h, err := ParseHtpasswd([]byte(b.String()))
	require.NoError(t, err)
	return h
}

func TestHtpasswd(t *testing.T) {
	h := htpasswdFor(t, map[string]string{"alice": "s3cret"})
	assert.True(t, h.Check("alice", "s3cret"))
	assert.False(t, h.Check("alice", "wrong"))
	assert.False(t, h.Check("bob", "s3cret"))
	_, err := ParseHtpasswd([]byte("carol:{SHA}abc=\n"))
	assert.ErrorContains(t, err, "only bcrypt")
	_, err = ParseHtpasswd([]byte("nocolon\n"))
	assert.ErrorContains(t, err, "user:hash")
}

func TestSigner(t *testing.T) {
	s, err := GenerateSigner("issuer", "svc")
	require.NoError(t, err)
	access := []Access{{Type: "repository", Name: "app", Actions: []string{Pull}}}
	tok, exp, err := s.Issue("alice", access)
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now().Add(TokenTTL), exp, 5*time.Second)
	user, got, err := s.Verify(tok)
	require.NoError(t, err)
	assert.Equal(t, "alice", user)
	assert.Equal(t, access, got)

	// Tampered payload, another key, another audience, expired: refused.
	parts := strings.Split(tok, ".")
	forged := parts[0] + "." + b64([]byte(`{"iss":"issuer","aud":"svc","exp":9999999999,"access":[]}`)) + "." + parts[2]
	_, _, err = s.Verify(forged)
	assert.Error(t, err)
	other, err := GenerateSigner("issuer", "svc")
	require.NoError(t, err)
	_, _, err = other.Verify(tok)
	assert.Error(t, err)
	wrongAud := NewSigner(s.key, "issuer", "elsewhere")
	_, _, err = wrongAud.Verify(tok)
	assert.Error(t, err)
	later := NewSigner(s.key, "issuer", "svc")
	later.now = func() time.Time { return time.Now().Add(TokenTTL + time.Second) }
	_, _, err = later.Verify(tok)
	assert.Error(t, err)
}

// ok is the guarded handler: it records that a request got through.
var ok = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })

func do(t *testing.T, h http.Handler, method, target string, set func(*http.Request)) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	if set != nil {
		set(r)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestMiddlewareBasic(t *testing.T) {
	users := htpasswdFor(t, map[string]string{"alice": "pw", "bob": "pw"})
	p := Policy{Rules: []Rule{
		{Users: []string{"alice"}, Repositories: []string{"**"}, Actions: []string{"*"}},
		{Users: []string{Anonymous, Anyone}, Repositories: []string{"**"}, Actions: []string{Pull}},
	}}
	h := Middleware(ok, Config{Users: users, Policy: p})
	as := func(u, pw string) func(*http.Request) { return func(r *http.Request) { r.SetBasicAuth(u, pw) } }

	w0 := do(t, h, "GET", "/v2/", nil)
	assert.Equal(t, 401, w0.Code, "/v2/ asks anonymous clients for credentials, so that they send them")
	assert.Equal(t, `Basic realm="berth registry"`, w0.Header().Get("WWW-Authenticate"))
	assert.Equal(t, 200, do(t, h, "GET", "/v2/app/manifests/v1", nil).Code, "anonymous pull")
	assert.Equal(t, 200, do(t, h, "GET", "/v2/app/manifests/v1", as("", "")).Code, "empty credentials are anonymous")
	w := do(t, h, "PUT", "/v2/app/manifests/v1", nil)
	assert.Equal(t, 401, w.Code)
	assert.Equal(t, `Basic realm="berth registry"`, w.Header().Get("WWW-Authenticate"))
	assert.Contains(t, w.Body.String(), `"code":"UNAUTHORIZED"`)
	assert.Equal(t, 200, do(t, h, "PUT", "/v2/app/manifests/v1", as("alice", "pw")).Code)
	assert.Equal(t, 401, do(t, h, "GET", "/v2/app/manifests/v1", as("alice", "bad")).Code, "wrong password")
	w = do(t, h, "DELETE", "/v2/app/manifests/v1", as("bob", "pw"))
	assert.Equal(t, 403, w.Code)
	assert.Contains(t, w.Body.String(), `"code":"DENIED"`)
	assert.Equal(t, 200, do(t, h, "GET", "/metrics", nil).Code, "outside the API")

	closed := Middleware(ok, Config{Users: users, Policy: DefaultPolicy(false)})
	assert.Equal(t, 401, do(t, closed, "GET", "/v2/", nil).Code)
	assert.Equal(t, 200, do(t, closed, "GET", "/v2/", as("bob", "pw")).Code)
}

func TestMiddlewareTokenFlow(t *testing.T) {
	users := htpasswdFor(t, map[string]string{"alice": "pw"})
	s, err := GenerateSigner("berth", "registry.test")
	require.NoError(t, err)
	h := Middleware(ok, Config{Users: users, Policy: DefaultPolicy(true), Token: s})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	// The challenge names the issuer, the service and the scope.
	resp, err := http.Post(srv.URL+"/v2/app/blobs/uploads/", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 401, resp.StatusCode)
	assert.Equal(t, `Bearer realm="`+srv.URL+`/token",service="registry.test",scope="repository:app:push"`,
		resp.Header.Get("WWW-Authenticate"))

	token := func(user, pw, scope string) (string, int) {
		req, err := http.NewRequest("GET", srv.URL+"/token?service=registry.test&scope="+url.QueryEscape(scope), nil)
		require.NoError(t, err)
		if user != "" {
			req.SetBasicAuth(user, pw)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var body struct{ Token string }
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return body.Token, resp.StatusCode
	}
	bearer := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}

	tok, code := token("alice", "pw", "repository:app:pull,push")
	require.Equal(t, 200, code)
	assert.Equal(t, 200, do(t, h, "POST", "/v2/app/blobs/uploads/", bearer(tok)).Code)
	assert.Equal(t, 401, do(t, h, "DELETE", "/v2/app/manifests/x", bearer(tok)).Code, "not in the token's scope")
	assert.Equal(t, 401, do(t, h, "GET", "/v2/other/manifests/x", bearer(tok)).Code, "another repository")

	// Anonymous tokens hold what anonymous requesters may do: pull only.
	anon, code := token("", "", "repository:app:pull,push")
	require.Equal(t, 200, code)
	_, got, err := s.Verify(anon)
	require.NoError(t, err)
	assert.Equal(t, []Access{{Type: "repository", Name: "app", Actions: []string{Pull}}}, got)
	assert.Equal(t, 200, do(t, h, "GET", "/v2/app/manifests/x", bearer(anon)).Code)
	assert.Equal(t, 401, do(t, h, "PUT", "/v2/app/manifests/x", bearer(anon)).Code)

	_, code = token("alice", "wrong", "repository:app:pull")
	assert.Equal(t, 401, code)
	assert.Equal(t, 401, do(t, h, "GET", "/v2/app/manifests/x", bearer("garbage")).Code)
}
