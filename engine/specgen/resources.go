package specgen

import (
	"github.com/moby/moby/api/types/blkiodev"
	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-containers/berth/internal/errdefs"
)

// Limits Docker enforces on resources.
const (
	minMemory    = 6 << 20 // smallest memory limit or reservation
	cpuPeriod    = 100000  // CFS period --cpus is expressed in (µs)
	minCPUShares = 2
	maxCPUShares = 262144
)

func (g *generator) resourcesOrNew() *specs.LinuxResources {
	if g.s.Linux.Resources == nil {
		g.s.Linux.Resources = &specs.LinuxResources{}
	}
	return g.s.Linux.Resources
}

// resources translates the cgroup limits after checking them the way
// Docker's daemon does.
func (g *generator) resources() error {
	r := g.hc.Resources
	if err := validateResources(r, g.host.CPUs()); err != nil {
		return err
	}
	res := g.resourcesOrNew()
	res.Memory = memory(r)
	res.CPU = cpu(r)
	if r.PidsLimit != nil {
		limit := *r.PidsLimit
		if limit <= 0 {
			limit = -1 // 0 and negative values mean unlimited in Docker's API
		}
		res.Pids = &specs.LinuxPids{Limit: &limit}
	}
	blkio, err := g.blockIO(r)
	if err != nil {
		return err
	}
	res.BlockIO = blkio
	return nil
}

func validateResources(r container.Resources, cpus int) error {
	switch {
	case r.Memory != 0 && r.Memory < minMemory:
		return errdefs.Invalid("invalid memory limit %d: the minimum allowed is 6MB", r.Memory)
	case r.MemorySwap > 0 && r.Memory == 0:
		return errdefs.Invalid("invalid memory swap limit %d: set the memory limit too when using a memory swap limit", r.MemorySwap)
	case r.Memory > 0 && r.MemorySwap > 0 && r.MemorySwap < r.Memory:
		return errdefs.Invalid("invalid memory swap limit %d: it must be larger than the memory limit %d", r.MemorySwap, r.Memory)
	case r.MemorySwap < -1:
		return errdefs.Invalid("invalid memory swap limit %d: use -1 for unlimited swap", r.MemorySwap)
	case r.MemorySwappiness != nil && (*r.MemorySwappiness < -1 || *r.MemorySwappiness > 100):
		return errdefs.Invalid("invalid memory swappiness %d: the valid range is 0-100", *r.MemorySwappiness)
	case r.MemoryReservation != 0 && r.MemoryReservation < minMemory:
		return errdefs.Invalid("invalid memory reservation %d: the minimum allowed is 6MB", r.MemoryReservation)
	case r.Memory > 0 && r.MemoryReservation > 0 && r.Memory < r.MemoryReservation:
		return errdefs.Invalid("invalid memory limit %d: it can not be less than the memory reservation %d", r.Memory, r.MemoryReservation)
	case r.NanoCPUs > 0 && r.CPUPeriod > 0:
		return errdefs.Invalid("conflicting options: Nano CPUs and CPU Period cannot both be set")
	case r.NanoCPUs > 0 && r.CPUQuota > 0:
		return errdefs.Invalid("conflicting options: Nano CPUs and CPU Quota cannot both be set")
	case r.NanoCPUs < 0 || r.NanoCPUs > int64(cpus)*1e9:
		return errdefs.Invalid("invalid number of CPUs %.2f: the range is from 0.01 to %d.00, as there are only %d CPUs available", float64(r.NanoCPUs)/1e9, cpus, cpus)
	case r.NanoCPUs > 0 && r.NanoCPUs*cpuPeriod/1e9 < 1000:
		return errdefs.Invalid("invalid number of CPUs %.3f: the minimum is 0.01", float64(r.NanoCPUs)/1e9)
	case r.CPUPeriod != 0 && (r.CPUPeriod < 1000 || r.CPUPeriod > 1000000):
		return errdefs.Invalid("invalid CPU period %d: it can not be less than 1ms (1000) or larger than 1s (1000000)", r.CPUPeriod)
	case r.CPUQuota > 0 && r.CPUQuota < 1000:
		return errdefs.Invalid("invalid CPU quota %d: it can not be less than 1ms (1000)", r.CPUQuota)
	case r.CPUShares < 0:
		return errdefs.Invalid("invalid CPU shares %d: it can not be negative", r.CPUShares)
	case r.BlkioWeight > 0 && (r.BlkioWeight < 10 || r.BlkioWeight > 1000):
		return errdefs.Invalid("invalid blkio weight %d: the range is from 10 to 1000", r.BlkioWeight)
	case r.PidsLimit != nil && *r.PidsLimit < -1:
		return errdefs.Invalid("invalid pids limit %d: use 0 or -1 for unlimited", *r.PidsLimit)
	}
	for _, w := range r.BlkioWeightDevice {
		if w != nil && (w.Weight < 10 || w.Weight > 1000) {
			return errdefs.Invalid("invalid blkio weight %d for device %s: the range is from 10 to 1000", w.Weight, w.Path)
		}
	}
	return nil
}

// memory translates the memory limits. As in Docker, a memory limit
// without a swap limit allows as much swap again (swap = 2 x memory).
func memory(r container.Resources) *specs.LinuxMemory {
	m := &specs.LinuxMemory{}
	set := false
	if r.Memory != 0 {
		m.Limit = i64(r.Memory)
		set = true
		if r.MemorySwap == 0 {
			m.Swap = i64(2 * r.Memory)
		}
	}
	if r.MemorySwap != 0 {
		m.Swap = i64(r.MemorySwap)
		set = true
	}
	if r.MemoryReservation != 0 {
		m.Reservation = i64(r.MemoryReservation)
		set = true
	}
	if r.MemorySwappiness != nil && *r.MemorySwappiness >= 0 {
		v := uint64(*r.MemorySwappiness)
		m.Swappiness = &v
		set = true
	}
	if r.OomKillDisable != nil {
		v := *r.OomKillDisable
		m.DisableOOMKiller = &v
		set = true
	}
	if !set {
		return nil
	}
	return m
}

// cpu translates the CPU limits: --cpus becomes a quota over a 100ms
// period; shares are kept within the kernel's range as Docker does.
func cpu(r container.Resources) *specs.LinuxCPU {
	c := &specs.LinuxCPU{}
	set := false
	if r.CPUShares != 0 {
		s := r.CPUShares
		s = max(s, minCPUShares)
		s = min(s, maxCPUShares)
		v := uint64(s)
		c.Shares = &v
		set = true
	}
	if r.NanoCPUs > 0 {
		p := uint64(cpuPeriod)
		c.Period = &p
		c.Quota = i64(r.NanoCPUs * cpuPeriod / 1e9)
		set = true
	}
	if r.CPUPeriod != 0 {
		p := uint64(r.CPUPeriod)
		c.Period = &p
		set = true
	}
	if r.CPUQuota != 0 {
		c.Quota = i64(r.CPUQuota)
		set = true
	}
	if r.CPURealtimePeriod != 0 {
		p := uint64(r.CPURealtimePeriod)
		c.RealtimePeriod = &p
		set = true
	}
	if r.CPURealtimeRuntime != 0 {
		c.RealtimeRuntime = i64(r.CPURealtimeRuntime)
		set = true
	}
	if r.CpusetCpus != "" || r.CpusetMems != "" {
		c.Cpus, c.Mems = r.CpusetCpus, r.CpusetMems
		set = true
	}
	if !set {
		return nil
	}
	return c
}

// blockIO translates the block I/O weight and per-device limits; each
// device is named by its host path and stat'ed for its numbers.
func (g *generator) blockIO(r container.Resources) (*specs.LinuxBlockIO, error) {
	b := &specs.LinuxBlockIO{}
	set := false
	if r.BlkioWeight != 0 {
		w := r.BlkioWeight
		b.Weight = &w
		set = true
	}
	for _, w := range r.BlkioWeightDevice {
		if w == nil {
			continue
		}
		maj, minor, err := g.blockDevice(w.Path)
		if err != nil {
			return nil, err
		}
		weight := w.Weight
		wd := specs.LinuxWeightDevice{Weight: &weight}
		wd.Major, wd.Minor = maj, minor
		b.WeightDevice = append(b.WeightDevice, wd)
		set = true
	}
	throttles := []struct {
		in  []*blkiodev.ThrottleDevice
		out *[]specs.LinuxThrottleDevice
	}{
		{r.BlkioDeviceReadBps, &b.ThrottleReadBpsDevice},
		{r.BlkioDeviceWriteBps, &b.ThrottleWriteBpsDevice},
		{r.BlkioDeviceReadIOps, &b.ThrottleReadIOPSDevice},
		{r.BlkioDeviceWriteIOps, &b.ThrottleWriteIOPSDevice},
	}
	for _, t := range throttles {
		for _, d := range t.in {
			if d == nil {
				continue
			}
			maj, minor, err := g.blockDevice(d.Path)
			if err != nil {
				return nil, err
			}
			td := specs.LinuxThrottleDevice{Rate: d.Rate}
			td.Major, td.Minor = maj, minor
			*t.out = append(*t.out, td)
			set = true
		}
	}
	if !set {
		return nil, nil
	}
	return b, nil
}

func (g *generator) blockDevice(p string) (int64, int64, error) {
	devs, err := g.host.Devices(p)
	if err != nil || len(devs) != 1 || devs[0].Type != "b" {
		return 0, 0, errdefs.Invalid("invalid block device %q for a blkio limit: not a block device node", p)
	}
	return devs[0].Major, devs[0].Minor, nil
}
