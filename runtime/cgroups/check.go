package cgroups

import (
	"fmt"

	"github.com/opencontainers/cgroups"
)

// need is one setting of linux.resources and the controller that holds it.
type need struct {
	field      string // as the spec spells it
	controller string // "" when the host's cgroup version has no file for it
}

// needs lists the settings r actually sets, each with the controller the
// given cgroup layout keeps it in. Settings that the layout silently
// ignores, as runc does, are not listed: on v2 memory.swappiness,
// memory.disableOOMKiller and blockIO.leafWeight have no file.
func needs(r *cgroups.Resources, mode string) []need {
	v2 := mode == ModeV2
	pick := func(v1, v2name string) string {
		if v2 {
			return v2name
		}
		return v1
	}
	var out []need
	add := func(set bool, field, controller string) {
		if set {
			out = append(out, need{field, controller})
		}
	}
	add(r.Memory != 0, "memory.limit", "memory")
	add(r.MemoryReservation != 0, "memory.reservation", "memory")
	add(r.MemorySwap != 0, "memory.swap", "memory")
	add(!v2 && r.MemorySwappiness != nil, "memory.swappiness", "memory")
	add(!v2 && r.OomKillDisable, "memory.disableOOMKiller", "memory")

	add(r.CpuShares != 0, "cpu.shares", "cpu")
	add(r.CpuQuota != 0, "cpu.quota", "cpu")
	add(r.CpuBurst != nil, "cpu.burst", "cpu")
	add(r.CpuPeriod != 0, "cpu.period", "cpu")
	add(r.CpuRtRuntime != 0, "cpu.realtimeRuntime", pick("cpu", ""))
	add(r.CpuRtPeriod != 0, "cpu.realtimePeriod", pick("cpu", ""))
	add(r.CPUIdle != nil, "cpu.idle", "cpu")
	add(r.CpusetCpus != "", "cpu.cpus", "cpuset")
	add(r.CpusetMems != "", "cpu.mems", "cpuset")

	add(r.PidsLimit != nil, "pids.limit", "pids")

	blkio := pick("blkio", "io")
	add(r.BlkioWeight != 0, "blockIO.weight", blkio)
	add(!v2 && r.BlkioLeafWeight != 0, "blockIO.leafWeight", blkio)
	add(len(r.BlkioWeightDevice) > 0, "blockIO.weightDevice", blkio)
	add(len(r.BlkioThrottleReadBpsDevice) > 0, "blockIO.throttleReadBpsDevice", blkio)
	add(len(r.BlkioThrottleWriteBpsDevice) > 0, "blockIO.throttleWriteBpsDevice", blkio)
	add(len(r.BlkioThrottleReadIOPSDevice) > 0, "blockIO.throttleReadIOPSDevice", blkio)
	add(len(r.BlkioThrottleWriteIOPSDevice) > 0, "blockIO.throttleWriteIOPSDevice", blkio)

	add(len(r.HugetlbLimit) > 0, "hugepageLimits", "hugetlb")
	add(r.NetClsClassid != 0, "network.classID", pick("net_cls", ""))
	add(len(r.NetPrioIfpriomap) > 0, "network.priorities", pick("net_prio", ""))
	add(len(r.Rdma) > 0, "rdma", "rdma")
	return out
}

// checkResources fails, with an error that names the setting and wraps
// ErrNotSupported, if r sets anything the host cannot enforce. have holds
// the controllers the host has; settings left unset never matter.
func checkResources(r *cgroups.Resources, mode string, have map[string]bool) error {
	if len(r.Unified) > 0 && mode != ModeV2 {
		return fmt.Errorf("%w: linux.resources.unified needs cgroup v2 but this host is %s", ErrNotSupported, mode)
	}
	for _, n := range needs(r, mode) {
		if n.controller == "" {
			return fmt.Errorf("%w: linux.resources.%s is set but cgroup v2 has no such setting", ErrNotSupported, n.field)
		}
		if !have[n.controller] {
			return fmt.Errorf("%w: linux.resources.%s is set but this host has no %s cgroup controller", ErrNotSupported, n.field, n.controller)
		}
	}
	return nil
}

// hostControllers lists the controllers this host has mounted (v1) or
// offers at the root of the unified hierarchy (v2, plus the devices and
// freezer pseudo-controllers that every v2 kernel we run on has).
func hostControllers() (map[string]bool, error) {
	mounts, err := cgroups.GetCgroupMounts(false)
	if err != nil {
		return nil, fmt.Errorf("list cgroup controllers: %w", err)
	}
	have := map[string]bool{}
	for _, m := range mounts {
		for _, s := range m.Subsystems {
			have[s] = true
		}
	}
	return have, nil
}
