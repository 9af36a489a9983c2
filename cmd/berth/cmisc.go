package main

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"

	"github.com/berth-containers/berth/engine"
	"github.com/berth-containers/berth/engine/state"
)

func newTopCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "top CONTAINER [ps OPTIONS]",
		Short: "Display the running processes of a container",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			pids, err := e.Pids(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return psTable(pids, args[1:])
		},
	}
	cmd.Flags().SetInterspersed(false)
	return cmd
}

type statsRow struct {
	ID, Container, Name, CPUPerc, MemUsage, MemPerc, NetIO, BlockIO, PIDs string
}

func newStatsCmd() *cobra.Command {
	var all, noStream, noTrunc bool
	var format string
	cmd := &cobra.Command{
		Use:   "stats [OPTIONS] [CONTAINER...]",
		Short: "Display a live stream of container(s) resource usage statistics",
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			for i := 0; ; i++ {
				rows, err := statsRows(cmd.Context(), e, args, all, noTrunc)
				if err != nil {
					return err
				}
				if !noStream {
					fmt.Fprint(cmd.OutOrStdout(), "\033[2J\033[H")
				}
				if err := printRowsNamed(cmd.OutOrStdout(), format,
					"table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}",
					rows, map[string]string{"ID": "CONTAINER ID", "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT",
						"MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS", "Name": "NAME"}); err != nil {
					return err
				}
				if noStream {
					return nil
				}
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(time.Second):
				}
			}
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&all, "all", "a", false, "show all containers (default shows just running)")
	fl.BoolVar(&noStream, "no-stream", false, "disable streaming stats and only pull the first result")
	fl.BoolVar(&noTrunc, "no-trunc", false, "do not truncate output")
	fl.StringVar(&format, "format", "", "format output using a Go template")
	return cmd
}

// statsRows samples each container twice, 500 ms apart, for its CPU
// share.
func statsRows(ctx context.Context, e *engine.Engine, refs []string, all, noTrunc bool) ([]any, error) {
	var cs []*state.Container
	if len(refs) == 0 {
		list, err := e.Containers(ctx)
		if err != nil {
			return nil, err
		}
		for _, c := range list {
			if all || c.State.Status == engine.StatusRunning {
				cs = append(cs, c)
			}
		}
	} else {
		for _, r := range refs {
			c, err := e.Container(ctx, r)
			if err != nil {
				return nil, err
			}
			cs = append(cs, c)
		}
	}
	first := map[string]uint64{}
	for _, c := range cs {
		if _, st, err := e.Stats(ctx, c.ID); err == nil {
			first[c.ID] = st.CPU.Usage.Total
		}
	}
	const window = 500 * time.Millisecond
	time.Sleep(window)
	var rows []any
	for _, c := range cs {
		id := c.ID
		if !noTrunc {
			id = id[:12]
		}
		r := statsRow{ID: id, Container: id, Name: c.Name, CPUPerc: "0.00%", MemUsage: "0B / 0B", MemPerc: "0.00%",
			NetIO: "0B / 0B", BlockIO: "0B / 0B", PIDs: "0"}
		if _, st, err := e.Stats(ctx, c.ID); err == nil {
			cpu := float64(st.CPU.Usage.Total-first[c.ID]) / float64(window.Nanoseconds()) * 100
			r.CPUPerc = fmt.Sprintf("%.2f%%", cpu)
			usage, limit := st.Memory.Usage.Usage, st.Memory.Usage.Limit
			if limit == 0 || limit > 1<<60 {
				limit = hostMemory()
			}
			r.MemUsage = fmt.Sprintf("%s / %s", binarySize(usage), binarySize(limit))
			if limit > 0 {
				r.MemPerc = fmt.Sprintf("%.2f%%", float64(usage)/float64(limit)*100)
			}
			var rd, wr uint64
			for _, b := range st.Blkio.IoServiceBytesRecursive {
				switch strings.ToLower(b.Op) {
				case "read":
					rd += b.Value
				case "write":
					wr += b.Value
				}
			}
			r.BlockIO = fmt.Sprintf("%s / %s", humanSize(int64(rd)), humanSize(int64(wr)))
			r.PIDs = strconv.FormatUint(st.Pids.Current, 10)
		}
		rows = append(rows, r)
	}
	return rows, nil
}

func hostMemory() uint64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// binarySize writes sizes in binary units as docker stats does.
func binarySize(n uint64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	f := float64(n)
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	return fmt.Sprintf("%.4g%s", f, units[i])
}

func newUpdateCmd() *cobra.Command {
	var memory, swap, reservation, cpus string
	var shares, period, quota, pids int64
	var cpusetCpus, cpusetMems, restart string
	var blkio uint16
	cmd := &cobra.Command{
		Use:   "update [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Update configuration of one or more containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var res container.Resources
			set := engine.UpdateFields{}
			var err error
			fl := cmd.Flags()
			sizes := []struct {
				name string
				val  string
				dst  *int64
			}{{"memory", memory, &res.Memory}, {"memory-swap", swap, &res.MemorySwap}, {"memory-reservation", reservation, &res.MemoryReservation}}
			for _, s := range sizes {
				if fl.Changed(s.name) {
					if *s.dst, err = parseMemory(s.val); err != nil {
						return usageError("invalid argument %q for \"--%s\" flag: %v", s.val, s.name, err)
					}
					set[s.name] = true
				}
			}
			if fl.Changed("cpus") {
				f, err := strconv.ParseFloat(cpus, 64)
				if err != nil || f < 0 {
					return usageError("invalid argument %q for \"--cpus\" flag", cpus)
				}
				res.NanoCPUs, set["cpus"] = int64(f*1e9), true
			}
			res.CPUShares, res.CPUPeriod, res.CPUQuota = shares, period, quota
			res.CpusetCpus, res.CpusetMems, res.BlkioWeight = cpusetCpus, cpusetMems, blkio
			res.PidsLimit = &pids
			for _, n := range []string{"cpu-shares", "cpu-period", "cpu-quota", "cpuset-cpus", "cpuset-mems", "pids-limit", "blkio-weight"} {
				if fl.Changed(n) {
					set[n] = true
				}
			}
			var policy *container.RestartPolicy
			if fl.Changed("restart") {
				p, err := parseRestart(restart)
				if err != nil {
					return usageError("%v", err)
				}
				policy = &p
			}
			if len(set) == 0 && policy == nil {
				return usageError("you must provide one or more flags when using this command")
			}
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			return eachContainer(cmd, args, func(ref string) error {
				return e.Update(cmd.Context(), ref, res, set, policy)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&memory, "memory", "m", "", "memory limit")
	fl.StringVar(&swap, "memory-swap", "", "swap limit equal to memory plus swap: -1 to enable unlimited swap")
	fl.StringVar(&reservation, "memory-reservation", "", "memory soft limit")
	fl.StringVar(&cpus, "cpus", "", "number of CPUs")
	fl.Int64VarP(&shares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fl.Int64Var(&period, "cpu-period", 0, "limit CPU CFS (Completely Fair Scheduler) period")
	fl.Int64Var(&quota, "cpu-quota", 0, "limit CPU CFS (Completely Fair Scheduler) quota")
	fl.StringVar(&cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	fl.StringVar(&cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	fl.Int64Var(&pids, "pids-limit", 0, "tune container pids limit (set -1 for unlimited)")
	fl.Uint16Var(&blkio, "blkio-weight", 0, "block IO (relative weight), between 10 and 1000, or 0 to disable")
	fl.StringVar(&restart, "restart", "", "restart policy to apply when a container exits")
	return cmd
}

func newDiffCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "diff CONTAINER",
		Short: "Inspect changes to files or directories on a container's filesystem",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			changes, err := e.Diff(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			for _, c := range changes {
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", c.Kind, c.Path)
			}
			return nil
		},
	}
}

func newExportCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "export [OPTIONS] CONTAINER",
		Short: "Export a container's filesystem as a tar archive",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			w, done, err := openOutput(cmd, output)
			if err != nil {
				return err
			}
			if err := e.Export(cmd.Context(), args[0], w); err != nil {
				_ = done(false) // the export's error is the one to report
				return err
			}
			return done(true)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to a file, instead of STDOUT")
	return cmd
}

// openOutput opens -o's file (through a temporary name, renamed when
// complete) or stdout; refuses a terminal.
func openOutput(cmd *cobra.Command, path string) (io.Writer, func(ok bool) error, error) {
	if path == "" || path == "-" {
		if fi, err := os.Stdout.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			return nil, nil, usageError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
		}
		return cmd.OutOrStdout(), func(bool) error { return nil }, nil
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return nil, nil, err
	}
	return f, func(ok bool) error {
		err := f.Close()
		if !ok || err != nil {
			_ = os.Remove(tmp)
			return err
		}
		return os.Rename(tmp, path)
	}, nil
}

func newCommitCmd() *cobra.Command {
	var author, message string
	var changes []string
	var pause bool
	cmd := &cobra.Command{
		Use:   "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
		Short: "Create a new image from a container's changes",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			o := engine.CommitOptions{Author: author, Message: message, Changes: changes, Pause: pause}
			if len(args) == 2 {
				o.Name = args[1]
			}
			img, err := e.Commit(cmd.Context(), args[0], o)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), img.Config)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&author, "author", "a", "", "author (e.g., \"John Hannibal Smith <hannibal@a-team.com>\")")
	fl.StringVarP(&message, "message", "m", "", "commit message")
	fl.StringArrayVarP(&changes, "change", "c", nil, "apply Dockerfile instruction to the created image")
	fl.BoolVarP(&pause, "pause", "p", true, "pause container during commit")
	return cmd
}

func newCpCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n  berth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
		Short: "Copy files/folders between a container and the local filesystem",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			srcC, srcPath, srcIn := splitCpArg(args[0])
			dstC, dstPath, dstIn := splitCpArg(args[1])
			if srcIn == dstIn {
				return usageError("copying between containers, or between local paths, is not supported: one of the paths must be CONTAINER:PATH")
			}
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if srcIn {
				if dstPath == "-" {
					return e.CopyFrom(ctx, srcC, srcPath, cmd.OutOrStdout())
				}
				return copyOut(ctx, e, srcC, srcPath, dstPath)
			}
			if srcPath == "-" {
				return e.CopyTo(ctx, dstC, dstPath, os.Stdin, true)
			}
			return copyIn(ctx, e, srcPath, dstC, dstPath)
		},
	}
	cmd.Flags().BoolP("archive", "a", false, "archive mode (copy all uid/gid information)")
	cmd.Flags().BoolP("follow-link", "L", false, "always follow symbol link in SRC_PATH")
	return cmd
}

// splitCpArg splits CONTAINER:PATH; a local path has no colon before its
// first slash.
func splitCpArg(arg string) (string, string, bool) {
	if strings.HasPrefix(arg, "/") || strings.HasPrefix(arg, ".") {
		return "", arg, false
	}
	c, p, ok := strings.Cut(arg, ":")
	if !ok || c == "" {
		return "", arg, false
	}
	return c, p, true
}

// copyOut copies from the container into a local path.
func copyOut(ctx context.Context, e *engine.Engine, ref, src, dst string) error {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(e.CopyFrom(ctx, ref, src, pw)) }()
	dir, rename := dst, ""
	if fi, err := os.Stat(dst); err != nil || !fi.IsDir() {
		dir, rename = filepath.Dir(dst), filepath.Base(dst)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		pr.CloseWithError(err)
		return fmt.Errorf("destination directory: %w", err)
	}
	defer root.Close()
	err = engine.ExtractTar(ctx, root, ".", rename, tar.NewReader(pr))
	pr.CloseWithError(err)
	return err
}

// copyIn tars a local path and copies it into the container.
func copyIn(ctx context.Context, e *engine.Engine, src, ref, dst string) error {
	if _, err := os.Lstat(src); err != nil {
		return fmt.Errorf("could not find the file %s on the local side: %w", src, err)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(engine.TarPath(ctx, pw, src)) }()
	err := e.CopyTo(ctx, ref, dst, pr, false)
	pr.CloseWithError(err)
	return err
}
