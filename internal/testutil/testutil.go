// Package testutil holds helpers shared by berth's tests: a root check that
// skips clearly, and a builder of minimal busybox OCI bundles.
package testutil

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-containers/berth/runtime/spec"
)

// RequiresRoot skips the test, saying why, unless it runs as root. CI runs
// as root, so these tests are skipped only on developers' unprivileged runs.
func RequiresRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: this test needs root (run as root, as CI does)")
	}
}

// StrictEnv names the variable that turns Missing's skips into failures.
// scripts/test.sh (and so CI), which installs and starts every tool the
// tests use, sets it to 1: there, a missing tool is a broken set-up, not
// a reason to pass without checking.
const StrictEnv = "BERTH_TEST_STRICT"

// Missing skips the test, saying what it lacks, or fails it when
// StrictEnv is set.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv(StrictEnv) == "1" {
		t.Fatalf("missing under "+StrictEnv+"=1: "+format, args...)
	}
	t.Skipf("skipped: "+format, args...)
}

// BusyboxPath is where Debian's busybox-static package installs its binary.
const BusyboxPath = "/bin/busybox"

// RequiresBusybox skips the test unless a static busybox is installed.
func RequiresBusybox(t testing.TB) string {
	t.Helper()
	p := BusyboxPath
	if env := os.Getenv("BERTH_TEST_BUSYBOX"); env != "" {
		p = env
	}
	if _, err := os.Stat(p); err != nil {
		Missing(t, "static busybox not found at %s (apt-get install busybox-static)", p)
	}
	return p
}

// BusyboxRootfs writes a minimal root filesystem into dir: a static busybox
// and a link for each applet it lists, plus the usual empty top-level
// directories. It returns dir.
func BusyboxRootfs(t testing.TB, dir string) string {
	t.Helper()
	bb := RequiresBusybox(t)
	for _, d := range []string{"bin", "dev", "etc", "proc", "sys", "tmp", "root", "var", "run", "usr/bin", "usr/sbin", "sbin"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatalf("make rootfs dir: %v", err)
		}
	}
	if err := copyFile(bb, filepath.Join(dir, "bin", "busybox"), 0o755); err != nil {
		t.Fatalf("copy busybox: %v", err)
	}
	out, err := exec.Command(bb, "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	for _, name := range splitLines(string(out)) {
		if name == "busybox" {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", name)); err != nil && !os.IsExist(err) {
			t.Fatalf("link applet %s: %v", name, err)
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
		"etc/group":  "root:x:0:\nnogroup:x:65534:\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatalf("write %s: %v", name, err)
		}
	}
	return dir
}

// BusyboxBundle makes an OCI bundle (rootfs plus config.json) in a fresh
// temporary directory and returns its path and the spec written there. The
// spec is the runtime's usual default with args replaced; edit may change it
// before it is written.
func BusyboxBundle(t testing.TB, args []string, edit func(*specs.Spec)) (string, *specs.Spec) {
	t.Helper()
	bundle := t.TempDir()
	BusyboxRootfs(t, filepath.Join(bundle, "rootfs"))
	spec := DefaultSpec()
	spec.Process.Args = args
	if edit != nil {
		edit(spec)
	}
	WriteSpec(t, bundle, spec)
	return bundle, spec
}

// WriteSpec writes spec as bundle/config.json.
func WriteSpec(t testing.TB, bundle string, spec *specs.Spec) {
	t.Helper()
	data, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		t.Fatalf("encode spec: %v", err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o644); err != nil {
		t.Fatalf("write config.json: %v", err)
	}
}

func copyFile(src, dst string, mode os.FileMode) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("read %s: %w", src, err)
	}
	if err := os.WriteFile(dst, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	return nil
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// DefaultSpec is the runtime's default configuration made fit for tests: no
// terminal, a writable rootfs.
func DefaultSpec() *specs.Spec {
	s := spec.Default()
	s.Process.Terminal = false
	s.Root.Readonly = false
	return s
}

var (
	buildOnce sync.Once
	builtPath string
	buildErr  error
)

// BerthBinary returns the path of a berth binary for end-to-end tests:
// $BERTH_BINARY when set (the Makefile sets it), otherwise one built once
// per test process from this checkout.
func BerthBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("BERTH_BINARY"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "berth-test-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtPath = filepath.Join(dir, "berth")
		// Static, as the Makefile builds it: containers run it as their
		// --init, where no shared library is.
		cmd := exec.Command("go", "build", "-tags", "netgo,osusergo,sqlite_omit_load_extension",
			"-ldflags", "-extldflags=-static", "-o", builtPath, "github.com/berth-containers/berth/cmd/berth")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build berth: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("%v", buildErr)
	}
	return builtPath
}
