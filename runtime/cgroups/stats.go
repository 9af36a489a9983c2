package cgroups

import (
	"github.com/opencontainers/cgroups"
)

// Stats is a container's resource usage, shaped like the "data" object of
// runc's `events --stats` output so that tools written against runc can
// read it. Intel RDT and network interface figures are not part of it.
type Stats struct {
	CPU     CPU                `json:"cpu"`
	CPUSet  CPUSet             `json:"cpuset"`
	Memory  Memory             `json:"memory"`
	Pids    Pids               `json:"pids"`
	Blkio   Blkio              `json:"blkio"`
	Hugetlb map[string]Hugetlb `json:"hugetlb"`
}

// CPU is CPU time used and throttling suffered.
type CPU struct {
	Usage      CPUUsage   `json:"usage,omitempty"`
	Throttling Throttling `json:"throttling,omitempty"`
	PSI        *PSIStats  `json:"psi,omitempty"`
}

// CPUUsage is CPU time in nanoseconds, in total and per CPU.
type CPUUsage struct {
	Total        uint64   `json:"total,omitempty"`
	Percpu       []uint64 `json:"percpu,omitempty"`
	PercpuKernel []uint64 `json:"percpu_kernel,omitempty"`
	PercpuUser   []uint64 `json:"percpu_user,omitempty"`
	Kernel       uint64   `json:"kernel"`
	User         uint64   `json:"user"`
}

// Throttling counts CFS bandwidth periods and the time spent throttled.
type Throttling struct {
	Periods          uint64 `json:"periods,omitempty"`
	ThrottledPeriods uint64 `json:"throttledPeriods,omitempty"`
	ThrottledTime    uint64 `json:"throttledTime,omitempty"`
}

// PSIStats is pressure stall information (cgroup v2 only).
type PSIStats struct {
	Some PSIData `json:"some,omitempty"`
	Full PSIData `json:"full,omitempty"`
}

// PSIData is one line of a pressure file.
type PSIData struct {
	Avg10  float64 `json:"avg10"`
	Avg60  float64 `json:"avg60"`
	Avg300 float64 `json:"avg300"`
	Total  uint64  `json:"total"`
}

// CPUSet is the cpuset controller's configuration (cgroup v1 only).
type CPUSet struct {
	CPUs                  []uint16 `json:"cpus,omitempty"`
	CPUExclusive          uint64   `json:"cpu_exclusive"`
	Mems                  []uint16 `json:"mems,omitempty"`
	MemHardwall           uint64   `json:"mem_hardwall"`
	MemExclusive          uint64   `json:"mem_exclusive"`
	MemoryMigrate         uint64   `json:"memory_migrate"`
	MemorySpreadPage      uint64   `json:"memory_spread_page"`
	MemorySpreadSlab      uint64   `json:"memory_spread_slab"`
	MemoryPressure        uint64   `json:"memory_pressure"`
	SchedLoadBalance      uint64   `json:"sched_load_balance"`
	SchedRelaxDomainLevel int64    `json:"sched_relax_domain_level"`
}

// Memory is memory usage, limits and the raw memory.stat counters.
type Memory struct {
	Cache     uint64            `json:"cache,omitempty"`
	Usage     MemoryEntry       `json:"usage,omitempty"`
	Swap      MemoryEntry       `json:"swap,omitempty"`
	Kernel    MemoryEntry       `json:"kernel,omitempty"`
	KernelTCP MemoryEntry       `json:"kernelTCP,omitempty"`
	Raw       map[string]uint64 `json:"raw,omitempty"`
	PSI       *PSIStats         `json:"psi,omitempty"`
}

// MemoryEntry is one memory counter with its limit.
type MemoryEntry struct {
	Limit   uint64 `json:"limit"`
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

// Pids is the number of tasks and its limit (0 = none).
type Pids struct {
	Current uint64 `json:"current,omitempty"`
	Limit   uint64 `json:"limit,omitempty"`
}

// Blkio is block I/O accounting, per device and operation.
type Blkio struct {
	IoServiceBytesRecursive []BlkioEntry `json:"ioServiceBytesRecursive,omitempty"`
	IoServicedRecursive     []BlkioEntry `json:"ioServicedRecursive,omitempty"`
	IoQueuedRecursive       []BlkioEntry `json:"ioQueueRecursive,omitempty"`
	IoServiceTimeRecursive  []BlkioEntry `json:"ioServiceTimeRecursive,omitempty"`
	IoWaitTimeRecursive     []BlkioEntry `json:"ioWaitTimeRecursive,omitempty"`
	IoMergedRecursive       []BlkioEntry `json:"ioMergedRecursive,omitempty"`
	IoTimeRecursive         []BlkioEntry `json:"ioTimeRecursive,omitempty"`
	SectorsRecursive        []BlkioEntry `json:"sectorsRecursive,omitempty"`
	PSI                     *PSIStats    `json:"psi,omitempty"`
}

// BlkioEntry is one counter of one device.
type BlkioEntry struct {
	Major uint64 `json:"major,omitempty"`
	Minor uint64 `json:"minor,omitempty"`
	Op    string `json:"op,omitempty"`
	Value uint64 `json:"value,omitempty"`
}

// Hugetlb is the usage of one huge page size.
type Hugetlb struct {
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

// convertStats turns the library's figures into Stats.
func convertStats(cg *cgroups.Stats) *Stats {
	var s Stats
	cu := cg.CpuStats.CpuUsage
	s.CPU.Usage = CPUUsage{
		Total:        cu.TotalUsage,
		Percpu:       cu.PercpuUsage,
		PercpuKernel: cu.PercpuUsageInKernelmode,
		PercpuUser:   cu.PercpuUsageInUsermode,
		Kernel:       cu.UsageInKernelmode,
		User:         cu.UsageInUsermode,
	}
	td := cg.CpuStats.ThrottlingData
	s.CPU.Throttling = Throttling{Periods: td.Periods, ThrottledPeriods: td.ThrottledPeriods, ThrottledTime: td.ThrottledTime}
	s.CPU.PSI = convertPSI(cg.CpuStats.PSI)

	s.CPUSet = CPUSet(cg.CPUSetStats)

	ms := cg.MemoryStats
	s.Memory = Memory{
		Cache:     ms.Cache,
		Usage:     memoryEntry(ms.Usage),
		Swap:      memoryEntry(ms.SwapUsage),
		Kernel:    memoryEntry(ms.KernelUsage),
		KernelTCP: memoryEntry(ms.KernelTCPUsage),
		Raw:       ms.Stats,
		PSI:       convertPSI(ms.PSI),
	}

	s.Pids = Pids{Current: cg.PidsStats.Current, Limit: cg.PidsStats.Limit}

	bs := cg.BlkioStats
	s.Blkio = Blkio{
		IoServiceBytesRecursive: blkioEntries(bs.IoServiceBytesRecursive),
		IoServicedRecursive:     blkioEntries(bs.IoServicedRecursive),
		IoQueuedRecursive:       blkioEntries(bs.IoQueuedRecursive),
		IoServiceTimeRecursive:  blkioEntries(bs.IoServiceTimeRecursive),
		IoWaitTimeRecursive:     blkioEntries(bs.IoWaitTimeRecursive),
		IoMergedRecursive:       blkioEntries(bs.IoMergedRecursive),
		IoTimeRecursive:         blkioEntries(bs.IoTimeRecursive),
		SectorsRecursive:        blkioEntries(bs.SectorsRecursive),
		PSI:                     convertPSI(bs.PSI),
	}

	s.Hugetlb = make(map[string]Hugetlb, len(cg.HugetlbStats))
	for size, h := range cg.HugetlbStats {
		s.Hugetlb[size] = Hugetlb{Usage: h.Usage, Max: h.MaxUsage, Failcnt: h.Failcnt}
	}
	return &s
}

func memoryEntry(d cgroups.MemoryData) MemoryEntry {
	return MemoryEntry{Limit: d.Limit, Usage: d.Usage, Max: d.MaxUsage, Failcnt: d.Failcnt}
}

func blkioEntries(in []cgroups.BlkioStatEntry) []BlkioEntry {
	var out []BlkioEntry
	for _, e := range in {
		out = append(out, BlkioEntry(e))
	}
	return out
}

func convertPSI(p *cgroups.PSIStats) *PSIStats {
	if p == nil {
		return nil
	}
	return &PSIStats{Some: PSIData(p.Some), Full: PSIData(p.Full)}
}
