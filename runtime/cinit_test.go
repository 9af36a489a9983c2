package runtime

import (
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"

	"github.com/berth-containers/berth/internal/testutil"
	"github.com/berth-containers/berth/runtime/cinit"
	"github.com/berth-containers/berth/runtime/rootfs"
)

func cinitConfig(t *testing.T, edit func(*specs.Spec, *initConfig)) *initConfig {
	t.Helper()
	if !cinit.Available || !rootfs.HaveOpenat2() {
		t.Skip("no C init here (no cgo or no openat2)")
	}
	s := testutil.DefaultSpec()
	s.Process.Args = []string{"true"}
	bundle := t.TempDir()
	cfg := &initConfig{ID: "c", Spec: s, Process: s.Process, Bundle: bundle, Rootfs: filepath.Join(bundle, "rootfs"), InitPid: os.Getpid()}
	if err := os.Mkdir(cfg.Rootfs, 0o755); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(s, cfg)
	}
	return cfg
}

// What only the Go init does keeps a container on it from the start.
func TestWantsCInit(t *testing.T) {
	t.Setenv(EnvInitKind, "")
	assert.True(t, wantsCInit(cinitConfig(t, nil), &launcher{}))
	assert.True(t, wantsCInit(cinitConfig(t, func(_ *specs.Spec, c *initConfig) { c.ConsoleFd = 5 }), &launcher{}), "terminal")
	for name, edit := range map[string]func(*specs.Spec, *initConfig){
		"exec":           func(_ *specs.Spec, c *initConfig) { c.Exec = true },
		"user namespace": func(_ *specs.Spec, c *initConfig) { c.UserNS = true },
		"time namespace": func(_ *specs.Spec, c *initConfig) { c.NewTimeNS = true },
		"no pivot":       func(_ *specs.Spec, c *initConfig) { c.NoPivot = true },
		"createContainer": func(s *specs.Spec, _ *initConfig) {
			s.Hooks = &specs.Hooks{CreateContainer: []specs.Hook{{Path: "/bin/true"}}}
		},
		"startContainer": func(s *specs.Spec, _ *initConfig) {
			s.Hooks = &specs.Hooks{StartContainer: []specs.Hook{{Path: "/bin/true"}}}
		},
		"apparmor":  func(s *specs.Spec, _ *initConfig) { s.Process.ApparmorProfile = "p" },
		"scheduler": func(s *specs.Spec, _ *initConfig) { s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedOther} },
		"personality": func(s *specs.Spec, _ *initConfig) {
			s.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux}
		},
		"seccomp listener": func(s *specs.Spec, _ *initConfig) { s.Linux.Seccomp = &specs.LinuxSeccomp{ListenerPath: "/run/l.sock"} },
	} {
		assert.False(t, wantsCInit(cinitConfig(t, edit), &launcher{}), name)
	}
	t.Setenv(EnvInitKind, "go")
	assert.False(t, wantsCInit(cinitConfig(t, nil), &launcher{}), "BERTH_INIT=go")
}

// What the plan cannot express, found only once the init runs, gets the
// Go bootstrap.
func TestCompilePlanFallsBack(t *testing.T) {
	_, ok := compilePlan(cinitConfig(t, nil))
	assert.True(t, ok, "a default spec compiles")
	for name, edit := range map[string]func(*specs.Spec, *initConfig){
		"idmapped mount": func(s *specs.Spec, _ *initConfig) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "bind", Source: "/tmp", Options: []string{"bind", "idmap"}})
		},
		"tmpcopyup": func(s *specs.Spec, _ *initConfig) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "tmpfs", Source: "tmpfs", Options: []string{"tmpcopyup"}})
		},
		"bind onto a /proc file": func(s *specs.Spec, _ *initConfig) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/proc/cpuinfo", Type: "bind", Source: "/proc/cpuinfo", Options: []string{"bind"}})
		},
		"missing bind source": func(s *specs.Spec, _ *initConfig) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "bind", Source: "/nonexistent", Options: []string{"bind"}})
		},
		"target through a symlink": func(s *specs.Spec, c *initConfig) {
			if err := os.Symlink("/elsewhere", filepath.Join(c.Rootfs, "link")); err != nil {
				t.Fatal(err)
			}
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/link/x", Type: "tmpfs", Source: "tmpfs"})
		},
		"dotdot":                 func(s *specs.Spec, _ *initConfig) { s.Linux.MaskedPaths = []string{"/proc/../etc"} },
		"non-recursive root":     func(s *specs.Spec, _ *initConfig) { s.Linux.RootfsPropagation = "private" },
		"hostname, host uts":     func(s *specs.Spec, _ *initConfig) { s.Hostname = "h"; s.Linux.Namespaces = nil },
		"sysctl of the host":     func(s *specs.Spec, _ *initConfig) { s.Linux.Sysctl = map[string]string{"vm.swappiness": "1"} },
		"unknown rlimit":         func(s *specs.Spec, _ *initConfig) { s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_BOGUS"}} },
		"rootfs given as handle": func(_ *specs.Spec, c *initConfig) { c.Rootfs = "/proc/self/fd/7" },
		"terminal too large": func(s *specs.Spec, c *initConfig) {
			c.ConsoleFd = 5
			s.Process.ConsoleSize = &specs.Box{Width: 1 << 20, Height: 10}
		},
	} {
		_, ok := compilePlan(cinitConfig(t, edit))
		assert.False(t, ok, name)
	}
}
