package specgen

import (
	"path"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-containers/berth/internal/errdefs"
)

// DefaultPath is the PATH a container gets when neither the image nor the
// user sets one.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// process fills in the container's process: command, environment, working
// directory, user, terminal and the per-process limits.
func (g *generator) process() error {
	args, err := g.args()
	if err != nil {
		return err
	}
	cwd, err := g.cwd()
	if err != nil {
		return err
	}
	usr, home, err := g.user()
	if err != nil {
		return err
	}
	rlimits, err := rlimits(g.hc.Ulimits)
	if err != nil {
		return err
	}
	if g.hc.OomScoreAdj < -1000 || g.hc.OomScoreAdj > 1000 {
		return errdefs.Invalid("invalid oom score adjustment %d: the range is [-1000, 1000]", g.hc.OomScoreAdj)
	}
	oom := g.hc.OomScoreAdj
	p := &specs.Process{
		Terminal:        g.in.Config.Tty,
		Args:            args,
		Env:             g.env(home),
		Cwd:             cwd,
		User:            usr,
		Rlimits:         rlimits,
		NoNewPrivileges: g.sec.noNewPrivileges,
		OOMScoreAdj:     &oom,
	}
	if g.in.Config.Tty && (g.hc.ConsoleSize[0] != 0 || g.hc.ConsoleSize[1] != 0) {
		p.ConsoleSize = &specs.Box{Height: g.hc.ConsoleSize[0], Width: g.hc.ConsoleSize[1]}
	}
	g.s.Process = p
	return nil
}

// args computes the command the way Docker merges it: the container's
// Entrypoint and Cmd override the image's; an Entrypoint given with the
// container (even "" to clear it) drops the image's Cmd too, while an
// empty, non-nil Entrypoint (the API's "Entrypoint": []) clears the
// entrypoint and keeps the image's Cmd. With --init in a private pid
// namespace the command runs under the init binary.
func (g *generator) args() ([]string, error) {
	cfg, img := g.in.Config, g.in.Image
	var imgEntry, imgCmd []string
	if img != nil {
		imgEntry, imgCmd = img.Entrypoint, img.Cmd
	}
	entry, cmd := cfg.Entrypoint, cfg.Cmd
	if len(entry) == 1 && entry[0] == "" {
		// --entrypoint "": no entrypoint, and none inherited.
		entry = []string{}
		if len(cmd) == 0 {
			cmd = nil
		}
	} else if len(entry) == 0 {
		if len(cmd) == 0 {
			cmd = imgCmd
		}
		if entry == nil {
			entry = imgEntry
		}
	}
	args := append(slices.Clone(entry), cmd...)
	if len(args) == 0 || args[0] == "" {
		return nil, errdefs.Invalid("no command specified")
	}
	if g.initEnabled() {
		if g.in.InitPath == "" {
			return nil, errdefs.Invalid("--init needs the path of the init binary")
		}
		args = append([]string{InitDestination, "--"}, args...)
	}
	return args, nil
}

// initEnabled reports whether --init applies: only in the container's own
// pid namespace, where the command would otherwise be pid 1 (as Docker).
func (g *generator) initEnabled() bool {
	return g.hc.Init != nil && *g.hc.Init && g.hc.PidMode == ""
}

// env builds the environment in Docker's order: PATH, HOSTNAME and TERM
// (with a terminal) first, then the image's variables, then the
// container's, each replacing an earlier one of the same name in place. A
// container entry without "=" removes that variable. HOME comes from the
// user's passwd entry when nothing set it (the runtime does not add it).
func (g *generator) env(home string) []string {
	env := []string{"PATH=" + DefaultPath, "HOSTNAME=" + g.containerHostname()}
	if g.in.Config.Tty {
		env = append(env, "TERM=xterm")
	}
	if g.in.Image != nil {
		env = mergeEnv(env, g.in.Image.Env)
	}
	env = mergeEnv(env, g.in.Config.Env)
	if envIndex(env, "HOME") < 0 {
		env = append(env, "HOME="+home)
	}
	return env
}

// mergeEnv applies overrides to base: replacing by name in place,
// appending new names, removing names given without a value.
func mergeEnv(base, overrides []string) []string {
	out := slices.Clone(base)
	for _, kv := range overrides {
		name, _, hasValue := strings.Cut(kv, "=")
		i := envIndex(out, name)
		switch {
		case !hasValue:
			if i >= 0 {
				out = slices.Delete(out, i, i+1)
			}
		case i >= 0:
			out[i] = kv
		default:
			out = append(out, kv)
		}
	}
	return out
}

func envIndex(env []string, name string) int {
	return slices.IndexFunc(env, func(kv string) bool {
		n, _, _ := strings.Cut(kv, "=")
		return n == name
	})
}

// cwd is Config.WorkingDir, else the image's, else "/"; it must be
// absolute, as Docker requires.
func (g *generator) cwd() (string, error) {
	dir := g.in.Config.WorkingDir
	if dir == "" && g.in.Image != nil {
		dir = g.in.Image.WorkingDir
	}
	if dir == "" {
		return "/", nil
	}
	if !path.IsAbs(dir) {
		return "", errdefs.Invalid("the working directory %q is invalid: it needs to be an absolute path", dir)
	}
	return path.Clean(dir), nil
}

// ulimitNames are the resources --ulimit may name.
var ulimitNames = []string{
	"as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice",
	"nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack",
}

// rlimits turns --ulimit values into RLIMIT_<NAME> limits; a later value
// for the same resource replaces an earlier one. Docker sets none by
// default, so the container inherits the runtime's own limits.
func rlimits(ulimits []*container.Ulimit) ([]specs.POSIXRlimit, error) {
	var out []specs.POSIXRlimit
	for _, u := range ulimits {
		if u == nil {
			continue
		}
		name := strings.ToLower(u.Name)
		if !slices.Contains(ulimitNames, name) {
			return nil, errdefs.Invalid("invalid ulimit type: %s", u.Name)
		}
		if u.Soft < -1 || u.Hard < -1 {
			// -1 is how Docker's API says "unlimited"; nothing lower means anything.
			return nil, errdefs.Invalid("invalid ulimit %s: limits must not be negative", u.Name)
		}
		soft, hard := rlimitValue(u.Soft), rlimitValue(u.Hard)
		if soft > hard {
			return nil, errdefs.Invalid("invalid ulimit %s: soft limit %d is larger than hard limit %d", u.Name, u.Soft, u.Hard)
		}
		r := specs.POSIXRlimit{Type: "RLIMIT_" + strings.ToUpper(name), Soft: soft, Hard: hard}
		if i := slices.IndexFunc(out, func(o specs.POSIXRlimit) bool { return o.Type == r.Type }); i >= 0 {
			out[i] = r
		} else {
			out = append(out, r)
		}
	}
	return out, nil
}

// rlimitValue maps -1 (unlimited) to RLIM_INFINITY.
func rlimitValue(v int64) uint64 {
	if v < 0 {
		return ^uint64(0)
	}
	return uint64(v)
}
