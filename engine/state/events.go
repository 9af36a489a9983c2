package state

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// AddEvent records an event, giving it the next Seq and the current time
// when those are zero. The oldest events beyond MaxEvents go in the same
// transaction.
func (s *Store) AddEvent(ctx context.Context, e Event) error {
	return s.Tx(ctx, func(tx *Tx) error { return tx.AddEvent(ctx, e) })
}

// Events returns the events q selects, oldest first.
func (s *Store) Events(ctx context.Context, q EventQuery) ([]Event, error) {
	return queryEvents(ctx, s.db, q)
}

// AddEvent is Store.AddEvent inside the transaction.
func (t *Tx) AddEvent(ctx context.Context, e Event) error {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	attrs, err := json.Marshal(e.Attributes)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	var seq any // NULL lets SQLite assign the next one
	if e.Seq != 0 {
		seq = e.Seq
	}
	res, err := t.tx.ExecContext(ctx, `INSERT INTO events (seq, time, type, action, actor_id, attributes)
		VALUES (?, ?, ?, ?, ?, ?)`, seq, formatTime(e.Time), e.Type, e.Action, e.ActorID, string(attrs))
	if err != nil {
		return fmt.Errorf("record %s %s event: %w", e.Type, e.Action, classify(err))
	}
	last, err := res.LastInsertId()
	if err != nil {
		return fmt.Errorf("record %s %s event: %w", e.Type, e.Action, err)
	}
	// Seq only grows, so keeping the newest MaxEvents is one range delete
	// on the primary key, usually of a single row.
	if last > MaxEvents {
		if _, err := t.tx.ExecContext(ctx, `DELETE FROM events WHERE seq <= ?`, last-MaxEvents); err != nil {
			return fmt.Errorf("prune events: %w", err)
		}
	}
	return nil
}

// Events is Store.Events inside the transaction.
func (t *Tx) Events(ctx context.Context, q EventQuery) ([]Event, error) {
	return queryEvents(ctx, t.tx, q)
}

func queryEvents(ctx context.Context, db querier, q EventQuery) ([]Event, error) {
	query, args := eventQuery(q)
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var when, attrs string
		if err := rows.Scan(&e.Seq, &when, &e.Type, &e.Action, &e.ActorID, &attrs); err != nil {
			return nil, fmt.Errorf("read events: %w", err)
		}
		if e.Time, err = parseTime(when); err != nil {
			return nil, fmt.Errorf("read event %d: %w", e.Seq, err)
		}
		if err := json.Unmarshal([]byte(attrs), &e.Attributes); err != nil {
			return nil, fmt.Errorf("read event %d: %w", e.Seq, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return out, nil
}

// eventQuery builds the SELECT for q.
func eventQuery(q EventQuery) (string, []any) {
	var where []string
	var args []any
	if q.AfterSeq > 0 {
		where, args = append(where, "seq > ?"), append(args, q.AfterSeq)
	}
	if !q.Since.IsZero() {
		where, args = append(where, "time >= ?"), append(args, formatTime(q.Since))
	}
	if !q.Until.IsZero() {
		where, args = append(where, "time <= ?"), append(args, formatTime(q.Until))
	}
	query := "SELECT seq, time, type, action, actor_id, attributes FROM events"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY seq"
	if q.Limit > 0 {
		query, args = query+" LIMIT ?", append(args, q.Limit)
	}
	return query, args
}
