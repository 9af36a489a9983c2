package containers_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-containers/berth/internal/testutil"
)

// dockerSide drives the docker CLI beside berth, so that a test can check
// berth's output against Docker's for the same image and commands. Every
// container and image it makes is removed when the test ends.
type dockerSide struct {
	t          *testing.T
	containers []string
	images     []string
}

// newDockerSide returns a docker driver, starting dockerd with the
// project's script when none answers; it skips the test, saying why, when
// docker cannot be had.
func newDockerSide(t *testing.T) *dockerSide {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("skipped: docker is not installed; this test compares berth with docker")
	}
	if exec.Command("docker", "info").Run() != nil {
		script, _ := filepath.Abs("../../scripts/dockerd.sh")
		if out, err := exec.Command(script).CombinedOutput(); err != nil {
			t.Skipf("skipped: dockerd does not start: %v: %s", err, out)
		}
		if exec.Command("docker", "info").Run() != nil {
			t.Skip("skipped: docker does not answer; this test compares berth with docker")
		}
	}
	d := &dockerSide{t: t}
	t.Cleanup(d.cleanup)
	return d
}

func (d *dockerSide) cleanup() {
	for _, c := range d.containers {
		_ = exec.Command("docker", "rm", "-f", "-v", c).Run()
	}
	for _, i := range d.images {
		_ = exec.Command("docker", "rmi", "-f", i).Run()
	}
}

// run runs one docker command for at most two minutes.
func (d *dockerSide) run(stdin []byte, args ...string) (string, string, int) {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	if ctx.Err() != nil {
		d.t.Fatalf("docker %v timed out", args)
	}
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			d.t.Fatalf("docker %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return out.String(), errb.String(), code
}

// must runs a docker command that has to succeed.
func (d *dockerSide) must(args ...string) string {
	d.t.Helper()
	out, errOut, code := d.run(nil, args...)
	if code != 0 {
		d.t.Fatalf("docker %v: exit %d: %s", args, code, errOut)
	}
	return out
}

// uniqueName makes a docker object name no other test uses.
func uniqueName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// importImage imports a root filesystem tar under a fresh name and
// returns the name.
func (d *dockerSide) importImage(tarData []byte, changes ...string) string {
	d.t.Helper()
	name := uniqueName("berthtest-img-")
	args := []string{"import"}
	for _, c := range append([]string{`CMD ["/bin/sh"]`}, changes...) {
		args = append(args, "--change", c)
	}
	d.images = append(d.images, name)
	if _, errOut, code := d.run(tarData, append(args, "-", name)...); code != 0 {
		d.t.Fatalf("docker import: %s", errOut)
	}
	return name
}

// create runs `docker create` (or run -d when run is set) with no
// network, as dockerd here runs without a bridge, and returns the name.
func (d *dockerSide) container(verb string, args ...string) string {
	d.t.Helper()
	name := uniqueName("berthtest-c-")
	d.containers = append(d.containers, name)
	d.must(append([]string{verb, "--network", "none", "--name", name}, args...)...)
	return name
}

// busyboxTar builds the same tree as store.busyboxImage, as a tar, so that
// berth and docker can import identical images.
func busyboxTar(t *testing.T, extra map[string]string) []byte {
	t.Helper()
	dir := t.TempDir()
	testutil.BusyboxRootfs(t, dir)
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home/nobody:/bin/sh\n",
		"etc/group":  "root:x:0:\nnogroup:x:65534:\n",
	}
	for k, v := range extra {
		files[k] = v
	}
	for n, data := range files {
		p := filepath.Join(dir, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tarData, err := exec.Command("tar", "-C", dir, "--numeric-owner", "-cf", "-", ".").Output()
	if err != nil {
		t.Fatalf("tar rootfs: %v", err)
	}
	return tarData
}

// importTar imports a root filesystem tar into berth as name.
func (s *store) importTar(tarData []byte, name string, changes ...string) {
	s.t.Helper()
	args := []string{"import"}
	for _, c := range append([]string{`CMD ["/bin/sh"]`}, changes...) {
		args = append(args, "--change", c)
	}
	if _, errOut, code := s.run(tarData, append(args, "-", name)...); code != 0 {
		s.t.Fatalf("import: %s", errOut)
	}
}

// lineSet splits output into a set of its non-empty lines.
func lineSet(out string) map[string]bool {
	set := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimRight(l, "\r"); l != "" {
			set[l] = true
		}
	}
	return set
}
