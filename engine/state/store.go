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
package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"

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
	db, err := sql.Open("sqlite3", dsn(path))
	if err != nil {
		return nil, fmt.Errorf("open state database %s: %w", path, err)
	}
	s := &Store{db: db}
	if err := s.migrate(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open state database %s: %w", path, err)
	}
	return s, nil
}

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
