// Package hooks runs OCI lifecycle hooks: programs the runtime starts at
// fixed points of a container's life (createRuntime, poststart, ...), each
// given the container's state as JSON on its standard input.
package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// stderrTail is how many trailing bytes of a failed hook's stderr the error
// quotes: enough for the message, bounded however much the hook writes.
const stderrTail = 1024

// waitDelay bounds how long Run waits for a killed hook's pipes to close
// when something outside its process group still holds them.
const waitDelay = 2 * time.Second

// Run runs each hook in order with the container state JSON on stdin, its
// args, env and timeout (seconds, > 0 when set); it stops at the first
// failure and returns an error naming the hook path, its exit status and
// the tail of its stderr.
//
// A hook whose Env is nil inherits the runtime's environment, as with runc,
// less berth's own _BERTH_* variables (which would make a berth binary used
// as a hook act as a container's init).
// A hook runs in its own process group, so a timeout (or ctx ending) kills
// the hook and everything it started.
func Run(ctx context.Context, hooks []specs.Hook, state *specs.State) error {
	js, err := json.Marshal(state)
	if err != nil {
		return fmt.Errorf("encode container state for hooks: %w", err)
	}
	for i := range hooks {
		if err := run(ctx, &hooks[i], js); err != nil {
			return err
		}
	}
	return nil
}

// command checks h and returns the argv and the time limit (zero: none) to
// run it with.
func command(h *specs.Hook) (args []string, timeout time.Duration, err error) {
	if !filepath.IsAbs(h.Path) {
		return nil, 0, fmt.Errorf("hook path %q is not absolute", h.Path)
	}
	if h.Timeout != nil {
		if *h.Timeout <= 0 {
			return nil, 0, fmt.Errorf("hook %s: timeout %d is not positive", h.Path, *h.Timeout)
		}
		timeout = time.Duration(*h.Timeout) * time.Second
	}
	// The spec's args include argv[0]; without them, the path is argv[0].
	args = h.Args
	if len(args) == 0 {
		args = []string{h.Path}
	}
	return args, timeout, nil
}

// run runs one hook with state on its stdin.
func run(ctx context.Context, h *specs.Hook, state []byte) error {
	args, timeout, err := command(h)
	if err != nil {
		return err
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	stderr := &tail{max: stderrTail}
	cmd := exec.CommandContext(ctx, h.Path)
	cmd.Args = args
	cmd.Env = env(h.Env, os.Environ())
	cmd.Stdin = bytes.NewReader(state)
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// The whole group: a shell script's children die with it.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = waitDelay
	err = cmd.Run()
	if err == nil {
		return nil
	}
	msg := strings.TrimSpace(stderr.String())
	if msg != "" {
		msg = ": " + msg
	}
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded) && timeout > 0:
		return fmt.Errorf("hook %s timed out after %s%s: %w", h.Path, timeout, msg, ctx.Err())
	case ctx.Err() != nil:
		return fmt.Errorf("hook %s: %w%s", h.Path, ctx.Err(), msg)
	}
	return fmt.Errorf("hook %s: %w%s", h.Path, err, msg)
}

// env returns the environment of a hook that asks for own, given the
// runtime's environment inherited.
func env(own, inherited []string) []string {
	if own != nil {
		return own
	}
	out := []string{}
	for _, e := range inherited {
		if !strings.HasPrefix(e, "_BERTH_") {
			out = append(out, e)
		}
	}
	return out
}

// tail is an io.Writer that keeps only the last max bytes written to it.
type tail struct {
	max int
	buf []byte
	cut bool
}

func (t *tail) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
		t.cut = true
	}
	return len(p), nil
}

// String returns the kept bytes, marked when earlier ones were dropped.
func (t *tail) String() string {
	if t.cut {
		return "..." + string(t.buf)
	}
	return string(t.buf)
}
