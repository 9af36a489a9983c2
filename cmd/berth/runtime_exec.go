package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/runtime"
)

type execOpts struct {
	process, consoleSocket, pidFile, cwd, user, apparmor, label string
	tty, detach, noNewPrivs                                     bool
	env, caps                                                   []string
	gids                                                        []int
	preserveFds                                                 int
}

func execCmd(g *runtimeFlags) *cobra.Command {
	o := &execOpts{}
	cmd := &cobra.Command{
		Use:   "exec [flags] <id> <command> [args...]",
		Short: "Run another process in a running container",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || (o.process == "" && len(args) < 2) {
				return errdefs.Invalid("exec needs a container id and a command (or --process)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := g.open()
			if err != nil {
				return err
			}
			p, err := o.build(rt, args[0], args[1:])
			if err != nil {
				return err
			}
			code, err := rt.Exec(context.Background(), runtime.ExecOptions{
				ID: args[0], Process: p, ConsoleSocket: o.consoleSocket, PidFile: o.pidFile,
				Detach: o.detach, PreserveFds: o.preserveFds,
				Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
			})
			if err != nil {
				return err
			}
			if code != 0 {
				return exitCode(code)
			}
			return nil
		},
	}
	// Everything after the command belongs to it.
	cmd.Flags().SetInterspersed(false)
	f := cmd.Flags()
	f.StringVarP(&o.process, "process", "p", "", "path to a process.json (the OCI process object)")
	f.StringVar(&o.consoleSocket, "console-socket", "", "unix socket to send the terminal's master to")
	f.StringVar(&o.pidFile, "pid-file", "", "write the new process's pid to this file")
	f.StringVar(&o.cwd, "cwd", "", "working directory in the container")
	f.StringVarP(&o.user, "user", "u", "", "uid[:gid] to run as")
	f.StringVar(&o.apparmor, "apparmor", "", "AppArmor profile")
	f.StringVar(&o.label, "process-label", "", "SELinux label")
	f.BoolVarP(&o.tty, "tty", "t", false, "allocate a terminal")
	f.BoolVarP(&o.detach, "detach", "d", false, "return once the process runs")
	f.BoolVar(&o.noNewPrivs, "no-new-privs", false, "set no_new_privs")
	f.StringArrayVarP(&o.env, "env", "e", nil, "add an environment variable (KEY=value)")
	f.StringArrayVarP(&o.caps, "cap", "c", nil, "add a capability (CAP_NAME)")
	f.IntSliceVarP(&o.gids, "additional-gids", "g", nil, "supplementary group ids")
	f.IntVar(&o.preserveFds, "preserve-fds", 0, "pass this many fds after stdio on to the process")
	return cmd
}

// build returns the process to run: --process as given, or the
// container's own process changed by the flags.
func (o *execOpts) build(rt *runtime.Runtime, id string, args []string) (*specs.Process, error) {
	if o.process != "" {
		data, err := os.ReadFile(o.process)
		if err != nil {
			return nil, fmt.Errorf("read --process: %w", err)
		}
		var p specs.Process
		if err := json.Unmarshal(data, &p); err != nil {
			return nil, fmt.Errorf("parse --process: %w", err)
		}
		if o.tty {
			p.Terminal = true
		}
		return &p, nil
	}
	p, err := rt.BaseProcess(id)
	if err != nil {
		return nil, err
	}
	p.Args = args
	p.Terminal = o.tty
	p.Env = append(p.Env, o.env...)
	if o.cwd != "" {
		p.Cwd = o.cwd
	}
	if o.user != "" {
		if err := parseUser(o.user, &p.User); err != nil {
			return nil, err
		}
	}
	for _, g := range o.gids {
		p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(g))
	}
	if len(o.caps) > 0 {
		addCaps(p, o.caps)
	}
	if o.noNewPrivs {
		p.NoNewPrivileges = true
	}
	if o.apparmor != "" {
		p.ApparmorProfile = o.apparmor
	}
	if o.label != "" {
		p.SelinuxLabel = o.label
	}
	return p, nil
}

func parseUser(s string, u *specs.User) error {
	uidS, gidS, hasGid := strings.Cut(s, ":")
	uid, err := strconv.ParseUint(uidS, 10, 32)
	if err != nil {
		return errdefs.Invalid("--user %q: want a numeric uid[:gid]", s)
	}
	u.UID = uint32(uid)
	if hasGid {
		gid, err := strconv.ParseUint(gidS, 10, 32)
		if err != nil {
			return errdefs.Invalid("--user %q: want a numeric uid[:gid]", s)
		}
		u.GID = uint32(gid)
	}
	return nil
}

func addCaps(p *specs.Process, add []string) {
	if p.Capabilities == nil {
		p.Capabilities = &specs.LinuxCapabilities{}
	}
	c := p.Capabilities
	c.Bounding = append(c.Bounding, add...)
	c.Effective = append(c.Effective, add...)
	c.Permitted = append(c.Permitted, add...)
	c.Ambient = append(c.Ambient, add...)
	c.Inheritable = append(c.Inheritable, add...)
}
