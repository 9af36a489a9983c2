package remote

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// dockerHubKey is the key docker files Docker Hub's credentials under.
const dockerHubKey = "https://index.docker.io/v1/"

// credentialKey is the key of a registry's credentials in an auth file
// (and for credential helpers): dockerHubKey for Docker Hub under any of
// its names, "host[:port]" otherwise.
func credentialKey(hostOrDomain string) string {
	switch hostOrDomain {
	case "docker.io", "index.docker.io", dockerHubHost:
		return dockerHubKey
	}
	return hostOrDomain
}

// keyHost reduces an auths key to its host: older docker versions wrote
// "https://host/v1/" where newer ones write "host".
func keyHost(key string) string {
	key = strings.TrimPrefix(key, "http://")
	key = strings.TrimPrefix(key, "https://")
	host, _, _ := strings.Cut(key, "/")
	return host
}

// authEntry is one entry of the "auths" map.
type authEntry struct {
	// Auth is base64("user:password"); it wins over Username/Password.
	Auth          string `json:"auth,omitempty"`
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
	RegistryToken string `json:"registrytoken,omitempty"`
}

func (e authEntry) credential() (credential, error) {
	c := credential{Username: e.Username, Password: e.Password, IdentityToken: e.IdentityToken, RegistryToken: e.RegistryToken}
	if e.Auth == "" {
		return c, nil
	}
	raw, err := base64.StdEncoding.DecodeString(e.Auth)
	if err != nil {
		return credential{}, fmt.Errorf("decode auth field: %w", err)
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok {
		return credential{}, errors.New("decode auth field: not user:password")
	}
	c.Username, c.Password = user, pass
	return c, nil
}

// dockerConfig is docker's config.json (and berth's auth file, which has
// its format). The fields berth does not use are kept as they were read,
// so that writing the file back loses nothing.
type dockerConfig struct {
	fields      map[string]json.RawMessage
	auths       map[string]json.RawMessage
	credsStore  string
	credHelpers map[string]string
}

// parseDockerConfig reads a config file's content; empty content is an
// empty config.
func parseDockerConfig(data []byte) (*dockerConfig, error) {
	cfg := &dockerConfig{fields: map[string]json.RawMessage{}, auths: map[string]json.RawMessage{}}
	if len(bytes.TrimSpace(data)) == 0 {
		return cfg, nil
	}
	if err := json.Unmarshal(data, &cfg.fields); err != nil {
		return nil, err
	}
	for name, dst := range map[string]any{"auths": &cfg.auths, "credsStore": &cfg.credsStore, "credHelpers": &cfg.credHelpers} {
		if raw, ok := cfg.fields[name]; ok {
			if err := json.Unmarshal(raw, dst); err != nil {
				return nil, fmt.Errorf("field %s: %w", name, err)
			}
		}
	}
	if cfg.auths == nil { // "auths": null
		cfg.auths = map[string]json.RawMessage{}
	}
	return cfg, nil
}

// loadDockerConfig reads path; a missing file is an empty config.
func loadDockerConfig(path string) (*dockerConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	cfg, err := parseDockerConfig(data)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return cfg, nil
}

// helper names the credential helper for key: its credHelpers entry, or
// else the credsStore; "" when the file itself holds the credentials.
func (cfg *dockerConfig) helper(key string) string {
	if h, ok := cfg.credHelpers[key]; ok && h != "" {
		return h
	}
	return cfg.credsStore
}

// entryKeys lists the auths keys that hold key's credentials: key itself,
// else the entries whose host is key.
func (cfg *dockerConfig) entryKeys(key string) []string {
	if _, ok := cfg.auths[key]; ok {
		return []string{key}
	}
	var keys []string
	for k := range cfg.auths {
		if keyHost(k) == key {
			keys = append(keys, k)
		}
	}
	return keys
}

// credential reads key's entry in auths; the empty credential when there
// is none.
func (cfg *dockerConfig) credential(key string) (credential, error) {
	keys := cfg.entryKeys(key)
	if len(keys) == 0 {
		return credential{}, nil
	}
	var e authEntry
	if err := json.Unmarshal(cfg.auths[keys[0]], &e); err != nil {
		return credential{}, fmt.Errorf("auths entry %s: %w", keys[0], err)
	}
	c, err := e.credential()
	if err != nil {
		return credential{}, fmt.Errorf("auths entry %s: %w", keys[0], err)
	}
	return c, nil
}

// setCredential writes key's entry in auths, the password encoded in the
// auth field as docker writes it.
func (cfg *dockerConfig) setCredential(key string, c credential) error {
	e := authEntry{IdentityToken: c.IdentityToken, RegistryToken: c.RegistryToken}
	if c.Username != "" || c.Password != "" {
		e.Auth = base64.StdEncoding.EncodeToString([]byte(c.Username + ":" + c.Password))
	}
	raw, err := json.Marshal(e)
	if err != nil {
		return err
	}
	cfg.auths[key] = raw
	return nil
}

// deleteCredential removes key's entries from auths and reports whether
// there were any.
func (cfg *dockerConfig) deleteCredential(key string) bool {
	keys := cfg.entryKeys(key)
	for _, k := range keys {
		delete(cfg.auths, k)
	}
	return len(keys) > 0
}

// marshal renders the config, the fields berth did not touch included.
func (cfg *dockerConfig) marshal() ([]byte, error) {
	auths, err := json.Marshal(cfg.auths)
	if err != nil {
		return nil, err
	}
	cfg.fields["auths"] = auths
	return json.MarshalIndent(cfg.fields, "", "\t")
}

// save writes cfg to path atomically (a temporary file in the same
// directory, then a rename), readable by its owner only, since it holds
// passwords.
func (cfg *dockerConfig) save(path string) error {
	data, err := cfg.marshal()
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	defer os.Remove(f.Name()) // fails harmlessly after the rename
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("save %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("save %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	return nil
}
