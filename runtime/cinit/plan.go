// Package cinit is a container init written in C that carries out a plan
// of system calls compiled by the parent from the container's spec. It
// spares every container start the Go runtime's start-up in its init.
//
// The parent starts berth with EnvSync naming the sync socket and sends a
// plan (Plan.Bytes) as the bootstrap message. A constructor (cinit.c)
// runs it before the Go runtime starts and executes the container's
// program. A bootstrap that is not a plan (the parent found, after
// starting the init, that the spec needs the Go init) is left on the
// socket, and the process goes on as the Go init.
package cinit

import (
	"encoding/binary"
	"math"
)

// EnvSync names the variable that holds the sync socket's fd number.
const EnvSync = "_BERTH_CINIT"

// Op is one operation of a plan; the values match cinit.h.
type Op uint32

// The operations; cinit.h documents their arguments.
const (
	OpEnd Op = iota
	OpContext
	OpSetsid
	OpUnshare
	OpMountPath
	OpBindRoot
	OpTarget
	OpSource
	OpMount
	OpRemountBind
	OpSetattr
	OpPropagate
	OpSymlink
	OpDevice
	OpUmask
	OpPivot
	OpReadonly
	OpMask
	OpRemountRO
	OpHostname
	OpDomainname
	OpWrite
	OpKeyring
	OpRlimit
	OpOOM
	OpLookPath
	OpCwd
	OpCloexec
	OpSeccomp
	OpCapBound
	OpUser
	OpCapSet
	OpNNP
	OpWarn
	OpReady
	OpFifo
	OpExec
	OpConsole
	opCount
)

// Arguments of OpTarget and OpSymlink.
const (
	TargetDir  = 0 // make the mount point as a directory
	TargetFile = 1 // make it as an empty file

	ProcNone = 0 // the target may not lie under /proc
	ProcAny  = 1 // it may (a proc filesystem)

	LinkExistOK = 1 // an existing name is fine
	LinkReplace = 2 // remove the name first
)

const magic = "BPLAN001"

// Plan is a plan being written.
type Plan struct {
	b []byte
}

// NewPlan starts an empty plan.
func NewPlan() *Plan { return &Plan{b: []byte(magic)} }

// Bytes returns the plan, ready to send.
func (p *Plan) Bytes() []byte { return p.b }

// Add appends one operation with its arguments: each argument is a string,
// a []byte (sent as a string), a uint64, an int, or a []uint64 or []string (its count, then each
// element).
func (p *Plan) Add(op Op, args ...any) {
	p.b = binary.NativeEndian.AppendUint32(p.b, uint32(op))
	for _, a := range args {
		switch v := a.(type) {
		case string:
			p.str(v)
		case []byte:
			p.str(string(v))
		case uint64:
			p.b = binary.NativeEndian.AppendUint64(p.b, v)
		case uintptr:
			p.b = binary.NativeEndian.AppendUint64(p.b, uint64(v))
		case uint32:
			p.b = binary.NativeEndian.AppendUint64(p.b, uint64(v))
		case int:
			p.b = binary.NativeEndian.AppendUint64(p.b, uint64(int64(v)))
		case []uint64:
			p.b = binary.NativeEndian.AppendUint64(p.b, uint64(len(v)))
			for _, n := range v {
				p.b = binary.NativeEndian.AppendUint64(p.b, n)
			}
		case []string:
			p.b = binary.NativeEndian.AppendUint64(p.b, uint64(len(v)))
			for _, s := range v {
				p.str(s)
			}
		default:
			panic("cinit: unsupported plan argument")
		}
	}
}

func (p *Plan) str(s string) {
	if len(s) > math.MaxUint32-1 {
		panic("cinit: string too long for a plan")
	}
	p.b = binary.NativeEndian.AppendUint32(p.b, uint32(len(s)))
	p.b = append(p.b, s...)
	p.b = append(p.b, 0)
}
