package cgroups

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/opencontainers/cgroups"
	devconfig "github.com/opencontainers/cgroups/devices/config"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func ptr[T any](v T) *T { return &v }

func TestPlaceCgroup(t *testing.T) {
	for _, tc := range []struct {
		name                string
		cfg                 Config
		path, parent, nm, p string
		wantErr             string
	}{
		{name: "default is the id, relative", cfg: Config{ID: "c1"}, nm: "c1"},
		{name: "absolute", cfg: Config{ID: "c1", Path: "/a/b/../c"}, path: "/a/c"},
		{name: "relative", cfg: Config{ID: "c1", Path: "x/y"}, path: "x/y"},
		{name: "relative cannot climb", cfg: Config{ID: "c1", Path: "../../x"}, path: "x"},
		{name: "absolute cannot climb", cfg: Config{ID: "c1", Path: "/../../x"}, path: "/x"},
		{name: "no id", cfg: Config{}, wantErr: "container id"},
		{name: "systemd default", cfg: Config{ID: "c1", Systemd: true}, nm: "c1", p: "berth"},
		{name: "systemd path", cfg: Config{ID: "c1", Systemd: true, Path: "system.slice:docker:abc"}, parent: "system.slice", p: "docker", nm: "abc"},
		{name: "systemd bad path", cfg: Config{ID: "c1", Systemd: true, Path: "/a/b"}, wantErr: "slice:prefix:name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cg cgroups.Cgroup
			err := placeCgroup(&cg, tc.cfg)
			if tc.wantErr != "" {
				mustErrContains(t, err, tc.wantErr)
				return
			}
			mustNoErr(t, err)
			eq(t, tc.path, cg.Path)
			eq(t, tc.parent, cg.Parent)
			eq(t, tc.nm, cg.Name)
			eq(t, tc.p, cg.ScopePrefix)
		})
	}
}

func TestLibResourcesNil(t *testing.T) {
	eq(t, &cgroups.Resources{}, libResources(nil))
}

func TestLibResourcesEveryField(t *testing.T) {
	in := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{
			Limit: ptr[int64](1 << 30), Reservation: ptr[int64](1 << 29), Swap: ptr[int64](2 << 30),
			//nolint:staticcheck // deprecated, but specs still carry it and it must be ignored
			Kernel: ptr[int64](1), KernelTCP: ptr[int64](2), Swappiness: ptr[uint64](10),
			DisableOOMKiller: ptr(true), UseHierarchy: ptr(true), CheckBeforeUpdate: ptr(true),
		},
		CPU: &specs.LinuxCPU{
			Shares: ptr[uint64](512), Quota: ptr[int64](50000), Burst: ptr[uint64](1000), Period: ptr[uint64](100000),
			RealtimeRuntime: ptr[int64](950), RealtimePeriod: ptr[uint64](1000), Cpus: "0-1", Mems: "0", Idle: ptr[int64](1),
		},
		Pids: &specs.LinuxPids{Limit: ptr[int64](42)},
		BlockIO: &specs.LinuxBlockIO{
			Weight: ptr[uint16](300), LeafWeight: ptr[uint16](200),
			WeightDevice:            []specs.LinuxWeightDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Weight: ptr[uint16](500)}},
			ThrottleReadBpsDevice:   []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 1}},
			ThrottleWriteBpsDevice:  []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 2}},
			ThrottleReadIOPSDevice:  []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 3}},
			ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 4}},
		},
		HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}},
		Network:        &specs.LinuxNetwork{ClassID: ptr[uint32](0x100001), Priorities: []specs.LinuxInterfacePriority{{Name: "eth0", Priority: 5}}},
		Rdma:           map[string]specs.LinuxRdma{"mlx5_1": {HcaHandles: ptr[uint32](3), HcaObjects: ptr[uint32](10000)}},
		Unified:        map[string]string{"memory.high": "1000000"},
	}
	r := libResources(in)

	eq(t, int64(1<<30), r.Memory)
	eq(t, int64(1<<29), r.MemoryReservation)
	eq(t, int64(2<<30), r.MemorySwap)
	eq(t, ptr[uint64](10), r.MemorySwappiness)
	isTrue(t, r.OomKillDisable, "OomKillDisable")
	isTrue(t, r.MemoryCheckBeforeUpdate, "MemoryCheckBeforeUpdate")

	eq(t, uint64(512), r.CpuShares)
	eq(t, cgroups.ConvertCPUSharesToCgroupV2Value(512), r.CpuWeight)
	eq(t, int64(50000), r.CpuQuota)
	eq(t, ptr[uint64](1000), r.CpuBurst)
	eq(t, uint64(100000), r.CpuPeriod)
	eq(t, int64(950), r.CpuRtRuntime)
	eq(t, uint64(1000), r.CpuRtPeriod)
	eq(t, "0-1", r.CpusetCpus)
	eq(t, "0", r.CpusetMems)
	eq(t, ptr[int64](1), r.CPUIdle)

	eq(t, ptr[int64](42), r.PidsLimit)

	eq(t, uint16(300), r.BlkioWeight)
	eq(t, uint16(200), r.BlkioLeafWeight)
	mustLen(t, r.BlkioWeightDevice, 1)
	eq(t, "8:0 500", r.BlkioWeightDevice[0].WeightString())
	eq(t, "8:0 1", r.BlkioThrottleReadBpsDevice[0].String())
	eq(t, "8:0 2", r.BlkioThrottleWriteBpsDevice[0].String())
	eq(t, "8:0 3", r.BlkioThrottleReadIOPSDevice[0].String())
	eq(t, "8:0 4", r.BlkioThrottleWriteIOPSDevice[0].String())

	eq(t, []*cgroups.HugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}}, r.HugetlbLimit)
	eq(t, uint32(0x100001), r.NetClsClassid)
	eq(t, []*cgroups.IfPrioMap{{Interface: "eth0", Priority: 5}}, r.NetPrioIfpriomap)
	eq(t, map[string]cgroups.LinuxRdma{"mlx5_1": {HcaHandles: ptr[uint32](3), HcaObjects: ptr[uint32](10000)}}, r.Rdma)
	eq(t, map[string]string{"memory.high": "1000000"}, r.Unified)

	// The translation copies: changing the spec afterwards changes nothing.
	*in.Pids.Limit = 7
	in.Unified["memory.high"] = "1"
	eq(t, int64(42), *r.PidsLimit)
	eq(t, "1000000", r.Unified["memory.high"])
}

func TestLibResourcesPidsZeroAndUnlimited(t *testing.T) {
	r := libResources(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](-1)}})
	eq(t, ptr[int64](-1), r.PidsLimit)
	r = libResources(&specs.LinuxResources{Pids: &specs.LinuxPids{}})
	isTrue(t, r.PidsLimit == nil, "a pids object without a limit keeps the current one")
}

func ruleStrings(rules []*devconfig.Rule) []string {
	var out []string
	for _, r := range rules {
		verb := "deny"
		if r.Allow {
			verb = "allow"
		}
		out = append(out, verb+" "+r.CgroupString())
	}
	return out
}

func TestDeviceRulesDefaults(t *testing.T) {
	rules, err := deviceRules([]specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}, nil)
	mustNoErr(t, err)
	eq(t, []string{
		"deny a *:* rwm",
		"allow c *:* m",
		"allow b *:* m",
		"allow c 1:3 rwm",
		"allow c 1:8 rwm",
		"allow c 1:7 rwm",
		"allow c 5:0 rwm",
		"allow c 1:5 rwm",
		"allow c 1:9 rwm",
		"allow c 136:* rwm",
		"allow c 5:2 rwm",
	}, ruleStrings(rules))
}

func TestDeviceRulesSpecDevices(t *testing.T) {
	specRules := []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "b", Major: ptr[int64](7), Access: "r"},
	}
	devs := []specs.LinuxDevice{
		{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229},
		{Path: "/dev/loop0", Type: "b", Major: 7, Minor: 0},
		{Path: "/dev/null", Type: "u", Major: 1, Minor: 3},
		{Path: "/dev/myfifo", Type: "p"},
	}
	rules, err := deviceRules(specRules, devs)
	mustNoErr(t, err)
	got := ruleStrings(rules)
	eq(t, "deny a *:* rwm", got[0])
	eq(t, "allow b 7:* r", got[1])
	eq(t, []string{"allow c 10:229 rwm", "allow b 7:0 rwm", "allow c 1:3 rwm"}, got[len(got)-3:])
	// /dev/null is redefined by the spec, so its default rule is dropped
	// and the spec's own device gives the only 1:3 rule.
	n := 0
	for _, r := range got {
		if r == "allow c 1:3 rwm" {
			n++
		}
	}
	eq(t, 1, n)
	// The FIFO has no rule: the device cgroup does not cover FIFOs.
	mustLen(t, got, 2+len(defaultDevices)-1+3)
}

func TestDeviceRulesErrors(t *testing.T) {
	_, err := deviceRules([]specs.LinuxDeviceCgroup{{Allow: true, Type: "x", Access: "rwm"}}, nil)
	errContains(t, err, "invalid device type")
	_, err = deviceRules([]specs.LinuxDeviceCgroup{{Allow: true, Type: "c"}}, nil)
	errContains(t, err, "invalid access")
	_, err = deviceRules([]specs.LinuxDeviceCgroup{{Allow: true, Type: "c", Access: "rwx"}}, nil)
	errContains(t, err, "invalid access")
	_, err = deviceRules(nil, []specs.LinuxDevice{{Path: "/dev/x", Type: "z"}})
	errContains(t, err, "linux.devices[0] (/dev/x)")
}

func TestCheckResources(t *testing.T) {
	v1have := map[string]bool{"cpu": true, "cpuacct": true, "cpuset": true, "memory": true, "devices": true,
		"freezer": true, "blkio": true, "pids": true, "name=systemd": true}
	v2have := map[string]bool{"cpu": true, "cpuset": true, "memory": true, "io": true, "pids": true, "devices": true, "freezer": true}
	full := &specs.LinuxResources{
		Memory:  &specs.LinuxMemory{Limit: ptr[int64](1 << 30), Swappiness: ptr[uint64](0), DisableOOMKiller: ptr(true)},
		CPU:     &specs.LinuxCPU{Shares: ptr[uint64](100), Cpus: "0"},
		Pids:    &specs.LinuxPids{Limit: ptr[int64](10)},
		BlockIO: &specs.LinuxBlockIO{Weight: ptr[uint16](100), LeafWeight: ptr[uint16](100)},
	}
	for _, tc := range []struct {
		name    string
		res     *specs.LinuxResources
		mode    string
		have    map[string]bool
		wantErr string
	}{
		{name: "nothing set", res: nil, mode: ModeHybrid, have: map[string]bool{}},
		{name: "empty objects set nothing", res: &specs.LinuxResources{Network: &specs.LinuxNetwork{}, HugepageLimits: []specs.LinuxHugepageLimit{}}, mode: ModeHybrid, have: v1have},
		{name: "common limits v1", res: full, mode: ModeHybrid, have: v1have},
		{name: "common limits v2", res: full, mode: ModeV2, have: v2have},
		{name: "hugetlb missing", res: &specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1}}}, mode: ModeHybrid, have: v1have,
			wantErr: "linux.resources.hugepageLimits is set but this host has no hugetlb cgroup controller"},
		{name: "net_cls missing", res: &specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: ptr[uint32](1)}}, mode: ModeV1, have: v1have,
			wantErr: "no net_cls cgroup controller"},
		{name: "net_prio missing", res: &specs.LinuxResources{Network: &specs.LinuxNetwork{Priorities: []specs.LinuxInterfacePriority{{Name: "lo", Priority: 1}}}}, mode: ModeV1, have: v1have,
			wantErr: "no net_prio cgroup controller"},
		{name: "rdma missing", res: &specs.LinuxResources{Rdma: map[string]specs.LinuxRdma{"x": {}}}, mode: ModeV1, have: v1have,
			wantErr: "no rdma cgroup controller"},
		{name: "network on v2", res: &specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: ptr[uint32](1)}}, mode: ModeV2, have: v2have,
			wantErr: "network.classID is set but cgroup v2 has no such setting"},
		{name: "realtime on v2", res: &specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimeRuntime: ptr[int64](1)}}, mode: ModeV2, have: v2have,
			wantErr: "cpu.realtimeRuntime"},
		{name: "unified on hybrid", res: &specs.LinuxResources{Unified: map[string]string{"memory.high": "1"}}, mode: ModeHybrid, have: v1have,
			wantErr: "unified needs cgroup v2 but this host is hybrid"},
		{name: "unified empty on v1", res: &specs.LinuxResources{Unified: map[string]string{}}, mode: ModeV1, have: v1have},
		{name: "unified on v2", res: &specs.LinuxResources{Unified: map[string]string{"memory.high": "1"}}, mode: ModeV2, have: v2have},
		{name: "io missing on v2", res: &specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: ptr[uint16](100)}}, mode: ModeV2,
			have: map[string]bool{"memory": true}, wantErr: "blockIO.weight is set but this host has no io cgroup controller"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkResources(libResources(tc.res), tc.mode, tc.have)
			if tc.wantErr == "" {
				mustNoErr(t, err)
				return
			}
			mustErrContains(t, err, tc.wantErr)
			isTrue(t, errors.Is(err, ErrNotSupported), "error does not wrap ErrNotSupported: %v", err)
		})
	}
}

func TestMergeResources(t *testing.T) {
	old := &specs.LinuxResources{
		Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
		Memory:  &specs.LinuxMemory{Limit: ptr[int64](100), Swap: ptr[int64](200)},
		CPU:     &specs.LinuxCPU{Shares: ptr[uint64](10), Cpus: "0"},
		Unified: map[string]string{"a": "1"},
	}
	upd := &specs.LinuxResources{
		Memory:  &specs.LinuxMemory{Limit: ptr[int64](300)},
		CPU:     &specs.LinuxCPU{Quota: ptr[int64](5000)},
		Pids:    &specs.LinuxPids{Limit: ptr[int64](9)},
		Unified: map[string]string{"b": "2"},
	}
	got, err := mergeResources(old, upd)
	mustNoErr(t, err)
	eq(t, int64(300), *got.Memory.Limit)
	eq(t, int64(200), *got.Memory.Swap)
	eq(t, uint64(10), *got.CPU.Shares)
	eq(t, int64(5000), *got.CPU.Quota)
	eq(t, "0", got.CPU.Cpus)
	eq(t, int64(9), *got.Pids.Limit)
	eq(t, old.Devices, got.Devices)
	eq(t, map[string]string{"a": "1", "b": "2"}, got.Unified)

	// Neither input changed, and the result shares nothing with them.
	eq(t, int64(100), *old.Memory.Limit)
	isTrue(t, old.Pids == nil, "old.Pids stays nil")
	eq(t, map[string]string{"a": "1"}, old.Unified)
	*got.Memory.Swap = 1
	eq(t, int64(200), *old.Memory.Swap)

	got, err = mergeResources(nil, nil)
	mustNoErr(t, err)
	eq(t, &specs.LinuxResources{}, got)
}

func TestConvertStatsJSONShape(t *testing.T) {
	in := cgroups.NewStats()
	in.CpuStats.CpuUsage.TotalUsage = 5
	in.CpuStats.CpuUsage.UsageInUsermode = 3
	in.MemoryStats.Usage = cgroups.MemoryData{Usage: 10, MaxUsage: 20, Limit: 30}
	in.MemoryStats.Stats["cache"] = 1
	in.PidsStats = cgroups.PidsStats{Current: 2, Limit: 8}
	in.BlkioStats.IoServiceBytesRecursive = []cgroups.BlkioStatEntry{{Major: 8, Op: "Read", Value: 4}}
	in.HugetlbStats["2MB"] = cgroups.HugetlbStats{Usage: 1, MaxUsage: 2, Failcnt: 3}

	b, err := json.Marshal(convertStats(in))
	mustNoErr(t, err)
	var got map[string]any
	mustNoErr(t, json.Unmarshal(b, &got))
	for _, k := range []string{"cpu", "cpuset", "memory", "pids", "blkio", "hugetlb"} {
		_, ok := got[k]
		isTrue(t, ok, "stats JSON lacks %q", k)
	}
	_, ok := got["intel_rdt"]
	isTrue(t, !ok, "stats JSON has intel_rdt")
	_, ok = got["network_interfaces"]
	isTrue(t, !ok, "stats JSON has network_interfaces")
	s := string(b)
	for _, frag := range []string{
		`"usage":{"total":5,"kernel":0,"user":3}`,
		`"pids":{"current":2,"limit":8}`,
		`"usage":{"limit":30,"usage":10,"max":20,"failcnt":0}`,
		`"raw":{"cache":1}`,
		`"ioServiceBytesRecursive":[{"major":8,"op":"Read","value":4}]`,
		`"hugetlb":{"2MB":{"usage":1,"max":2,"failcnt":3}}`,
	} {
		isTrue(t, strings.Contains(s, frag), "missing %s in %s", frag, s)
	}
}

func TestModeMatchesHost(t *testing.T) {
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	isV2 := err == nil
	_, err = os.Stat("/sys/fs/cgroup/unified/cgroup.controllers")
	isHybrid := !isV2 && err == nil
	switch {
	case isV2:
		eq(t, ModeV2, Mode())
	case isHybrid:
		eq(t, ModeHybrid, Mode())
	default:
		eq(t, ModeV1, Mode())
	}
}
