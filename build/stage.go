package build

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"github.com/berth-containers/berth/build/dockerfile"
	"github.com/berth-containers/berth/build/progress"
	"github.com/berth-containers/berth/internal/errdefs"
)

// stage builds one stage and returns its final state.
func (r *buildRun) stage(ctx context.Context, st *dockerfile.Stage) (*state, error) {
	s, err := r.base(ctx, st)
	if err != nil {
		return nil, &dockerfile.LineError{Line: st.Line, Err: err}
	}
	cmds, err := onbuildTriggers(s)
	if err != nil {
		return nil, &dockerfile.LineError{Line: st.Line, Err: err}
	}
	cmds = append(cmds, st.Commands...)
	lex := shell.NewLex(r.f.Escape)
	for i, cmd := range cmds {
		step := progress.Step{ID: r.nextStep(), Stage: r.stageLabel(st), Index: i + 1, Total: len(cmds),
			Text: commandText(cmd), Line: dockerfile.LineOf(cmd.Location())}
		r.o.Display.Start(step)
		cached, err := r.step(ctx, st, s, lex, cmd, step.ID)
		r.o.Display.Done(step.ID, cached, err)
		if err != nil {
			return nil, dockerfile.Located(fmt.Errorf("%s: %w", firstLine(commandText(cmd)), err), step.Line)
		}
	}
	if len(s.mkdirs) > 0 {
		if err := r.mkdirStep(ctx, s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// stageLabel names a stage on the display; a one-stage build needs none.
func (r *buildRun) stageLabel(st *dockerfile.Stage) string {
	if len(r.plan.Stages) == 1 {
		return ""
	}
	return st.Label()
}

// base is the state a stage starts from.
func (r *buildRun) base(ctx context.Context, st *dockerfile.Stage) (*state, error) {
	if st.Platform != "" {
		if err := checkPlatform(st.Platform); err != nil {
			return nil, err
		}
	}
	if st.Parent != nil {
		p, err := r.wait(ctx, st.Parent)
		if err != nil {
			return nil, err
		}
		s := p.clone()
		s.args, s.cmdSet = map[string]string{}, false
		return s, nil
	}
	s := &state{args: map[string]string{}}
	if st.Base == "scratch" {
		s.image.OS, s.image.Architecture = runtime.GOOS, runtime.GOARCH
		s.image.RootFS.Type = "layers"
		s.key = stepKey("", "scratch")
		s.created = time.Unix(0, 0).UTC()
		return s, nil
	}
	img, err := r.b.Worker.Image(ctx, st.Base, r.o.Pull)
	if err != nil {
		return nil, err
	}
	s.image, s.layers = img.Config, append([]Layer(nil), img.Layers...)
	s.image.RootFS.Type = "layers"
	s.key = stepKey("", "image "+img.Digest.String())
	if img.Config.Created != nil {
		s.created = *img.Config.Created
	}
	return s, nil
}

// checkPlatform accepts only this machine's platform: berth runs build
// steps natively.
func checkPlatform(p string) error {
	os, rest, _ := strings.Cut(p, "/")
	arch, _, _ := strings.Cut(rest, "/")
	if os != runtime.GOOS || arch != runtime.GOARCH {
		return errdefs.Invalid("platform %s is not this machine's (%s/%s): berth builds natively", p, runtime.GOOS, runtime.GOARCH)
	}
	return nil
}

// onbuildTriggers parses the ONBUILD instructions the base image carries;
// they run first, and the new image does not inherit them.
func onbuildTriggers(s *state) ([]instructions.Command, error) {
	triggers := s.image.Config.OnBuild
	s.image.Config.OnBuild = nil
	var out []instructions.Command
	for _, t := range triggers {
		res, err := parser.Parse(strings.NewReader(t))
		if err != nil {
			return nil, fmt.Errorf("ONBUILD trigger %q: %w", t, err)
		}
		for _, n := range res.AST.Children {
			cmd, err := instructions.ParseCommand(n)
			if err != nil {
				return nil, fmt.Errorf("ONBUILD trigger %q: %w", t, err)
			}
			out = append(out, cmd)
		}
	}
	return out, nil
}

// commandText is an instruction as written.
func commandText(cmd instructions.Command) string {
	if s, ok := cmd.(fmt.Stringer); ok {
		return s.String()
	}
	return strings.ToUpper(cmd.Name())
}

// firstLine shortens an instruction to its first line for messages.
func firstLine(s string) string {
	line, _, more := strings.Cut(s, "\n")
	if more {
		return line + " ..."
	}
	return line
}

// expander expands words with the stage's variables.
func expander(lex *shell.Lex, s *state) instructions.SingleWordExpander {
	env := s.env()
	return func(word string) (string, error) {
		out, _, err := lex.ProcessWord(word, env)
		return out, err
	}
}

// configStep applies an instruction that changes only the image config,
// and reports whether cmd was one.
func (r *buildRun) configStep(lex *shell.Lex, s *state, cmd instructions.Command) (bool, error) {
	switch cmd.(type) {
	case *instructions.RunCommand, *instructions.CopyCommand, *instructions.AddCommand:
		return false, nil // they expand their own words, once
	}
	if e, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
		if err := e.Expand(expander(lex, s)); err != nil {
			return true, err
		}
	}
	var history string
	switch c := cmd.(type) {
	case *instructions.EnvCommand:
		var parts []string
		for _, kv := range c.Env {
			s.setEnv(kv.Key, kv.Value)
			parts = append(parts, kv.Key+"="+kv.Value)
		}
		history = "ENV " + strings.Join(parts, " ")
	case *instructions.ArgCommand:
		r.declareArgs(s, c)
		return true, nil
	case *instructions.LabelCommand:
		if s.image.Config.Labels == nil {
			s.image.Config.Labels = map[string]string{}
		}
		var parts []string
		for _, kv := range c.Labels {
			s.image.Config.Labels[kv.Key] = kv.Value
			parts = append(parts, kv.Key+"="+kv.Value)
		}
		history = "LABEL " + strings.Join(parts, " ")
	case *instructions.MaintainerCommand:
		s.image.Author = c.Maintainer
		history = "MAINTAINER " + c.Maintainer
	case *instructions.WorkdirCommand:
		history = "WORKDIR " + s.setWorkdir(c.Path)
	case *instructions.UserCommand:
		s.image.Config.User = c.User
		history = "USER " + c.User
	case *instructions.ExposeCommand:
		if err := s.expose(lex, c.Ports); err != nil {
			return true, err
		}
		history = "EXPOSE " + strings.Join(c.Ports, " ")
	case *instructions.VolumeCommand:
		if s.image.Config.Volumes == nil {
			s.image.Config.Volumes = map[string]struct{}{}
		}
		for _, v := range c.Volumes {
			if v = strings.TrimSpace(v); v == "" {
				return true, errdefs.Invalid("VOLUME names an empty path")
			}
			s.image.Config.Volumes[v] = struct{}{}
		}
		history = "VOLUME " + fmt.Sprint(c.Volumes)
	case *instructions.EntrypointCommand:
		s.image.Config.Entrypoint = s.commandLine(c.ShellDependantCmdLine)
		if !s.cmdSet {
			s.image.Config.Cmd = nil
		}
		history = "ENTRYPOINT " + jsonArgs(s.image.Config.Entrypoint)
	case *instructions.CmdCommand:
		s.image.Config.Cmd = s.commandLine(c.ShellDependantCmdLine)
		s.cmdSet = true
		history = "CMD " + jsonArgs(s.image.Config.Cmd)
	case *instructions.HealthCheckCommand:
		s.image.Config.Healthcheck = c.Health
		history = "HEALTHCHECK " + healthText(c)
	case *instructions.StopSignalCommand:
		if err := checkSignal(c.Signal); err != nil {
			return true, err
		}
		s.image.Config.StopSignal = c.Signal
		history = "STOPSIGNAL " + c.Signal
	case *instructions.ShellCommand:
		s.image.Config.Shell = c.Shell
		history = "SHELL " + jsonArgs(c.Shell)
	case *instructions.OnbuildCommand:
		s.image.Config.OnBuild = append(s.image.Config.OnBuild, c.Expression)
		history = "ONBUILD " + c.Expression
	default:
		return false, nil
	}
	s.advance([]string{"config", history})
	s.addHistory(history, true)
	return true, nil
}
