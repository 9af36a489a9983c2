package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/registry/auth"
)

func write(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.json")
	require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
	return p
}

func TestLoadFull(t *testing.T) {
	c, err := Load(write(t, `{
  "listen": "0.0.0.0:5001",
  "tls": {"certificate": "/c.pem", "key": "/k.pem"},
  "storage": {"s3": {"endpoint": "http://127.0.0.1:7070", "region": "us-east-1", "bucket": "images", "prefix": "reg",
    "accessKey": "a", "secretKey": "s", "forcePathStyle": true}},
  "auth": {
    "htpasswd": "/etc/htpasswd",
    "token": {"key": "/t.pem"},
    "rules": [{"users": ["alice"], "repositories": ["team/*"], "actions": ["pull", "push"]}]
  },
  "log": {"level": "debug", "format": "text", "access": true},
  "gc": {"interval": "30m"},
  "proxy": [{"prefix": "mirror/", "url": "https://up.example"}]
}`))
	require.NoError(t, err)
	require.NoError(t, c.Finish())
	assert.Equal(t, "0.0.0.0:5001", c.Listen)
	assert.Equal(t, "images", c.Storage.S3.Bucket)
	assert.True(t, c.Storage.S3.ForcePathStyle)
	assert.Equal(t, "berth-registry", c.Auth.Token.Issuer)
	assert.Equal(t, "0.0.0.0:5001", c.Auth.Token.Service)
	assert.Equal(t, 30*time.Minute, c.GC.Interval)
	assert.Equal(t, DefaultGrace, c.GC.Grace)
	assert.Equal(t, []string{auth.Pull, auth.Push}, c.Auth.Policy().Grant("alice",
		auth.Access{Type: "repository", Name: "team/x", Actions: []string{auth.Pull, auth.Push, auth.Delete}}).Actions)
	assert.False(t, c.Auth.Open())
}

func TestDefaultsAndErrors(t *testing.T) {
	c, err := Load(write(t, ""))
	require.NoError(t, err)
	c.Storage.Filesystem = &Filesystem{Root: "/srv"}
	require.NoError(t, c.Finish())
	assert.Equal(t, DefaultListen, c.Listen)
	assert.True(t, c.Auth.Open())

	_, err = Load(write(t, `{"listne": "x"}`))
	assert.ErrorContains(t, err, "listne", "unknown keys are refused")

	for text, want := range map[string]string{
		`{"storage": {"filesystem": {"root": "/a"}}, "tls": {"certificate": "/c"}}`: "both certificate and key",
		`{"listen": "nowhere", "storage": {"filesystem": {"root": "/a"}}}`:          "listen",
		`{}`: "storage: none configured",
		`{"storage": {"filesystem": {"root": "/a"}, "s3": {"bucket": "b"}}}`:                                                              "not both",
		`{"storage": {"s3": {"endpoint": "x"}}}`:                                                                                          "bucket is empty",
		`{"storage": {"filesystem": {"root": "/a"}}, "log": {"level": "loud"}}`:                                                           "log.level",
		`{"storage": {"filesystem": {"root": "/a"}}, "auth": {"rules": [{"users": ["a"], "repositories": ["x"], "actions": ["write"]}]}}`: "unknown action",
		`{"storage": {"filesystem": {"root": "/a"}}, "auth": {"rules": [{"users": ["a"], "repositories": ["x"], "actions": ["pull"]}]}}`:  "need users",
		`{"storage": {"filesystem": {"root": "/a"}}, "proxy": [{"prefix": "p/"}]}`:                                                        "proxy 1",
	} {
		c, err := Load(write(t, text))
		require.NoError(t, err, text)
		assert.ErrorContains(t, c.Finish(), want, text)
	}
	_, err = Load(write(t, `{"gc": {"interval": "soon"}}`))
	assert.ErrorContains(t, err, "gc.interval")
	_, err = Load(filepath.Join(t.TempDir(), "missing.json"))
	assert.Error(t, err)
}
