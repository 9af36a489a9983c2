package cgroups

import (
	"fmt"

	devconfig "github.com/opencontainers/cgroups/devices/config"
)

// On cgroup v2 the device controller is an eBPF program of type
// BPF_PROG_TYPE_CGROUP_DEVICE attached to the cgroup. berth writes that
// small program itself rather than pulling in a general eBPF library: the
// program is a straight list of compares, and the library (with the
// parsers and decompressors it links) costs every berth process several
// milliseconds of start-up.
//
// The program sees struct bpf_cgroup_dev_ctx { u32 access_type; u32 major;
// u32 minor; }, where access_type holds the device type in its low 16 bits
// and the requested access in the high 16. It returns 1 to allow.

// bpfInsn is one eBPF instruction, laid out as the kernel's struct bpf_insn.
type bpfInsn struct {
	Code uint8
	Regs uint8 // dst in the low nibble, src in the high one
	Off  int16
	Imm  int32
}

// Opcodes used by the device program.
const (
	opLdxW     = 0x61 // BPF_LDX|BPF_MEM|BPF_W:   dst = *(u32 *)(src + off)
	opAnd32K   = 0x54 // BPF_ALU|BPF_AND|BPF_K:   dst &= imm (32 bit)
	opRsh32K   = 0x74 // BPF_ALU|BPF_RSH|BPF_K:   dst >>= imm (32 bit)
	opMov64X   = 0xbf // BPF_ALU64|BPF_MOV|BPF_X: dst = src
	opMov64K   = 0xb7 // BPF_ALU64|BPF_MOV|BPF_K: dst = imm
	opJneK     = 0x55 // BPF_JMP|BPF_JNE|BPF_K:   if dst != imm goto +off
	opJeqK     = 0x15 // BPF_JMP|BPF_JEQ|BPF_K:   if dst == imm goto +off
	opExit     = 0x95 // BPF_JMP|BPF_EXIT
	devBlock   = 1    // BPF_DEVCG_DEV_BLOCK
	devChar    = 2    // BPF_DEVCG_DEV_CHAR
	accMknod   = 1    // BPF_DEVCG_ACC_MKNOD
	accRead    = 2    // BPF_DEVCG_ACC_READ
	accWrite   = 4    // BPF_DEVCG_ACC_WRITE
	accAll     = accMknod | accRead | accWrite
	regCtx     = 1
	regType    = 2
	regAccess  = 3
	regMajor   = 4
	regMinor   = 5
	regScratch = 1 // the context pointer is not needed once loaded
	regRet     = 0
)

func insn(code uint8, dst, src uint8, off int16, imm int32) bpfInsn {
	return bpfInsn{Code: code, Regs: dst | src<<4, Off: off, Imm: imm}
}

// deviceProgram compiles device rules (later rules take precedence, as
// in the v1 controller) into a program: rules are tested from the last to
// the first and the first match decides; no match denies.
func deviceProgram(rules []*devconfig.Rule) ([]bpfInsn, error) {
	prog := []bpfInsn{
		insn(opLdxW, regType, regCtx, 0, 0),
		insn(opAnd32K, regType, 0, 0, 0xffff),
		insn(opLdxW, regAccess, regCtx, 0, 0),
		insn(opRsh32K, regAccess, 0, 0, 16),
		insn(opLdxW, regMajor, regCtx, 4, 0),
		insn(opLdxW, regMinor, regCtx, 8, 0),
	}
	for i := len(rules) - 1; i >= 0; i-- {
		block, final, err := ruleBlock(rules[i])
		if err != nil {
			return nil, err
		}
		prog = append(prog, block...)
		if final {
			// Matches everything: earlier rules can never decide.
			return prog, nil
		}
	}
	return append(prog, insn(opMov64K, regRet, 0, 0, 0), insn(opExit, 0, 0, 0, 0)), nil
}

// ruleBlock is one rule's test: jumps past the block on a mismatch, else
// returns the rule's verdict. final reports a rule that matches any request.
func ruleBlock(r *devconfig.Rule) ([]bpfInsn, bool, error) {
	access, err := accessBits(string(r.Permissions))
	if err != nil {
		return nil, false, err
	}
	var tests [][]bpfInsn
	switch r.Type {
	case devconfig.WildcardDevice:
	case devconfig.BlockDevice:
		tests = append(tests, []bpfInsn{insn(opJneK, regType, 0, 0, devBlock)})
	case devconfig.CharDevice:
		tests = append(tests, []bpfInsn{insn(opJneK, regType, 0, 0, devChar)})
	default:
		return nil, false, fmt.Errorf("device rule: type %q cannot be filtered", r.Type)
	}
	if r.Major != devconfig.Wildcard {
		tests = append(tests, []bpfInsn{insn(opJneK, regMajor, 0, 0, int32(r.Major))})
	}
	if r.Minor != devconfig.Wildcard {
		tests = append(tests, []bpfInsn{insn(opJneK, regMinor, 0, 0, int32(r.Minor))})
	}
	if access != accAll {
		if r.Allow {
			// Allowed only if every requested access is granted.
			tests = append(tests, []bpfInsn{
				insn(opMov64X, regScratch, regAccess, 0, 0),
				insn(opAnd32K, regScratch, 0, 0, ^access&accAll),
				insn(opJneK, regScratch, 0, 0, 0),
			})
		} else {
			// Denied if any requested access is denied.
			tests = append(tests, []bpfInsn{
				insn(opMov64X, regScratch, regAccess, 0, 0),
				insn(opAnd32K, regScratch, 0, 0, access),
				insn(opJeqK, regScratch, 0, 0, 0),
			})
		}
	}
	verdict := int32(0)
	if r.Allow {
		verdict = 1
	}
	var block []bpfInsn
	for _, t := range tests {
		block = append(block, t...)
	}
	block = append(block, insn(opMov64K, regRet, 0, 0, verdict), insn(opExit, 0, 0, 0, 0))
	// Every jump skips to the end of the block.
	for i := range block {
		if block[i].Code == opJneK || block[i].Code == opJeqK {
			block[i].Off = int16(len(block) - i - 1)
		}
	}
	return block, len(tests) == 0, nil
}

func accessBits(perms string) (int32, error) {
	var bits int32
	for _, c := range perms {
		switch c {
		case 'm':
			bits |= accMknod
		case 'r':
			bits |= accRead
		case 'w':
			bits |= accWrite
		default:
			return 0, fmt.Errorf("device rule: unknown access %q", c)
		}
	}
	if bits == 0 {
		bits = accAll
	}
	return bits, nil
}
