package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/engine"
	"github.com/berth-containers/berth/engine/monitor"
	"github.com/berth-containers/berth/engine/state"
)

// statusError is an error that ends berth with a given exit status:
// Docker uses 125 for its own errors in run, create and start.
type statusError struct {
	code int
	err  error
}

func (e *statusError) Error() string { return e.err.Error() }
func (e *statusError) Unwrap() error { return e.err }

// usageError is a bad value on the command line (exit status 125).
func usageError(format string, args ...any) error {
	return &statusError{code: 125, err: fmt.Errorf(format, args...)}
}

// runError gives an error of run, create or start Docker's exit status:
// 126/127 when the program could not be executed or found, else 125.
func runError(err error) error {
	if err == nil {
		return nil
	}
	var se *statusError
	if errors.As(err, &se) {
		return err
	}
	code := 125
	var ee *engine.ExitError
	if errors.As(err, &ee) {
		code = ee.Code
	}
	return &statusError{code: code, err: err}
}

// newContainerCmd is "berth container ...", Docker's management command.
func newContainerCmd() *cobra.Command {
	c := &cobra.Command{Use: "container", Short: "Manage containers"}
	ls := newPsCmd("ls")
	ls.Aliases = []string{"list", "ps"}
	c.AddCommand(newRunCmd(), newCreateCmd(), newStartCmd(), newStopCmd(), newRestartCmd(),
		newKillCmd(), newRmCmd("rm"), ls, newLogsCmd(), newExecCmd(), newAttachCmd(),
		newContainerInspectCmd(), newWaitCmd(), newTopCmd(), newStatsCmd(), newCpCmd(), newCommitCmd(),
		newRenameCmd(), newPauseCmd(), newUnpauseCmd(), newUpdateCmd(), newPortCmd(), newDiffCmd(),
		newExportCmd(), newContainerPruneCmd())
	return c
}

func newCreateCmd() *cobra.Command {
	var f *runFlags
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a new container",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, _, err := createFromFlags(cmd, f, args, nil)
			if err != nil {
				return runError(err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), c.ID)
			return nil
		},
	}
	cmd.Flags().SetInterspersed(false)
	f = addRunFlags(cmd.Flags())
	return cmd
}

// createFromFlags parses run/create flags and creates the container.
// createFromFlags creates the container the flags describe. With mon set
// (run), it first starts the container's monitor, whose start-up then
// overlaps with the creation; the caller passes it to Start.
func createFromFlags(cmd *cobra.Command, f *runFlags, args []string, mon **engine.Monitor) (_ *state.Container, _ *runRequest, _ *engine.Engine, err error) {
	req, err := f.parse(cmd.Flags(), args[0], args[1:])
	if err != nil {
		return nil, nil, nil, &statusError{code: 125, err: err}
	}
	if req.Config.Tty && req.HostConfig.ConsoleSize == [2]uint{} {
		// The terminal's size from the start, before the program looks.
		if ws, err := unix.IoctlGetWinsize(int(os.Stdout.Fd()), unix.TIOCGWINSZ); err == nil {
			req.HostConfig.ConsoleSize = [2]uint{uint(ws.Row), uint(ws.Col)}
		}
	}
	if path := req.HostConfig.ContainerIDFile; path != "" {
		if _, err := os.Stat(path); err == nil {
			return nil, nil, nil, usageError("container ID file found, make sure the other container isn't running or delete %s", path)
		}
	}
	for _, w := range req.Warnings {
		fmt.Fprintln(cmd.ErrOrStderr(), "WARNING: "+w)
	}
	e, err := openEngine(cmd)
	if err != nil {
		return nil, nil, nil, err
	}
	if mon != nil {
		if *mon, err = e.PrepareMonitor(!req.Detach); err != nil {
			return nil, nil, nil, err
		}
		defer func() {
			if err != nil {
				(*mon).Abort()
			}
		}()
	}
	c, err := e.Create(cmd.Context(), engine.CreateRequest{
		Name: req.Name, Config: req.Config, HostConfig: req.HostConfig,
		Pull: req.Pull, Platform: req.Platform,
		NetworkingConfig: req.NetworkingConfig, Net: req.Net,
		OnPull: func(ref string) {
			fmt.Fprintf(cmd.ErrOrStderr(), "Unable to find image '%s' locally\n", ref)
		},
	})
	if err != nil {
		return nil, nil, nil, err
	}
	if path := req.HostConfig.ContainerIDFile; path != "" {
		if err := writeCIDFile(path, c.ID); err != nil {
			return nil, nil, nil, err
		}
	}
	return c, req, e, nil
}

// writeCIDFile writes --cidfile, refusing to overwrite one, as Docker.
func writeCIDFile(path, id string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("container ID file: %w", err)
	}
	defer f.Close()
	_, err = f.WriteString(id)
	return err
}

func newRunCmd() *cobra.Command {
	var f *runFlags
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a new container from an image",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runError(runContainer(cmd, f, args))
		},
	}
	cmd.Flags().SetInterspersed(false)
	f = addRunFlags(cmd.Flags())
	addDetachFlag(cmd.Flags(), f)
	return cmd
}

func runContainer(cmd *cobra.Command, f *runFlags, args []string) error {
	var mon *engine.Monitor
	c, req, e, err := createFromFlags(cmd, f, args, &mon)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	if f.detach {
		if _, err := e.Start(ctx, c.ID, engine.StartOptions{Monitor: mon}); err != nil {
			if c.HostConfig.AutoRemove {
				_ = e.Remove(context.WithoutCancel(ctx), c.ID, engine.RemoveOptions{Force: true, Volumes: true})
			}
			return err
		}
		fmt.Fprintln(cmd.OutOrStdout(), c.ID)
		return nil
	}
	return attachAndStart(cmd, e, c, mon, req.DetachKeys, req.SigProxy, c.Config.OpenStdin)
}

// attachAndStart starts a container with the caller attached, and ends
// with its exit status. mon is a monitor started ahead, or nil.
func attachAndStart(cmd *cobra.Command, e *engine.Engine, c *state.Container, mon *engine.Monitor, detachKeys string, sigProxy, stdin bool) error {
	ctx := cmd.Context()
	conn, err := e.Start(ctx, c.ID, engine.StartOptions{Attach: true, Monitor: mon})
	if err != nil {
		if c.HostConfig.AutoRemove {
			_ = e.Remove(context.WithoutCancel(ctx), c.ID, engine.RemoveOptions{Force: true, Volumes: true})
		}
		return err
	}
	defer conn.Close()
	return joinSession(ctx, e, c, conn, stdin, detachKeys, sigProxy)
}

// joinSession runs a session on an attach connection and ends with the
// container's status (nothing when the user detached).
func joinSession(ctx context.Context, e *engine.Engine, c *state.Container, conn *monitor.Conn, stdin bool, detachKeys string, sigProxy bool) error {
	keys, err := parseDetachKeysFlag(detachKeys)
	if err != nil {
		return err
	}
	s := &session{conn: conn, tty: c.Config.Tty, stdin: stdin, detachKeys: keys}
	s.recordExit = func() bool {
		recorded, err := e.RecordExit(context.WithoutCancel(ctx), c.ID)
		if err != nil {
			logError(fmt.Errorf("record the exit of %s: %w", c.ID[:12], err))
		}
		return recorded
	}
	if sigProxy && !c.Config.Tty {
		s.signal = func(sig unix.Signal) { _ = e.Kill(context.WithoutCancel(ctx), c.ID, unix.SignalName(sig)) }
	}
	code, detached, err := s.run()
	if err != nil || detached {
		return err
	}
	if code != 0 {
		return exitCode(code)
	}
	return nil
}

func addDetachFlag(fs interface {
	BoolVarP(p *bool, name, shorthand string, value bool, usage string)
}, f *runFlags) {
	fs.BoolVarP(&f.detach, "detach", "d", false, "run the container in the background and print its ID")
}

func newStartCmd() *cobra.Command {
	var attach, interactive bool
	var detachKeys string
	cmd := &cobra.Command{
		Use:   "start [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Start one or more stopped containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			if attach || interactive {
				if len(args) > 1 {
					return usageError("you cannot start and attach multiple containers at once")
				}
				c, err := e.Container(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return runError(attachAndStart(cmd, e, c, nil, detachKeys, true, interactive && c.Config.OpenStdin))
			}
			return eachContainer(cmd, args, func(ref string) error {
				_, err := e.Start(cmd.Context(), ref, engine.StartOptions{})
				return err
			})
		},
	}
	cmd.Flags().BoolVarP(&attach, "attach", "a", false, "attach stdout/stderr and forward signals")
	cmd.Flags().BoolVarP(&interactive, "interactive", "i", false, "attach the container's stdin")
	cmd.Flags().StringVar(&detachKeys, "detach-keys", "", "key sequence to detach from the container")
	return cmd
}

// eachContainer runs fn on every argument, printing each one done, and
// reports failures one line each, as Docker does; the status is 1 if any
// failed.
func eachContainer(cmd *cobra.Command, refs []string, fn func(ref string) error) error {
	return eachLine(cmd, refs, func(ref string) (string, error) { return ref, fn(ref) })
}

// eachLine is eachContainer for commands that print something other than
// the reference (wait prints the exit code).
func eachLine(cmd *cobra.Command, refs []string, fn func(ref string) (string, error)) error {
	failed := false
	for _, ref := range refs {
		line, err := fn(ref)
		if err != nil {
			logError(err)
			failed = true
			continue
		}
		fmt.Fprintln(cmd.OutOrStdout(), line)
	}
	if failed {
		return exitCode(1)
	}
	return nil
}

func newStopCmd() *cobra.Command {
	var timeout int
	var signal string
	cmd := &cobra.Command{
		Use:   "stop [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Stop one or more running containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			var t *int
			if cmd.Flags().Changed("time") || cmd.Flags().Changed("timeout") {
				t = &timeout
			}
			if signal != "" {
				return usageError("--signal is not supported; set the container's --stop-signal")
			}
			return eachContainer(cmd, args, func(ref string) error { return e.Stop(cmd.Context(), ref, t) })
		},
	}
	cmd.Flags().IntVarP(&timeout, "time", "t", 10, "seconds to wait before killing the container")
	cmd.Flags().IntVar(&timeout, "timeout", 10, "seconds to wait before killing the container")
	cmd.Flags().StringVarP(&signal, "signal", "s", "", "signal to send to the container")
	_ = cmd.Flags().MarkHidden("timeout")
	return cmd
}

func newRestartCmd() *cobra.Command {
	var timeout int
	cmd := &cobra.Command{
		Use:   "restart [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Restart one or more containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			var t *int
			if cmd.Flags().Changed("time") {
				t = &timeout
			}
			return eachContainer(cmd, args, func(ref string) error { return e.Restart(cmd.Context(), ref, t) })
		},
	}
	cmd.Flags().IntVarP(&timeout, "time", "t", 10, "seconds to wait before killing the container")
	return cmd
}

func newKillCmd() *cobra.Command {
	var signal string
	cmd := &cobra.Command{
		Use:   "kill [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Kill one or more running containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			return eachContainer(cmd, args, func(ref string) error { return e.Kill(cmd.Context(), ref, signal) })
		},
	}
	cmd.Flags().StringVarP(&signal, "signal", "s", "KILL", "signal to send to the container")
	return cmd
}

func newRmCmd(use string) *cobra.Command {
	var force, volumes bool
	cmd := &cobra.Command{
		Use:     use + " [OPTIONS] CONTAINER [CONTAINER...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more containers",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			return eachContainer(cmd, args, func(ref string) error {
				return e.Remove(cmd.Context(), ref, engine.RemoveOptions{Force: force, Volumes: volumes})
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "force the removal of a running container (uses SIGKILL)")
	cmd.Flags().BoolVarP(&volumes, "volumes", "v", false, "remove anonymous volumes associated with the container")
	return cmd
}

func newWaitCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "wait CONTAINER [CONTAINER...]",
		Short: "Block until one or more containers stop, then print their exit codes",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			return eachLine(cmd, args, func(ref string) (string, error) {
				code, err := e.Wait(cmd.Context(), ref, false)
				return strconv.Itoa(code), err
			})
		},
	}
}

func newRenameCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rename CONTAINER NEW_NAME",
		Short: "Rename a container",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			return e.Rename(cmd.Context(), args[0], args[1])
		},
	}
}

func newPauseCmd() *cobra.Command {
	return eachContainerCmd("pause", "Pause all processes within one or more containers", (*engine.Engine).Pause)
}

func newUnpauseCmd() *cobra.Command {
	return eachContainerCmd("unpause", "Unpause all processes within one or more containers", (*engine.Engine).Unpause)
}

// eachContainerCmd is a command that does one engine call per container
// named, as pause and unpause do.
func eachContainerCmd(use, short string, fn func(*engine.Engine, context.Context, string) error) *cobra.Command {
	return &cobra.Command{
		Use:   use + " CONTAINER [CONTAINER...]",
		Short: short,
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			return eachContainer(cmd, args, func(ref string) error { return fn(e, cmd.Context(), ref) })
		},
	}
}

func newContainerPruneCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all stopped containers",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			ids, err := e.PruneContainers(cmd.Context())
			if len(ids) > 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "Deleted Containers:")
				fmt.Fprintln(cmd.OutOrStdout(), strings.Join(ids, "\n"))
				fmt.Fprintln(cmd.OutOrStdout())
			}
			return err
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation (berth never prompts)")
	return cmd
}
