package cgroups

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"unsafe"

	devconfig "github.com/opencontainers/cgroups/devices/config"
	"golang.org/x/sys/unix"
)

// The bpf(2) attribute layouts used here, as the kernel's union bpf_attr
// members for each command.
type progLoadAttr struct {
	progType    uint32
	insnCnt     uint32
	insns       uint64
	license     uint64
	logLevel    uint32
	logSize     uint32
	logBuf      uint64
	kernVersion uint32
	progFlags   uint32
}

type progAttachAttr struct {
	targetFd    uint32
	attachBpfFd uint32
	attachType  uint32
	attachFlags uint32
}

type progQueryAttr struct {
	targetFd    uint32
	attachType  uint32
	queryFlags  uint32
	attachFlags uint32
	progIDs     uint64
	progCnt     uint32
	_           uint32
}

type progGetFdAttr struct {
	progID uint32
	nextID uint32
	flags  uint32
}

func bpf(cmd int, attr unsafe.Pointer, size uintptr) (int, error) {
	r, _, errno := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(attr), size)
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}

// loadDeviceProgram loads prog into the kernel and returns its fd.
func loadDeviceProgram(prog []bpfInsn) (int, error) {
	license := []byte("Apache\x00")
	logBuf := make([]byte, 64<<10)
	attr := progLoadAttr{
		progType: unix.BPF_PROG_TYPE_CGROUP_DEVICE,
		insnCnt:  uint32(len(prog)),
		insns:    uint64(uintptr(unsafe.Pointer(&prog[0]))),
		license:  uint64(uintptr(unsafe.Pointer(&license[0]))),
		logLevel: 1,
		logSize:  uint32(len(logBuf)),
		logBuf:   uint64(uintptr(unsafe.Pointer(&logBuf[0]))),
	}
	fd, err := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	runtime.KeepAlive(prog)
	runtime.KeepAlive(license)
	if err != nil {
		msg := string(logBuf[:clen(logBuf)])
		return -1, fmt.Errorf("load device filter: %w: %s", err, msg)
	}
	return fd, nil
}

func clen(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return len(b)
}

// attachedPrograms lists the ids of device programs attached to the cgroup.
func attachedPrograms(cgFd int) ([]uint32, error) {
	ids := make([]uint32, 64)
	attr := progQueryAttr{
		targetFd:   uint32(cgFd),
		attachType: unix.BPF_CGROUP_DEVICE,
		progIDs:    uint64(uintptr(unsafe.Pointer(&ids[0]))),
		progCnt:    uint32(len(ids)),
	}
	if _, err := bpf(unix.BPF_PROG_QUERY, unsafe.Pointer(&attr), unsafe.Sizeof(attr)); err != nil {
		return nil, fmt.Errorf("query device filters: %w", err)
	}
	runtime.KeepAlive(ids)
	return ids[:attr.progCnt], nil
}

// setDeviceFilter replaces the device programs berth attached to the
// cgroup at dir with one compiled from rules: the new one is attached
// first, so no moment passes without a filter.
func setDeviceFilter(dir string, rules []*devconfig.Rule) error {
	prog, err := deviceProgram(rules)
	if err != nil {
		return err
	}
	cg, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open cgroup %s: %w", dir, err)
	}
	defer cg.Close()
	cgFd := int(cg.Fd())
	old, err := attachedPrograms(cgFd)
	if err != nil {
		return err
	}
	progFd, err := loadDeviceProgram(prog)
	if err != nil {
		return err
	}
	defer unix.Close(progFd)
	attach := progAttachAttr{
		targetFd: uint32(cgFd), attachBpfFd: uint32(progFd),
		attachType: unix.BPF_CGROUP_DEVICE, attachFlags: unix.BPF_F_ALLOW_MULTI,
	}
	if _, err := bpf(unix.BPF_PROG_ATTACH, unsafe.Pointer(&attach), unsafe.Sizeof(attach)); err != nil {
		return fmt.Errorf("attach device filter to %s: %w", dir, err)
	}
	var errs []error
	for _, id := range old {
		if err := detachProgram(cgFd, id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func detachProgram(cgFd int, id uint32) error {
	get := progGetFdAttr{progID: id}
	fd, err := bpf(unix.BPF_PROG_GET_FD_BY_ID, unsafe.Pointer(&get), unsafe.Sizeof(get))
	if err != nil {
		return fmt.Errorf("open old device filter %d: %w", id, err)
	}
	defer unix.Close(fd)
	detach := progAttachAttr{targetFd: uint32(cgFd), attachBpfFd: uint32(fd), attachType: unix.BPF_CGROUP_DEVICE}
	if _, err := bpf(unix.BPF_PROG_DETACH, unsafe.Pointer(&detach), unsafe.Sizeof(detach)); err != nil {
		return fmt.Errorf("detach old device filter %d: %w", id, err)
	}
	return nil
}
