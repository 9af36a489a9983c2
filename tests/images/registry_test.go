package images_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/internal/testutil/registrytest"
)

// An image makes the whole trip: import, push, remove, pull back with the
// same ID, and the registry serves what berth pushed.
func TestPushPullRoundTrip(t *testing.T) {
	s := newStore(t)
	reg := registrytest.Start(t, registrytest.Options{})
	name := reg.Host + "/team/app:v1"
	id := s.importImage("app:v1", map[string][]byte{"etc/motd": []byte("hello\n")})
	s.must("tag", "app:v1", name)
	out := s.must("push", name)
	require.Contains(t, out, "v1: digest: sha256:")

	s.must("rmi", "app:v1")
	s.must("rmi", name)
	require.NotContains(t, s.must("images", "-q"), id[7:19], "image must be gone")

	out = s.must("pull", name)
	require.Contains(t, out, "Digest: sha256:")
	require.Equal(t, id, s.id(name), "pulled image must have the pushed ID")
	digests := s.must("images", "--digests", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}")
	require.Contains(t, digests, reg.Host+"/team/app v1 sha256:")

	// A second push finds every blob already there.
	out = s.must("push", name)
	require.Contains(t, out, "already exists")
}

func TestPullErrors(t *testing.T) {
	s := newStore(t)
	reg := registrytest.Start(t, registrytest.Options{})
	errOut := s.fails("pull", reg.Host+"/nothing/here:latest")
	require.Contains(t, strings.ToLower(errOut), "not found")
	errOut = s.fails("pull", reg.Host+"/UPPER/case")
	require.Contains(t, errOut, "invalid reference")
	out := s.must("images", "-q")
	require.Empty(t, strings.TrimSpace(out), "a failed pull leaves no image")
}

func TestBasicAuth(t *testing.T) {
	s := newStore(t)
	reg := registrytest.Start(t, registrytest.Options{Auth: registrytest.Basic})
	s.importImage("local:1", nil)
	name := reg.Host + "/private/app:1"
	s.must("tag", "local:1", name)

	errOut := s.fails("push", name)
	require.Contains(t, strings.ToLower(errOut), "unauthorized")

	_, errOut, code := s.run([]byte("wrong\n"), "login", "-u", reg.Username, "--password-stdin", reg.Host)
	require.NotZero(t, code, "a wrong password must fail")
	require.Contains(t, strings.ToLower(errOut), "unauthorized")

	_, errOut, code = s.run([]byte(reg.Password+"\n"), "login", "-u", reg.Username, "--password-stdin", reg.Host)
	require.Zero(t, code, errOut)
	s.must("push", name)
	s.must("rmi", name)
	s.must("pull", name)

	s.must("logout", reg.Host)
	s.must("rmi", name)
	errOut = s.fails("pull", name)
	require.Contains(t, strings.ToLower(errOut), "unauthorized")
}

func TestTokenAuth(t *testing.T) {
	s := newStore(t)
	reg := registrytest.Start(t, registrytest.Options{Auth: registrytest.Token})
	s.importImage("local:1", nil)
	name := reg.Host + "/private/app:1"
	s.must("tag", "local:1", name)
	s.fails("push", name)

	_, errOut, code := s.run([]byte(reg.Password+"\n"), "login", "-u", reg.Username, "--password-stdin", reg.Host)
	require.Zero(t, code, errOut)
	s.must("push", name)
	s.must("rmi", name)
	s.must("pull", name)
	require.NotZero(t, reg.TokenRequests(), "the token server must have issued tokens")
}

// Credentials in ~/.docker/config.json are used as docker writes them.
func TestDockerConfigCredentials(t *testing.T) {
	s := newStore(t)
	reg := registrytest.Start(t, registrytest.Options{Auth: registrytest.Basic})
	cfgDir := ""
	for _, e := range s.env {
		if v, ok := strings.CutPrefix(e, "DOCKER_CONFIG="); ok {
			cfgDir = v
		}
	}
	require.NoError(t, os.MkdirAll(cfgDir, 0o700))
	auth := map[string]any{"auths": map[string]any{reg.Host: map[string]string{
		"auth": b64(reg.Username + ":" + reg.Password)}}}
	b, err := json.Marshal(auth)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(cfgDir, "config.json"), b, 0o600))

	s.importImage("local:1", nil)
	s.must("tag", "local:1", reg.Host+"/x/y:1")
	s.must("push", reg.Host+"/x/y:1")
}
