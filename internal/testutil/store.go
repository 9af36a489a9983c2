package testutil

import (
	"os"
	"testing"
)

// Store is a private berth store driven through the built binary, as a
// user would: `berth --root ROOT ...` with HOME in a temporary directory.
type Store struct {
	T    *testing.T
	Bin  string
	Root string
	Env  []string
}

// NewStore makes a store in a temporary directory; it needs root and
// the built binary.
func NewStore(t *testing.T) *Store {
	t.Helper()
	RequiresRoot(t)
	return &Store{T: t, Bin: BerthBinary(t), Root: t.TempDir(), Env: append(os.Environ(), "HOME="+t.TempDir())}
}

// Run runs `berth --root ROOT args...` and returns stdout, stderr and
// the exit code.
func (s *Store) Run(stdin []byte, args ...string) (string, string, int) {
	s.T.Helper()
	return RunCommand(s.T, s.Env, stdin, s.Bin, append([]string{"--root", s.Root}, args...)...)
}

// Must runs a command that has to succeed and returns its stdout.
func (s *Store) Must(args ...string) string {
	s.T.Helper()
	out, errOut, code := s.Run(nil, args...)
	if code != 0 {
		s.T.Fatalf("berth %v: exit %d: %s", args, code, errOut)
	}
	return out
}
