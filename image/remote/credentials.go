package remote

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/berth-containers/berth/internal/errdefs"
)

// DefaultAuthFile is where berth keeps registry credentials:
// $XDG_CONFIG_HOME/berth/auth.json, or ~/.config/berth/auth.json. It
// lives with the user's configuration, not under $XDG_RUNTIME_DIR, so a
// login survives a reboot as docker's does; its format is docker's
// config.json, so docker's credential helpers work through it too.
func DefaultAuthFile() string {
	if dir := os.Getenv("XDG_CONFIG_HOME"); dir != "" {
		return filepath.Join(dir, "berth", "auth.json")
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		home = "/"
	}
	return filepath.Join(home, ".config", "berth", "auth.json")
}

// DefaultDockerConfig is docker's config.json: $DOCKER_CONFIG/config.json
// or ~/.docker/config.json.
func DefaultDockerConfig() string {
	if dir := os.Getenv("DOCKER_CONFIG"); dir != "" {
		return filepath.Join(dir, "config.json")
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return ""
	}
	return filepath.Join(home, ".docker", "config.json")
}

// AuthFile is the credentials file this client reads first and writes.
func (c *Client) AuthFile() string {
	if c.opts.AuthFile != "" {
		return c.opts.AuthFile
	}
	return DefaultAuthFile()
}

func (c *Client) dockerConfig() string {
	if c.opts.NoDockerConfig {
		return ""
	}
	if c.opts.DockerConfig != "" {
		return c.opts.DockerConfig
	}
	return DefaultDockerConfig()
}

// lookupCredential finds the credential for an endpoint host in berth's
// file, then docker's. The files are read on every lookup (only when a
// registry asks for credentials), so a login by another process counts.
func (c *Client) lookupCredential(ctx context.Context, hostport string) (credential, error) {
	if c.opts.Credentials != nil {
		if u, p, ok := c.opts.Credentials(hostport); ok {
			return credential{Username: u, Password: p}, nil
		}
	}
	key := credentialKey(hostport)
	paths := []string{c.AuthFile()}
	if p := c.dockerConfig(); p != "" {
		paths = append(paths, p)
	}
	for _, p := range paths {
		cred, err := readCredential(ctx, p, key)
		if err != nil {
			return credential{}, fmt.Errorf("read credentials for %s from %s: %w", hostport, p, err)
		}
		if !cred.empty() {
			return cred, nil
		}
	}
	return credential{}, nil
}

// readCredential reads key's credential from the config file at path, or
// from the credential helper the file names for key.
func readCredential(ctx context.Context, path, key string) (credential, error) {
	cfg, err := loadDockerConfig(path)
	if err != nil {
		return credential{}, err
	}
	if h := cfg.helper(key); h != "" {
		return helperGet(ctx, h, key)
	}
	return cfg.credential(key)
}

// Login checks username and password against registry's /v2/ endpoint
// (basic auth, or a token request for bearer auth) and, when they work,
// stores them in berth's auth file under the key docker uses
// ("https://index.docker.io/v1/" for Docker Hub, else host:port), or
// gives them to the credential helper the file names for that key.
// registry is what a user types: empty or "docker.io" for Docker Hub,
// "host:port", or a URL.
func (c *Client) Login(ctx context.Context, registry, username, password string) error {
	domain, err := NormalizeRegistry(registry)
	if err != nil {
		return err
	}
	if username == "" || password == "" {
		return errdefs.Invalid("login to %s: username and password are required", domain)
	}
	cred := credential{Username: username, Password: password}
	if err := c.checkLogin(ctx, domain, cred); err != nil {
		return err
	}
	if err := c.storeCredential(ctx, credentialKey(domain), cred); err != nil {
		return fmt.Errorf("login to %s: store credentials: %w", domain, err)
	}
	c.resetAuth()
	return nil
}

// storeCredential writes cred under key into berth's auth file, keeping
// everything else the file holds, or hands it to the file's helper.
func (c *Client) storeCredential(ctx context.Context, key string, cred credential) error {
	c.fileMu.Lock()
	defer c.fileMu.Unlock()
	path := c.AuthFile()
	cfg, err := loadDockerConfig(path)
	if err != nil {
		return err
	}
	if h := cfg.helper(key); h != "" {
		return helperStore(ctx, h, key, cred)
	}
	if err := cfg.setCredential(key, cred); err != nil {
		return err
	}
	return cfg.save(path)
}

// checkLogin sends GET /v2/ with cred and nothing cached.
func (c *Client) checkLogin(ctx context.Context, domain string, cred credential) error {
	base, err := c.baseURL(ctx, domain)
	if err != nil {
		return fmt.Errorf("login to %s: %w", domain, err)
	}
	host := endpointHost(domain)
	a := newAuthorizer(c.http, c.opts.UserAgent, func(_ context.Context, hp string) (credential, error) {
		if hp == host {
			return cred, nil
		}
		return credential{}, nil
	})
	req, err := newRequest(ctx, http.MethodGet, base+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := a.Do(req)
	if err != nil {
		return fmt.Errorf("login to %s: %w", domain, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("login to %s: %w", domain, responseError(resp))
	}
	drainClose(resp.Body)
	return nil
}

// Logout removes registry's credentials from berth's auth file, or from
// the credential helper it names (docker's file is left alone). It
// returns an errdefs.ErrNotFound error when there were none.
func (c *Client) Logout(ctx context.Context, registry string) error {
	domain, err := NormalizeRegistry(registry)
	if err != nil {
		return err
	}
	if err := c.deleteCredential(ctx, credentialKey(domain)); err != nil {
		if errors.Is(err, errdefs.ErrNotFound) {
			return errdefs.NotFound("not logged in to %s", domain)
		}
		return fmt.Errorf("logout from %s: %w", domain, err)
	}
	c.resetAuth()
	return nil
}

// deleteCredential removes key from berth's auth file or its helper.
func (c *Client) deleteCredential(ctx context.Context, key string) error {
	c.fileMu.Lock()
	defer c.fileMu.Unlock()
	path := c.AuthFile()
	cfg, err := loadDockerConfig(path)
	if err != nil {
		return err
	}
	if h := cfg.helper(key); h != "" {
		cred, err := helperGet(ctx, h, key)
		if err != nil {
			return err
		}
		if cred.empty() {
			return errdefs.ErrNotFound
		}
		return helperErase(ctx, h, key)
	}
	if !cfg.deleteCredential(key) {
		return errdefs.ErrNotFound
	}
	return cfg.save(path)
}
