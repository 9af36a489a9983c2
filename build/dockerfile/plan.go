package dockerfile

import (
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"github.com/berth-containers/berth/internal/errdefs"
)

// ProxyArgs are the build args every Dockerfile may use without declaring
// them; like Docker, berth leaves them out of the image's history.
var ProxyArgs = []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy",
	"FTP_PROXY", "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"}

// Stage is one FROM block of a plan.
type Stage struct {
	// Index is the stage's position in the Dockerfile.
	Index int
	// Name is the `AS` name, lower-cased; "" when unnamed.
	Name string
	// Base is the image to start from after expanding meta args
	// ("scratch" for none); "" when the stage starts from Parent.
	Base string
	// Parent is the earlier stage this one starts from.
	Parent *Stage
	// Platform is FROM's --platform, expanded.
	Platform string
	// Commands are the instructions after FROM.
	Commands []instructions.Command
	// Line is FROM's line.
	Line int
	// Deps are the stages this one reads: its parent, COPY --from and RUN
	// --mount from= sources.
	Deps []*Stage
}

// Label is how progress lines and errors name the stage.
func (s *Stage) Label() string {
	if s.Name != "" {
		return s.Name
	}
	return strconv.Itoa(s.Index)
}

// Plan is what a build of one target does.
type Plan struct {
	// Stages are every stage of the file, by index.
	Stages []*Stage
	// Target is the stage whose result is the build's image.
	Target *Stage
	// Needed are the stages the target needs, itself included, each after
	// the stages it reads.
	Needed []*Stage
	// MetaArgs are the values of the ARGs before the first FROM, after
	// the build args; stages see those they declare again.
	MetaArgs map[string]string
	// UnusedArgs are build args nothing declared (Docker warns of them).
	UnusedArgs []string
}

// Plan resolves the stages for target ("" means the last stage) with the
// build args given.
func (f *File) Plan(target string, buildArgs map[string]string) (*Plan, error) {
	lex := shell.NewLex(f.Escape)
	meta, err := f.metaArgs(lex, buildArgs)
	if err != nil {
		return nil, err
	}
	p := &Plan{MetaArgs: meta}
	for i := range f.Stages {
		st, err := f.stage(lex, p.Stages, i, meta)
		if err != nil {
			return nil, err
		}
		p.Stages = append(p.Stages, st)
	}
	if p.Target, err = p.find(target); err != nil {
		return nil, err
	}
	p.Needed = needed(p.Target)
	p.UnusedArgs = f.unusedArgs(buildArgs)
	return p, nil
}

func (p *Plan) find(target string) (*Stage, error) {
	if target == "" {
		return p.Stages[len(p.Stages)-1], nil
	}
	for _, st := range p.Stages {
		if st.Name == strings.ToLower(target) {
			return st, nil
		}
	}
	return nil, errdefs.NotFound("target stage %q could not be found", target)
}

// PlatformArgs are the automatic platform ARGs (TARGETPLATFORM,
// BUILDARCH and the rest): usable in FROM undeclared, and in a stage that
// declares them, as in Docker. berth builds natively, so build and target
// are this machine.
var PlatformArgs = platformArgs(runtime.GOOS, runtime.GOARCH)

func platformArgs(os, arch string) map[string]string {
	variant := ""
	if arch == "arm" {
		variant = "v7"
	}
	platform := os + "/" + arch
	if variant != "" {
		platform += "/" + variant
	}
	out := map[string]string{}
	for _, side := range []string{"BUILD", "TARGET"} {
		out[side+"PLATFORM"], out[side+"OS"] = platform, os
		out[side+"ARCH"], out[side+"VARIANT"] = arch, variant
	}
	return out
}

// metaArgs evaluates the ARGs before the first FROM, in order, each seeing
// those before it and the platform ARGs.
func (f *File) metaArgs(lex *shell.Lex, buildArgs map[string]string) (map[string]string, error) {
	meta := maps.Clone(PlatformArgs)
	for _, cmd := range f.MetaArgs {
		for _, kv := range cmd.Args {
			if v, ok := buildArgs[kv.Key]; ok {
				meta[kv.Key] = v
				continue
			}
			if kv.Value == nil {
				continue
			}
			v, _, err := lex.ProcessWord(*kv.Value, Env(meta))
			if err != nil {
				return nil, Located(err, LineOf(cmd.Location()))
			}
			meta[kv.Key] = v
		}
	}
	return meta, nil
}

// stage resolves stage i's base and the stages it reads.
func (f *File) stage(lex *shell.Lex, earlier []*Stage, i int, meta map[string]string) (*Stage, error) {
	src := f.Stages[i]
	line := LineOf(src.Location)
	st := &Stage{Index: i, Name: strings.ToLower(src.Name), Commands: src.Commands, Line: line}
	base, _, err := lex.ProcessWord(src.BaseName, Env(meta))
	if err != nil {
		return nil, Located(err, line)
	}
	if base == "" {
		return nil, &LineError{Line: line, Err: errdefs.Invalid("FROM names no image: %q", src.BaseName)}
	}
	if st.Platform, _, err = lex.ProcessWord(src.Platform, Env(meta)); err != nil {
		return nil, Located(err, line)
	}
	if parent := lookup(earlier, base); parent != nil {
		st.Parent = parent
		st.Deps = append(st.Deps, parent)
	} else {
		st.Base = base
	}
	for _, cmd := range src.Commands {
		for _, from := range readsFrom(cmd) {
			ref, _, err := lex.ProcessWord(from, Env(meta))
			if err != nil {
				return nil, Located(err, LineOf(cmd.Location()))
			}
			if dep := lookup(earlier, ref); dep != nil && !slices.Contains(st.Deps, dep) {
				st.Deps = append(st.Deps, dep)
			} else if dep == nil && isOwnName(ref, st, i) {
				return nil, &LineError{Line: LineOf(cmd.Location()),
					Err: errdefs.Invalid("stage %q cannot read from itself", ref)}
			}
		}
	}
	return st, nil
}

func isOwnName(ref string, st *Stage, i int) bool {
	return (st.Name != "" && strings.EqualFold(ref, st.Name)) || ref == strconv.Itoa(i)
}

// readsFrom lists the stage or image names a command reads from.
func readsFrom(cmd instructions.Command) []string {
	switch c := cmd.(type) {
	case *instructions.CopyCommand:
		if c.From != "" {
			return []string{c.From}
		}
	case *instructions.RunCommand:
		var out []string
		for _, m := range instructions.GetMounts(c) {
			if m.From != "" {
				out = append(out, m.From)
			}
		}
		return out
	}
	return nil
}

// lookup finds an earlier stage by name (any case) or index; nil when ref
// names an image.
func lookup(earlier []*Stage, ref string) *Stage {
	for _, st := range earlier {
		if st.Name != "" && strings.EqualFold(st.Name, ref) {
			return st
		}
	}
	if n, err := strconv.Atoi(ref); err == nil && n >= 0 && n < len(earlier) {
		return earlier[n]
	}
	return nil
}

// Lookup finds a stage of the plan by name or index among those before
// the stage at index before.
func (p *Plan) Lookup(ref string, before int) *Stage {
	return lookup(p.Stages[:before], ref)
}

// needed lists the stages t reads, transitively, each after its deps.
func needed(t *Stage) []*Stage {
	var out []*Stage
	seen := map[*Stage]bool{}
	var visit func(*Stage)
	visit = func(s *Stage) {
		if seen[s] {
			return
		}
		seen[s] = true
		for _, d := range s.Deps {
			visit(d)
		}
		out = append(out, s)
	}
	visit(t)
	return out
}

// unusedArgs are build args no ARG of the file declares.
func (f *File) unusedArgs(buildArgs map[string]string) []string {
	declared := map[string]bool{}
	for _, a := range ProxyArgs {
		declared[a] = true
	}
	for a := range PlatformArgs {
		declared[a] = true
	}
	mark := func(cmd *instructions.ArgCommand) {
		for _, kv := range cmd.Args {
			declared[kv.Key] = true
		}
	}
	for i := range f.MetaArgs {
		mark(&f.MetaArgs[i])
	}
	for _, st := range f.Stages {
		for _, cmd := range st.Commands {
			if a, ok := cmd.(*instructions.ArgCommand); ok {
				mark(a)
			}
		}
	}
	var out []string
	for k := range buildArgs {
		if !declared[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// Env is a variable map the shell lexer expands words with.
type Env map[string]string

// Get returns a variable's value.
func (e Env) Get(k string) (string, bool) {
	v, ok := e[k]
	return v, ok
}

// Keys lists the variables.
func (e Env) Keys() []string {
	out := make([]string, 0, len(e))
	for k := range e {
		out = append(out, k)
	}
	return out
}

// String shows a stage for errors.
func (s *Stage) String() string {
	return fmt.Sprintf("stage %s", s.Label())
}
