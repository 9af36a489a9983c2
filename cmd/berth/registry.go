package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-containers/berth/registry/config"
	"github.com/berth-containers/berth/registry/gc"
	"github.com/berth-containers/berth/registry/server"
)

func newRegistryCmd() *cobra.Command {
	c := &cobra.Command{Use: "registry", Short: "Run an OCI distribution registry"}
	c.AddCommand(newRegistryServeCmd(), newRegistryGCCmd())
	return c
}

// registryFlags are serve's flags; each overrides the config file.
type registryFlags struct {
	config, listen, root, cert, key, htpasswd, tokenKey, logLevel, logFormat string
	anonymousPull, token, noAccessLog                                        bool
}

func newRegistryServeCmd() *cobra.Command {
	var f registryFlags
	cmd := &cobra.Command{
		Use:   "serve [OPTIONS]",
		Short: "Serve a registry on a filesystem or S3 (see --config)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.load(cmd)
			if err != nil {
				return usageError("%v", err)
			}
			log := newLogger(cfg.Log)
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			srv, err := server.New(ctx, cfg, log)
			if err != nil {
				return err
			}
			return srv.Serve(ctx, nil)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "JSON configuration file (docs/REGISTRY.md)")
	fl.StringVar(&f.listen, "listen", "", "address to listen on (default "+config.DefaultListen+")")
	fl.StringVar(&f.root, "root", "", "keep content in this directory (filesystem storage)")
	fl.StringVar(&f.cert, "tls-cert", "", "TLS certificate file")
	fl.StringVar(&f.key, "tls-key", "", "TLS private key file")
	fl.StringVar(&f.htpasswd, "htpasswd", "", "users and bcrypt passwords (htpasswd -B)")
	fl.BoolVar(&f.anonymousPull, "anonymous-pull", false, "let anyone pull without credentials")
	fl.BoolVar(&f.token, "token-auth", false, "bearer tokens from the built-in issuer at /token instead of basic auth")
	fl.StringVar(&f.tokenKey, "token-key", "", "EC P-256 key (PEM) that signs tokens; replicas must share it")
	fl.StringVar(&f.logLevel, "log-level", "", "debug, info, warn or error")
	fl.StringVar(&f.logFormat, "log-format", "", "json or text")
	fl.BoolVar(&f.noAccessLog, "no-access-log", false, "no log line per request")
	return cmd
}

// load reads the config file and lays the flags given over it.
func (f *registryFlags) load(cmd *cobra.Command) (*config.Config, error) {
	cfg, err := config.Load(f.config)
	if err != nil {
		return nil, err
	}
	set := cmd.Flags().Changed
	if f.config == "" {
		cfg.Log.Access = true
	}
	if set("listen") {
		cfg.Listen = f.listen
	}
	if set("root") {
		cfg.Storage.Filesystem, cfg.Storage.S3 = &config.Filesystem{Root: f.root}, nil
	}
	if set("tls-cert") {
		cfg.TLS.Certificate = f.cert
	}
	if set("tls-key") {
		cfg.TLS.Key = f.key
	}
	if set("htpasswd") {
		cfg.Auth.Htpasswd = f.htpasswd
	}
	if set("anonymous-pull") {
		cfg.Auth.AnonymousPull = f.anonymousPull
	}
	if f.token || set("token-key") {
		if cfg.Auth.Token == nil {
			cfg.Auth.Token = &config.Token{}
		}
		cfg.Auth.Token.Key = f.tokenKey
	}
	if set("log-level") {
		cfg.Log.Level = f.logLevel
	}
	if set("log-format") {
		cfg.Log.Format = f.logFormat
	}
	if f.noAccessLog {
		cfg.Log.Access = false
	}
	return cfg, cfg.Finish()
}

// newLogger logs to stderr in the configured format and level.
func newLogger(l config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(l.Level))
	opts := &slog.HandlerOptions{Level: level}
	if l.Format == "text" {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}

// newRegistryGCCmd collects a registry's garbage once, while it serves or
// not: it takes the same configuration as serve.
func newRegistryGCCmd() *cobra.Command {
	var f registryFlags
	var dryRun bool
	var grace time.Duration
	cmd := &cobra.Command{
		Use:   "gc [OPTIONS]",
		Short: "Delete blobs no manifest references, and abandoned uploads (safe while serving)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.load(cmd)
			if err != nil {
				return usageError("%v", err)
			}
			if cmd.Flags().Changed("grace") {
				cfg.GC.Grace = grace
			}
			srv, err := server.New(cmd.Context(), cfg, newLogger(cfg.Log))
			if err != nil {
				return err
			}
			rep, err := gc.Run(cmd.Context(), srv.Registry, gc.Options{Grace: cfg.GC.Grace, DryRun: dryRun})
			verb := "deleted"
			if dryRun {
				verb = "would delete"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d repositories, %d manifests, %d blobs: %s %d blobs (%s) and %d uploads in %s\n",
				rep.Repositories, rep.Manifests, rep.Blobs, verb, rep.BlobsDeleted, humanSize(rep.BytesFreed),
				rep.UploadsDeleted, rep.Duration.Round(time.Millisecond))
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "JSON configuration file, as serve's")
	fl.StringVar(&f.root, "root", "", "the registry's directory (filesystem storage)")
	fl.BoolVar(&dryRun, "dry-run", false, "report what would be deleted, delete nothing")
	fl.DurationVar(&grace, "grace", 0, "keep blobs written or linked this recently (default: the config's, else 1h)")
	return cmd
}
