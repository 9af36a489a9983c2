package engine

import (
	"context"
	"time"

	"github.com/berth-containers/berth/engine/state"
)

// EventQuery selects events.
type EventQuery = state.EventQuery

// Events returns the recorded events the query selects, oldest first.
func (e *Engine) Events(ctx context.Context, q EventQuery) ([]state.Event, error) {
	db, err := e.db(ctx)
	if err != nil {
		return nil, err
	}
	return db.Events(ctx, q)
}

// FollowEvents calls fn for each event after the query's, as they are
// recorded, until ctx ends or until passes. It polls the store: events
// come from many processes, none of which can notify the others.
func (e *Engine) FollowEvents(ctx context.Context, q EventQuery, fn func(state.Event) error) error {
	for {
		evs, err := e.Events(ctx, q)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if err := fn(ev); err != nil {
				return err
			}
			q.AfterSeq = ev.Seq
		}
		if !q.Until.IsZero() && time.Now().After(q.Until) {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}
