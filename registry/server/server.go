// Package server assembles `berth registry serve` from its configuration:
// the storage driver, the distribution API, authentication, metrics and
// access logs, TLS, and a graceful stop.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/berth-containers/berth/registry"
	"github.com/berth-containers/berth/registry/auth"
	"github.com/berth-containers/berth/registry/config"
	"github.com/berth-containers/berth/registry/gc"
	"github.com/berth-containers/berth/registry/observe"
	"github.com/berth-containers/berth/registry/proxy"
	"github.com/berth-containers/berth/registry/storage"
	"github.com/berth-containers/berth/registry/storage/fs"
	"github.com/berth-containers/berth/registry/storage/s3"
)

// shutdownGrace is how long a stopping server lets requests in flight
// finish.
const shutdownGrace = 30 * time.Second

// Server is a configured registry, ready to serve.
type Server struct {
	cfg     *config.Config
	log     *slog.Logger
	handler http.Handler
	// Metrics are served at /metrics.
	Metrics *observe.Metrics
	// Driver is the storage in use.
	Driver storage.Driver
	// Registry is the distribution API, for maintenance (gc.Run).
	Registry *registry.Registry
	lastGC   atomic.Int64 // Unix seconds of the last collection's end
}

// New builds the registry cfg describes; cfg must have been Finished.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger) (*Server, error) {
	d, err := openDriver(ctx, cfg.Storage)
	if err != nil {
		return nil, err
	}
	ups := make([]proxy.Upstream, len(cfg.Proxy))
	for i, p := range cfg.Proxy {
		ups[i] = proxy.Upstream{Prefix: p.Prefix, URL: p.URL, Username: p.Username, Password: p.Password}
	}
	reg, err := registry.New(d, registry.Options{Partial: proxy.Prefixed(ups), OnError: func(r *http.Request, err error) {
		log.LogAttrs(r.Context(), slog.LevelError, "storage error", slog.String("method", r.Method),
			slog.String("path", r.URL.Path), slog.String("error", err.Error()))
	}})
	if err != nil {
		return nil, err
	}
	var h http.Handler = reg
	if len(ups) > 0 {
		if h, err = proxy.New(reg, ups); err != nil {
			return nil, err
		}
	}
	if !cfg.Auth.Open() {
		if h, err = guard(h, cfg.Auth); err != nil {
			return nil, err
		}
	}
	s := &Server{cfg: cfg, log: log, Metrics: observe.NewMetrics(), Driver: d, Registry: reg}
	s.Metrics.AddGauge("berth_registry_gc_last_run_timestamp_seconds", "When garbage collection last finished (0: never).",
		func() float64 { return float64(s.lastGC.Load()) })
	mux := http.NewServeMux()
	mux.Handle("/metrics", s.Metrics)
	mux.Handle("/", h)
	var access *slog.Logger
	if cfg.Log.Access {
		access = log
	}
	s.handler = observe.Middleware(mux, s.Metrics, access)
	return s, nil
}

// Handler is the whole HTTP handler, for tests and embedding.
func (s *Server) Handler() http.Handler { return s.handler }

// openDriver opens the configured storage.
func openDriver(ctx context.Context, st config.Storage) (storage.Driver, error) {
	switch {
	case st.Filesystem != nil:
		return fs.New(st.Filesystem.Root)
	case st.S3 != nil:
		c := st.S3
		return s3.New(ctx, s3.Config{Endpoint: c.Endpoint, Region: c.Region, Bucket: c.Bucket, Prefix: c.Prefix,
			AccessKey: c.AccessKey, SecretKey: c.SecretKey, ForcePathStyle: c.ForcePathStyle})
	}
	return nil, errors.New("storage: none configured")
}

// guard wraps h with the configured authentication.
func guard(h http.Handler, a config.Auth) (http.Handler, error) {
	ac := auth.Config{Policy: a.Policy()}
	if a.Htpasswd != "" {
		users, err := auth.LoadHtpasswd(a.Htpasswd)
		if err != nil {
			return nil, err
		}
		ac.Users = users
	}
	if t := a.Token; t != nil {
		var err error
		if t.Key != "" {
			ac.Token, err = auth.LoadSigner(t.Key, t.Issuer, t.Service)
		} else {
			ac.Token, err = auth.GenerateSigner(t.Issuer, t.Service)
		}
		if err != nil {
			return nil, err
		}
		ac.Realm = t.Realm
	}
	return auth.Middleware(h, ac), nil
}

// reportGC logs a collection and records when it ended.
func (s *Server) reportGC(rep gc.Report, err error) {
	if err != nil {
		s.log.Error("garbage collection", slog.String("error", err.Error()))
		return
	}
	s.lastGC.Store(time.Now().Unix())
	s.log.Info("garbage collection", slog.Int("repositories", rep.Repositories), slog.Int("blobs", rep.Blobs),
		slog.Int("blobs_deleted", rep.BlobsDeleted), slog.Int64("bytes_freed", rep.BytesFreed),
		slog.Int("uploads_deleted", rep.UploadsDeleted), slog.Duration("took", rep.Duration))
}

// Serve listens and serves until ctx ends, then stops gracefully.
// ready, when set, is called with the address listened on.
func (s *Server) Serve(ctx context.Context, ready func(addr net.Addr)) error {
	l, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Listen, err)
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	if s.cfg.TLS.Certificate != "" {
		cert, err := tls.LoadX509KeyPair(s.cfg.TLS.Certificate, s.cfg.TLS.Key)
		if err != nil {
			l.Close()
			return fmt.Errorf("tls: %w", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		l = tls.NewListener(l, srv.TLSConfig)
	}
	if ready != nil {
		ready(l.Addr())
	}
	s.log.Info("serving", slog.String("address", l.Addr().String()), slog.String("storage", s.Driver.Name()),
		slog.Bool("tls", srv.TLSConfig != nil), slog.Bool("auth", !s.cfg.Auth.Open()))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	if s.cfg.GC.Interval > 0 {
		go gc.Loop(ctx, s.Registry, s.cfg.GC.Interval, gc.Options{Grace: s.cfg.GC.Grace}, s.reportGC)
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	stop, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(stop); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
