package registrytest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func get(t *testing.T, rawURL, user, pass, bearer string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", rawURL, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestAnonymous(t *testing.T) {
	r := Start(t, Options{})
	resp := get(t, r.URL+"/v2/", "", "", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v2/ = %s", resp.Status)
	}
	if !strings.HasPrefix(r.Host, "127.0.0.1:") {
		t.Fatalf("Host = %q", r.Host)
	}
}

func TestBasic(t *testing.T) {
	r := Start(t, Options{Auth: Basic, Users: map[string]string{"alice": "secret"}})
	if r.Username != "alice" || r.Password != "secret" {
		t.Fatalf("user = %q/%q", r.Username, r.Password)
	}
	if resp := get(t, r.URL+"/v2/", "", "", ""); resp.StatusCode != http.StatusUnauthorized ||
		!strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") {
		t.Fatalf("anonymous GET /v2/ = %s %q", resp.Status, resp.Header.Get("WWW-Authenticate"))
	}
	if resp := get(t, r.URL+"/v2/", "alice", "wrong", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bad password GET /v2/ = %s", resp.Status)
	}
	if resp := get(t, r.URL+"/v2/", "alice", "secret", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v2/ = %s", resp.Status)
	}
}

func token(t *testing.T, r *Registry, scope, user, pass string) (string, int) {
	t.Helper()
	q := url.Values{"service": {tokenService}}
	if scope != "" {
		q.Set("scope", scope)
	}
	resp := get(t, r.TokenURL+"?"+q.Encode(), user, pass, "")
	if resp.StatusCode != http.StatusOK {
		return "", resp.StatusCode
	}
	var body struct{ Token string }
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &body); err != nil || body.Token == "" {
		t.Fatalf("token response %q: %v", b, err)
	}
	return body.Token, resp.StatusCode
}

func TestToken(t *testing.T) {
	r := Start(t, Options{Auth: Token})
	resp := get(t, r.URL+"/v2/", "", "", "")
	challenge := resp.Header.Get("WWW-Authenticate")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(challenge, r.TokenURL) {
		t.Fatalf("GET /v2/ = %s %q", resp.Status, challenge)
	}
	if _, code := token(t, r, "", r.Username, "wrong"); code != http.StatusUnauthorized {
		t.Fatalf("bad password token request = %d", code)
	}
	tok, _ := token(t, r, "repository:a/b:pull", r.Username, r.Password)
	if resp := get(t, r.URL+"/v2/", "", "", tok); resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /v2/ with token = %s %s\n%s", resp.Status, b, r.Logs())
	}
	// The pull grant reaches the repository: an unknown tag is 404, not 401.
	if resp := get(t, r.URL+"/v2/a/b/manifests/x", "", "", tok); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET manifest with token = %s", resp.Status)
	}
	// A token for another repository does not.
	other, _ := token(t, r, "repository:c/d:pull", r.Username, r.Password)
	if resp := get(t, r.URL+"/v2/a/b/manifests/x", "", "", other); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET manifest with another repository's token = %s", resp.Status)
	}
	if n := r.TokenRequests(); n != 2 {
		t.Fatalf("TokenRequests = %d, want 2", n)
	}
	// Anonymous clients get a token without access.
	anon, _ := token(t, r, "repository:a/b:pull", "", "")
	if resp := get(t, r.URL+"/v2/a/b/manifests/x", "", "", anon); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET manifest anonymously = %s", resp.Status)
	}
}

func TestGrant(t *testing.T) {
	scopes := []string{"repository:a/b:pull,push", "registry:catalog:* repository:c:pull", "bad"}
	got := grant(scopes, true, false)
	if len(got) != 3 || got[0].Name != "a/b" || strings.Join(got[0].Actions, ",") != "pull,push" ||
		got[1].Type != "registry" || got[2].Name != "c" {
		t.Fatalf("grant(authenticated) = %+v", got)
	}
	if got := grant(scopes, false, false); len(got) != 0 {
		t.Fatalf("grant(anonymous) = %+v", got)
	}
	got = grant(scopes, false, true)
	if len(got) != 2 || strings.Join(got[0].Actions, ",") != "pull" || got[1].Name != "c" {
		t.Fatalf("grant(anonymous pull) = %+v", got)
	}
}
