package spec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestDefaultIsValid(t *testing.T) {
	s := Default()
	if err := Validate(s); err != nil {
		t.Fatalf("default spec invalid: %v", err)
	}
	if s.Version != specs.Version || !s.Root.Readonly || len(s.Linux.Namespaces) != 5 {
		t.Fatalf("unexpected default: version %s, readonly %v, %d namespaces", s.Version, s.Root.Readonly, len(s.Linux.Namespaces))
	}
}

func TestRootless(t *testing.T) {
	s := Default()
	Rootless(s, 1000, 1001)
	if ok, _ := HasNamespace(s, specs.NetworkNamespace); ok {
		t.Error("rootless spec keeps a network namespace")
	}
	if ok, _ := HasNamespace(s, specs.UserNamespace); !ok {
		t.Error("rootless spec has no user namespace")
	}
	if m := s.Linux.UIDMappings; len(m) != 1 || m[0].HostID != 1000 || m[0].ContainerID != 0 {
		t.Errorf("uid mappings %+v", m)
	}
	for _, m := range s.Mounts {
		if m.Destination == "/sys/fs/cgroup" {
			t.Error("rootless spec mounts cgroups")
		}
		for _, o := range m.Options {
			if o == "gid=5" {
				t.Errorf("%s keeps gid=5, unmapped in a rootless container", m.Destination)
			}
		}
	}
	if err := Validate(s); err != nil {
		t.Fatal(err)
	}
}

func TestValidateRejects(t *testing.T) {
	cases := map[string]struct {
		edit func(*specs.Spec)
		want string
	}{
		"no version":       {func(s *specs.Spec) { s.Version = "" }, "ociVersion is required"},
		"major 2":          {func(s *specs.Spec) { s.Version = "2.0.0" }, "unsupported ociVersion"},
		"no root":          {func(s *specs.Spec) { s.Root = nil }, "root.path"},
		"empty args":       {func(s *specs.Spec) { s.Process.Args = nil }, "args must not be empty"},
		"relative cwd":     {func(s *specs.Spec) { s.Process.Cwd = "tmp" }, "absolute"},
		"no cwd":           {func(s *specs.Spec) { s.Process.Cwd = "" }, "cwd is required"},
		"rlimit twice":     {func(s *specs.Spec) { s.Process.Rlimits = append(s.Process.Rlimits, s.Process.Rlimits[0]) }, "given twice"},
		"soft above hard":  {func(s *specs.Spec) { s.Process.Rlimits[0].Soft = 2048 }, "exceeds hard"},
		"bad namespace":    {func(s *specs.Spec) { s.Linux.Namespaces[0].Type = "bogus" }, "unknown namespace type"},
		"namespace twice":  {func(s *specs.Spec) { s.Linux.Namespaces[1].Type = s.Linux.Namespaces[0].Type }, "given twice"},
		"relative ns path": {func(s *specs.Spec) { s.Linux.Namespaces[0].Path = "proc/1/ns/pid" }, "must be absolute"},
		"maps without userns": {func(s *specs.Spec) {
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{HostID: 1, Size: 1}}
		}, "need a user namespace"},
		"relative mount": {func(s *specs.Spec) { s.Mounts[0].Destination = "proc" }, "absolute path"},
		"empty mount":    {func(s *specs.Spec) { s.Mounts[0].Destination = "" }, "destination is required"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			s := Default()
			c.edit(s)
			err := Validate(s)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
}

func TestLoadAndRootPath(t *testing.T) {
	dir := t.TempDir()
	data, err := json.Marshal(Default())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ConfigName), data, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := RootPath(dir, s); got != filepath.Join(dir, "rootfs") {
		t.Errorf("RootPath = %s", got)
	}
	s.Root.Path = "/abs/root"
	if got := RootPath(dir, s); got != "/abs/root" {
		t.Errorf("absolute RootPath = %s", got)
	}
	if _, err := Load(t.TempDir()); err == nil {
		t.Error("Load of a bundle without config.json succeeded")
	}
	if _, err := Parse([]byte("{not json")); err == nil || !strings.Contains(err.Error(), "parse config.json") {
		t.Errorf("Parse of bad JSON: %v", err)
	}
}
