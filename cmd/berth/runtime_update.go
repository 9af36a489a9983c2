package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/runtime"
)

func featuresCmd() *cobra.Command {
	return &cobra.Command{
		Use: "features", Short: "Print what this runtime supports, as OCI features JSON",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return printJSON(runtime.Features(), true)
		},
	}
}

func marshalIndent(v any) ([]byte, error) {
	data, err := json.MarshalIndent(v, "", "\t")
	if err != nil {
		return nil, fmt.Errorf("encode JSON: %w", err)
	}
	return append(data, '\n'), nil
}

// updateFlags are runc update's flags; each one set changes one field.
type updateFlags struct {
	resources                                                 string
	memory, memorySwap, memoryReservation, kernelMem, kernTCP string
	cpuShares, cpuRtPeriod, cpuPeriod                         uint64
	cpuQuota, cpuRtRuntime, pidsLimit                         int64
	cpusetCpus, cpusetMems                                    string
	blkioWeight                                               uint16
}

func updateCmd(g *runtimeFlags) *cobra.Command {
	u := &updateFlags{}
	cmd := &cobra.Command{
		Use:   "update [flags] <id>",
		Short: "Change a running container's resource limits",
		Args:  exactID,
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := g.open()
			if err != nil {
				return err
			}
			res, err := rt.Resources(args[0])
			if err != nil {
				return err
			}
			if err := u.apply(cmd, res); err != nil {
				return err
			}
			return rt.Update(args[0], res)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&u.resources, "resources", "r", "", "path to a JSON file of linux.resources, or - for stdin")
	f.StringVar(&u.memory, "memory", "", "memory limit (bytes, or with k/m/g suffix)")
	f.StringVar(&u.memorySwap, "memory-swap", "", "memory plus swap limit (-1 for unlimited)")
	f.StringVar(&u.memoryReservation, "memory-reservation", "", "memory soft limit")
	f.StringVar(&u.kernelMem, "kernel-memory", "", "kernel memory limit (ignored by modern kernels)")
	f.StringVar(&u.kernTCP, "kernel-memory-tcp", "", "kernel TCP buffer limit")
	f.Uint64Var(&u.cpuShares, "cpu-shares", 0, "CPU shares (relative weight)")
	f.Int64Var(&u.cpuQuota, "cpu-quota", 0, "CPU CFS quota in microseconds")
	f.Uint64Var(&u.cpuPeriod, "cpu-period", 0, "CPU CFS period in microseconds")
	f.Int64Var(&u.cpuRtRuntime, "cpu-rt-runtime", 0, "realtime runtime in microseconds")
	f.Uint64Var(&u.cpuRtPeriod, "cpu-rt-period", 0, "realtime period in microseconds")
	f.StringVar(&u.cpusetCpus, "cpuset-cpus", "", "CPUs to run on (0-3, 0,1)")
	f.StringVar(&u.cpusetMems, "cpuset-mems", "", "memory nodes to use")
	f.Int64Var(&u.pidsLimit, "pids-limit", 0, "maximum number of processes")
	f.Uint16Var(&u.blkioWeight, "blkio-weight", 0, "block IO weight (10-1000)")
	return cmd
}

func (u *updateFlags) apply(cmd *cobra.Command, res *specs.LinuxResources) error {
	if u.resources != "" {
		return readResources(u.resources, res)
	}
	set := cmd.Flags().Changed
	if res.Memory == nil {
		res.Memory = &specs.LinuxMemory{}
	}
	if res.CPU == nil {
		res.CPU = &specs.LinuxCPU{}
	}
	mem := []struct {
		flag string
		val  string
		dst  **int64
	}{
		{"memory", u.memory, &res.Memory.Limit}, {"memory-swap", u.memorySwap, &res.Memory.Swap},
		{"memory-reservation", u.memoryReservation, &res.Memory.Reservation},
		// Kernel memory limits are obsolete, but runc still takes the flag.
		{"kernel-memory", u.kernelMem, &res.Memory.Kernel}, //nolint:staticcheck
		{"kernel-memory-tcp", u.kernTCP, &res.Memory.KernelTCP},
	}
	for _, m := range mem {
		if !set(m.flag) {
			continue
		}
		v, err := parseBytes(m.val)
		if err != nil {
			return errdefs.Invalid("--%s: %v", m.flag, err)
		}
		*m.dst = &v
	}
	if set("cpu-shares") {
		res.CPU.Shares = &u.cpuShares
	}
	if set("cpu-quota") {
		res.CPU.Quota = &u.cpuQuota
	}
	if set("cpu-period") {
		res.CPU.Period = &u.cpuPeriod
	}
	if set("cpu-rt-runtime") {
		res.CPU.RealtimeRuntime = &u.cpuRtRuntime
	}
	if set("cpu-rt-period") {
		res.CPU.RealtimePeriod = &u.cpuRtPeriod
	}
	if set("cpuset-cpus") {
		res.CPU.Cpus = u.cpusetCpus
	}
	if set("cpuset-mems") {
		res.CPU.Mems = u.cpusetMems
	}
	if set("pids-limit") {
		res.Pids = &specs.LinuxPids{Limit: &u.pidsLimit}
	}
	if set("blkio-weight") {
		if res.BlockIO == nil {
			res.BlockIO = &specs.LinuxBlockIO{}
		}
		res.BlockIO.Weight = &u.blkioWeight
	}
	return nil
}

func readResources(path string, res *specs.LinuxResources) error {
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("open --resources: %w", err)
		}
		defer f.Close()
		r = f
	}
	var in specs.LinuxResources
	if err := json.NewDecoder(r).Decode(&in); err != nil {
		return errdefs.Invalid("parse --resources: %v", err)
	}
	*res = in
	return nil
}

// parseBytes reads "512", "64k", "128m", "1g" or "-1".
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	if s == "-1" {
		return -1, nil
	}
	mult := int64(1)
	s = strings.TrimSuffix(s, "b")
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'k':
			mult, s = 1<<10, s[:n-1]
		case 'm':
			mult, s = 1<<20, s[:n-1]
		case 'g':
			mult, s = 1<<30, s[:n-1]
		case 't':
			mult, s = 1<<40, s[:n-1]
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	// NaN fails every comparison, so ask for the valid range outright;
	// 2^63 and above (infinity too) would wrap around in int64.
	if err != nil || !(v >= 0 && v*float64(mult) < math.MaxInt64) {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	return int64(v * float64(mult)), nil
}
