package remote

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// oauthClientID names berth to token servers in OAuth2 requests.
const oauthClientID = "berth"

// maxTokenResponse bounds a token server's answer.
const maxTokenResponse = 1 << 20

// registryURLKey carries the registry's URL to the token client's
// redirect check.
type registryURLKey struct{}

// fetchToken gets a bearer token for scopes from the realm a registry's
// challenge names. Credentials with a registry token use it as it is;
// with an identity token they ask with an OAuth2 refresh-token POST;
// otherwise with a GET carrying the user's basic credentials, or none.
func (a *authorizer) fetchToken(ctx context.Context, registry *url.URL, host string, params map[string]string, scopes []string) (string, error) {
	if params["realm"] == "" {
		return "", fmt.Errorf("bearer challenge from %s names no realm", host)
	}
	realm, err := url.Parse(params["realm"])
	if err != nil {
		return "", fmt.Errorf("bearer challenge from %s: bad realm: %w", host, err)
	}
	if err := checkRealm(realm, registry); err != nil {
		return "", err
	}
	cred, err := a.credential(ctx, host)
	if err != nil {
		return "", err
	}
	if cred.RegistryToken != "" {
		return cred.RegistryToken, nil
	}
	ctx = context.WithValue(ctx, registryURLKey{}, registry)
	var req *http.Request
	if cred.IdentityToken != "" {
		req, err = oauthTokenRequest(ctx, realm, params["service"], scopes, cred.IdentityToken)
	} else {
		req, err = tokenRequest(ctx, realm, params["service"], scopes, cred)
	}
	if err != nil {
		return "", err
	}
	resp, err := a.send(a.tokenClient, req)
	if err != nil {
		return "", fmt.Errorf("token request: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("token request: %w", responseError(resp))
	}
	defer resp.Body.Close()
	return decodeToken(io.LimitReader(resp.Body, maxTokenResponse))
}

// tokenRequest is the distribution token GET: realm?service=..&scope=..
// (one scope parameter per scope).
func tokenRequest(ctx context.Context, realm *url.URL, service string, scopes []string, cred credential) (*http.Request, error) {
	u := *realm
	q := u.Query()
	if service != "" {
		q.Set("service", service)
	}
	for _, s := range scopes {
		q.Add("scope", s)
	}
	u.RawQuery = q.Encode()
	req, err := newRequest(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if cred.Username != "" || cred.Password != "" {
		req.SetBasicAuth(cred.Username, cred.Password)
	}
	return req, nil
}

// oauthTokenRequest is the OAuth2 POST that trades a refresh token for an
// access token.
func oauthTokenRequest(ctx context.Context, realm *url.URL, service string, scopes []string, refresh string) (*http.Request, error) {
	form := url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {refresh},
		"service":       {service},
		"client_id":     {oauthClientID},
	}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	body := form.Encode()
	req, err := newRequest(ctx, http.MethodPost, realm.String(), strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req, nil
}

// decodeToken reads a token server's answer; distribution's servers name
// the token "token", OAuth2 ones "access_token", many send both.
func decodeToken(r io.Reader) (string, error) {
	var body struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(r).Decode(&body); err != nil {
		return "", fmt.Errorf("token request: decode answer: %w", err)
	}
	if body.AccessToken != "" {
		return body.AccessToken, nil
	}
	if body.Token != "" {
		return body.Token, nil
	}
	return "", fmt.Errorf("token request: token server sent no token")
}

// checkRealm refuses token realms that would carry credentials somewhere
// they should not go: plain HTTP when the registry was reached over
// HTTPS, schemes other than HTTP, and (unless the realm is the registry's
// own host) addresses inside the machine or its cloud provider, as
// loopback, link-local and metadata-service addresses are. A loopback
// registry may name a loopback realm. Names are not resolved.
func checkRealm(realm, registry *url.URL) error {
	switch realm.Scheme {
	case "https":
	case "http":
		if registry.Scheme == "https" {
			return fmt.Errorf("token realm %s uses http but the registry uses https", cleanURL(realm.String()))
		}
	default:
		return fmt.Errorf("token realm %s: unsupported scheme %q", cleanURL(realm.String()), realm.Scheme)
	}
	if strings.EqualFold(realm.Hostname(), registry.Hostname()) {
		return nil
	}
	addr, err := netip.ParseAddr(realm.Hostname())
	if err != nil {
		return nil
	}
	addr = addr.Unmap().WithZone("")
	if addr.IsLoopback() && isLoopback(registry.Host) {
		return nil
	}
	if internalAddr(addr) {
		return fmt.Errorf("token realm %s: address %s is internal to this machine or its cloud", cleanURL(realm.String()), addr)
	}
	return nil
}

// metadataAddrs are cloud providers' instance metadata services outside
// the link-local range.
var metadataAddrs = []string{"100.100.100.200", "168.63.129.16", "fd00:ec2::254", "fd00:ec2::23", "fd20:ce::254"}

func internalAddr(a netip.Addr) bool {
	if a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsUnspecified() || (a.Is4() && a.As4()[0] == 0) {
		return true
	}
	for _, m := range metadataAddrs {
		if a == netip.MustParseAddr(m) {
			return true
		}
	}
	return false
}
