package flock

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestExclusiveBlocksUntilUnlock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l")
	ctx := context.Background()
	a, err := Exclusive(ctx, path)
	require.NoError(t, err)

	_, ok, err := TryExclusive(path)
	require.NoError(t, err)
	require.False(t, ok, "second exclusive lock must not be granted")

	short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	_, err = Shared(short, path)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	require.NoError(t, a.Unlock())
	b, ok, err := TryExclusive(path)
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, b.Unlock())
}

func TestSharedLocksCoexist(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l")
	ctx := context.Background()
	a, err := Shared(ctx, path)
	require.NoError(t, err)
	b, err := Shared(ctx, path)
	require.NoError(t, err)
	_, ok, err := TryExclusive(path)
	require.NoError(t, err)
	require.False(t, ok)
	require.NoError(t, a.Unlock())
	require.NoError(t, b.Unlock())
	require.NoError(t, (*Lock)(nil).Unlock())
}
