package build

import (
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/build/dockerfile"
	"github.com/berth-containers/berth/internal/errdefs"
)

// declareArgs brings ARGs into the stage's scope: a --build-arg wins, then
// the value of a same-named ARG before FROM (for a bare ARG), then the
// default.
func (r *buildRun) declareArgs(s *state, c *instructions.ArgCommand) {
	for _, kv := range c.Args {
		if v, ok := r.o.Args[kv.Key]; ok {
			s.args[kv.Key] = v
			continue
		}
		if kv.Value != nil {
			s.args[kv.Key] = *kv.Value
			continue
		}
		if v, ok := r.plan.MetaArgs[kv.Key]; ok {
			s.args[kv.Key] = v
			continue
		}
		// Declared with no value and none given: unset, as in Docker.
		delete(s.args, kv.Key)
	}
}

// setWorkdir changes the working directory (relative to the current one)
// and queues its creation; it returns the new directory.
func (s *state) setWorkdir(dir string) string {
	if !path.IsAbs(dir) {
		dir = path.Join(s.workdir(), dir)
	}
	dir = path.Clean(dir)
	s.image.Config.WorkingDir = dir
	s.mkdirs = append(s.mkdirs, dir)
	return dir
}

// expose records EXPOSE ports ("80", "80/udp", "8000-8002/tcp").
func (s *state) expose(lex *shell.Lex, ports []string) error {
	if s.image.Config.ExposedPorts == nil {
		s.image.Config.ExposedPorts = map[string]struct{}{}
	}
	for _, p := range ports {
		words, err := lex.ProcessWords(p, s.env())
		if err != nil {
			return err
		}
		for _, w := range words {
			if err := s.exposeOne(w); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *state) exposeOne(p string) error {
	port, proto, ok := strings.Cut(p, "/")
	if !ok {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return errdefs.Invalid("EXPOSE %s: unknown protocol %q", p, proto)
	}
	lo, hi, isRange := strings.Cut(port, "-")
	first, err1 := strconv.ParseUint(lo, 10, 16)
	last := first
	var err2 error
	if isRange {
		last, err2 = strconv.ParseUint(hi, 10, 16)
	}
	if err1 != nil || err2 != nil || first == 0 || last < first || last-first > 65535 {
		return errdefs.Invalid("EXPOSE %s: not a port or port range", p)
	}
	for n := first; n <= last; n++ {
		s.image.Config.ExposedPorts[fmt.Sprintf("%d/%s", n, proto)] = struct{}{}
	}
	return nil
}

// commandLine is CMD's or ENTRYPOINT's argv: the shell form runs through
// the stage's shell.
func (s *state) commandLine(c instructions.ShellDependantCmdLine) []string {
	if !c.PrependShell {
		return append([]string(nil), c.CmdLine...)
	}
	return append(append([]string(nil), s.shell()...), strings.Join(c.CmdLine, " "))
}

// jsonArgs writes an argv as Docker's history shows it.
func jsonArgs(args []string) string {
	b, err := json.Marshal(args)
	if err != nil {
		return fmt.Sprint(args)
	}
	return string(b)
}

// healthText is HEALTHCHECK's history text.
func healthText(c *instructions.HealthCheckCommand) string {
	if c.Health == nil || len(c.Health.Test) == 0 {
		return "NONE"
	}
	if c.Health.Test[0] == "NONE" {
		return "NONE"
	}
	return jsonArgs(c.Health.Test)
}

// checkSignal accepts STOPSIGNAL's values: a name with or without SIG, or
// a number; a variable left for run time is not checked.
func checkSignal(sig string) error {
	if strings.Contains(sig, "$") {
		return nil
	}
	if n, err := strconv.Atoi(sig); err == nil {
		if n <= 0 || n > 64 {
			return errdefs.Invalid("STOPSIGNAL %s: no such signal", sig)
		}
		return nil
	}
	name := strings.ToUpper(sig)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if unix.SignalNum(name) == 0 && !strings.HasPrefix(name, "SIGRTM") {
		return errdefs.Invalid("STOPSIGNAL %s: no such signal", sig)
	}
	return nil
}

// runEnv is RUN's environment: the image's, plus the stage's ARGs that
// ENV does not set, plus any proxy args given.
func (r *buildRun) runEnv(s *state) []string {
	env := append([]string(nil), s.image.Config.Env...)
	set := map[string]bool{}
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		set[k] = true
	}
	add := func(k, v string) {
		if !set[k] {
			env = append(env, k+"="+v)
			set[k] = true
		}
	}
	for _, k := range sortedKeys(s.args) {
		add(k, s.args[k])
	}
	for _, k := range dockerfile.ProxyArgs {
		if v, ok := r.o.Args[k]; ok {
			add(k, v)
		}
	}
	if !set["PATH"] {
		env = append(env, "PATH="+defaultPath)
	}
	return env
}

// defaultPath is RUN's PATH in an image that sets none (scratch), as
// Docker's.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
