package testutil

import (
	"bytes"
	"strings"
	"sync"
)

// SyncBuffer collects a process's output while a test reads it: a
// bytes.Buffer the output goroutines and the test may use at once. It
// keeps the last half MiB once it passes a MiB, so a long test does not
// grow it without end.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 1<<20 {
		rest := b.buf.Bytes()[b.buf.Len()-(1<<19):]
		b.buf = *bytes.NewBuffer(append([]byte(nil), rest...))
	}
	return b.buf.Write(p)
}

// String returns what the buffer holds.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Clone(b.buf.String())
}
