package remote

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-containers/berth/internal/errdefs"
)

// helperScript is docker-credential-test: "get" answers from the files
// cred-<server> in its directory, "store" saves its input to stored,
// "erase" removes cred-<server> and records the server in erased.
const helperScript = `#!/bin/sh
dir=%q
case "$1" in
get)
	server=$(cat)
	if [ "$server" = broken.example ]; then echo "keychain locked"; exit 1; fi
	if [ -f "$dir/cred-$server" ]; then cat "$dir/cred-$server"; exit 0; fi
	echo "credentials not found in native keychain"
	exit 1;;
store)
	cat > "$dir/stored";;
erase)
	server=$(cat)
	rm -f "$dir/cred-$server"
	printf %%s "$server" > "$dir/erased";;
*)
	echo "unknown action $1" >&2
	exit 2;;
esac
`

// installHelper puts docker-credential-test on PATH and returns its
// directory.
func installHelper(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	script := fmt.Sprintf(helperScript, dir)
	if err := os.WriteFile(filepath.Join(dir, "docker-credential-test"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return dir
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCredentialHelper(t *testing.T) {
	dir := installHelper(t)
	ctx := context.Background()
	writeFile(t, filepath.Join(dir, "cred-reg.example:5000"), `{"ServerURL":"reg.example:5000","Username":"hu","Secret":"hp"}`)
	writeFile(t, filepath.Join(dir, "cred-tok.example"), `{"Username":"<token>","Secret":"refresh-9"}`)
	writeFile(t, filepath.Join(dir, "cred-junk.example"), `not json`)

	for server, want := range map[string]credential{
		"reg.example:5000": {Username: "hu", Password: "hp"},
		"tok.example":      {IdentityToken: "refresh-9"},
		"absent.example":   {},
	} {
		got, err := helperGet(ctx, "test", server)
		if err != nil || got != want {
			t.Errorf("helperGet(%s) = %+v, %v; want %+v", server, got, err, want)
		}
	}
	if _, err := helperGet(ctx, "test", "broken.example"); err == nil || !strings.Contains(err.Error(), "keychain locked") {
		t.Errorf("helperGet(broken) = %v, want the helper's message", err)
	}
	if _, err := helperGet(ctx, "test", "junk.example"); err == nil {
		t.Error("helperGet accepted an answer that is not JSON")
	}
	if _, err := helperGet(ctx, "missing-helper", "reg.example:5000"); err == nil {
		t.Error("a missing helper gave no error")
	}
	if _, err := helperGet(ctx, "../test", "reg.example:5000"); err == nil {
		t.Error("a helper name with a slash was run")
	}

	if err := helperStore(ctx, "test", "new.example", credential{IdentityToken: "id-1"}); err != nil {
		t.Fatal(err)
	}
	var stored helperCredential
	data, _ := os.ReadFile(filepath.Join(dir, "stored"))
	if err := json.Unmarshal(data, &stored); err != nil || stored != (helperCredential{"new.example", "<token>", "id-1"}) {
		t.Fatalf("stored %s (%v)", data, err)
	}
}

// TestHelperLogin: credentials a helper named by credHelpers or
// credsStore holds are used, and Login and Logout go to the helper, not
// to the file.
func TestHelperLogin(t *testing.T) {
	dir := installHelper(t)
	ctx := context.Background()
	f := newFakeRegistry(t)
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("hu:hp"))
	f.hook = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("Authorization") != want {
			w.Header().Set("WWW-Authenticate", `Basic realm="fake"`)
			writeErr(w, http.StatusUnauthorized, "UNAUTHORIZED")
			return true
		}
		return false
	}
	d := f.putBlob("a/b", []byte("x"))

	// docker's config sends this host to the helper, which has nothing.
	docker := filepath.Join(t.TempDir(), "config.json")
	writeFile(t, docker, `{"auths":{"`+f.host()+`":{}},"credHelpers":{"`+f.host()+`":"test"}}`)
	c := testClient(t, Options{})
	c.opts.NoDockerConfig, c.opts.DockerConfig = false, docker
	if _, err := c.BlobExists(ctx, f.ref("a/b", ""), d); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("BlobExists before the helper has credentials: %v", err)
	}
	writeFile(t, filepath.Join(dir, "cred-"+f.host()), `{"Username":"hu","Secret":"hp"}`)
	if ok, err := c.BlobExists(ctx, f.ref("a/b", ""), d); err != nil || !ok {
		t.Fatalf("BlobExists with the helper's credentials = %v, %v", ok, err)
	}

	// berth's file names a credsStore: login stores through it.
	authFile := filepath.Join(t.TempDir(), "auth.json")
	writeFile(t, authFile, `{"credsStore":"test"}`)
	c = testClient(t, Options{AuthFile: authFile})
	if err := c.Login(ctx, f.host(), "hu", "hp"); err != nil {
		t.Fatal(err)
	}
	var stored helperCredential
	data, _ := os.ReadFile(filepath.Join(dir, "stored"))
	if err := json.Unmarshal(data, &stored); err != nil || stored != (helperCredential{f.host(), "hu", "hp"}) {
		t.Fatalf("helper stored %s (%v)", data, err)
	}
	if data, _ := os.ReadFile(authFile); strings.Contains(string(data), "auths") {
		t.Fatalf("login wrote the password into the file too: %s", data)
	}
	if err := c.Logout(ctx, f.host()); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "erased")); string(data) != f.host() {
		t.Fatalf("helper erased %q", data)
	}
	if err := c.Logout(ctx, f.host()); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("second logout: %v, want not found", err)
	}
	if _, err := c.BlobExists(ctx, f.ref("a/b", ""), digest.FromString("y")); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("after logout: %v, want unauthorized", err)
	}
}
