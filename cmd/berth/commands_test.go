package main

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTopLevelNames checks the table against the commands themselves:
// each entry's names are its command's name and aliases, so a run finds
// the one command it needs under every name it can be called by.
func TestTopLevelNames(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range topLevel() {
		cmd := c.build()
		require.Equal(t, append([]string{cmd.Name()}, cmd.Aliases...), c.names)
		for _, n := range c.names {
			require.False(t, seen[n], "two entries for %q", n)
			seen[n] = true
		}
	}
}

func TestRootBuildsOnlyTheCommandRun(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string // nil: every command
	}{
		{[]string{"run", "--rm", "img"}, []string{"run"}},
		{[]string{"--root", "/x", "ps", "-a"}, []string{"ps"}},
		{[]string{"--root=/x", "--insecure-registry", "h:5000", "pull", "h:5000/a"}, []string{"pull"}},
		{[]string{"remove", "c1"}, []string{"rm"}},
		{[]string{"runtime", "--root", "/r", "run", "id"}, []string{"runtime"}},
		{[]string{"--help"}, nil},
		{[]string{"help", "run"}, nil},
		{[]string{"nosuch"}, nil},
		{nil, nil},
	} {
		root := newRootCmd(tc.args)
		var got []string
		for _, c := range root.Commands() {
			if c.Name() != "help" && c.Name() != "completion" {
				got = append(got, c.Name())
			}
		}
		if tc.want == nil {
			require.Len(t, got, len(topLevel()), "args %q", tc.args)
			continue
		}
		slices.Sort(got)
		require.Equal(t, tc.want, got, "args %q", tc.args)
	}
}
