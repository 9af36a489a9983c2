package containers_test

import (
	"context"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestAttachDetachKeys attaches to a container's terminal, talks to it,
// and detaches with the default and a custom key sequence: the container
// keeps running.
func TestAttachDetachKeys(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	s.must("run", "-d", "-i", "-t", "--name", "tty", "bb", "sh")
	for _, c := range []struct{ flag, keys string }{{"", `\020\021`}, {"--detach-keys=ctrl-a,x", `\001x`}} {
		attach := s.bin + " --root " + s.root + " attach " + c.flag + " tty"
		input := `sleep 0.5; printf 'echo hello-$((6*7))\r'; sleep 0.5; printf '` + c.keys + `'`
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, "sh", "-c", "("+input+") | script -qec '"+attach+"' /dev/null").CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("attach %s: %v: %s", c.flag, err, out)
		}
		if !strings.Contains(string(out), "hello-42") {
			t.Fatalf("attach %s: the shell's answer is missing: %q", c.flag, out)
		}
		if st := s.field("tty", "{{.State.Status}}"); st != "running" {
			t.Fatalf("after detaching (%s): %s", c.flag, st)
		}
	}
}

// TestPlatform accepts this machine's platform and refuses another.
func TestPlatform(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	if out := s.must("run", "--rm", "--platform", "linux/"+runtime.GOARCH, "bb", "echo", "ok"); out != "ok\n" {
		t.Fatalf("run --platform linux/%s: %q", runtime.GOARCH, out)
	}
	other := "linux/arm64"
	if runtime.GOARCH == "arm64" {
		other = "linux/amd64"
	}
	s.fails(125, "run", "--rm", "--pull", "never", "--platform", other, "bb", "true")
	if ids := strings.Fields(s.must("ps", "-aq")); len(ids) != 0 {
		t.Fatalf("a refused platform left containers: %v", ids)
	}
}
