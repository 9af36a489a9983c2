package remote

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/berth-containers/berth/image/reference"
	"github.com/berth-containers/berth/internal/errdefs"
)

// Actions a bearer token may grant on a repository.
const (
	actionPull = "pull"
	actionPush = "push"
)

func newRequest(ctx context.Context, method, rawURL string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, rawURL, body)
	if err != nil {
		return nil, fmt.Errorf("build %s request: %w", method, err)
	}
	return req, nil
}

// repo is one repository on one registry, ready for requests.
type repo struct {
	ref  reference.Reference
	host string // endpoint host, the key of scopes and tokens
	base string // "https://host/v2/<path>"
}

// repository resolves ref's endpoint.
func (c *Client) repository(ctx context.Context, ref reference.Reference) (repo, error) {
	if ref.Domain == "" || ref.Path == "" {
		return repo{}, errdefs.Invalid("invalid reference %q: no repository", ref.String())
	}
	base, err := c.baseURL(ctx, ref.Domain)
	if err != nil {
		return repo{}, fmt.Errorf("reach %s: %w", ref.Domain, err)
	}
	return repo{ref: ref, host: endpointHost(ref.Domain), base: base + "/v2/" + ref.Path}, nil
}

// scope adds the scope hints for r to ctx, so that one token request asks
// for everything the operation needs.
func (r repo) scope(ctx context.Context, actions ...string) context.Context {
	return withScopes(ctx, r.host, repositoryScope(r.ref.Path, actions...))
}

// do sends req through the auth layer and classifies its failures.
func (c *Client) do(req *http.Request) (*http.Response, error) {
	resp, err := c.authc.Load().Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, cleanURL(req.URL.String()), err)
	}
	return resp, nil
}

// expect sends req and returns the response when its status is one of
// want; otherwise the registry's error.
func (c *Client) expect(req *http.Request, want ...int) (*http.Response, error) {
	resp, err := c.do(req)
	if err != nil {
		return nil, err
	}
	for _, w := range want {
		if resp.StatusCode == w {
			return resp, nil
		}
	}
	return nil, responseError(resp)
}

// resolveLocation resolves an upload Location header against the request
// that returned it; registries send relative and absolute ones.
func resolveLocation(resp *http.Response) (*url.URL, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return nil, fmt.Errorf("%s %s: registry sent no Location", resp.Request.Method, cleanURL(resp.Request.URL.String()))
	}
	u, err := resp.Request.URL.Parse(loc)
	if err != nil {
		return nil, fmt.Errorf("parse upload location %q: %w", loc, err)
	}
	return u, nil
}

// scopeFrom adds pull on the mount source, which the token must cover
// too.
func scopeFrom(ctx context.Context, host string, from reference.Reference) context.Context {
	return withScopes(ctx, host, repositoryScope(from.Path, actionPull))
}
