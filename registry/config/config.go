// Package config reads `berth registry serve`'s configuration: a JSON
// file, with flags laid over it. JSON rather than YAML: a YAML decoder
// compiles its regular expressions when the package initialises, in
// every berth process, to read a file only the registry reads. Everything is checked when read, so a
// bad setting stops the server at start with a message naming it.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/berth-containers/berth/registry/auth"
)

// Config is the registry's whole configuration, as a JSON file:
//
//	{
//	  "listen": "127.0.0.1:5000",
//	  "tls": {"certificate": "/etc/berth/registry.crt", "key": "/etc/berth/registry.key"},
//	  "storage": {"filesystem": {"root": "/var/lib/berth-registry"}},
//	  "auth": {
//	    "htpasswd": "/etc/berth/htpasswd",
//	    "anonymousPull": true,
//	    "token": {"key": "/etc/berth/token.pem", "issuer": "berth", "service": "registry.example.com"},
//	    "rules": [{"users": ["alice"], "repositories": ["team/*"], "actions": ["pull", "push", "delete"]}]
//	  },
//	  "log": {"level": "info", "format": "json", "access": true},
//	  "gc": {"interval": "1h", "grace": "24h"},
//	  "proxy": [{"prefix": "mirror/", "url": "https://upstream.example.com", "username": "u", "password": "p"}]
//	}
//
// or, for S3: "storage": {"s3": {"endpoint": "http://127.0.0.1:7070",
// "region": "us-east-1", "bucket": "images", "prefix": "registry",
// "accessKey": "...", "secretKey": "...", "forcePathStyle": true}}.
type Config struct {
	Listen  string  `json:"listen"`
	TLS     TLS     `json:"tls"`
	Storage Storage `json:"storage"`
	Auth    Auth    `json:"auth"`
	Log     Log     `json:"log"`
	GC      GC      `json:"gc"`
	Proxy   []Proxy `json:"proxy"`
}

// TLS names the server's certificate and key files; both or neither.
type TLS struct {
	Certificate string `json:"certificate"`
	Key         string `json:"key"`
}

// Storage picks one driver.
type Storage struct {
	Filesystem *Filesystem `json:"filesystem"`
	S3         *S3         `json:"s3"`
}

// Filesystem is the filesystem driver's setting.
type Filesystem struct {
	Root string `json:"root"`
}

// S3 is the S3 driver's setting.
type S3 struct {
	Endpoint       string `json:"endpoint"`
	Region         string `json:"region"`
	Bucket         string `json:"bucket"`
	Prefix         string `json:"prefix"`
	AccessKey      string `json:"accessKey"`
	SecretKey      string `json:"secretKey"`
	ForcePathStyle bool   `json:"forcePathStyle"`
}

// Auth is who may do what; no htpasswd and no rules leaves the registry
// open to everyone.
type Auth struct {
	Htpasswd      string      `json:"htpasswd"`
	AnonymousPull bool        `json:"anonymousPull"`
	Token         *Token      `json:"token"`
	Rules         []auth.Rule `json:"rules"`
}

// Token selects the token scheme. Key is a PEM EC P-256 key that every
// replica shares; without it each replica makes its own, which suits one
// replica only.
type Token struct {
	Key     string `json:"key"`
	Issuer  string `json:"issuer"`
	Service string `json:"service"`
	Realm   string `json:"realm"`
}

// Log sets the server's logging.
type Log struct {
	Level  string `json:"level"`  // debug, info, warn, error
	Format string `json:"format"` // json or text
	Access bool   `json:"access"` // a line per request
}

// GC sets the online garbage collector: it runs every Interval (0: never
// on its own) and deletes only what has been unreferenced for Grace.
type GC struct {
	Interval time.Duration
	Grace    time.Duration
}

// UnmarshalJSON reads the durations as Go writes them ("90s", "1h").
func (g *GC) UnmarshalJSON(b []byte) error {
	var raw struct {
		Interval string `json:"interval"`
		Grace    string `json:"grace"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return err
	}
	for _, f := range []struct {
		text string
		dst  *time.Duration
		name string
	}{{raw.Interval, &g.Interval, "interval"}, {raw.Grace, &g.Grace, "grace"}} {
		if f.text == "" {
			continue
		}
		d, err := time.ParseDuration(f.text)
		if err != nil {
			return fmt.Errorf("gc.%s %q: %w", f.name, f.text, err)
		}
		*f.dst = d
	}
	return nil
}

// Proxy makes repositories whose name starts with Prefix a pull-through
// cache of the upstream registry at URL (the prefix removed).
type Proxy struct {
	Prefix   string `json:"prefix"`
	URL      string `json:"url"`
	Username string `json:"username"`
	Password string `json:"password"`
}

// Defaults for what the file and flags leave out.
const (
	DefaultListen = "127.0.0.1:5000"
	DefaultGrace  = time.Hour
)

// Load reads a config file ("" for none) and fills defaults.
func Load(path string) (*Config, error) {
	c := &Config{}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read registry config: %w", err)
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) { // EOF: an empty file
			return nil, fmt.Errorf("registry config %s: %w", path, err)
		}
	}
	return c, nil
}

// Finish fills defaults and checks the whole configuration.
func (c *Config) Finish() error {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen %q: %w", c.Listen, err)
	}
	if (c.TLS.Certificate == "") != (c.TLS.Key == "") {
		return errors.New("tls: give both certificate and key, or neither")
	}
	switch {
	case c.Storage.Filesystem != nil && c.Storage.S3 != nil:
		return errors.New("storage: choose filesystem or s3, not both")
	case c.Storage.Filesystem == nil && c.Storage.S3 == nil:
		return errors.New("storage: none configured: give storage.filesystem.root, storage.s3, or --root")
	case c.Storage.Filesystem != nil && c.Storage.Filesystem.Root == "":
		return errors.New("storage.filesystem.root is empty")
	case c.Storage.S3 != nil && c.Storage.S3.Bucket == "":
		return errors.New("storage.s3.bucket is empty")
	}
	if err := c.Auth.policy().Check(); err != nil {
		return err
	}
	if len(c.Auth.Rules) > 0 && c.Auth.Htpasswd == "" && !c.Auth.AnonymousPull {
		return errors.New("auth.rules need users: give auth.htpasswd")
	}
	if t := c.Auth.Token; t != nil {
		if t.Issuer == "" {
			t.Issuer = "berth-registry"
		}
		if t.Service == "" {
			t.Service = c.Listen
		}
	}
	switch c.Log.Level {
	case "", "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log.level %q: use debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "", "json", "text":
	default:
		return fmt.Errorf("log.format %q: use json or text", c.Log.Format)
	}
	if c.GC.Interval < 0 || c.GC.Grace < 0 {
		return errors.New("gc: interval and grace must not be negative")
	}
	if c.GC.Grace == 0 {
		c.GC.Grace = DefaultGrace
	}
	for i, p := range c.Proxy {
		if p.Prefix == "" || p.URL == "" {
			return fmt.Errorf("proxy %d: give prefix and url", i+1)
		}
	}
	return nil
}

// Open reports whether the registry needs no authentication at all.
func (a Auth) Open() bool {
	return a.Htpasswd == "" && a.Token == nil && len(a.Rules) == 0 && !a.AnonymousPull
}

// Policy is the rules in force: the configured ones, or with none,
// everything for authenticated users and pull for anonymous ones when
// anonymousPull is set.
func (a Auth) Policy() auth.Policy { return a.policy() }

func (a Auth) policy() auth.Policy {
	if len(a.Rules) == 0 {
		return auth.DefaultPolicy(a.AnonymousPull)
	}
	p := auth.Policy{Rules: a.Rules}
	if a.AnonymousPull {
		p.Rules = append(p.Rules, auth.Rule{Users: []string{auth.Anonymous}, Repositories: []string{"**"}, Actions: []string{auth.Pull}})
	}
	return p
}
