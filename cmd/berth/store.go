package main

import (
	"fmt"
	"os"
	"path"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-containers/berth/engine"
)

// storeFlags are the global flags that say where berth's store is and how
// registries are reached.
var storeFlags struct {
	root      string
	insecure  []string
	authFile  string
	tlsVerify bool
}

func addStoreFlags(root *cobra.Command) {
	storeFlags.tlsVerify = true
	f := root.PersistentFlags()
	def := os.Getenv("BERTH_ROOT")
	if def == "" {
		def = engine.DefaultRoot
	}
	f.StringVar(&storeFlags.root, "root", def, "where berth keeps images and containers ($BERTH_ROOT)")
	f.StringArrayVar(&storeFlags.insecure, "insecure-registry", nil,
		"registry (host[:port]) reached without TLS verification, and over plain HTTP when it has no TLS")
	f.StringVar(&storeFlags.authFile, "authfile", "", "registry credentials file (default ~/.config/berth/auth.json)")
}

// addTLSFlag adds podman's --tls-verify to commands that reach registries.
func addTLSFlag(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&storeFlags.tlsVerify, "tls-verify", true,
		"verify the registry's TLS certificate (false also allows plain HTTP)")
}

func openEngine(cmd *cobra.Command) (*engine.Engine, error) {
	opts := engine.Options{Root: storeFlags.root}
	opts.Registry = registryOptions(cmd)
	return engine.Open(opts)
}

// parseFilters reads repeated key=value --filter flags.
func parseFilters(filters []string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, f := range filters {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("invalid filter %q: want key=value", f)
		}
		out[strings.ToLower(k)] = append(out[strings.ToLower(k)], v)
	}
	return out, nil
}

// filterImages applies docker's image filters: dangling, reference (a
// glob over the familiar name), before, since and label.
func filterImages(cmd *cobra.Command, e *engine.Engine, rows []imageRow, filters []string) ([]imageRow, error) {
	fs, err := parseFilters(filters)
	if err != nil {
		return nil, err
	}
	var out []imageRow
	for _, r := range rows {
		keep := true
		for k, vals := range fs {
			ok, err := matchImageFilter(cmd, e, r, k, vals)
			if err != nil {
				return nil, err
			}
			keep = keep && ok
		}
		if keep {
			out = append(out, r)
		}
	}
	return out, nil
}

func matchImageFilter(cmd *cobra.Command, e *engine.Engine, r imageRow, key string, vals []string) (bool, error) {
	for _, v := range vals {
		ok, err := matchOne(cmd, e, r, key, v)
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

func matchOne(cmd *cobra.Command, e *engine.Engine, r imageRow, key, v string) (bool, error) {
	switch key {
	case "dangling":
		want := v == "true" || v == "1"
		if v != "true" && v != "false" && v != "1" && v != "0" {
			return false, fmt.Errorf("invalid filter 'dangling=%s': want true or false", v)
		}
		return (r.Repository == "<none>") == want, nil
	case "reference":
		name := r.Repository
		if r.Tag != "<none>" {
			name += ":" + r.Tag
		}
		if ok, err := path.Match(v, name); err != nil {
			return false, fmt.Errorf("invalid filter 'reference=%s': %w", v, err)
		} else if ok {
			return true, nil
		}
		ok, _ := path.Match(v, r.Repository)
		return ok, nil
	case "before", "since":
		pivot, err := e.Images.Get(cmd.Context(), v)
		if err != nil {
			return false, err
		}
		cfg, err := e.Config(cmd.Context(), pivot)
		if err != nil {
			return false, err
		}
		at := pivot.Created
		if cfg.Created != nil {
			at = *cfg.Created
		}
		if key == "before" {
			return r.created.Before(at), nil
		}
		return r.created.After(at), nil
	case "label":
		cfg, err := e.Config(cmd.Context(), r.img)
		if err != nil {
			return false, err
		}
		k, want, hasValue := strings.Cut(v, "=")
		got, ok := cfg.Config.Labels[k]
		return ok && (!hasValue || got == want), nil
	case "until":
		d, err := time.ParseDuration(v)
		if err != nil {
			return false, fmt.Errorf("invalid filter 'until=%s': %w", v, err)
		}
		return r.created.Before(time.Now().Add(-d)), nil
	}
	return false, fmt.Errorf("invalid filter %q (want dangling, reference, before, since, label or until)", key)
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%q requires exactly %d argument(s); see '%s --help'", cmd.CommandPath(), n, cmd.CommandPath())
		}
		return nil
	}
}

func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return fmt.Errorf("%q requires at least %d argument(s); see '%s --help'", cmd.CommandPath(), n, cmd.CommandPath())
		}
		return nil
	}
}

func rangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < lo || len(args) > hi {
			return fmt.Errorf("%q requires between %d and %d arguments; see '%s --help'", cmd.CommandPath(), lo, hi, cmd.CommandPath())
		}
		return nil
	}
}
