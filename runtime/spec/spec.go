// Package spec loads, checks and generates OCI runtime configurations
// (config.json). The runtime takes a specs.Spec and nothing else; this
// package is where a bundle's file becomes one.
package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ConfigName is the file name of a bundle's configuration.
const ConfigName = "config.json"

// Load reads and checks bundle/config.json.
func Load(bundle string) (*specs.Spec, error) {
	data, err := os.ReadFile(filepath.Join(bundle, ConfigName))
	if err != nil {
		return nil, fmt.Errorf("read bundle config: %w", err)
	}
	return Parse(data)
}

// Parse decodes a configuration and checks it.
func Parse(data []byte) (*specs.Spec, error) {
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("parse config.json: %w", err)
	}
	if err := Validate(&s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Validate checks what the runtime relies on before it makes anything, so
// that a bad configuration fails in one clear line with nothing left behind.
func Validate(s *specs.Spec) error {
	if s.Version == "" {
		return errors.New("config.json: ociVersion is required")
	}
	if !strings.HasPrefix(s.Version, "1.") {
		return fmt.Errorf("config.json: unsupported ociVersion %q (berth supports 1.x)", s.Version)
	}
	if s.Root == nil || s.Root.Path == "" {
		return errors.New("config.json: root.path is required")
	}
	if s.Process != nil {
		if err := validateProcess(s.Process); err != nil {
			return err
		}
	}
	if s.Linux != nil {
		if err := validateLinux(s.Linux); err != nil {
			return err
		}
	}
	for i, m := range s.Mounts {
		if m.Destination == "" {
			return fmt.Errorf("config.json: mounts[%d]: destination is required", i)
		}
		if !filepath.IsAbs(m.Destination) {
			return fmt.Errorf("config.json: mounts[%d]: destination %q must be an absolute path", i, m.Destination)
		}
	}
	return nil
}

// ValidateProcess checks a process definition, as given to create or exec.
func ValidateProcess(p *specs.Process) error { return validateProcess(p) }

func validateProcess(p *specs.Process) error {
	if len(p.Args) == 0 && p.CommandLine == "" {
		return errors.New("config.json: process.args must not be empty")
	}
	if p.Cwd == "" {
		return errors.New("config.json: process.cwd is required")
	}
	if !filepath.IsAbs(p.Cwd) {
		return fmt.Errorf("config.json: process.cwd %q must be an absolute path", p.Cwd)
	}
	seen := map[string]bool{}
	for _, r := range p.Rlimits {
		if seen[r.Type] {
			return fmt.Errorf("config.json: rlimit %s given twice", r.Type)
		}
		seen[r.Type] = true
		if r.Soft > r.Hard {
			return fmt.Errorf("config.json: rlimit %s: soft limit %d exceeds hard limit %d", r.Type, r.Soft, r.Hard)
		}
	}
	return nil
}

var namespaceTypes = map[specs.LinuxNamespaceType]bool{
	specs.PIDNamespace: true, specs.NetworkNamespace: true, specs.MountNamespace: true,
	specs.IPCNamespace: true, specs.UTSNamespace: true, specs.UserNamespace: true,
	specs.CgroupNamespace: true, specs.TimeNamespace: true,
}

func validateLinux(l *specs.Linux) error {
	seen := map[specs.LinuxNamespaceType]bool{}
	for _, ns := range l.Namespaces {
		if !namespaceTypes[ns.Type] {
			return fmt.Errorf("config.json: unknown namespace type %q", ns.Type)
		}
		if seen[ns.Type] {
			return fmt.Errorf("config.json: namespace %q given twice", ns.Type)
		}
		seen[ns.Type] = true
		if ns.Path != "" && !filepath.IsAbs(ns.Path) {
			return fmt.Errorf("config.json: namespace %q path %q must be absolute", ns.Type, ns.Path)
		}
	}
	userns := seen[specs.UserNamespace]
	if (len(l.UIDMappings) > 0 || len(l.GIDMappings) > 0) && !userns {
		return errors.New("config.json: uidMappings/gidMappings need a user namespace")
	}
	return nil
}

// HasNamespace reports whether the spec lists a namespace of type t, and its
// path (empty for a new one).
func HasNamespace(s *specs.Spec, t specs.LinuxNamespaceType) (bool, string) {
	if s.Linux == nil {
		return false, ""
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == t {
			return true, ns.Path
		}
	}
	return false, ""
}

// RootPath returns the absolute root filesystem path of a bundle.
func RootPath(bundle string, s *specs.Spec) string {
	if filepath.IsAbs(s.Root.Path) {
		return s.Root.Path
	}
	return filepath.Join(bundle, s.Root.Path)
}
