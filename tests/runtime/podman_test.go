package runtime_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/internal/testutil"
)

// podman, given berth as its OCI runtime, runs a container: the
// runc-compatible command line is enough for a real engine.
func TestPodmanUsesBerth(t *testing.T) {
	testutil.RequiresRoot(t)
	podman, err := exec.LookPath("podman")
	if err != nil {
		testutil.Missing(t, "podman is not installed (scripts/deps.sh installs it)")
	}
	bin := testutil.BerthBinary(t)
	dir := t.TempDir()
	link := filepath.Join(dir, "berth-runc")
	require.NoError(t, os.Symlink(bin, link))
	rootfs := testutil.BusyboxRootfs(t, filepath.Join(dir, "rootfs"))
	tarball := filepath.Join(dir, "rootfs.tar")
	out, err := exec.Command("tar", "-C", rootfs, "-cf", tarball, ".").CombinedOutput()
	require.NoError(t, err, string(out))

	base := []string{
		"--root", filepath.Join(dir, "storage"), "--runroot", filepath.Join(dir, "run"),
		"--runtime", link, "--cgroup-manager", "cgroupfs", "--events-backend", "file",
		"--storage-driver", "vfs",
	}
	podmanCmd := func(args ...string) ([]byte, error) {
		cmd := exec.Command(podman, append(append([]string{}, base...), args...)...)
		cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+filepath.Join(dir, "containers.conf"))
		return cmd.CombinedOutput()
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "containers.conf"), []byte("[engine]\nno_pivot_root = false\n"), 0o644))
	t.Cleanup(func() {
		_, _ = podmanCmd("rm", "--all", "--force")
		_, _ = podmanCmd("rmi", "--all", "--force")
		_ = exec.Command("umount", "-R", filepath.Join(dir, "storage")).Run()
	})
	out, err = podmanCmd("import", tarball, "localhost/berth-test:latest")
	require.NoError(t, err, string(out))
	out, err = podmanCmd("run", "--rm", "--network", "none", "localhost/berth-test:latest", "sh", "-c", "echo hello-from-podman; cat /proc/1/comm")
	require.NoError(t, err, string(out))
	assert.Contains(t, string(out), "hello-from-podman")
	// With a terminal: podman hands berth a console socket.
	out, err = podmanCmd("run", "--rm", "-t", "--network", "none", "localhost/berth-test:latest", "sh", "-c", "tty; echo tty-done")
	require.NoError(t, err, string(out))
	assert.Contains(t, string(out), "/dev/pts/0")
	assert.Contains(t, string(out), "tty-done")
}
