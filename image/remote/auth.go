package remote

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"golang.org/x/sync/singleflight"
)

// Authentication schemes, as challenges name them (lower-cased).
const (
	schemeBasic  = "basic"
	schemeBearer = "bearer"
)

// maxRedirects bounds the redirects one request follows.
const maxRedirects = 10

// credential is what berth knows about a user on one registry.
type credential struct {
	Username string
	Password string
	// IdentityToken is an OAuth2 refresh token, exchanged at the token
	// server for access tokens ("identitytoken" in docker's config).
	IdentityToken string
	// RegistryToken is a bearer token sent as it is ("registrytoken").
	RegistryToken string
}

func (c credential) empty() bool { return c == credential{} }

// credentialFunc finds the credential for an endpoint host ("host:port").
type credentialFunc func(ctx context.Context, host string) (credential, error)

// authorizer sends requests to registries and answers their
// authentication challenges: it retries a request refused with 401 once,
// with basic credentials or with a bearer token fetched for the scopes in
// the request's context and the challenge's, and caches what worked so
// that later requests to the host carry it from the start.
type authorizer struct {
	client      *http.Client // follows redirects without leaking credentials
	tokenClient *http.Client // for token requests; checks each realm it is sent to
	userAgent   string
	credential  credentialFunc
	cache       *authCache
}

func newAuthorizer(base *http.Client, userAgent string, cred credentialFunc) *authorizer {
	a := &authorizer{userAgent: userAgent, credential: cred, cache: newAuthCache()}
	c := *base
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		return checkRedirect(req, via, false)
	}
	a.client = &c
	t := *base
	t.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if reg, ok := req.Context().Value(registryURLKey{}).(*url.URL); ok {
			if err := checkRealm(req.URL, reg); err != nil {
				return fmt.Errorf("token request redirected: %w", err)
			}
		}
		return checkRedirect(req, via, true)
	}
	a.tokenClient = &t
	return a
}

// checkRedirect drops the Authorization header once a redirect leaves the
// origin of the first request (registries send blob downloads to storage
// hosts, which must not see the registry's credentials; Go's own rule
// keeps the header for the same host name on another port). A token
// request's body (an OAuth2 form with a refresh token or password) is not
// sent to another origin at all.
func checkRedirect(req *http.Request, via []*http.Request, refuseBody bool) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	left := !sameOrigin(via[0].URL, req.URL)
	for _, r := range via[1:] {
		left = left || !sameOrigin(via[0].URL, r.URL)
	}
	if !left {
		return nil
	}
	if refuseBody && req.Body != nil && req.Body != http.NoBody {
		return fmt.Errorf("%s %s: refusing to send a token request body to another origin", req.Method, cleanURL(req.URL.String()))
	}
	req.Header.Del("Authorization")
	return nil
}

// sameOrigin compares scheme, host and port (the default one filled in).
func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && hostPort(a) == hostPort(b)
}

func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "443"
		if strings.EqualFold(u.Scheme, "http") {
			port = "80"
		}
	}
	return strings.ToLower(u.Hostname()) + ":" + port
}

// send adds the User-Agent and sends req through c.
func (a *authorizer) send(c *http.Client, req *http.Request) (*http.Response, error) {
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", a.userAgent)
	}
	return c.Do(req)
}

// Do sends req, authenticating as its host asks. A request that already
// carries an Authorization header is sent as it is. The retry after a
// challenge needs the body again: a request whose body cannot be produced
// again (no GetBody) fails then, so callers send such bodies only once a
// first request has put the right credentials in the cache.
func (a *authorizer) Do(req *http.Request) (*http.Response, error) {
	if req.Header.Get("Authorization") != "" {
		return a.send(a.client, req)
	}
	ctx := req.Context()
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	scopes := scopesFor(ctx, host)
	sent := a.cache.header(host, scopeKey(scopes))
	first := req.Clone(ctx)
	if sent != "" {
		first.Header.Set("Authorization", sent)
	}
	resp, err := a.send(a.client, first)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	if resp.Request != nil && !sameOrigin(req.URL, resp.Request.URL) {
		// A storage host refused us; its challenge is not ours to answer.
		return resp, nil
	}
	ch, ok := pickChallenge(parseChallenges(resp.Header.Values("WWW-Authenticate")))
	if !ok {
		return resp, nil
	}
	drainClose(resp.Body)
	switch ch.scheme {
	case schemeBasic:
		header, err := a.basic(ctx, host, sent)
		if err != nil {
			return nil, err
		}
		return a.retry(req, header)
	default: // bearer
		scopes = mergeScopes(append(scopes, strings.Fields(ch.params["scope"])...))
		key := scopeKey(scopes)
		// The challenge may ask for more than the context named; another
		// request may have cached a token for exactly that.
		if h := a.cache.bearerHeader(host, key); h != "" && h != sent {
			resp, err := a.retry(req, h)
			if err != nil || resp.StatusCode != http.StatusUnauthorized {
				return resp, err
			}
			drainClose(resp.Body)
			sent = h
		}
		header, err := a.cache.refetch(host, schemeBearer, key, sent, func() (string, error) {
			tok, err := a.fetchToken(ctx, req.URL, host, ch.params, scopes)
			if err != nil {
				return "", err
			}
			return "Bearer " + tok, nil
		})
		if err != nil {
			return nil, err
		}
		return a.retry(req, header)
	}
}

// retry sends req again with the Authorization header.
func (a *authorizer) retry(req *http.Request, header string) (*http.Response, error) {
	next, err := rewind(req)
	if err != nil {
		return nil, err
	}
	next.Header.Set("Authorization", header)
	return a.send(a.client, next)
}

// errNoCredentials is the answer to a basic challenge when berth has no
// credentials for the host.
var errNoCredentials = fmt.Errorf("%w: no credentials for this registry (log in first)", ErrUnauthorized)

// basic returns a Basic header for host other than the refused one. The
// credentials are looked up again, so that a login by another process
// counts.
func (a *authorizer) basic(ctx context.Context, host, refused string) (string, error) {
	return a.cache.refetch(host, schemeBasic, "", refused, func() (string, error) {
		cred, err := a.credential(ctx, host)
		if err != nil {
			return "", err
		}
		if cred.Username == "" || cred.Password == "" {
			return "", errNoCredentials
		}
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(cred.Username+":"+cred.Password)), nil
	})
}

// rewind copies req with its body produced again.
func rewind(req *http.Request) (*http.Request, error) {
	next := req.Clone(req.Context())
	if req.Body == nil || req.Body == http.NoBody {
		return next, nil
	}
	if req.GetBody == nil {
		return nil, fmt.Errorf("%s %s: registry asked for credentials and the request body cannot be sent again", req.Method, cleanURL(req.URL.String()))
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, fmt.Errorf("%s %s: reopen request body: %w", req.Method, cleanURL(req.URL.String()), err)
	}
	next.Body = body
	return next, nil
}

func scopeKey(scopes []string) string { return strings.Join(scopes, " ") }

// authCache remembers, per endpoint host, the scheme the registry asked
// for and the Authorization headers that answered it: one for Basic, one
// per set of scopes for Bearer. Concurrent fetches of the same header are
// merged into one.
type authCache struct {
	mu      sync.Mutex
	schemes map[string]string // host -> scheme
	headers map[string]string // host + " " + scheme + " " + scope key -> header
	flight  singleflight.Group
}

func newAuthCache() *authCache {
	return &authCache{schemes: map[string]string{}, headers: map[string]string{}}
}

func cacheKey(host, scheme, scopes string) string { return host + " " + scheme + " " + scopes }

// header is what to send to host up front: the Basic header, or the
// Bearer header for exactly these scopes; "" when nothing fits.
func (c *authCache) header(host, scopes string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch s := c.schemes[host]; s {
	case schemeBasic:
		return c.headers[cacheKey(host, s, "")]
	case schemeBearer:
		return c.headers[cacheKey(host, s, scopes)]
	}
	return ""
}

func (c *authCache) bearerHeader(host, scopes string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.headers[cacheKey(host, schemeBearer, scopes)]
}

// refetch makes a new header with get, unless one other than stale has
// been cached meanwhile, and caches it.
func (c *authCache) refetch(host, scheme, scopes, stale string, get func() (string, error)) (string, error) {
	key := cacheKey(host, scheme, scopes)
	v, err, _ := c.flight.Do(key, func() (any, error) {
		c.mu.Lock()
		h, ok := c.headers[key]
		c.mu.Unlock()
		if ok && h != stale {
			return h, nil
		}
		h, err := get()
		if err != nil {
			return "", err
		}
		c.mu.Lock()
		c.headers[key] = h
		c.mu.Unlock()
		return h, nil
	})
	if err != nil {
		return "", err
	}
	c.setScheme(host, scheme)
	return v.(string), nil
}

func (c *authCache) setScheme(host, scheme string) {
	c.mu.Lock()
	c.schemes[host] = scheme
	c.mu.Unlock()
}
