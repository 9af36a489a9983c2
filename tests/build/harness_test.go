// Package build_test drives `berth build` through the built binary, as a
// user would, and runs what it builds.
package build_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

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
	s := &store{t: t, bin: testutil.BerthBinary(t), root: t.TempDir()}
	s.env = append(os.Environ(), "HOME="+t.TempDir())
	t.Cleanup(s.cleanup)
	s.busybox("busybox")
	return s
}

// cleanup removes the store's containers and checks that no build left a
// mount behind.
func (s *store) cleanup() {
	out, _, _ := s.run(nil, "ps", "-aq", "--no-trunc")
	for _, id := range strings.Fields(out) {
		s.run(nil, "rm", "-f", id)
	}
	if _, errOut, code := s.run(nil, "system", "reset", "--force"); code != 0 {
		s.t.Errorf("cleanup: system reset: %s", errOut)
	}
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		s.t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], s.root+"/") {
			s.t.Errorf("mount left under the store: %s", f[4])
		}
	}
}

func (s *store) run(stdin []byte, args ...string) (string, string, int) {
	s.t.Helper()
	return testutil.RunCommand(s.t, s.env, stdin, s.bin, append([]string{"--root", s.root}, args...)...)
}

func (s *store) must(args ...string) string {
	s.t.Helper()
	out, errOut, code := s.run(nil, args...)
	if code != 0 {
		s.t.Fatalf("berth %v: exit %d: %s", args, code, errOut)
	}
	return out
}

// build runs `berth build --progress plain` on dir with a Dockerfile and
// returns stdout and stderr; it fails the test unless the build succeeds.
func (s *store) build(dir, dockerfile string, args ...string) (string, string) {
	s.t.Helper()
	if dockerfile != "" {
		write(s.t, dir, "Dockerfile", dockerfile)
	}
	out, errOut, code := s.run(nil, append(append([]string{"build", "--progress", "plain"}, args...), dir)...)
	if code != 0 {
		s.t.Fatalf("build: exit %d:\n%s", code, errOut)
	}
	return out, errOut
}

// buildFails runs a build that must fail and returns its stderr.
func (s *store) buildFails(dir, dockerfile string, args ...string) string {
	s.t.Helper()
	if dockerfile != "" {
		write(s.t, dir, "Dockerfile", dockerfile)
	}
	_, errOut, code := s.run(nil, append(append([]string{"build", "--progress", "plain"}, args...), dir)...)
	if code == 0 {
		s.t.Fatalf("build succeeded, want a failure")
	}
	return errOut
}

// busybox imports a busybox root filesystem, with passwd and group
// files, as name.
func (s *store) busybox(name string) {
	s.t.Helper()
	dir := s.t.TempDir()
	testutil.BusyboxRootfs(s.t, dir)
	write(s.t, dir, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home/nobody:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n")
	write(s.t, dir, "etc/group", "root:x:0:\nnogroup:x:65534:\napp:x:1000:\n")
	tarData, err := exec.Command("tar", "-C", dir, "--numeric-owner", "-cf", "-", ".").Output()
	if err != nil {
		s.t.Fatalf("tar rootfs: %v", err)
	}
	if _, errOut, code := s.run(tarData, "import", "--change", `CMD ["/bin/sh"]`, "-", name); code != 0 {
		s.t.Fatalf("import: %s", errOut)
	}
}

// write writes a file under dir, making its parents.
func write(t *testing.T, dir, name, data string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// imageCount is the number of images in the store.
func (s *store) imageCount() int {
	return len(strings.Fields(s.must("images", "-q")))
}
