// Package remote is berth's client for registries that speak the OCI
// distribution API: resolve and fetch manifests, stream blobs (resuming a
// dropped download with Range), push blobs monolithically or in chunks,
// mount blobs across repositories, push manifests, list tags, and log in.
//
// Authentication is anonymous, basic, or bearer tokens fetched as the
// registry's WWW-Authenticate challenges ask and cached per host and
// scope; credentials come from berth's auth file first, then from docker's
// config.json and the credential helpers either file names.
package remote

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for the zero Options.
const (
	DefaultUserAgent              = "berth"
	DefaultChunkSize              = 16 << 20
	DefaultMaxConcurrentDownloads = 3
	DefaultMaxConcurrentUploads   = 5
	DefaultMaxResumes             = 5
)

// Options configure a Client. The zero value is usable: credentials from
// DefaultAuthFile and docker's config, TLS verified except for insecure
// and loopback registries, retries on.
type Options struct {
	// AuthFile is berth's credentials file, in the format of docker's
	// config.json (an "auths" map, optional "credsStore"/"credHelpers").
	// Login writes it; lookups read it first. Empty means
	// DefaultAuthFile().
	AuthFile string
	// DockerConfig is docker's config.json, read after AuthFile; empty
	// means $DOCKER_CONFIG/config.json or ~/.docker/config.json.
	DockerConfig string
	// NoDockerConfig skips docker's config entirely.
	NoDockerConfig bool
	// Credentials, when set, is asked first for a registry host's user
	// name and password (a server configured with them, such as the
	// registry's pull-through cache); ok false falls back to the files.
	Credentials func(host string) (username, password string, ok bool)

	// InsecureRegistries lists registries reached without TLS
	// verification and with a fallback to plain HTTP, as docker's
	// --insecure-registry: "host", "host:port" or a CIDR of addresses.
	// Loopback registries (localhost, 127.0.0.0/8, ::1) are always
	// treated so, as docker does.
	InsecureRegistries []string
	// InsecureSkipVerify turns TLS verification off for every registry
	// (it does not allow plain HTTP).
	InsecureSkipVerify bool
	// RootCAs replaces the system's trusted roots when set.
	RootCAs *x509.CertPool

	// UserAgent is sent with every request; empty means DefaultUserAgent.
	UserAgent string

	// ChunkSize is the size of each PATCH of a chunked upload; zero means
	// DefaultChunkSize.
	ChunkSize int64
	// MonolithicLimit is the largest blob pushed in one PUT; larger ones
	// are uploaded in chunks. Zero means ChunkSize; negative means every
	// blob goes in one PUT.
	MonolithicLimit int64

	// Retry bounds the retries of idempotent requests.
	Retry RetryPolicy
	// MaxResumes bounds how often one FetchBlob stream reconnects with a
	// Range request after the connection drops; zero means
	// DefaultMaxResumes, negative means never.
	MaxResumes int

	// MaxConcurrentDownloads and MaxConcurrentUploads are how many blobs
	// a pull or push moves at once. The client does not enforce them;
	// they travel here so one configuration reaches the orchestration.
	// Zero means the defaults (3 and 5, as docker).
	MaxConcurrentDownloads int
	MaxConcurrentUploads   int
	// MaxConnsPerHost caps the connections to one host; zero is no cap.
	MaxConnsPerHost int
}

// withDefaults fills in the zero fields.
func (o Options) withDefaults() Options {
	if o.UserAgent == "" {
		o.UserAgent = DefaultUserAgent
	}
	if o.ChunkSize <= 0 {
		o.ChunkSize = DefaultChunkSize
	}
	if o.MonolithicLimit == 0 {
		o.MonolithicLimit = o.ChunkSize
	}
	if o.MaxResumes == 0 {
		o.MaxResumes = DefaultMaxResumes
	}
	if o.MaxConcurrentDownloads <= 0 {
		o.MaxConcurrentDownloads = DefaultMaxConcurrentDownloads
	}
	if o.MaxConcurrentUploads <= 0 {
		o.MaxConcurrentUploads = DefaultMaxConcurrentUploads
	}
	o.Retry = o.Retry.withDefaults()
	return o
}

// Client talks to registries. It is safe for concurrent use; one Client
// per process shares connections and cached tokens.
type Client struct {
	opts Options
	// http is the retrying client under the auth layer.
	http *http.Client
	// probe answers "does this host speak TLS" without retries or auth.
	probe *http.Client
	// authc is replaced, never changed, when credentials change, so that
	// tokens cached for old credentials are dropped.
	authc atomic.Pointer[authorizer]
	// fileMu serialises this client's changes to the auth file.
	fileMu sync.Mutex

	mu      sync.Mutex
	schemes map[string]string // endpoint host -> "https" or "http"
}

// New makes a Client.
func New(opts Options) (*Client, error) {
	opts = opts.withDefaults()
	if err := validateInsecure(opts.InsecureRegistries); err != nil {
		return nil, err
	}
	c := &Client{opts: opts, schemes: map[string]string{}}
	hosts := &hostTransport{
		secure:   newTransport(opts, opts.InsecureSkipVerify),
		insecure: newTransport(opts, true),
		insecureHost: func(host string) bool {
			return isInsecure(host, opts.InsecureRegistries)
		},
	}
	c.http = &http.Client{Transport: &retryTransport{next: hosts, policy: opts.Retry}}
	c.probe = &http.Client{Transport: hosts, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	c.resetAuth()
	return c, nil
}

// Options returns the options in effect, defaults filled in.
func (c *Client) Options() Options { return c.opts }

// resetAuth installs a fresh auth client with an empty token cache.
func (c *Client) resetAuth() {
	c.authc.Store(newAuthorizer(c.http, c.opts.UserAgent, c.lookupCredential))
}

func newTransport(opts Options, skipVerify bool) *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   30 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		TLSClientConfig: &tls.Config{
			RootCAs:            opts.RootCAs,
			InsecureSkipVerify: skipVerify, // only for registries marked insecure, or on request
			MinVersion:         tls.VersionTLS12,
		},
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   16,
		MaxConnsPerHost:       opts.MaxConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute,
		ExpectContinueTimeout: time.Second,
	}
}

// hostTransport picks the TLS-verifying or the insecure transport by the
// request's host, so a redirect from an insecure registry to a storage
// host is verified again.
type hostTransport struct {
	secure, insecure http.RoundTripper
	insecureHost     func(host string) bool
}

func (t *hostTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.insecureHost(req.URL.Host) {
		return t.insecure.RoundTrip(req)
	}
	return t.secure.RoundTrip(req)
}
