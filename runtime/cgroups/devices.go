package cgroups

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	devconfig "github.com/opencontainers/cgroups/devices/config"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// setDevices puts the device rules of res (the spec's rules, then the
// default devices and linux.devices) in force: on v1 as the devices
// controller's list, written in order (the spec says rules apply in order,
// and tools check devices.list against it; the list starts from "deny
// all", harmless for a cgroup that holds only a waiting init); on v2 as an
// eBPF program. The list is a whitelist: a configuration without rules
// still gets only the default devices, as with runc.
func (m *Manager) setDevices(res *specs.LinuxResources) error {
	var specRules []specs.LinuxDeviceCgroup
	if res != nil {
		specRules = res.Devices
	}
	rules, err := deviceRules(specRules, m.cfg.Devices)
	if err != nil {
		return err
	}
	if m.mode == ModeV2 {
		if dir := m.paths[""]; dir != "" {
			return setDeviceFilter(dir, rules)
		}
		return nil
	}
	if dir := m.paths["devices"]; dir != "" {
		return writeDeviceRules(dir, rules)
	}
	return nil
}

// applyV1Extras applies memory.kernelTCP, which the library drops but v1
// kernels still honour (memory.kmem.tcp.limit_in_bytes). It runs once, at
// Apply.
func (m *Manager) applyV1Extras() error {
	if m.mode == ModeV2 || m.cfg.Systemd {
		return nil
	}
	if dir := m.paths["memory"]; dir != "" {
		return writeKernelTCP(dir, m.cfg.Resources)
	}
	return nil
}

func writeDeviceRules(dir string, rules []*devconfig.Rule) error {
	if err := writeCgroupFile(dir, "devices.deny", "a"); err != nil {
		return err
	}
	for _, r := range rules {
		file := "devices.deny"
		if r.Allow {
			file = "devices.allow"
		}
		if err := writeCgroupFile(dir, file, r.CgroupString()); err != nil {
			return err
		}
	}
	return nil
}

func writeKernelTCP(dir string, res *specs.LinuxResources) error {
	if res == nil || res.Memory == nil || res.Memory.KernelTCP == nil {
		return nil
	}
	return writeCgroupFile(dir, "memory.kmem.tcp.limit_in_bytes", strconv.FormatInt(*res.Memory.KernelTCP, 10))
}

func writeCgroupFile(dir, name, value string) error {
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(value), 0); err != nil {
		return fmt.Errorf("cgroup: write %q to %s: %w", value, path, err)
	}
	return nil
}
