package build

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-containers/berth/build/dockerfile"
	"github.com/berth-containers/berth/build/source"
	"github.com/berth-containers/berth/internal/errdefs"
)

// heredocScript is where a RUN heredoc that starts with #! is mounted to
// be run as a program.
const heredocScript = "/dev/pipes/berth-heredoc"

// runStep runs RUN in a container over the stage's root filesystem.
func (r *buildRun) runStep(ctx context.Context, st *dockerfile.Stage, s *state, lex *shell.Lex, c *instructions.RunCommand, id int) (bool, error) {
	// Expanding parses --mount's values with the stage's variables.
	if err := c.Expand(expander(lex, s)); err != nil {
		return false, err
	}
	p := Process{Env: r.runEnv(s), Cwd: s.workdir(), User: s.image.Config.User, Network: instructions.GetNetwork(c)}
	if p.Network == "host" {
		p.Network = "default"
	}
	if p.Network != "none" && p.Network != "default" {
		return false, errdefs.Invalid("RUN --network=%s: berth knows none and default", p.Network)
	}
	var err error
	var script string
	if p.Args, script, err = s.runArgs(c); err != nil {
		return false, err
	}
	rm, err := r.runMounts(ctx, st, s, c)
	defer rm.release()
	if err != nil {
		return false, err
	}
	mounts := rm.mounts
	if script != "" {
		file, err := r.tempFile("heredoc-", script, 0o755)
		if err != nil {
			return false, err
		}
		defer os.Remove(file)
		mounts = append(mounts, specs.Mount{Destination: heredocScript, Type: "bind", Source: file,
			Options: []string{"rbind", "ro"}})
	}
	p.Mounts = mounts
	inputs := map[string]any{"run": p.Args, "env": p.Env, "cwd": p.Cwd, "user": p.User,
		"network": p.Network, "mounts": rm.keys, "script": script}
	return r.fsRun(ctx, s, fsStep{inputs: inputs, history: runHistory(s, p.Args),
		apply: func(ctx context.Context, root string) error {
			// Secrets given as variables are in neither key nor history.
			run := p
			run.Env = append(append([]string(nil), p.Env...), rm.secretEnv...)
			return r.b.Worker.Run(ctx, root, run, outputWriter{r: r, id: id})
		}})
}

// runArgs is RUN's argv, and the script to mount when a heredoc is a
// program of its own (#!).
func (s *state) runArgs(c *instructions.RunCommand) ([]string, string, error) {
	args := c.CmdLine
	if len(c.Files) == 0 {
		if c.PrependShell {
			return append(append([]string(nil), s.shell()...), strings.Join(args, " ")), "", nil
		}
		return append([]string(nil), args...), "", nil
	}
	if len(args) != 1 || !c.PrependShell {
		return nil, "", errdefs.Invalid("a heredoc needs the shell form of RUN")
	}
	sh := append([]string(nil), s.shell()...)
	if h, err := parser.ParseHeredoc(args[0]); err == nil && h != nil && len(c.Files) == 1 {
		data := c.Files[0].Data
		if c.Files[0].Chomp {
			data = parser.ChompHeredocContent(data)
		}
		if strings.HasPrefix(data, "#!") {
			return []string{heredocScript}, data, nil
		}
		// The shell runs the body: the shells that lack heredocs work too.
		return append(sh, data), "", nil
	}
	full := args[0]
	for _, f := range c.Files {
		full += "\n" + f.Data + f.Name
	}
	return append(sh, full), "", nil
}

// runHistory is RUN's history line as buildkit writes it, build args in
// scope first ("|2 A=1 B=2 /bin/sh -c make").
func runHistory(s *state, args []string) string {
	var b strings.Builder
	b.WriteString("RUN ")
	if n := len(s.args); n > 0 {
		b.WriteString("|" + strconv.Itoa(n))
		for _, k := range sortedKeys(s.args) {
			b.WriteString(" " + k + "=" + s.args[k])
		}
		b.WriteString(" ")
	}
	b.WriteString(strings.Join(args, " "))
	b.WriteString(" # buildkit")
	return b.String()
}

// runMountSet is what a RUN step's --mount flags give it.
type runMountSet struct {
	mounts []specs.Mount
	// keys are what each mount contributes to the cache key.
	keys []string
	// secretEnv are secrets given as variables (NAME=value).
	secretEnv []string
	releases  []func()
}

// release releases what the mounts hold (stage root filesystems, locks).
func (m *runMountSet) release() {
	for i := len(m.releases) - 1; i >= 0; i-- {
		m.releases[i]()
	}
}

// runMounts turns RUN --mount flags into runtime mounts.
func (r *buildRun) runMounts(ctx context.Context, st *dockerfile.Stage, s *state, c *instructions.RunCommand) (*runMountSet, error) {
	set := &runMountSet{}
	for _, m := range instructions.GetMounts(c) {
		target := containerPath(s.workdir(), m.Target)
		var sm specs.Mount
		var key string
		var err error
		switch m.Type {
		case instructions.MountTypeCache:
			var release func()
			sm, key, release, err = r.cacheMount(ctx, m, target)
			if release != nil {
				set.releases = append(set.releases, release)
			}
		case instructions.MountTypeTmpfs:
			opts := []string{"nosuid", "nodev"}
			if m.SizeLimit > 0 {
				opts = append(opts, "size="+strconv.FormatInt(m.SizeLimit, 10))
			}
			sm, key = specs.Mount{Destination: target, Type: "tmpfs", Source: "tmpfs", Options: opts}, "tmpfs "+target
		case instructions.MountTypeBind:
			var release func()
			sm, key, release, err = r.bindMount(ctx, st, m, target)
			if release != nil {
				set.releases = append(set.releases, release)
			}
		case instructions.MountTypeSecret:
			var env string
			sm, env, err = r.secretMount(m)
			key = "secret " + sm.Destination
			if env != "" {
				set.secretEnv = append(set.secretEnv, env)
				key += " env " + *m.Env
			}
		default:
			err = errdefs.Invalid("RUN --mount=type=%s is not supported", m.Type)
		}
		if err != nil {
			return set, err
		}
		if sm.Destination != "" {
			set.mounts = append(set.mounts, sm)
		}
		set.keys = append(set.keys, key)
	}
	return set, nil
}

// bindMount binds a path of the context, a stage or an image. A stage's or
// an image's root filesystem is a fresh writable mount, so rw writes are
// thrown away with it, as Docker's are.
func (r *buildRun) bindMount(ctx context.Context, st *dockerfile.Stage, m *instructions.Mount, target string) (specs.Mount, string, func(), error) {
	src, key, release, err := r.readFrom(ctx, st, m.From)
	if err != nil {
		return specs.Mount{}, "", release, err
	}
	if m.From == "" && !m.ReadOnly {
		return specs.Mount{}, "", release, errdefs.Invalid("RUN --mount=type=bind,rw of the build context is not supported; bind it read-only")
	}
	rel := strings.TrimPrefix(filepath.Clean("/"+m.Source), "/")
	host, err := securejoin.SecureJoin(src.Dir(), rel)
	if err != nil {
		return specs.Mount{}, "", release, fmt.Errorf("--mount source %s: %w", m.Source, err)
	}
	if _, err := os.Stat(host); err != nil {
		return specs.Mount{}, "", release, errdefs.NotFound("--mount source %s: not found", m.Source)
	}
	if m.From == "" {
		matches, err := src.Match([]string{rel})
		if err != nil {
			return specs.Mount{}, "", release, err
		}
		d, err := src.Digest(ctx, matches, source.DigestOptions{})
		if err != nil {
			return specs.Mount{}, "", release, err
		}
		key = d.String()
	}
	opts := []string{"rbind", "rw"}
	if m.ReadOnly {
		opts[1] = "ro"
	}
	return specs.Mount{Destination: target, Type: "bind", Source: host, Options: opts},
		"bind " + key + " " + rel + " " + target + " " + opts[1], release, nil
}

// maxSecretEnv bounds a secret given as a variable.
const maxSecretEnv = 500 << 10

// secretMount binds a secret file given with --secret, or with env=NAME
// gives it as a variable too (only, when no target is named), as NAME=value;
// secrets are never part of a key or a layer.
func (r *buildRun) secretMount(m *instructions.Mount) (specs.Mount, string, error) {
	id := m.CacheID
	if id == "" {
		id = filepath.Base(m.Target)
	}
	file, ok := r.o.Secrets[id]
	if !ok {
		if m.Required {
			return specs.Mount{}, "", errdefs.NotFound("secret %s was not given (--secret id=%s,src=FILE)", id, id)
		}
		return specs.Mount{}, "", nil
	}
	var env string
	if m.Env != nil {
		name := cmp.Or(*m.Env, id)
		data, err := readBounded(file, maxSecretEnv)
		if err != nil {
			return specs.Mount{}, "", fmt.Errorf("secret %s: %w", id, err)
		}
		env = name + "=" + string(data)
		if m.Target == "" {
			return specs.Mount{}, env, nil
		}
	}
	target := m.Target
	if target == "" {
		target = "/run/secrets/" + id
	}
	return specs.Mount{Destination: target, Type: "bind", Source: file, Options: []string{"rbind", "ro"}}, env, nil
}

// readBounded reads a file of at most max bytes.
func readBounded(p string, max int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, errdefs.Invalid("larger than %d bytes", max)
	}
	return data, nil
}

// inRoot resolves a container path inside root.
func inRoot(root, p string) (string, error) {
	out, err := securejoin.SecureJoin(root, p)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", p, err)
	}
	return out, nil
}

// tempFile writes data to a new file in the build's temporary directory.
func (r *buildRun) tempFile(prefix, data string, mode os.FileMode) (string, error) {
	f, err := os.CreateTemp(r.o.TempDir, prefix)
	if err != nil {
		return "", fmt.Errorf("write temporary file: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(data); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("write %s: %w", f.Name(), err)
	}
	if err := f.Chmod(mode); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("chmod %s: %w", f.Name(), err)
	}
	return f.Name(), nil
}
