package containers_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-containers/berth/internal/testutil"
)

// runScript runs a berth command line under script(1), which gives it a
// terminal as its standard input and output, and returns what the terminal
// showed and the exit status (script -e passes the command's through).
func (s *store) runScript(args ...string) (string, int) {
	s.t.Helper()
	if _, err := exec.LookPath("script"); err != nil {
		testutil.Missing(s.t, "script(1) from util-linux is not installed")
	}
	quoted := []string{shellQuote(s.bin), "--root", shellQuote(s.root)}
	for _, a := range args {
		quoted = append(quoted, shellQuote(a))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "script", "-eqc", strings.Join(quoted, " "), "/dev/null")
	cmd.Env = s.env
	out, err := cmd.Output()
	if ctx.Err() != nil {
		s.t.Fatalf("script %v timed out", args)
	}
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			s.t.Fatalf("script %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return string(out), code
}

// failsWith runs a command that has to fail with the given status and
// returns its stderr; unlike fails, a wrong status is reported and the
// test goes on, so that one difference does not hide the next.
func (s *store) failsWith(code int, args ...string) string {
	s.t.Helper()
	_, errOut, got := s.run(nil, args...)
	if got != code {
		s.t.Errorf("berth %v: exit %d, want %d; stderr: %s", args, got, code, errOut)
	}
	return errOut
}

// shellQuote quotes one word for sh -c.
func shellQuote(w string) string {
	return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
}

// capEff reads the effective capability mask a command in the container
// sees.
func capEff(t *testing.T, status string) uint64 {
	t.Helper()
	for _, l := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatalf("CapEff %q: %v", v, err)
			}
			return n
		}
	}
	t.Fatalf("no CapEff in %q", status)
	return 0
}

func TestExecEnvUserWorkdir(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	s.must("run", "-d", "--name", "ex", "-e", "FROM_RUN=r", "bb", "sleep", "600")

	// -e adds to the container's environment and overrides it.
	env := s.must("exec", "-e", "A=1", "-e", "FROM_RUN=overridden", "ex", "env")
	for _, want := range []string{"A=1\n", "FROM_RUN=overridden\n", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n", "HOME=/root\n"} {
		if !strings.Contains(env, want) {
			t.Errorf("exec -e: env lacks %q:\n%s", want, env)
		}
	}
	if strings.Contains(env, "FROM_RUN=r\n") {
		t.Errorf("exec -e did not override FROM_RUN:\n%s", env)
	}

	// --env-file: comments and blank lines skipped, a bare name takes the
	// caller's value, -e wins over the file.
	envFile := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(envFile, []byte("# a comment\n\nFILE_A=from file\nFROMHOST\nBOTH=file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.env = append(s.env, "FROMHOST=host value")
	env = s.must("exec", "--env-file", envFile, "-e", "BOTH=flag", "ex", "env")
	for _, want := range []string{"FILE_A=from file\n", "FROMHOST=host value\n", "BOTH=flag\n"} {
		if !strings.Contains(env, want) {
			t.Errorf("exec --env-file: env lacks %q:\n%s", want, env)
		}
	}
	if strings.Contains(env, "# a comment") {
		t.Errorf("exec --env-file passed a comment:\n%s", env)
	}

	// -u by name, by uid:gid; HOME follows the user.
	if got := s.must("exec", "-u", "nobody", "ex", "id"); got != "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n" {
		t.Errorf("exec -u nobody: %q", got)
	}
	if got := s.must("exec", "-u", "nobody", "ex", "sh", "-c", "echo $HOME"); got != "/home/nobody\n" {
		t.Errorf("exec -u nobody: HOME %q, want /home/nobody", got)
	}
	if got := s.must("exec", "-u", "1234:5678", "ex", "id", "-u"); got != "1234\n" {
		t.Errorf("exec -u 1234:5678: uid %q", got)
	}
	if got := s.must("exec", "-u", "1234:5678", "ex", "id", "-g"); got != "5678\n" {
		t.Errorf("exec -u 1234:5678: gid %q", got)
	}
	// Docker: "unable to find user nosuch: no matching entries in passwd
	// file", exit 126.
	errOut := s.failsWith(126, "exec", "-u", "nosuch", "ex", "true")
	if !strings.Contains(errOut, "unable to find user nosuch: no matching entries in passwd file") {
		t.Errorf("exec -u nosuch: stderr %q", errOut)
	}

	// -w sets the working directory; a missing one is an error (exec does
	// not create it, unlike run -w).
	if got := s.must("exec", "-w", "/tmp", "ex", "pwd"); got != "/tmp\n" {
		t.Errorf("exec -w /tmp: %q", got)
	}
	s.failsWith(126, "exec", "-w", "/nonexistent-dir", "ex", "pwd")
	if _, _, code := s.run(nil, "exec", "ex", "test", "-e", "/nonexistent-dir"); code == 0 {
		t.Errorf("exec -w created the missing directory in the container")
	}
}

func TestExecStdinTerminalDetach(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	s.must("run", "-d", "--name", "ex", "bb", "sleep", "600")

	out, _, code := s.run([]byte("line one\nline two\n"), "exec", "-i", "ex", "sh", "-c", "cat; exit 4")
	if code != 4 || out != "line one\nline two\n" {
		t.Errorf("exec -i: code %d, stdout %q", code, out)
	}
	// Without -i the command's stdin is empty.
	out, _, code = s.run([]byte("ignored\n"), "exec", "ex", "cat")
	if code != 0 || out != "" {
		t.Errorf("exec without -i: code %d, stdout %q", code, out)
	}

	// -t: a terminal inside, and the command's exit status comes through.
	out, code = s.runScript("exec", "-t", "ex", "sh", "-c", "tty; test -t 1 && echo is-a-tty; exit 3")
	if code != 3 {
		t.Errorf("exec -t: exit %d, want 3; output %q", code, out)
	}
	if !strings.Contains(out, "/dev/pts/") || !strings.Contains(out, "is-a-tty") {
		t.Errorf("exec -t: output %q shows no terminal", out)
	}
	// A terminal turns \n into \r\n (script's own terminal adds another \r).
	if !strings.Contains(out, "is-a-tty\r") {
		t.Errorf("exec -t: output %q not through a terminal", out)
	}
	// Without -t, no terminal.
	if _, _, code := s.run(nil, "exec", "ex", "test", "-t", "1"); code == 0 {
		t.Error("exec without -t has a terminal")
	}

	// -d returns at once, prints nothing, and the command runs on.
	start := time.Now()
	out, errOut, code := s.run(nil, "exec", "-d", "ex", "sh", "-c", "sleep 0.5; echo done > /tmp/detached")
	if code != 0 || out != "" {
		t.Errorf("exec -d: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("exec -d took %s", d)
	}
	s.waitFor(10*time.Second, "the detached exec's file", func() bool {
		got, _, _ := s.run(nil, "exec", "ex", "cat", "/tmp/detached")
		return got == "done\n"
	})
}

func TestExecPrivileged(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	s.must("run", "-d", "--name", "ex", "bb", "sleep", "600")
	plain := capEff(t, s.must("exec", "ex", "cat", "/proc/self/status"))
	priv := capEff(t, s.must("exec", "--privileged", "ex", "cat", "/proc/self/status"))
	// Docker's default set: chown dac_override fowner fsetid kill setgid
	// setuid setpcap net_bind_service net_raw sys_chroot mknod audit_write
	// setfcap.
	if plain != 0xa80425fb {
		t.Errorf("exec: CapEff %#x, want Docker's default %#x", plain, 0xa80425fb)
	}
	const sysAdmin = 1 << 21
	if priv&sysAdmin == 0 || priv&^plain == 0 {
		t.Errorf("exec --privileged: CapEff %#x lacks CAP_SYS_ADMIN or has no more than %#x", priv, plain)
	}
	// The container itself keeps its default set.
	if again := capEff(t, s.must("exec", "ex", "cat", "/proc/self/status")); again != plain {
		t.Errorf("after exec --privileged, a plain exec has CapEff %#x", again)
	}
}

func TestExecExitCodes(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	s.must("run", "-d", "--name", "ex", "bb", "sleep", "600")
	if _, _, code := s.run(nil, "exec", "ex", "sh", "-c", "exit 42"); code != 42 {
		t.Errorf("exec exit 42: got %d", code)
	}
	if errOut := s.failsWith(127, "exec", "ex", "nosuchcommand"); !strings.Contains(errOut, "executable file not found") {
		t.Errorf("exec of a missing command: stderr %q", errOut)
	}
	if errOut := s.failsWith(126, "exec", "ex", "/etc/passwd"); !strings.Contains(errOut, "permission denied") {
		t.Errorf("exec of a non-executable: stderr %q", errOut)
	}
	// Killed by a signal: 128+n.
	if _, _, code := s.run(nil, "exec", "ex", "sh", "-c", "kill -9 $$"); code != 137 {
		t.Errorf("exec killed by KILL: got %d, want 137", code)
	}

	s.must("create", "--name", "stopped", "bb", "sleep", "600")
	if errOut := s.failsWith(1, "exec", "stopped", "true"); !strings.Contains(errOut, "is not running") {
		t.Errorf("exec in a created container: stderr %q", errOut)
	}
	s.must("stop", "-t", "1", "ex")
	if errOut := s.failsWith(1, "exec", "ex", "true"); !strings.Contains(errOut, "is not running") {
		t.Errorf("exec in an exited container: stderr %q", errOut)
	}
	if errOut := s.failsWith(1, "exec", "nosuchcontainer", "true"); !strings.Contains(errOut, "No such container") && !strings.Contains(errOut, "no such container") {
		t.Errorf("exec in an unknown container: stderr %q", errOut)
	}
}

func TestExecInheritsContainerUser(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	s.must("run", "-d", "--name", "nb", "-u", "nobody", "-w", "/tmp", "-e", "RUNVAR=1", "bb", "sleep", "600")
	if got := s.must("exec", "nb", "id"); got != "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n" {
		t.Errorf("exec into a -u nobody container: %q", got)
	}
	if got := s.must("exec", "nb", "pwd"); got != "/tmp\n" {
		t.Errorf("exec into a -w /tmp container: pwd %q", got)
	}
	if got := s.must("exec", "nb", "sh", "-c", "echo $RUNVAR"); got != "1\n" {
		t.Errorf("exec does not see the container's -e: %q", got)
	}
	// A non-root user has no effective capabilities, as in Docker.
	if c := capEff(t, s.must("exec", "nb", "cat", "/proc/self/status")); c != 0 {
		t.Errorf("exec as nobody: CapEff %#x, want 0", c)
	}
	// -u root overrides the container's user.
	if got := s.must("exec", "-u", "root", "nb", "id", "-u"); got != "0\n" {
		t.Errorf("exec -u root: %q", got)
	}
}
