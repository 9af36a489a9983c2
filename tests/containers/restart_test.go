package containers_test

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestRestartPolicies(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	s.must("run", "-d", "--name", "onfail", "--restart", "on-failure:2", "bb", "sh", "-c", "echo run; exit 3")
	s.must("run", "-d", "--name", "okfail", "--restart", "on-failure", "bb", "true")
	s.must("run", "-d", "--name", "always", "--restart", "always", "bb", "sh", "-c", "echo run; sleep 0.2; exit 0")
	s.must("run", "-d", "--name", "never", "bb", "sh", "-c", "exit 4")
	s.waitFor(15*time.Second, "on-failure:2 to give up", func() bool {
		return s.field("onfail", "{{.State.Status}} {{.RestartCount}}") == "exited 2"
	})
	if got := strings.Count(s.must("logs", "onfail"), "run"); got != 3 {
		t.Fatalf("on-failure:2 ran %d times, want 3", got)
	}
	if st := s.field("onfail", "{{.State.ExitCode}}"); st != "3" {
		t.Fatalf("exit code %s", st)
	}
	s.waitFor(10*time.Second, "always to restart twice", func() bool {
		n, _ := strconv.Atoi(s.field("always", "{{.RestartCount}}"))
		return n >= 2
	})
	if st := s.field("okfail", "{{.State.Status}} {{.RestartCount}}"); st != "exited 0" {
		t.Fatalf("on-failure after success: %q", st)
	}
	if st := s.field("never", "{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}"); st != "exited 0 4" {
		t.Fatalf("no policy: %q", st)
	}
	// A stopped container stays stopped whatever its policy.
	s.must("stop", "always")
	time.Sleep(700 * time.Millisecond)
	if st := s.field("always", "{{.State.Status}}"); st != "exited" {
		t.Fatalf("always after stop: %s", st)
	}
	if len(s.monitors()) != 0 {
		t.Fatalf("monitors left: %v", s.monitors())
	}
	// unless-stopped restarts a crash, and a start undoes the stop.
	s.must("run", "-d", "--name", "unless", "--restart", "unless-stopped", "bb", "sh", "-c", "sleep 0.2; exit 1")
	s.waitFor(10*time.Second, "unless-stopped to restart", func() bool {
		n, _ := strconv.Atoi(s.field("unless", "{{.RestartCount}}"))
		return n >= 1
	})
	s.must("stop", "unless")
	s.must("start", "unless")
	if st := s.field("unless", "{{.State.Status}}"); st != "running" && st != "restarting" {
		t.Fatalf("unless-stopped after start: %s", st)
	}
	s.must("rm", "-f", "unless")
	if len(s.monitors()) != 0 {
		t.Fatalf("monitors left after rm -f during restarts: %v", s.monitors())
	}
}

func TestHealthcheck(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	s.must("run", "-d", "--name", "hc", "--health-cmd", "test -f /tmp/ok", "--health-interval", "200ms",
		"--health-retries", "2", "bb", "sh", "-c", "touch /tmp/ok; sleep 600")
	s.waitFor(10*time.Second, "healthy", func() bool { return s.field("hc", "{{.State.Health.Status}}") == "healthy" })
	if !strings.Contains(s.must("ps"), "(healthy)") {
		t.Fatal("ps does not show (healthy)")
	}
	s.must("exec", "hc", "rm", "/tmp/ok")
	s.waitFor(10*time.Second, "unhealthy", func() bool { return s.field("hc", "{{.State.Health.Status}}") == "unhealthy" })
	if streak := s.field("hc", "{{.State.Health.FailingStreak}}"); streak < "2" {
		t.Fatalf("failing streak %s", streak)
	}
	if n := s.field("hc", "{{len .State.Health.Log}}"); n == "0" {
		t.Fatal("no health log")
	}
	if ids := strings.Fields(s.must("ps", "-q", "--filter", "health=unhealthy")); len(ids) != 1 {
		t.Fatalf("ps --filter health=unhealthy: %v", ids)
	}
	// From the image (committed with its healthcheck, as Docker keeps it
	// in the image config), and turned off by --no-healthcheck.
	s.must("create", "--name", "base", "--health-cmd", "true", "--health-interval", "200ms", "bb")
	s.must("commit", "base", "hcimg")
	s.must("run", "-d", "--name", "fromimg", "hcimg", "sleep", "600")
	t.Log(s.must("inspect", "--format", "{{json .Config.Healthcheck}} {{json .State}}", "fromimg"))
	s.waitFor(10*time.Second, "image healthcheck", func() bool {
		return s.field("fromimg", "{{.State.Health.Status}}") == "healthy"
	})
	s.must("run", "-d", "--name", "nohc", "--no-healthcheck", "hcimg", "sleep", "600")
	time.Sleep(500 * time.Millisecond)
	if h := s.field("nohc", "{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}"); h != "none" {
		t.Fatalf("--no-healthcheck: %s", h)
	}
}
