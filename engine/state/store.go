// Package state is the engine's record of containers, volumes and events:
// one SQLite database that every berth process on a host opens at once
// (the CLI has no daemon) and that survives the process being killed at
// any moment.
//
// The database runs in WAL mode so readers never wait for the writer, with
// synchronous=NORMAL (a crashed process loses nothing committed; only a
// power cut may lose the last transactions, never consistency). Every
// write is one BEGIN IMMEDIATE transaction: it takes the write lock first,
// so concurrent writers queue on the busy timeout instead of failing when
// a read transaction tries to upgrade.
//
// The WAL is checkpointed every walCheckpointFrames pages rather than
// SQLite's 1000: see there.
package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"

	"github.com/berth-containers/berth/internal/errdefs"
)

// busyTimeoutMS is how long a writer waits for another process's
// transaction before giving up.
const busyTimeoutMS = 10000

// Store is an open state database. It is safe for concurrent use by many
// goroutines, and many processes may hold the same file open.
type Store struct {
	db *sql.DB
}

// Open opens the database at path, creating the file (mode 0600) and its
// schema if needed. The directory must exist. Opening an up-to-date
// database only reads its schema version, so every command can afford it.
func Open(ctx context.Context, path string) (*Store, error) {
	if strings.ContainsAny(path, "?#") || path == "" {
		return nil, errdefs.Invalid("state database path %q: must be a plain file name without ? or #", path)
	}
	// SQLite would create the file with mode 0644; create it first so the
	// database and its -wal and -shm files (which copy its mode) are 0600.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open state database: %w", err)
	}
	_ = f.Close()
	db, err := sql.Open(driverName(), dsn(path))
	if err != nil {
		return nil, fmt.Errorf("open state database %s: %w", path, err)
	}
	s := &Store{db: db}
	if err := s.migrateRetrying(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open state database %s: %w", path, err)
	}
	return s, nil
}

// migrateRetrying runs migrate, again while it meets a lock. When many
// processes open a database that none has created yet, SQLite can answer
// the first read of one of them with SQLITE_BUSY without waiting in its
// busy handler (seen once in 20 concurrent first opens on a loaded
// machine); migrate is safe to repeat.
func (s *Store) migrateRetrying(ctx context.Context) error {
	deadline := time.Now().Add(busyTimeoutMS * time.Millisecond)
	for {
		err := s.migrate(ctx)
		var se sqlite3.Error
		if err == nil || !errors.As(err, &se) || (se.Code != sqlite3.ErrBusy && se.Code != sqlite3.ErrLocked) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// walCheckpointFrames is the WAL length, in pages, past which a commit
// copies the WAL back into the database. Every berth command is a new
// process, and the first connection of a process that finds no other
// connection open rebuilds the WAL index by reading and checksumming the
// whole WAL, one read call per page: with SQLite's default of 1000 pages
// that cost up to 8 ms on each command, and 4 ms on average, more than
// the checkpoints a short WAL costs the commits (a copy of at most these
// pages and two fsyncs). Alternating run --rm on two stores after the
// same 60 runs, medians of 40: 100.0 ms with 1000 pages, 91.5 with 64.
const walCheckpointFrames = 64

// driverName registers, once, the SQLite driver that sets what the
// connection string cannot, and returns its name.
var driverName = sync.OnceValue(func() string {
	const name = "berth-sqlite3"
	sql.Register(name, &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		if _, err := c.Exec(fmt.Sprintf("PRAGMA wal_autocheckpoint = %d", walCheckpointFrames), nil); err != nil {
			return fmt.Errorf("set wal_autocheckpoint: %w", err)
		}
		return nil
	}})
	return name
})

// dsn is the connection string: every connection gets the same pragmas.
func dsn(path string) string {
	return fmt.Sprintf("%s?_journal_mode=WAL&_synchronous=NORMAL&_busy_timeout=%d&_txlock=immediate&_foreign_keys=on",
		path, busyTimeoutMS)
}

// Close closes the database.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close state database: %w", err)
	}
	return nil
}

// Tx runs fn in one write transaction: everything fn writes is committed
// together when it returns nil, and nothing is when it returns an error
// (which Tx returns) or the process dies. fn must use only the *Tx: a
// Store method called inside would wait for this transaction's lock.
func (s *Store) Tx(ctx context.Context, fn func(*Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin state transaction: %w", classify(err))
	}
	// Rolling back after a commit is a no-op; this also covers a panic in fn.
	defer func() { _ = tx.Rollback() }()
	if err := fn(&Tx{tx: tx}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit state transaction: %w", classify(err))
	}
	return nil
}

// Tx is a write transaction, given to the function Store.Tx runs.
type Tx struct {
	tx *sql.Tx
}

// querier is what reads need: the database or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// classify turns SQLite's errors into the classes callers test for; the
// specific messages (which name is taken) are made where the context is
// known, this is the backstop.
func classify(err error) error {
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.ExtendedCode {
	case sqlite3.ErrConstraintUnique, sqlite3.ErrConstraintPrimaryKey:
		return errdefs.New(errdefs.ErrAlreadyExists, "%w", err)
	case sqlite3.ErrConstraintForeignKey:
		return errdefs.New(errdefs.ErrFailedPrecondition, "%w", err)
	}
	return err
}
