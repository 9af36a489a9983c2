package cgroups

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	devconfig "github.com/opencontainers/cgroups/devices/config"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// applyV1Extras finishes what the library leaves undone on cgroup v1:
//
//   - device rules in the order the spec lists them. The library writes the
//     least set of changes that reach the same effect, which leaves
//     devices.list in its own order; the spec says rules apply in order,
//     and tools check devices.list against it. A fresh cgroup holds only the
//     waiting init, so denying everything first is harmless here.
//   - memory.kernelTCP, which the library drops but v1 kernels still apply
//     (memory.kmem.tcp.limit_in_bytes).
//
// It runs once, at Apply.
func (m *Manager) applyV1Extras() error {
	if m.mode == ModeV2 || m.cfg.Systemd {
		return nil
	}
	if dir := m.paths["devices"]; dir != "" && m.cfg.Resources != nil && len(m.cfg.Resources.Devices) > 0 {
		rules, err := deviceRules(m.cfg.Resources.Devices, m.cfg.Devices)
		if err != nil {
			return err
		}
		if err := writeDeviceRules(dir, rules); err != nil {
			return err
		}
	}
	if dir := m.paths["memory"]; dir != "" {
		if err := writeKernelTCP(dir, m.cfg.Resources); err != nil {
			return err
		}
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
