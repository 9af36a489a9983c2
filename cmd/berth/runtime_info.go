package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/runtime"
	"github.com/berth-containers/berth/runtime/spec"
)

func specVersion() string { return specs.Version }

func listCmd(g *runtimeFlags) *cobra.Command {
	var format string
	var quiet bool
	cmd := &cobra.Command{
		Use: "list", Aliases: []string{"ls"}, Short: "List containers",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := g.open()
			if err != nil {
				return err
			}
			states, err := rt.List()
			if err != nil {
				return err
			}
			switch {
			case quiet:
				for _, s := range states {
					fmt.Println(s.ID)
				}
				return nil
			case format == "json":
				if states == nil {
					states = []runtime.State{}
				}
				return printJSON(states, false)
			case format == "table":
				return printTable(states)
			}
			return errdefs.Invalid("--format must be table or json, not %q", format)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print ids only")
	return cmd
}

func printTable(states []runtime.State) error {
	w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
	fmt.Fprintln(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER")
	for _, s := range states {
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle, s.Created.Format(time.RFC3339Nano), s.Owner)
	}
	return w.Flush()
}

func psCmd(g *runtimeFlags) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "ps [flags] <id> [ps options]",
		Short: "List a container's processes (with ps(1) columns, or their pids as JSON)",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 {
				return errdefs.Invalid("ps needs a container id")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := g.open()
			if err != nil {
				return err
			}
			pids, err := rt.Pids(args[0])
			if err != nil {
				return err
			}
			switch format {
			case "json":
				if pids == nil {
					pids = []int{}
				}
				return printJSON(pids, false)
			case "table":
				return psTable(pids, args[1:])
			}
			return errdefs.Invalid("--format must be table or json, not %q", format)
		},
	}
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	return cmd
}

// psTable runs ps(1) with the given options (default -ef) and keeps the
// header and the container's lines.
func psTable(pids []int, psArgs []string) error {
	if len(psArgs) == 0 {
		psArgs = []string{"-ef"}
	}
	out, err := exec.Command("ps", psArgs...).Output()
	if err != nil {
		return fmt.Errorf("run ps: %w", err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	col := -1
	for i, h := range strings.Fields(lines[0]) {
		if h == "PID" {
			col = i
		}
	}
	if col < 0 {
		return errors.New("ps output has no PID column")
	}
	want := map[int]bool{}
	for _, p := range pids {
		want[p] = true
	}
	fmt.Println(lines[0])
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) <= col {
			continue
		}
		if p, err := strconv.Atoi(f[col]); err == nil && want[p] {
			fmt.Println(l)
		}
	}
	return nil
}

func eventsCmd(g *runtimeFlags) *cobra.Command {
	var stats bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "events [flags] <id>",
		Short: "Print a container's resource statistics as JSON, once (--stats) or every --interval",
		Args:  exactID,
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := g.open()
			if err != nil {
				return err
			}
			if interval <= 0 {
				return errdefs.Invalid("--interval must be positive")
			}
			ctx, cancel := ctxWithSignals()
			defer cancel()
			return streamStats(ctx, rt, args[0], stats, interval)
		},
	}
	cmd.Flags().BoolVar(&stats, "stats", false, "print the statistics once and exit")
	cmd.Flags().DurationVar(&interval, "interval", 5*time.Second, "time between statistics")
	return cmd
}

type statsEvent struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data any    `json:"data,omitempty"`
}

func streamStats(ctx context.Context, rt *runtime.Runtime, id string, once bool, every time.Duration) error {
	for {
		st, err := rt.Stats(id)
		if err != nil {
			if !once && errors.Is(err, errdefs.ErrFailedPrecondition) {
				return nil // the container stopped: the stream ends
			}
			return err
		}
		if err := printJSON(statsEvent{Type: "stats", ID: id, Data: st}, false); err != nil {
			return err
		}
		if once {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(every):
		}
	}
}

func specCmd() *cobra.Command {
	var bundle string
	var rootless bool
	cmd := &cobra.Command{
		Use:   "spec",
		Short: "Write a default config.json into the bundle directory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s := spec.Default()
			if rootless {
				spec.Rootless(s, uint32(os.Geteuid()), uint32(os.Getegid()))
			}
			path := filepath.Join(bundle, spec.ConfigName)
			if _, err := os.Stat(path); err == nil {
				return errdefs.AlreadyExists("%s already exists; remove it first", path)
			}
			data, err := marshalIndent(s)
			if err != nil {
				return err
			}
			if err := os.WriteFile(path, data, 0o644); err != nil {
				return fmt.Errorf("write %s: %w", path, err)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&bundle, "bundle", "b", ".", "bundle directory to write config.json into")
	cmd.Flags().BoolVar(&rootless, "rootless", false, "a configuration for an unprivileged user")
	return cmd
}
