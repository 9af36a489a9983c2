package state

import (
	"context"
	"fmt"

	"github.com/berth-containers/berth/internal/errdefs"
)

// migrations[i] takes the schema from version i to version i+1; the
// database's PRAGMA user_version records how many have run. A new version
// appends a step here and never edits an old one, since databases in the
// field already ran it.
//
// Times are stored as fixed-width UTC text (timeLayout) so they sort and
// compare as strings and stay readable in the sqlite3 shell. Structured
// parts are JSON; columns exist for what queries filter or sort on.
var migrations = []string{
	// 1: containers, volumes, which volumes each container uses, events.
	`
CREATE TABLE containers (
	id            TEXT PRIMARY KEY NOT NULL,
	name          TEXT NOT NULL UNIQUE,
	image         TEXT NOT NULL,
	image_id      TEXT NOT NULL,
	created       TEXT NOT NULL,
	status        TEXT NOT NULL,
	restart_count INTEGER NOT NULL DEFAULT 0,
	log_path      TEXT NOT NULL DEFAULT '',
	config        TEXT NOT NULL, -- JSON container.Config
	host_config   TEXT NOT NULL, -- JSON container.HostConfig
	mounts        TEXT NOT NULL, -- JSON []MountPoint
	state         TEXT NOT NULL  -- JSON State
);
CREATE INDEX containers_created ON containers(created);

CREATE TABLE volumes (
	name    TEXT PRIMARY KEY NOT NULL,
	created TEXT NOT NULL,
	data    TEXT NOT NULL -- JSON Volume
);

-- A volume in use cannot be deleted; the rows go with their container.
CREATE TABLE container_volumes (
	container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
	volume       TEXT NOT NULL REFERENCES volumes(name),
	PRIMARY KEY (container_id, volume)
) WITHOUT ROWID;
CREATE INDEX container_volumes_volume ON container_volumes(volume);

CREATE TABLE events (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	time       TEXT NOT NULL,
	type       TEXT NOT NULL,
	action     TEXT NOT NULL,
	actor_id   TEXT NOT NULL,
	attributes TEXT NOT NULL -- JSON map[string]string
);
CREATE INDEX events_time ON events(time);
`,
	// 2: networks, the endpoints that join containers to them (with the
	// addresses handed out, unique per network), published ports, and
	// each container's own network settings (firewall rules, routes).
	`
ALTER TABLE containers ADD COLUMN net TEXT NOT NULL DEFAULT '{}'; -- JSON NetConfig

CREATE TABLE networks (
	id      TEXT PRIMARY KEY NOT NULL,
	name    TEXT NOT NULL UNIQUE,
	created TEXT NOT NULL,
	data    TEXT NOT NULL -- JSON Network
);

-- A row exists from create or connect on; ip4/ip6 are set while the
-- container runs, so two running containers never share an address.
CREATE TABLE endpoints (
	seq          INTEGER PRIMARY KEY AUTOINCREMENT,
	container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
	network_id   TEXT NOT NULL REFERENCES networks(id),
	ip4          TEXT NOT NULL DEFAULT '',
	ip6          TEXT NOT NULL DEFAULT '',
	data         TEXT NOT NULL, -- JSON Endpoint
	UNIQUE (container_id, network_id)
);
CREATE INDEX endpoints_network ON endpoints(network_id);
CREATE UNIQUE INDEX endpoints_ip4 ON endpoints(network_id, ip4) WHERE ip4 != '';
CREATE UNIQUE INDEX endpoints_ip6 ON endpoints(network_id, ip6) WHERE ip6 != '';

-- Host ports held by running containers.
CREATE TABLE ports (
	container_id   TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
	proto          TEXT NOT NULL,
	host_ip        TEXT NOT NULL,
	host_port      INTEGER NOT NULL,
	container_ip   TEXT NOT NULL,
	container_port INTEGER NOT NULL,
	PRIMARY KEY (proto, host_port, host_ip)
);
CREATE INDEX ports_container ON ports(container_id);
`,
}

// schemaVersion is the schema version this code writes.
func schemaVersion() int { return len(migrations) }

// migrate brings the schema up to schemaVersion. The version is read
// without a transaction first, so an up-to-date database costs one pragma;
// it is read again under the write lock, since another process may have
// migrated in between.
func (s *Store) migrate(ctx context.Context) error {
	v, err := userVersion(ctx, s.db)
	if err != nil {
		return err
	}
	if v == schemaVersion() {
		return nil
	}
	if v > schemaVersion() {
		return tooNew(v)
	}
	return s.Tx(ctx, func(tx *Tx) error {
		v, err := userVersion(ctx, tx.tx)
		if err != nil {
			return err
		}
		if v > schemaVersion() {
			return tooNew(v)
		}
		for ; v < schemaVersion(); v++ {
			if _, err := tx.tx.ExecContext(ctx, migrations[v]); err != nil {
				return fmt.Errorf("migrate schema to version %d: %w", v+1, err)
			}
		}
		// PRAGMA takes no parameters; v is our own integer.
		if _, err := tx.tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", schemaVersion())); err != nil {
			return fmt.Errorf("record schema version: %w", err)
		}
		return nil
	})
}

func userVersion(ctx context.Context, q querier) (int, error) {
	var v int
	if err := q.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

func tooNew(v int) error {
	return errdefs.Precondition("state database has schema version %d, newer than this berth understands (%d): upgrade berth", v, schemaVersion())
}
