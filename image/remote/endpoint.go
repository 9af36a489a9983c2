package remote

import (
	"context"
	"net"
	"net/netip"
	"net/url"
	"strings"

	"github.com/berth-containers/berth/image/reference"
	"github.com/berth-containers/berth/internal/errdefs"
)

// dockerHubHost is where Docker Hub's registry API is served; references
// say docker.io.
const dockerHubHost = "registry-1.docker.io"

// endpointHost maps a reference's domain to the host serving its API.
func endpointHost(domain string) string {
	if domain == reference.DefaultDomain || domain == reference.LegacyDefaultDomain {
		return dockerHubHost
	}
	return domain
}

// NormalizeRegistry turns what a user gives "login" ("docker.io",
// "https://index.docker.io/v1/", "host:5000", "https://host:5000/path")
// into a reference domain ("docker.io", "host:5000"). Empty means Docker
// Hub.
func NormalizeRegistry(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return reference.DefaultDomain, nil
	}
	if i := strings.Index(s, "://"); i >= 0 {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			return "", errdefs.Invalid("invalid registry address %q", s)
		}
		s = u.Host
	} else {
		s, _, _ = strings.Cut(s, "/")
	}
	switch s {
	case reference.DefaultDomain, reference.LegacyDefaultDomain, dockerHubHost:
		return reference.DefaultDomain, nil
	}
	// Reuse the reference grammar to validate the host.
	if _, err := reference.ParseRepository(s + "/x"); err != nil || strings.ContainsAny(s, "/@") {
		return "", errdefs.Invalid("invalid registry address %q", s)
	}
	return s, nil
}

// isLoopback reports whether host (with or without port) is localhost or
// a loopback address.
func isLoopback(host string) bool {
	h := hostname(host)
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.Unmap().IsLoopback()
}

// hostname strips the port and IPv6 brackets.
func hostname(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
}

// isInsecure reports whether host is a loopback registry or matches an
// entry of list: the same host:port, the same host when the entry has no
// port, or an address inside an entry's CIDR. Names are not resolved.
func isInsecure(host string, list []string) bool {
	if isLoopback(host) {
		return true
	}
	h := hostname(host)
	addr, addrErr := netip.ParseAddr(h)
	for _, e := range list {
		e = strings.TrimSpace(e)
		if p, err := netip.ParsePrefix(e); err == nil {
			if addrErr == nil && p.Contains(addr.Unmap()) {
				return true
			}
			continue
		}
		if strings.EqualFold(e, host) {
			return true
		}
		if _, _, err := net.SplitHostPort(e); err != nil && strings.EqualFold(hostname(e), h) {
			return true
		}
	}
	return false
}

func validateInsecure(list []string) error {
	for _, e := range list {
		e = strings.TrimSpace(e)
		if e == "" || strings.Contains(e, "://") {
			return errdefs.Invalid("invalid insecure registry %q: want host, host:port or CIDR", e)
		}
	}
	return nil
}

// baseURL returns "scheme://host" for a reference domain. Registries that
// are secure use HTTPS only. Insecure and loopback ones are tried over
// HTTPS first and, if that fails to connect or handshake, over plain
// HTTP, as docker does; the answer is remembered per host.
func (c *Client) baseURL(ctx context.Context, domain string) (string, error) {
	host := endpointHost(domain)
	if !isInsecure(host, c.opts.InsecureRegistries) {
		return "https://" + host, nil
	}
	c.mu.Lock()
	scheme, ok := c.schemes[host]
	c.mu.Unlock()
	if ok {
		return scheme + "://" + host, nil
	}
	scheme, err := c.probeScheme(ctx, host)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	c.schemes[host] = scheme
	c.mu.Unlock()
	return scheme + "://" + host, nil
}

// probeScheme asks https://host/v2/; any HTTP answer, even an error
// status, means the host speaks TLS.
func (c *Client) probeScheme(ctx context.Context, host string) (string, error) {
	req, err := newRequest(ctx, "GET", "https://"+host+"/v2/", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("User-Agent", c.opts.UserAgent)
	resp, err := c.probe.Do(req) //nolint:bodyclose // drainClose closes it
	if err == nil {
		drainClose(resp.Body)
		return "https", nil
	}
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	return "http", nil
}
