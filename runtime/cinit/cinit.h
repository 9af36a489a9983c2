// The operations of a container init plan: see plan.go. Each operation is
// a native-endian uint32 code followed by its arguments, integers as
// uint64 and strings as a uint32 length, the bytes and a NUL.
#ifndef BERTH_CINIT_H
#define BERTH_CINIT_H

enum berth_op {
	BOP_END = 0,
	BOP_CONTEXT,      // str: what the following operations do, for errors
	BOP_SETSID,       //
	BOP_UNSHARE,      // u64 flags
	BOP_MOUNT_PATH,   // str src, str target, str fstype, u64 flags, str data
	BOP_BIND_ROOT,    // str rootfs
	BOP_TARGET,       // str dest, u64 how (TARGET_*), u64 proc (PROC_*), str fstype
	BOP_SOURCE,       // str host path: the source of the next bind
	BOP_MOUNT,        // str src ("" = the source), str fstype, u64 flags, str data
	BOP_REMOUNT_BIND, // str dest, u64 flags, u64 all
	BOP_SETATTR,      // str dest, u64 set, u64 clear: recursive
	BOP_PROPAGATE,    // str dest, u64 flags
	BOP_SYMLINK,      // str target, str dest, u64 flags (LINK_*)
	BOP_DEVICE,       // str path, u64 mode, u64 dev, u64 uid, u64 gid
	BOP_UMASK,        // u64 mask, or all ones: back to the mask before the last
	BOP_PIVOT,        //
	BOP_READONLY,     // str path
	BOP_MASK,         // str path
	BOP_REMOUNT_RO,   // str literal path
	BOP_HOSTNAME,     // str
	BOP_DOMAINNAME,   // str
	BOP_WRITE,        // str path, str data
	BOP_KEYRING,      // str name
	BOP_RLIMIT,       // u64 resource, u64 soft, u64 hard, str name
	BOP_OOM,          // u64 (int64) score
	BOP_LOOKPATH,     // str name, str PATH
	BOP_CWD,          // str
	BOP_CLOEXEC,      // u64 first fd
	BOP_SECCOMP,      // u64 flags, str program (struct sock_filter[])
	BOP_CAPBOUND,     // u64 keep mask, u64 last cap
	BOP_USER,         // u64 uid, u64 gid, u64 n, n * u64 gid
	BOP_CAPSET,       // u64 effective, permitted, inheritable, ambient masks
	BOP_NNP,          //
	BOP_WARN,         // str: a warning sent with ready
	BOP_READY,        //
	BOP_FIFO,         // u64 fd of exec.fifo
	BOP_EXEC,         // u64 argc, argc * str, u64 envc, envc * str
	BOP_CONSOLE,      // u64 console socket fd, u64 width, u64 height
	BOP_COUNT
};

enum { TARGET_DIR = 0, TARGET_FILE = 1 };
enum { PROC_NONE = 0, PROC_ANY = 1 };
enum { LINK_EXIST_OK = 1, LINK_REPLACE = 2 };

#define BERTH_PLAN_MAGIC "BPLAN001"

#endif
