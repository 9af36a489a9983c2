package main

import (
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/berth-containers/berth/engine"
	"github.com/berth-containers/berth/image"
)

// storeFlags are the global flags that say where berth's store is and how
// registries are reached.
var storeFlags struct {
	root     string
	insecure []string
	authFile string
}

func addStoreFlags(root *cobra.Command) {
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
	cmd.Flags().Bool("tls-verify", true,
		"verify the registry's TLS certificate (false also allows plain HTTP)")
}

func openEngine(cmd *cobra.Command) (*engine.Engine, error) {
	reg, err := registryOptions(cmd)
	if err != nil {
		return nil, err
	}
	return engine.Open(engine.Options{Root: storeFlags.root, Registry: reg})
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

// rowFilter decides whether one row of `images` is shown.
type rowFilter func(imageRow) bool

// filterImages applies docker's image filters: dangling, reference (a
// glob over the familiar name), before, since, label and until. Rows must
// pass every key, and any of the values given for one key.
func filterImages(cmd *cobra.Command, e *engine.Engine, rows []imageRow, filters []string) ([]imageRow, error) {
	fs, err := parseFilters(filters)
	if err != nil {
		return nil, err
	}
	var keys [][]rowFilter
	for k, vals := range fs {
		var alts []rowFilter
		for _, v := range vals {
			f, err := compileImageFilter(cmd, e, k, v)
			if err != nil {
				return nil, err
			}
			alts = append(alts, f)
		}
		keys = append(keys, alts)
	}
	var out []imageRow
	for _, r := range rows {
		if matchesAll(r, keys) {
			out = append(out, r)
		}
	}
	return out, nil
}

func matchesAll(r imageRow, keys [][]rowFilter) bool {
	for _, alts := range keys {
		if !slices.ContainsFunc(alts, func(f rowFilter) bool { return f(r) }) {
			return false
		}
	}
	return true
}

// compileImageFilter checks one filter and does its lookups (the pivot
// image of before/since) once, not once per row.
func compileImageFilter(cmd *cobra.Command, e *engine.Engine, key, v string) (rowFilter, error) {
	switch key {
	case "dangling":
		want, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("invalid filter 'dangling=%s': want true or false", v)
		}
		return func(r imageRow) bool { return (r.Repository == "<none>") == want }, nil
	case "reference":
		if _, err := path.Match(v, ""); err != nil {
			return nil, fmt.Errorf("invalid filter 'reference=%s': %w", v, err)
		}
		return func(r imageRow) bool {
			name := r.Repository
			if r.Tag != "<none>" {
				name += ":" + r.Tag
			}
			full, _ := path.Match(v, name)
			repo, _ := path.Match(v, r.Repository)
			return full || repo
		}, nil
	case "before", "since":
		at, err := imageCreated(cmd, e, v)
		if err != nil {
			return nil, err
		}
		if key == "before" {
			return func(r imageRow) bool { return r.created.Before(at) }, nil
		}
		return func(r imageRow) bool { return r.created.After(at) }, nil
	case "label":
		k, want, hasValue := strings.Cut(v, "=")
		return func(r imageRow) bool {
			got, ok := r.labels[k]
			return ok && (!hasValue || got == want)
		}, nil
	case "until":
		d, err := time.ParseDuration(v)
		if err != nil {
			return nil, fmt.Errorf("invalid filter 'until=%s': %w", v, err)
		}
		cut := time.Now().Add(-d)
		return func(r imageRow) bool { return r.created.Before(cut) }, nil
	}
	return nil, fmt.Errorf("invalid filter %q (want dangling, reference, before, since, label or until)", key)
}

// imageCreated is when the named image was built.
func imageCreated(cmd *cobra.Command, e *engine.Engine, name string) (time.Time, error) {
	img, err := e.Images.Get(cmd.Context(), name)
	if err != nil {
		return time.Time{}, err
	}
	cfg, err := e.Config(cmd.Context(), img)
	if err != nil {
		return time.Time{}, err
	}
	return createdAt(img, cfg), nil
}

// createdAt is when an image was built: its config's date, or when it
// entered the store for a config that has none.
func createdAt(img image.Image, cfg ocispec.Image) time.Time {
	if cfg.Created != nil {
		return *cfg.Created
	}
	return img.Created
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
