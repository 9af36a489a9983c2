package cinit

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The Go and C lists of operations must agree, or a plan means one thing
// to its writer and another to its reader.
func TestOpsMatchHeader(t *testing.T) {
	if !Available {
		t.Skip("the C init is not linked in without cgo")
	}
	got := cOps()
	require.Len(t, got, int(opCount)+1)
	for i, op := range got {
		assert.Equal(t, Op(i), op, "operation %d", i)
	}
	assert.Equal(t, []int{TargetDir, TargetFile, ProcNone, ProcAny, LinkExistOK, LinkReplace}, cConsts())
}

func TestPlanEncoding(t *testing.T) {
	p := NewPlan()
	p.Add(OpTarget, "/dev", TargetDir, uint64(7), "tmpfs")
	p.Add(OpUser, uint64(1), uint64(2), []uint64{10, 11})
	p.Add(OpExec, []string{"sh", "-c"}, []string{})
	b := p.Bytes()
	require.Equal(t, magic, string(b[:len(magic)]))
	b = b[len(magic):]
	u32 := func() uint32 { v := binary.NativeEndian.Uint32(b); b = b[4:]; return v }
	u64 := func() uint64 { v := binary.NativeEndian.Uint64(b); b = b[8:]; return v }
	str := func() string {
		n := u32()
		s := string(b[:n])
		require.Equal(t, byte(0), b[n], "NUL after %q", s)
		b = b[n+1:]
		return s
	}
	assert.Equal(t, uint32(OpTarget), u32())
	assert.Equal(t, "/dev", str())
	assert.Equal(t, uint64(TargetDir), u64())
	assert.Equal(t, uint64(7), u64())
	assert.Equal(t, "tmpfs", str())
	assert.Equal(t, uint32(OpUser), u32())
	assert.Equal(t, []uint64{1, 2, 2, 10, 11}, []uint64{u64(), u64(), u64(), u64(), u64()})
	assert.Equal(t, uint32(OpExec), u32())
	assert.Equal(t, uint64(2), u64())
	assert.Equal(t, []string{"sh", "-c"}, []string{str(), str()})
	assert.Equal(t, uint64(0), u64())
	assert.Empty(t, b)
}
