package state

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/berth-containers/berth/internal/errdefs"
)

// CreateVolume stores a new volume, filling Created when it is zero. Like
// Docker's volume create it is idempotent: when the name exists it returns
// the stored volume and created=false, and stores nothing.
func (s *Store) CreateVolume(ctx context.Context, v *Volume) (_ *Volume, created bool, _ error) {
	var out *Volume
	err := s.Tx(ctx, func(tx *Tx) error {
		var err error
		out, created, err = tx.CreateVolume(ctx, v)
		return err
	})
	if err != nil {
		return nil, false, err
	}
	return out, created, nil
}

// Volume returns the named volume.
func (s *Store) Volume(ctx context.Context, name string) (*Volume, error) {
	return volumeByName(ctx, s.db, name)
}

// Volumes lists every volume by name.
func (s *Store) Volumes(ctx context.Context) ([]*Volume, error) {
	return listVolumes(ctx, s.db)
}

// DeleteVolume removes the named volume's record. A volume that a
// container mounts is an errdefs.ErrFailedPrecondition error naming them.
func (s *Store) DeleteVolume(ctx context.Context, name string) error {
	return s.Tx(ctx, func(tx *Tx) error { return tx.DeleteVolume(ctx, name) })
}

// CreateVolume is Store.CreateVolume inside the transaction.
func (t *Tx) CreateVolume(ctx context.Context, v *Volume) (*Volume, bool, error) {
	if v.Name == "" {
		return nil, false, errdefs.Invalid("a volume needs a name")
	}
	old, err := volumeByName(ctx, t.tx, v.Name)
	if err == nil {
		return old, false, nil
	}
	if !errors.Is(err, errdefs.ErrNotFound) {
		return nil, false, err
	}
	if v.Created.IsZero() {
		v.Created = time.Now().UTC()
	}
	data, err := json.Marshal(v)
	if err != nil {
		return nil, false, fmt.Errorf("encode volume %s: %w", v.Name, err)
	}
	_, err = t.tx.ExecContext(ctx, `INSERT INTO volumes (name, created, data) VALUES (?, ?, ?)`,
		v.Name, formatTime(v.Created), string(data))
	if err != nil {
		return nil, false, fmt.Errorf("store volume %s: %w", v.Name, classify(err))
	}
	return v, true, nil
}

// Volume is Store.Volume inside the transaction.
func (t *Tx) Volume(ctx context.Context, name string) (*Volume, error) {
	return volumeByName(ctx, t.tx, name)
}

// Volumes is Store.Volumes inside the transaction.
func (t *Tx) Volumes(ctx context.Context) ([]*Volume, error) {
	return listVolumes(ctx, t.tx)
}

// DeleteVolume is Store.DeleteVolume inside the transaction.
func (t *Tx) DeleteVolume(ctx context.Context, name string) error {
	users, err := t.volumeUsers(ctx, name)
	if err != nil {
		return err
	}
	if len(users) > 0 {
		return errdefs.Precondition("remove %s: volume is in use - [%s]", name, strings.Join(users, ", "))
	}
	res, err := t.tx.ExecContext(ctx, `DELETE FROM volumes WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("delete volume %s: %w", name, classify(err))
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return errdefs.NotFound("no such volume: %s", name)
	}
	return nil
}

// volumeUsers lists the IDs of the containers that mount the volume.
func (t *Tx) volumeUsers(ctx context.Context, name string) ([]string, error) {
	rows, err := t.tx.QueryContext(ctx, `SELECT container_id FROM container_volumes WHERE volume = ? ORDER BY container_id`, name)
	if err != nil {
		return nil, fmt.Errorf("find users of volume %s: %w", name, err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("find users of volume %s: %w", name, err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

func volumeByName(ctx context.Context, q querier, name string) (*Volume, error) {
	var data string
	err := q.QueryRowContext(ctx, `SELECT data FROM volumes WHERE name = ?`, name).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errdefs.NotFound("no such volume: %s", name)
	}
	if err != nil {
		return nil, fmt.Errorf("read volume %s: %w", name, err)
	}
	return decodeVolume(data)
}

func listVolumes(ctx context.Context, q querier) ([]*Volume, error) {
	rows, err := q.QueryContext(ctx, `SELECT data FROM volumes ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	defer rows.Close()
	var out []*Volume
	for rows.Next() {
		var data string
		if err := rows.Scan(&data); err != nil {
			return nil, fmt.Errorf("list volumes: %w", err)
		}
		v, err := decodeVolume(data)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	return out, nil
}

func decodeVolume(data string) (*Volume, error) {
	var v Volume
	if err := json.Unmarshal([]byte(data), &v); err != nil {
		return nil, fmt.Errorf("decode stored volume: %w", err)
	}
	return &v, nil
}
