package state

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/mount"

	"github.com/berth-containers/berth/internal/errdefs"
)

// containerColumns are selected, in this order, by scanContainer's callers.
const containerColumns = `id, name, image, image_id, created, restart_count, log_path, config, host_config, mounts, state, net`

// CreateContainer stores a new container. It fills Created (now) and
// State.Status (created) when they are zero and drops a leading "/" from
// the name. A name or ID already taken is an errdefs.ErrAlreadyExists
// error in Docker's words.
func (s *Store) CreateContainer(ctx context.Context, c *Container) error {
	return s.Tx(ctx, func(tx *Tx) error { return tx.CreateContainer(ctx, c) })
}

// Container returns the container ref names, resolved as Docker does: the
// exact full ID, then the exact name (with or without its leading "/"),
// then a unique ID prefix. An ambiguous prefix is an
// errdefs.ErrInvalidArgument error; no match is errdefs.ErrNotFound.
func (s *Store) Container(ctx context.Context, ref string) (*Container, error) {
	return findContainer(ctx, s.db, ref)
}

// Containers lists every container, newest first.
func (s *Store) Containers(ctx context.Context) ([]*Container, error) {
	return listContainers(ctx, s.db)
}

// UpdateContainer reads the container with this exact ID, lets fn change
// it and writes it back, all in one transaction: no other writer comes in
// between, and fn's error leaves the record as it was. fn may rename the
// container (a taken name is an errdefs.ErrAlreadyExists error) but not
// change its ID. It returns the record as written.
func (s *Store) UpdateContainer(ctx context.Context, id string, fn func(*Container) error) (*Container, error) {
	var out *Container
	err := s.Tx(ctx, func(tx *Tx) error {
		var err error
		out, err = tx.UpdateContainer(ctx, id, fn)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteContainer removes the container with this exact ID.
func (s *Store) DeleteContainer(ctx context.Context, id string) error {
	return s.Tx(ctx, func(tx *Tx) error { return tx.DeleteContainer(ctx, id) })
}

// CreateContainer is Store.CreateContainer inside the transaction.
func (t *Tx) CreateContainer(ctx context.Context, c *Container) error {
	if c.Created.IsZero() {
		c.Created = time.Now().UTC()
	}
	if c.State.Status == "" {
		c.State.Status = StatusCreated
	}
	c.Name = strings.TrimPrefix(c.Name, "/")
	if err := validContainer(c); err != nil {
		return err
	}
	if err := t.checkFree(ctx, c.ID, c.Name); err != nil {
		return err
	}
	r, err := encodeContainer(c)
	if err != nil {
		return err
	}
	_, err = t.tx.ExecContext(ctx, `INSERT INTO containers (`+containerColumns+`, status)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.Name, c.Image, c.ImageID, r.created, c.RestartCount, c.LogPath,
		r.config, r.hostConfig, r.mounts, r.state, r.net, c.State.Status)
	if err != nil {
		return fmt.Errorf("store container %s: %w", c.ID, classify(err))
	}
	return t.linkVolumes(ctx, c)
}

// Container is Store.Container inside the transaction.
func (t *Tx) Container(ctx context.Context, ref string) (*Container, error) {
	return findContainer(ctx, t.tx, ref)
}

// Containers is Store.Containers inside the transaction.
func (t *Tx) Containers(ctx context.Context) ([]*Container, error) {
	return listContainers(ctx, t.tx)
}

// UpdateContainer is Store.UpdateContainer inside the transaction; fn's
// error is returned as is and the caller decides whether the whole
// transaction fails.
func (t *Tx) UpdateContainer(ctx context.Context, id string, fn func(*Container) error) (*Container, error) {
	c, err := containerByID(ctx, t.tx, id)
	if err != nil {
		return nil, err
	}
	before, err := encodeContainer(c)
	if err != nil {
		return nil, err
	}
	oldName := c.Name
	if err := fn(c); err != nil {
		return nil, err
	}
	c.Name = strings.TrimPrefix(c.Name, "/")
	if c.ID != id {
		return nil, errdefs.Invalid("container %s: the id cannot change", id)
	}
	if err := validContainer(c); err != nil {
		return nil, err
	}
	if c.Name != oldName {
		if err := t.checkFree(ctx, "", c.Name); err != nil {
			return nil, err
		}
	}
	r, err := encodeContainer(c)
	if err != nil {
		return nil, err
	}
	_, err = t.tx.ExecContext(ctx, `UPDATE containers SET name = ?, image = ?, image_id = ?,
		created = ?, status = ?, restart_count = ?, log_path = ?, config = ?, host_config = ?,
		mounts = ?, state = ?, net = ? WHERE id = ?`,
		c.Name, c.Image, c.ImageID, r.created, c.State.Status, c.RestartCount, c.LogPath,
		r.config, r.hostConfig, r.mounts, r.state, r.net, id)
	if err != nil {
		return nil, fmt.Errorf("update container %s: %w", id, classify(err))
	}
	if r.mounts != before.mounts {
		if _, err := t.tx.ExecContext(ctx, `DELETE FROM container_volumes WHERE container_id = ?`, id); err != nil {
			return nil, fmt.Errorf("update volumes of container %s: %w", id, err)
		}
		if err := t.linkVolumes(ctx, c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// DeleteContainer is Store.DeleteContainer inside the transaction.
func (t *Tx) DeleteContainer(ctx context.Context, id string) error {
	res, err := t.tx.ExecContext(ctx, `DELETE FROM containers WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete container %s: %w", id, classify(err))
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return errdefs.NotFound("no such container: %s", id)
	}
	return nil
}

// checkFree fails, in Docker's words, when the ID or the name is taken.
// Inside the write transaction nobody can take them before the insert.
func (t *Tx) checkFree(ctx context.Context, id, name string) error {
	rows, err := t.tx.QueryContext(ctx, `SELECT id, name FROM containers WHERE id = ? OR name = ?`, id, name)
	if err != nil {
		return fmt.Errorf("look up container %s: %w", name, err)
	}
	defer rows.Close()
	if rows.Next() {
		var oid, oname string
		if err := rows.Scan(&oid, &oname); err != nil {
			return fmt.Errorf("look up container %s: %w", name, err)
		}
		if oid == id {
			return errdefs.AlreadyExists("the container id %q is already in use", id)
		}
		return errdefs.AlreadyExists("the container name %q is already in use by container %q", "/"+name, oid)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("look up container %s: %w", name, err)
	}
	return nil
}

// linkVolumes records which volumes the container mounts, so a volume in
// use cannot be deleted. The volumes must exist.
func (t *Tx) linkVolumes(ctx context.Context, c *Container) error {
	for _, name := range volumeNames(c.Mounts) {
		_, err := t.tx.ExecContext(ctx, `INSERT INTO container_volumes (container_id, volume) VALUES (?, ?)`, c.ID, name)
		if err != nil {
			if errors.Is(classify(err), errdefs.ErrFailedPrecondition) {
				return errdefs.NotFound("container %s mounts volume %s: no such volume", c.ID, name)
			}
			return fmt.Errorf("record volume %s of container %s: %w", name, c.ID, err)
		}
	}
	return nil
}

// volumeNames lists, once each, the volumes the mounts use.
func volumeNames(ms []MountPoint) []string {
	var names []string
	for _, m := range ms {
		if m.Type == mount.TypeVolume && m.Name != "" && !slices.Contains(names, m.Name) {
			names = append(names, m.Name)
		}
	}
	return names
}

// validContainer checks what the store relies on: a hex ID (prefix
// lookups assume it), a name and a status.
func validContainer(c *Container) error {
	if !isHex(c.ID) || len(c.ID) != 64 {
		return errdefs.Invalid("invalid container id %q: want 64 lower-case hex digits", c.ID)
	}
	if c.Name == "" {
		return errdefs.Invalid("container %s has no name", c.ID)
	}
	if c.State.Status == "" {
		return errdefs.Invalid("container %s has no status", c.ID)
	}
	return nil
}

func isHex(s string) bool {
	for _, r := range s {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return s != ""
}

// findContainer resolves ref in one query, so the answer comes from one
// snapshot: rows matching the full ID sort first, then the name, then
// ID-prefix matches; two prefix matches and no better one is ambiguous.
func findContainer(ctx context.Context, q querier, ref string) (*Container, error) {
	if ref == "" {
		return nil, errdefs.Invalid("no container name or id given")
	}
	// ID prefixes are hex; anything else can only be a name, so the range
	// is left empty.
	lo, hi := "", ""
	if isHex(ref) {
		lo, hi = ref, ref+"g" // 'g' sorts after every hex digit
	}
	rows, err := q.QueryContext(ctx, `SELECT `+containerColumns+` FROM containers
		WHERE id = ?1 OR name = ?2 OR (id >= ?3 AND id < ?4)
		ORDER BY (id = ?1) DESC, (name = ?2) DESC LIMIT 2`,
		ref, strings.TrimPrefix(ref, "/"), lo, hi)
	if err != nil {
		return nil, fmt.Errorf("look up container %s: %w", ref, err)
	}
	found, err := scanContainers(rows)
	if err != nil {
		return nil, fmt.Errorf("look up container %s: %w", ref, err)
	}
	switch {
	case len(found) == 0:
		return nil, errdefs.NotFound("no such container: %s", ref)
	case found[0].ID == ref || found[0].Name == strings.TrimPrefix(ref, "/") || len(found) == 1:
		return found[0], nil
	}
	return nil, errdefs.Invalid("multiple IDs found with provided prefix: %s", ref)
}

// containerByID reads the container with exactly this ID.
func containerByID(ctx context.Context, q querier, id string) (*Container, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+containerColumns+` FROM containers WHERE id = ?`, id)
	if err != nil {
		return nil, fmt.Errorf("read container %s: %w", id, err)
	}
	found, err := scanContainers(rows)
	if err != nil {
		return nil, fmt.Errorf("read container %s: %w", id, err)
	}
	if len(found) == 0 {
		return nil, errdefs.NotFound("no such container: %s", id)
	}
	return found[0], nil
}

func listContainers(ctx context.Context, q querier) ([]*Container, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+containerColumns+` FROM containers ORDER BY created DESC, rowid DESC`)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	cs, err := scanContainers(rows)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	return cs, nil
}

// scanContainers decodes every row and closes rows.
func scanContainers(rows *sql.Rows) ([]*Container, error) {
	defer rows.Close()
	var out []*Container
	for rows.Next() {
		var c Container
		var r containerRow
		if err := rows.Scan(&c.ID, &c.Name, &c.Image, &c.ImageID, &r.created, &c.RestartCount,
			&c.LogPath, &r.config, &r.hostConfig, &r.mounts, &r.state, &r.net); err != nil {
			return nil, err
		}
		if err := r.decode(&c); err != nil {
			return nil, fmt.Errorf("container %s: %w", c.ID, err)
		}
		out = append(out, &c)
	}
	return out, rows.Err()
}

// containerRow holds the encoded columns of a container.
type containerRow struct {
	created                                string
	config, hostConfig, mounts, state, net string
}

func encodeContainer(c *Container) (containerRow, error) {
	var r containerRow
	r.created = formatTime(c.Created)
	for _, f := range []struct {
		dst *string
		v   any
	}{{&r.config, c.Config}, {&r.hostConfig, c.HostConfig}, {&r.mounts, c.Mounts}, {&r.state, c.State}, {&r.net, c.Net}} {
		b, err := json.Marshal(f.v)
		if err != nil {
			return r, fmt.Errorf("encode container %s: %w", c.ID, err)
		}
		*f.dst = string(b)
	}
	return r, nil
}

func (r containerRow) decode(c *Container) error {
	var err error
	if c.Created, err = parseTime(r.created); err != nil {
		return err
	}
	for _, f := range []struct {
		src string
		v   any
	}{{r.config, &c.Config}, {r.hostConfig, &c.HostConfig}, {r.mounts, &c.Mounts}, {r.state, &c.State}, {r.net, &c.Net}} {
		if err := json.Unmarshal([]byte(f.src), f.v); err != nil {
			return fmt.Errorf("decode stored record: %w", err)
		}
	}
	return nil
}

// timeLayout is fixed-width UTC, so stored times sort as text.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("decode stored time %q: %w", s, err)
	}
	return t, nil
}
