package state

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestWALStaysShort: every connection checkpoints at walCheckpointFrames,
// so the WAL a later process must read back stays that short.
func TestWALStaysShort(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "state.db"))
	require.NoError(t, err)
	defer s.Close()
	var frames int
	require.NoError(t, s.db.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&frames))
	require.Equal(t, walCheckpointFrames, frames)

	_, err = s.db.ExecContext(ctx, "CREATE TABLE scratch (n INTEGER)")
	require.NoError(t, err)
	for i := range 300 {
		require.NoError(t, s.Tx(ctx, func(tx *Tx) error {
			_, err := tx.tx.ExecContext(ctx, "INSERT INTO scratch VALUES (?)", i)
			return err
		}))
	}
	var busy, logFrames, checkpointed int
	require.NoError(t, s.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logFrames, &checkpointed))
	// 300 commits write some 300 pages: a short WAL holds far fewer.
	require.Less(t, logFrames, 150, "WAL frames after 300 commits")
}
