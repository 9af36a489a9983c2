package cgroups

import (
	"testing"

	devconfig "github.com/opencontainers/cgroups/devices/config"
)

// run interprets the handful of opcodes deviceProgram emits, so the
// program's decisions can be checked without loading it.
func run(t *testing.T, prog []bpfInsn, devType, access uint32, major, minor uint32) bool {
	t.Helper()
	ctx := []uint32{devType | access<<16, major, minor}
	var reg [11]uint64
	for pc, steps := 0, 0; pc < len(prog); pc, steps = pc+1, steps+1 {
		if steps > 1000 {
			t.Fatal("program does not end")
		}
		in := prog[pc]
		dst, src := in.Regs&0xf, in.Regs>>4
		switch in.Code {
		case opLdxW:
			reg[dst] = uint64(ctx[in.Off/4])
		case opAnd32K:
			reg[dst] = uint64(uint32(reg[dst]) & uint32(in.Imm))
		case opRsh32K:
			reg[dst] = uint64(uint32(reg[dst]) >> uint32(in.Imm))
		case opMov64X:
			reg[dst] = reg[src]
		case opMov64K:
			reg[dst] = uint64(int64(in.Imm))
		case opJneK:
			if reg[dst] != uint64(int64(in.Imm)) {
				pc += int(in.Off)
			}
		case opJeqK:
			if reg[dst] == uint64(int64(in.Imm)) {
				pc += int(in.Off)
			}
		case opExit:
			return reg[0] == 1
		default:
			t.Fatalf("unexpected opcode %#x at %d", in.Code, pc)
		}
	}
	t.Fatal("program runs off its end")
	return false
}

func rule(allow bool, typ devconfig.Type, major, minor int64, perms string) *devconfig.Rule {
	return &devconfig.Rule{Type: typ, Major: major, Minor: minor, Permissions: devconfig.Permissions(perms), Allow: allow}
}

func TestDeviceProgramDecisions(t *testing.T) {
	const w = devconfig.Wildcard
	rules := []*devconfig.Rule{
		rule(false, devconfig.WildcardDevice, w, w, "rwm"), // deny all
		rule(true, devconfig.CharDevice, w, w, "m"),        // mknod any char device
		rule(true, devconfig.CharDevice, 1, 3, "rwm"),      // /dev/null
		rule(true, devconfig.BlockDevice, 8, 0, "r"),       // read-only disk
		rule(true, devconfig.CharDevice, 10, 200, "rwm"),   // tun ...
		rule(false, devconfig.CharDevice, 10, 200, "w"),    // ... but not for writing
	}
	prog, err := deviceProgram(rules)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name                 string
		typ, acc, maj, minor uint32
		want                 bool
	}{
		{"null read+write", devChar, accRead | accWrite, 1, 3, true},
		{"zero not listed", devChar, accRead, 1, 5, false},
		{"mknod any char", devChar, accMknod, 4, 64, true},
		{"mknod block", devBlock, accMknod, 8, 0, false},
		{"disk read", devBlock, accRead, 8, 0, true},
		{"disk write", devBlock, accWrite, 8, 0, false},
		{"disk read+write", devBlock, accRead | accWrite, 8, 0, false},
		{"tun read", devChar, accRead, 10, 200, true},
		{"tun write denied by the later rule", devChar, accWrite, 10, 200, false},
		{"tun read+write", devChar, accRead | accWrite, 10, 200, false},
		{"block with char numbers", devBlock, accRead, 1, 3, false},
	}
	for _, c := range cases {
		if got := run(t, prog, c.typ, c.acc, c.maj, c.minor); got != c.want {
			t.Errorf("%s: allowed=%v, want %v", c.name, got, c.want)
		}
	}
}

func TestDeviceProgramAllowAllEndsEarly(t *testing.T) {
	const w = devconfig.Wildcard
	prog, err := deviceProgram([]*devconfig.Rule{
		rule(false, devconfig.CharDevice, 1, 3, "rwm"),
		rule(true, devconfig.WildcardDevice, w, w, "rwm"),
	})
	if err != nil {
		t.Fatal(err)
	}
	// Prologue (6) and the unconditional allow (2): the deny before it can
	// never decide.
	if len(prog) != 8 {
		t.Fatalf("program has %d instructions, want 8", len(prog))
	}
	if !run(t, prog, devChar, accRead, 1, 3) {
		t.Error("allow-all as the last rule must allow /dev/null")
	}
}

func TestDeviceProgramEmptyDenies(t *testing.T) {
	prog, err := deviceProgram(nil)
	if err != nil {
		t.Fatal(err)
	}
	if run(t, prog, devChar, accRead, 1, 3) {
		t.Error("no rules must deny")
	}
}

func TestDeviceProgramBadRule(t *testing.T) {
	if _, err := deviceProgram([]*devconfig.Rule{rule(true, devconfig.CharDevice, 1, 3, "x")}); err == nil {
		t.Error("unknown access letter accepted")
	}
	if _, err := deviceProgram([]*devconfig.Rule{rule(true, devconfig.FifoDevice, 1, 3, "r")}); err == nil {
		t.Error("fifo rule accepted")
	}
}
