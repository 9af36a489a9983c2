// Package containers_test drives berth's container commands (run, ps,
// logs, exec, stop, rm, ...) through the built binary, as a user would.
package containers_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-containers/berth/internal/testutil"
)

// store is one private berth store driven through the binary. Every
// container it made is removed when the test ends, before its directory.
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
	return s
}

// cleanup removes every container and checks nothing of them is left:
// no monitor, no mount under the store.
func (s *store) cleanup() {
	out, _, _ := s.run(nil, "ps", "-aq", "--no-trunc")
	for _, id := range strings.Fields(out) {
		if _, errOut, code := s.run(nil, "rm", "-f", id); code != 0 && !strings.Contains(errOut, "no such container") {
			s.t.Errorf("cleanup: rm -f %s: %s", id, errOut)
		}
	}
	if pids := s.monitors(); len(pids) > 0 {
		s.t.Errorf("monitors left after removing every container: %v", pids)
	}
	if ms := s.mounts(); len(ms) > 0 {
		s.t.Errorf("mounts left under the store: %v", ms)
	}
	// The store's host networking (bridges, firewall table, resolver)
	// outlives its containers; reset removes it.
	if _, errOut, code := s.run(nil, "system", "reset", "--force"); code != 0 {
		s.t.Errorf("cleanup: system reset: %s", errOut)
	}
	for _, left := range hostNetworking(s.root) {
		s.t.Errorf("left on the host after system reset: %s", left)
	}
	if pids := s.processes(); len(pids) > 0 {
		s.t.Errorf("berth processes of the store left after system reset: %v", pids)
	}
}

// hostNetworking lists what a store at root has on the host: its default
// bridge and firewall table (named from a hash of the root), and veths.
func hostNetworking(root string) []string {
	sum := sha256.Sum256([]byte(root))
	tag := hex.EncodeToString(sum[:4])
	var left []string
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if i.Name == "berth-"+tag {
			left = append(left, "bridge "+i.Name)
		}
	}
	if out, err := exec.Command("nft", "list", "tables").Output(); err == nil && strings.Contains(string(out), "berth-"+tag) {
		left = append(left, "nftables table inet berth-"+tag)
	}
	return left
}

// monitors lists the pids of monitor processes of this store's
// containers.
func (s *store) monitors() []string {
	var pids []string
	ents, _ := os.ReadDir("/proc")
	ids := map[string]bool{}
	cents, _ := os.ReadDir(filepath.Join(s.root, "containers"))
	for _, e := range cents {
		ids[e.Name()] = true
	}
	for _, e := range ents {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if len(args) >= 3 && strings.HasSuffix(args[0], "berth-monitor") && ids[args[2]] {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

// processes lists the pids of every berth process working for this store
// (monitors in any phase, including ones started ahead of a container
// that never came): their environment names the store's root.
func (s *store) processes() []string {
	var pids []string
	want := []byte("_BERTH_ENGINE_ROOT=" + s.root + "\x00")
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err == nil && bytes.Contains(env, want) {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

// mounts lists mount points under the store's root.
func (s *store) mounts() []string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		s.t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && strings.HasPrefix(f[4], s.root+"/") {
			out = append(out, f[4])
		}
	}
	return out
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

// fails runs a command that has to fail with the given status and
// returns its stderr.
func (s *store) fails(code int, args ...string) string {
	s.t.Helper()
	_, errOut, got := s.run(nil, args...)
	if got != code {
		s.t.Fatalf("berth %v: exit %d, want %d; stderr: %s", args, got, code, errOut)
	}
	return errOut
}

// field reads one inspect field of a container.
func (s *store) field(ref, tmpl string) string {
	s.t.Helper()
	return strings.TrimSpace(s.must("inspect", "--format", tmpl, ref))
}

// restart runs `restart -t timeout ref` and checks that the container
// runs again, started anew.
func (s *store) restart(ref, timeout string) {
	s.t.Helper()
	started := s.field(ref, "{{.State.StartedAt}}")
	s.must("restart", "-t", timeout, ref)
	if st := s.field(ref, "{{.State.Status}}"); st != "running" {
		s.t.Fatalf("after restart: %s", st)
	}
	if again := s.field(ref, "{{.State.StartedAt}}"); again == started {
		s.t.Fatal("restart did not start the container again")
	}
}

// waitFor polls cond every 20 ms for at most d.
func (s *store) waitFor(d time.Duration, what string, cond func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// busyboxImage imports a busybox root filesystem (with /etc/passwd and
// /etc/group, and extra files) as name.
func (s *store) busyboxImage(name string, extra map[string]string, changes ...string) {
	s.t.Helper()
	s.importTar(busyboxTar(s.t, extra), name, changes...)
}
