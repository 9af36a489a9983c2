package seccomp

import (
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/require"
)

func cacheConfig(errno uint) *specs.LinuxSeccomp {
	return &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{{
			Names: []string{"mkdirat", "mkdir"}, Action: specs.ActErrno, ErrnoRet: &errno,
		}},
	}
}

func cacheEntries(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestCompileCachedStoresAndReuses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	cfg := cacheConfig(1)
	first, cacheErr, err := CompileCached(cfg, dir)
	require.NoError(t, err)
	require.NoError(t, cacheErr)
	names := cacheEntries(t, dir)
	require.Len(t, names, 1, "one entry, no temporary file left")
	path := filepath.Join(dir, names[0])
	stored, err := os.ReadFile(path)
	require.NoError(t, err)
	want, err := first.MarshalBinary()
	require.NoError(t, err)
	require.Equal(t, want, stored)

	// Plant another program under the same key: a second call must return
	// it, which shows the entry is read rather than compiled again.
	other, err := Compile(cacheConfig(2))
	require.NoError(t, err)
	planted, err := other.MarshalBinary()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, planted, 0o600))
	second, cacheErr, err := CompileCached(cfg, dir)
	require.NoError(t, err)
	require.NoError(t, cacheErr)
	require.Equal(t, other.prog, second.prog)

	// Another config gets its own entry.
	_, _, err = CompileCached(cacheConfig(3), dir)
	require.NoError(t, err)
	require.Len(t, cacheEntries(t, dir), 2)
}

func TestCompileCachedRepairsCorruptEntry(t *testing.T) {
	dir := t.TempDir()
	cfg := cacheConfig(1)
	want, _, err := CompileCached(cfg, dir)
	require.NoError(t, err)
	path := filepath.Join(dir, cacheEntries(t, dir)[0])
	for _, junk := range [][]byte{nil, []byte("garbage"), []byte(cacheMagic + "\x00\x00\x00\x00\x00abc")} {
		require.NoError(t, os.WriteFile(path, junk, 0o600))
		got, cacheErr, err := CompileCached(cfg, dir)
		require.NoError(t, err)
		require.NoError(t, cacheErr)
		require.Equal(t, want.prog, got.prog)
		fixed, err := os.ReadFile(path)
		require.NoError(t, err)
		require.Equal(t, want.encode(), fixed, "the entry is rewritten")
	}
}

func TestCompileCachedBadConfigWritesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	_, _, err := CompileCached(&specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_BOGUS"}, dir)
	require.ErrorContains(t, err, "SCMP_ACT_BOGUS")
	require.Empty(t, cacheEntries(t, dir))
}

func TestCompileCachedUnwritableCacheStillCompiles(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	f, cacheErr, err := CompileCached(cacheConfig(1), file)
	require.NoError(t, err)
	require.Error(t, cacheErr)
	require.NotZero(t, f.Instructions())
}

func TestFilterEncodingRoundTrip(t *testing.T) {
	errno := uint(1)
	cfg := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Flags:         []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagSpecAllow},
		ListenerPath:  "/run/agent.sock",
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdirat"}, Action: specs.ActErrno, ErrnoRet: &errno},
			{Names: []string{"getppid"}, Action: specs.ActNotify},
		},
	}
	f, err := Compile(cfg)
	require.NoError(t, err)
	raw, err := f.MarshalBinary()
	require.NoError(t, err)
	g, err := UnmarshalFilter(raw)
	require.NoError(t, err)
	require.Equal(t, f.prog, g.prog)
	require.Equal(t, f.flags, g.flags)
	require.True(t, g.notify)

	_, err = UnmarshalFilter([]byte("nope"))
	require.Error(t, err)
	f.Release()
	_, err = f.MarshalBinary()
	require.Error(t, err)
}
