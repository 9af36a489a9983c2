//go:build linux && cgo

package cinit

// #cgo CFLAGS: -Wall -Wextra -Wno-unused-parameter -Wno-format-truncation
// #include "cinit.h"
import "C"

// Available says the C init is linked in.
const Available = true

// cOps are the operation codes as cinit.h defines them, for the test that
// keeps the two lists in step.
func cOps() []Op {
	return []Op{
		C.BOP_END, C.BOP_CONTEXT, C.BOP_SETSID, C.BOP_UNSHARE, C.BOP_MOUNT_PATH, C.BOP_BIND_ROOT,
		C.BOP_TARGET, C.BOP_SOURCE, C.BOP_MOUNT, C.BOP_REMOUNT_BIND, C.BOP_SETATTR, C.BOP_PROPAGATE,
		C.BOP_SYMLINK, C.BOP_DEVICE, C.BOP_UMASK, C.BOP_PIVOT, C.BOP_READONLY, C.BOP_MASK,
		C.BOP_REMOUNT_RO, C.BOP_HOSTNAME, C.BOP_DOMAINNAME, C.BOP_WRITE, C.BOP_KEYRING, C.BOP_RLIMIT,
		C.BOP_OOM, C.BOP_LOOKPATH, C.BOP_CWD, C.BOP_CLOEXEC, C.BOP_SECCOMP, C.BOP_CAPBOUND,
		C.BOP_USER, C.BOP_CAPSET, C.BOP_NNP, C.BOP_WARN, C.BOP_READY, C.BOP_FIFO, C.BOP_EXEC,
		C.BOP_CONSOLE, C.BOP_COUNT,
	}
}

// cConsts are the other values cinit.h defines, in the order of goConsts.
func cConsts() []int {
	return []int{C.TARGET_DIR, C.TARGET_FILE, C.PROC_NONE, C.PROC_ANY, C.LINK_EXIST_OK, C.LINK_REPLACE}
}
