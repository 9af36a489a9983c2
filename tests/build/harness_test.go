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

// store is one private berth store driven through the binary, with a
// busybox image in it.
type store struct{ *testutil.Store }

func newStore(t *testing.T) *store {
	t.Helper()
	testutil.RequiresBusybox(t)
	s := &store{testutil.NewStore(t)}
	t.Cleanup(s.cleanup)
	s.busybox("busybox")
	return s
}

// cleanup removes the store's containers and checks that no build left a
// mount behind.
func (s *store) cleanup() {
	out, _, _ := s.Run(nil, "ps", "-aq", "--no-trunc")
	for _, id := range strings.Fields(out) {
		s.Run(nil, "rm", "-f", id)
	}
	if _, errOut, code := s.Run(nil, "system", "reset", "--force"); code != 0 {
		s.T.Errorf("cleanup: system reset: %s", errOut)
	}
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		s.T.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], s.Root+"/") {
			s.T.Errorf("mount left under the store: %s", f[4])
		}
	}
}

// build runs `berth build --progress plain` on dir with a Dockerfile and
// returns stdout and stderr; it fails the test unless the build succeeds.
func (s *store) build(dir, dockerfile string, args ...string) (string, string) {
	s.T.Helper()
	if dockerfile != "" {
		write(s.T, dir, "Dockerfile", dockerfile)
	}
	out, errOut, code := s.Run(nil, append(append([]string{"build", "--progress", "plain"}, args...), dir)...)
	if code != 0 {
		s.T.Fatalf("build: exit %d:\n%s", code, errOut)
	}
	return out, errOut
}

// buildFails runs a build that must fail and returns its stderr.
func (s *store) buildFails(dir, dockerfile string, args ...string) string {
	s.T.Helper()
	if dockerfile != "" {
		write(s.T, dir, "Dockerfile", dockerfile)
	}
	_, errOut, code := s.Run(nil, append(append([]string{"build", "--progress", "plain"}, args...), dir)...)
	if code == 0 {
		s.T.Fatalf("build succeeded, want a failure")
	}
	return errOut
}

// busybox imports a busybox root filesystem, with passwd and group
// files, as name.
func (s *store) busybox(name string) {
	s.T.Helper()
	dir := s.T.TempDir()
	testutil.BusyboxRootfs(s.T, dir)
	write(s.T, dir, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home/nobody:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n")
	write(s.T, dir, "etc/group", "root:x:0:\nnogroup:x:65534:\napp:x:1000:\n")
	tarData, err := exec.Command("tar", "-C", dir, "--numeric-owner", "-cf", "-", ".").Output()
	if err != nil {
		s.T.Fatalf("tar rootfs: %v", err)
	}
	if _, errOut, code := s.Run(tarData, "import", "--change", `CMD ["/bin/sh"]`, "-", name); code != 0 {
		s.T.Fatalf("import: %s", errOut)
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
	return len(strings.Fields(s.Must("images", "-q")))
}
