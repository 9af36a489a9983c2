package remote

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-containers/berth/internal/errdefs"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestCredentialKey(t *testing.T) {
	for in, want := range map[string]string{
		"docker.io": dockerHubKey, "index.docker.io": dockerHubKey, "registry-1.docker.io": dockerHubKey,
		"localhost:5000": "localhost:5000", "ghcr.io": "ghcr.io",
	} {
		if got := credentialKey(in); got != want {
			t.Errorf("credentialKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseDockerConfig(t *testing.T) {
	data := []byte(`{
		"auths": {
			"https://index.docker.io/v1/": {"auth": "` + b64("hub:pw:with:colons") + `"},
			"fields.example": {"username": "u", "password": "p"},
			"both.example": {"auth": "` + b64("a:b") + `", "username": "ignored", "password": "ignored"},
			"id.example": {"identitytoken": "refresh"},
			"rt.example": {"registrytoken": "tok"},
			"https://legacy.example:5000/v1/": {"auth": "` + b64("old:pw") + `"},
			"bad.example": {"auth": "not base64!"},
			"nocolon.example": {"auth": "` + b64("nocolon") + `"}
		},
		"credsStore": "desktop",
		"credHelpers": {"gcr.io": "gcloud"},
		"psFormat": "table"
	}`)
	cfg, err := parseDockerConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]credential{
		dockerHubKey:          {Username: "hub", Password: "pw:with:colons"},
		"fields.example":      {Username: "u", Password: "p"},
		"both.example":        {Username: "a", Password: "b"},
		"id.example":          {IdentityToken: "refresh"},
		"rt.example":          {RegistryToken: "tok"},
		"legacy.example:5000": {Username: "old", Password: "pw"},
		"absent.example":      {},
	} {
		got, err := cfg.credential(key)
		if err != nil || got != want {
			t.Errorf("credential(%q) = %+v, %v; want %+v", key, got, err, want)
		}
	}
	for _, key := range []string{"bad.example", "nocolon.example"} {
		if _, err := cfg.credential(key); err == nil {
			t.Errorf("credential(%q): no error for a broken auth field", key)
		}
	}
	if h := cfg.helper("gcr.io"); h != "gcloud" {
		t.Errorf("helper(gcr.io) = %q, want the credHelpers entry", h)
	}
	if h := cfg.helper("other.example"); h != "desktop" {
		t.Errorf("helper(other) = %q, want the credsStore", h)
	}

	for _, s := range []string{"", "  \n", `{}`, `{"auths": null}`} {
		cfg, err := parseDockerConfig([]byte(s))
		if err != nil || cfg.helper("x") != "" {
			t.Errorf("parseDockerConfig(%q) = %v", s, err)
			continue
		}
		if c, err := cfg.credential("x"); err != nil || !c.empty() {
			t.Errorf("credential in %q = %+v, %v", s, c, err)
		}
	}
	if _, err := parseDockerConfig([]byte(`{"auths": []}`)); err == nil {
		t.Error("auths that is not an object parsed")
	}
}

// TestAuthFileWrite: Login and Logout keep the fields berth does not
// know, write the file for its owner only, and match legacy keys.
func TestAuthFileWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "auth.json")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	orig := `{"auths": {"keep.example": {"auth": "` + b64("k:v") + `", "email": "x@y"},
		"https://legacy.example/v1/": {"auth": "` + b64("l:v") + `"}}, "psFormat": "table", "proxies": {"default": {"httpProxy": "p"}}}`
	if err := os.WriteFile(path, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	c := testClient(t, Options{AuthFile: path})
	ctx := context.Background()
	if err := c.storeCredential(ctx, "new.example:5000", credential{Username: "n", Password: "secret"}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("auth file mode %v, %v; want 0600", fi.Mode(), err)
	}
	data, _ := os.ReadFile(path)
	var f struct {
		Auths    map[string]map[string]string `json:"auths"`
		PsFormat string                       `json:"psFormat"`
		Proxies  map[string]any               `json:"proxies"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	if f.PsFormat != "table" || f.Proxies["default"] == nil || f.Auths["keep.example"]["email"] != "x@y" {
		t.Fatalf("other fields lost: %s", data)
	}
	if f.Auths["new.example:5000"]["auth"] != b64("n:secret") || strings.Contains(string(data), `"secret"`) {
		t.Fatalf("new entry: %s", data)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}

	if err := c.deleteCredential(ctx, "legacy.example"); err != nil {
		t.Fatalf("delete a legacy key: %v", err)
	}
	if err := c.deleteCredential(ctx, "legacy.example"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("second delete: %v, want not found", err)
	}
	cfg, err := loadDockerConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if cred, _ := cfg.credential("keep.example"); cred != (credential{Username: "k", Password: "v"}) {
		t.Fatalf("other entry after delete: %+v", cred)
	}
	if cred, _ := cfg.credential("new.example:5000"); cred != (credential{Username: "n", Password: "secret"}) {
		t.Fatalf("new entry after delete: %+v", cred)
	}

	// The lookup reads berth's file first, then docker's.
	docker := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(docker, []byte(`{"auths":{"new.example:5000":{"auth":"`+b64("d:d")+`"},"only-docker.example":{"auth":"`+b64("d:o")+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c.opts.NoDockerConfig, c.opts.DockerConfig = false, docker
	for host, want := range map[string]credential{
		"new.example:5000":    {Username: "n", Password: "secret"},
		"only-docker.example": {Username: "d", Password: "o"},
		"none.example":        {},
	} {
		if got, err := c.lookupCredential(ctx, host); err != nil || got != want {
			t.Errorf("lookupCredential(%s) = %+v, %v; want %+v", host, got, err, want)
		}
	}
}
