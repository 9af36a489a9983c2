package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/runtime"
)

// runtimeFlags are the global flags every runc-compatible command takes.
type runtimeFlags struct {
	root     string
	systemd  bool
	rootless string
	criu     string
}

// newRuntimeCmd builds the runc-compatible command tree, used as
// `berth runtime ...` and as the whole CLI of berth-runc.
func newRuntimeCmd(use string) *cobra.Command {
	g := &runtimeFlags{}
	cmd := &cobra.Command{
		Use:           use,
		Short:         "The OCI runtime: run containers from bundles, compatible with runc's command line",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			if logConfig.format != "text" && logConfig.format != "json" {
				return errdefs.Invalid("--log-format must be text or json, not %q", logConfig.format)
			}
			logDebug("berth %s: %s", version, strings.Join(os.Args, " "))
			return nil
		},
	}
	cmd.SetVersionTemplate(fmt.Sprintf("berth runtime version %s\nspec: %s\n", version, specVersion()))
	pf := cmd.PersistentFlags()
	pf.StringVar(&g.root, "root", runtime.DefaultRoot, "directory for the containers' state")
	pf.StringVar(&logConfig.path, "log", "", "also write errors (and debug output) to this file")
	pf.StringVar(&logConfig.format, "log-format", "text", "log file format: text or json")
	pf.BoolVar(&logConfig.debug, "debug", false, "print debug output")
	pf.BoolVar(&g.systemd, "systemd-cgroup", false, "manage cgroups through systemd (cgroupsPath is slice:prefix:name)")
	pf.StringVar(&g.rootless, "rootless", "auto", "accepted for compatibility; berth detects rootless operation itself")
	pf.StringVar(&g.criu, "criu", "criu", "accepted for compatibility; checkpointing is not supported")
	_ = pf.MarkHidden("criu")
	cmd.AddCommand(
		createCmd(g), startCmd(g), runCmd(g), stateCmd(g), killCmd(g), deleteCmd(g),
		execCmd(g), psCmd(g), listCmd(g), pauseCmd(g), resumeCmd(g), eventsCmd(g),
		featuresCmd(), specCmd(), updateCmd(g),
	)
	return cmd
}

func (g *runtimeFlags) open() (*runtime.Runtime, error) {
	rt, err := runtime.New(g.root, g.systemd)
	if err != nil {
		return nil, err
	}
	rt.Warn = logWarn
	return rt, nil
}

// exactID checks the one container id most commands take.
func exactID(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return errdefs.Invalid("%s needs exactly one container id (got %d arguments)", cmd.Name(), len(args))
	}
	return nil
}

func ctxWithSignals() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), unix.SIGTERM)
}

type createOpts struct {
	bundle, consoleSocket, pidFile string
	noPivot, noNewKeyring          bool
	preserveFds                    int
}

func (o *createOpts) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVarP(&o.bundle, "bundle", "b", ".", "path to the bundle (rootfs and config.json)")
	f.StringVar(&o.consoleSocket, "console-socket", "", "unix socket to send the terminal's master to")
	f.StringVar(&o.pidFile, "pid-file", "", "write the container's init pid to this file")
	f.BoolVar(&o.noPivot, "no-pivot", false, "use MS_MOVE and chroot instead of pivot_root (ramdisk roots)")
	f.BoolVar(&o.noNewKeyring, "no-new-keyring", false, "keep the caller's session keyring")
	f.IntVar(&o.preserveFds, "preserve-fds", 0, "pass this many fds after stdio on to the container")
}

func (o *createOpts) options(id string) runtime.CreateOptions {
	return runtime.CreateOptions{
		ID: id, Bundle: o.bundle, ConsoleSocket: o.consoleSocket, PidFile: o.pidFile,
		NoPivot: o.noPivot, NoNewKeyring: o.noNewKeyring, PreserveFds: o.preserveFds,
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
	}
}

func createCmd(g *runtimeFlags) *cobra.Command {
	o := &createOpts{}
	cmd := &cobra.Command{
		Use:   "create [flags] <id>",
		Short: "Create a container from a bundle; its program waits for start",
		Args:  exactID,
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := g.open()
			if err != nil {
				return err
			}
			ctx, cancel := ctxWithSignals()
			defer cancel()
			return rt.Create(ctx, o.options(args[0]))
		},
	}
	o.register(cmd)
	return cmd
}

func startCmd(g *runtimeFlags) *cobra.Command {
	return idCmd(g, "start", "Start a created container's program", func(rt *runtime.Runtime, id string) error {
		return rt.Start(context.Background(), id)
	})
}

func runCmd(g *runtimeFlags) *cobra.Command {
	o := &createOpts{}
	var detach, keep bool
	cmd := &cobra.Command{
		Use:   "run [flags] <id>",
		Short: "Create and start a container; in the foreground, wait and delete it",
		Args:  exactID,
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := g.open()
			if err != nil {
				return err
			}
			code, err := rt.Run(context.Background(), runtime.RunOptions{
				CreateOptions: o.options(args[0]), Detach: detach, Keep: keep,
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
	o.register(cmd)
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "return once the program runs")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the stopped container's state after it exits")
	return cmd
}

func stateCmd(g *runtimeFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "state <id>",
		Short: "Print a container's OCI state as JSON",
		Args:  exactID,
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := g.open()
			if err != nil {
				return err
			}
			st, err := rt.StateOf(args[0])
			if err != nil {
				return err
			}
			return printJSON(st, true)
		},
	}
}

func killCmd(g *runtimeFlags) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "kill [flags] <id> [signal]",
		Short: "Send a signal (default SIGTERM) to a container's init, or with --all to all its processes",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return errdefs.Invalid("kill needs a container id and at most one signal")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			sigName := "SIGTERM"
			if len(args) == 2 {
				sigName = args[1]
			}
			sig, err := runtime.ParseSignal(sigName)
			if err != nil {
				return err
			}
			rt, err := g.open()
			if err != nil {
				return err
			}
			return rt.Kill(args[0], sig, all)
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "signal every process of the container")
	return cmd
}

func deleteCmd(g *runtimeFlags) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "delete [flags] <id>",
		Aliases: []string{"rm"},
		Short:   "Delete a stopped container (with --force, any container)",
		Args:    exactID,
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := g.open()
			if err != nil {
				return err
			}
			err = rt.Delete(context.Background(), args[0], force)
			if force && errors.Is(err, errdefs.ErrNotFound) {
				return nil // as runc: --force makes delete idempotent
			}
			return err
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "kill the container's processes first")
	return cmd
}

// idCmd is a command that takes one container id and no flags of its own.
func idCmd(g *runtimeFlags, use, short string, fn func(rt *runtime.Runtime, id string) error) *cobra.Command {
	return &cobra.Command{
		Use: use + " <id>", Short: short, Args: exactID,
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := g.open()
			if err != nil {
				return err
			}
			return fn(rt, args[0])
		},
	}
}

func pauseCmd(g *runtimeFlags) *cobra.Command {
	return idCmd(g, "pause", "Freeze all processes of a container", (*runtime.Runtime).Pause)
}

func resumeCmd(g *runtimeFlags) *cobra.Command {
	return idCmd(g, "resume", "Thaw a paused container", (*runtime.Runtime).Resume)
}

func printJSON(v any, indent bool) error {
	enc := json.NewEncoder(os.Stdout)
	if indent {
		enc.SetIndent("", "  ")
	}
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}
