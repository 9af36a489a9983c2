package remote

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"

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

// berthStore opens berth's auth file; plain-text entries are allowed,
// since that is what the file is for when no helper is configured.
func (c *Client) berthStore() (credentials.Store, error) {
	s, err := credentials.NewStore(c.AuthFile(), credentials.StoreOptions{AllowPlaintextPut: true})
	if err != nil {
		return nil, fmt.Errorf("open auth file: %w", err)
	}
	return s, nil
}

// lookupCredential finds the credential for an endpoint host in berth's
// file, then docker's. The files are read on every lookup (only when a
// registry asks for credentials), so a login by another process counts.
func (c *Client) lookupCredential(ctx context.Context, hostport string) (auth.Credential, error) {
	key := credentials.ServerAddressFromHostname(hostport)
	paths := []string{c.AuthFile()}
	if p := c.dockerConfig(); p != "" {
		paths = append(paths, p)
	}
	for _, p := range paths {
		s, err := credentials.NewStore(p, credentials.StoreOptions{})
		if err != nil {
			return auth.EmptyCredential, fmt.Errorf("read credentials for %s: %w", hostport, err)
		}
		cred, err := s.Get(ctx, key)
		if err != nil {
			return auth.EmptyCredential, fmt.Errorf("read credentials for %s from %s: %w", hostport, p, err)
		}
		if cred != auth.EmptyCredential {
			return cred, nil
		}
	}
	return auth.EmptyCredential, nil
}

// Login checks username and password against registry's /v2/ endpoint
// (basic auth, or a token request for bearer auth) and, when they work,
// stores them in berth's auth file under the key docker uses
// ("https://index.docker.io/v1/" for Docker Hub, else host:port).
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
	cred := auth.Credential{Username: username, Password: password}
	if err := c.checkLogin(ctx, domain, cred); err != nil {
		return err
	}
	s, err := c.berthStore()
	if err != nil {
		return err
	}
	if err := s.Put(ctx, credentials.ServerAddressFromRegistry(domain), cred); err != nil {
		return fmt.Errorf("login to %s: store credentials: %w", domain, err)
	}
	c.resetAuth()
	return nil
}

// checkLogin sends GET /v2/ with cred and nothing cached.
func (c *Client) checkLogin(ctx context.Context, domain string, cred auth.Credential) error {
	base, err := c.baseURL(ctx, domain)
	if err != nil {
		return fmt.Errorf("login to %s: %w", domain, err)
	}
	host := endpointHost(domain)
	a := &auth.Client{
		Client: c.http,
		Credential: func(_ context.Context, hp string) (auth.Credential, error) {
			if hp == host {
				return cred, nil
			}
			return auth.EmptyCredential, nil
		},
	}
	a.SetUserAgent(c.opts.UserAgent)
	req, err := newRequest(ctx, http.MethodGet, base+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := a.Do(req)
	if err != nil {
		return fmt.Errorf("login to %s: %w", domain, classify(err))
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("login to %s: %w", domain, responseError(resp))
	}
	drainClose(resp.Body)
	return nil
}

// Logout removes registry's credentials from berth's auth file (docker's
// file is left alone). It returns an errdefs.ErrNotFound error when there
// were none.
func (c *Client) Logout(ctx context.Context, registry string) error {
	domain, err := NormalizeRegistry(registry)
	if err != nil {
		return err
	}
	s, err := c.berthStore()
	if err != nil {
		return err
	}
	key := credentials.ServerAddressFromRegistry(domain)
	cred, err := s.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("logout from %s: %w", domain, err)
	}
	if cred == auth.EmptyCredential {
		return errdefs.NotFound("not logged in to %s", domain)
	}
	if err := s.Delete(ctx, key); err != nil {
		return fmt.Errorf("logout from %s: %w", domain, err)
	}
	c.resetAuth()
	return nil
}
