package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNormalizeArgsLongFlags(t *testing.T) {
	root := newRootCmd(nil)
	cases := []struct {
		name string
		in   []string
		want []string
	}{
		{
			name: "global and command flags in Go's single-dash form",
			in:   []string{"runtime", "-root", "/r", "-log", "/l", "-log-format", "json", "run", "-bundle", "/b", "-pid-file=/p", "c1"},
			want: []string{"runtime", "--root", "/r", "--log", "/l", "--log-format", "json", "run", "--bundle", "/b", "--pid-file=/p", "c1"},
		},
		{
			name: "double-dash forms stay",
			in:   []string{"runtime", "--root", "/r", "create", "--bundle=/b", "--console-socket", "/s", "c1"},
			want: []string{"runtime", "--root", "/r", "create", "--bundle=/b", "--console-socket", "/s", "c1"},
		},
		{
			name: "short flags and their values stay",
			in:   []string{"runtime", "run", "-d", "-b", "/b", "c1"},
			want: []string{"runtime", "run", "-d", "-b", "/b", "c1"},
		},
		{
			name: "unknown single-dash words stay",
			in:   []string{"runtime", "-nosuchflag", "state", "-xyz", "c1"},
			want: []string{"runtime", "-nosuchflag", "state", "-xyz", "c1"},
		},
		{
			name: "a lone dash (stdin) stays",
			in:   []string{"runtime", "update", "-r", "-", "c1"},
			want: []string{"runtime", "update", "-r", "-", "c1"},
		},
		{
			name: "negative numbers stay",
			in:   []string{"runtime", "update", "--cpu-quota", "-1", "--memory-swap", "-100000", "c1"},
			want: []string{"runtime", "update", "--cpu-quota", "-1", "--memory-swap", "-100000", "c1"},
		},
		{
			name: "flags of other commands count as long flags",
			in:   []string{"runtime", "kill", "-all", "c1", "KILL"},
			want: []string{"runtime", "kill", "--all", "c1", "KILL"},
		},
		{
			name: "everything after -- stays",
			in:   []string{"runtime", "exec", "-tty", "c1", "--", "prog", "-root", "-bundle=x", "-d"},
			want: []string{"runtime", "exec", "--tty", "c1", "--", "prog", "-root", "-bundle=x", "-d"},
		},
		{
			name: "a leading -- stops at once",
			in:   []string{"--", "-root"},
			want: []string{"--", "-root"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, normalizeArgs(root, c.in))
		})
	}
}

func TestNormalizeArgsKnowsEveryLongFlag(t *testing.T) {
	// The personality used through a berth-runc link has the same flags.
	root := newRuntimeCmd("berth-runc")
	got := normalizeArgs(root, []string{"-root", "/r", "-systemd-cgroup", "exec", "-process", "/p.json", "-preserve-fds", "2", "-cwd", "/", "c1"})
	assert.Equal(t, []string{"--root", "/r", "--systemd-cgroup", "exec", "--process", "/p.json", "--preserve-fds", "2", "--cwd", "/", "c1"}, got)
	// The input is not modified.
	in := []string{"-root", "/r"}
	_ = normalizeArgs(root, in)
	assert.Equal(t, []string{"-root", "/r"}, in)
}

// The program a container runs gets its arguments exactly as given, even
// when one of them is spelled like a berth flag: exec and ps stop parsing
// at the container id, so nothing after it is berth's.
func TestNormalizeArgsLeavesContainerCommand(t *testing.T) {
	root := newRootCmd(nil)
	cases := [][]string{
		{"runtime", "exec", "c1", "java", "-debug", "-root", "/x"},
		{"runtime", "exec", "--cwd", "/", "c1", "find", "/", "-format", "x"},
		{"runtime", "exec", "-t", "c1", "sh", "-c", "ls -all"},
		{"runtime", "ps", "c1", "-all"},
	}
	for _, in := range cases {
		got := normalizeArgs(root, in)
		// Up to the container id the flags may be rewritten; after it,
		// nothing.
		id := indexOf(in, "c1")
		require.GreaterOrEqual(t, id, 0)
		assert.Equal(t, in[id:], got[id:], "arguments after the container id of %q", in)
	}
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func TestParseBytes(t *testing.T) {
	good := map[string]int64{
		"0":          0,
		"512":        512,
		"64k":        64 << 10,
		"64K":        64 << 10,
		"64kb":       64 << 10,
		"64KB":       64 << 10,
		"128m":       128 << 20,
		"128M":       128 << 20,
		"128mb":      128 << 20,
		"1g":         1 << 30,
		"1G":         1 << 30,
		"2t":         2 << 40,
		"1.5g":       3 << 29,
		"0.5k":       512,
		"100b":       100,
		" 10m ":      10 << 20,
		"-1":         -1,
		"8589934592": 8 << 30,
	}
	for in, want := range good {
		got, err := parseBytes(in)
		if assert.NoError(t, err, "%q", in) {
			assert.Equal(t, want, got, "%q", in)
		}
	}
	bad := []string{"", " ", "b", "k", "m", "abc", "10x", "1 0m", "-2", "-1k", "-0.5", "1kk", "1mk", "0x10"}
	for _, in := range bad {
		got, err := parseBytes(in)
		assert.Error(t, err, "%q parsed as %d", in, got)
	}
	// Sizes that do not fit in an int64 (or are no numbers at all) must be
	// refused, not wrap around into a negative or arbitrary limit.
	for _, in := range []string{"inf", "+Inf", "nan", "1e30", "9999999999999t", "9223372036854775808"} {
		got, err := parseBytes(in)
		assert.Error(t, err, "%q parsed as %d", in, got)
	}
}
