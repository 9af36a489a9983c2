package testutil

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// WriteTree creates files under dir from tree (path -> content): a path
// ending in "/" is a directory, content "->target" a symlink, anything
// else a 0644 file; parents are made 0755.
func WriteTree(t testing.TB, dir string, tree map[string]string) {
	t.Helper()
	names := make([]string, 0, len(tree))
	for n := range tree {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := filepath.Join(dir, n)
		content := tree[n]
		err := os.MkdirAll(filepath.Dir(p), 0o755)
		switch {
		case err != nil:
		case strings.HasSuffix(n, "/"):
			err = os.MkdirAll(p, 0o755)
		case strings.HasPrefix(content, "->"):
			err = os.Symlink(strings.TrimPrefix(content, "->"), p)
		default:
			err = os.WriteFile(p, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatalf("write %s: %v", n, err)
		}
	}
}
