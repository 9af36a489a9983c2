// Package images_test drives berth's image commands against real
// registries on 127.0.0.1 and checks what other tools see.
package images_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-containers/berth/internal/testutil"
)

// store is one private berth store driven through the binary.
type store struct {
	t    *testing.T
	bin  string
	root string
	env  []string
}

func newStore(t *testing.T) *store {
	t.Helper()
	testutil.RequiresRoot(t)
	testutil.RequiresBusybox(t)
	home := t.TempDir()
	return &store{t: t, bin: testutil.BerthBinary(t), root: t.TempDir(),
		env: append(os.Environ(), "HOME="+home, "DOCKER_CONFIG="+filepath.Join(home, ".docker"))}
}

// run runs `berth --root ROOT args...` and returns stdout, stderr and
// the exit code.
func (s *store) run(stdin []byte, args ...string) (string, string, int) {
	s.t.Helper()
	return testutil.RunCommand(s.t, s.env, stdin, s.bin, append([]string{"--root", s.root}, args...)...)
}

// must runs a command that has to succeed and returns its stdout.
func (s *store) must(args ...string) string {
	s.t.Helper()
	out, errOut, code := s.run(nil, args...)
	if code != 0 {
		s.t.Fatalf("berth %v: exit %d: %s", args, code, errOut)
	}
	return out
}

// fails runs a command that has to fail and returns its stderr.
func (s *store) fails(args ...string) string {
	s.t.Helper()
	_, errOut, code := s.run(nil, args...)
	if code == 0 {
		s.t.Fatalf("berth %v succeeded; it should have failed", args)
	}
	return errOut
}

// id returns an image's full ID.
func (s *store) id(name string) string {
	s.t.Helper()
	return strings.TrimSpace(s.must("image", "inspect", "--format", "{{.ID}}", name))
}

// busyboxTar is a root filesystem tar with a static busybox and its
// applet links, plus extra files.
func busyboxTar(t *testing.T, extra map[string][]byte) []byte {
	t.Helper()
	dir := t.TempDir()
	testutil.BusyboxRootfs(t, dir)
	for name, data := range extra {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command("tar", "-C", dir, "--numeric-owner", "-cf", "-", ".").Output()
	if err != nil {
		t.Fatalf("tar rootfs: %v", err)
	}
	return out
}

// importImage imports a busybox rootfs (with extra files) as name.
func (s *store) importImage(name string, extra map[string][]byte) string {
	s.t.Helper()
	out, errOut, code := s.run(busyboxTar(s.t, extra), "import", "--change", `CMD ["/bin/sh"]`, "-", name)
	if code != 0 {
		s.t.Fatalf("import: %s", errOut)
	}
	return strings.TrimSpace(out)
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// runTool runs another program (skopeo, docker) for at most two minutes.
func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
