package images_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/internal/testutil"
	"github.com/berth-containers/berth/internal/testutil/registrytest"
)

func requireTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		testutil.Missing(t, "%s is not installed (scripts/deps.sh installs it)", name)
	}
}

// requireDocker skips unless a docker daemon answers; CI starts one.
func requireDocker(t *testing.T) {
	t.Helper()
	requireTool(t, "docker")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := exec.CommandContext(ctx, "docker", "info").Run(); err != nil {
		testutil.Missing(t, "no docker daemon is running (scripts/test.sh starts one)")
	}
}

// skopeo copies between berth's registry pushes and its own, both ways,
// with the same content on each side.
func TestSkopeoInterop(t *testing.T) {
	requireTool(t, "skopeo")
	s := newStore(t)
	reg := registrytest.Start(t, registrytest.Options{})
	id := s.importImage("app:1", map[string][]byte{"data": randomBytes(t, 1<<20)})

	// berth pushes, skopeo pulls.
	s.must("push", "app:1", reg.Host+"/from/berth:1")
	dir := filepath.Join(t.TempDir(), "oci")
	runTool(t, "skopeo", "copy", "--src-tls-verify=false", "docker://"+reg.Host+"/from/berth:1", "oci:"+dir+":x")
	out := runTool(t, "skopeo", "inspect", "--config", "oci:"+dir+":x")
	require.Contains(t, out, `"diff_ids"`)

	// skopeo pushes (from berth's own archive), berth pulls: same image ID.
	archive := filepath.Join(t.TempDir(), "app.tar")
	s.must("save", "-o", archive, "app:1")
	runTool(t, "skopeo", "copy", "--dest-tls-verify=false", "docker-archive:"+archive, "docker://"+reg.Host+"/from/skopeo:1")
	s.must("pull", reg.Host+"/from/skopeo:1")
	require.Equal(t, id, s.id(reg.Host+"/from/skopeo:1"))
}

// docker pulls what berth pushed and berth pulls what docker pushed.
func TestDockerInterop(t *testing.T) {
	requireDocker(t)
	s := newStore(t)
	reg := registrytest.Start(t, registrytest.Options{})
	id := s.importImage("app:1", map[string][]byte{"etc/berth": []byte("pushed by berth\n")})
	name := reg.Host + "/from/berth:1"
	s.must("push", "app:1", name)
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", name).Run() })
	runTool(t, "docker", "pull", name)
	require.Equal(t, id, strings.TrimSpace(runTool(t, "docker", "image", "inspect", "--format", "{{.Id}}", name)))

	// docker imports its own image and pushes it; berth pulls it.
	dname := reg.Host + "/from/docker:1"
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", dname).Run() })
	cmd := exec.Command("docker", "import", "-", dname)
	cmd.Stdin = bytes.NewReader(busyboxTar(t, map[string][]byte{"etc/docker": []byte("pushed by docker\n")}))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	runTool(t, "docker", "push", dname)
	s.must("pull", dname)
	did := strings.TrimSpace(runTool(t, "docker", "image", "inspect", "--format", "{{.Id}}", dname))
	require.Equal(t, did, s.id(dname))
}

// save and load round-trip in both formats, several images at once.
func TestSaveLoad(t *testing.T) {
	s := newStore(t)
	a := s.importImage("one:1", map[string][]byte{"a": []byte("a")})
	b := s.importImage("two:1", map[string][]byte{"b": []byte("b")})
	for _, format := range []string{"docker-archive", "oci-archive"} {
		t.Run(format, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "images.tar")
			s.must("save", "--format", format, "-o", path, "one:1", "two:1")
			other := newStore(t)
			out := other.must("load", "-i", path)
			require.Contains(t, out, "one:1")
			require.Contains(t, out, "two:1")
			require.Equal(t, a, other.id("one:1"))
			require.Equal(t, b, other.id("two:1"))
		})
	}
	// A truncated archive is refused and leaves no image behind.
	path := filepath.Join(t.TempDir(), "cut.tar")
	s.must("save", "-o", path, "one:1")
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	other := newStore(t)
	_, errOut, code := other.run(data[:len(data)/2], "load")
	require.NotZero(t, code)
	require.NotEmpty(t, errOut)
	require.Empty(t, strings.TrimSpace(other.must("images", "-q")))
}

// docker loads what berth saves.
func TestDockerLoadsBerthSave(t *testing.T) {
	requireDocker(t)
	s := newStore(t)
	id := s.importImage("berth-saved:1", nil)
	path := filepath.Join(t.TempDir(), "img.tar")
	s.must("save", "-o", path, "berth-saved:1")
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", "berth-saved:1").Run() })
	runTool(t, "docker", "load", "-i", path)
	require.Equal(t, id, strings.TrimSpace(runTool(t, "docker", "image", "inspect", "--format", "{{.Id}}", "berth-saved:1")))
}
