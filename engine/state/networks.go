package state

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/berth-containers/berth/internal/errdefs"
)

// CreateNetwork stores a new network, filling Created when it is zero. A
// name or ID already taken is an errdefs.ErrAlreadyExists error.
func (s *Store) CreateNetwork(ctx context.Context, n *Network) error {
	return s.Tx(ctx, func(tx *Tx) error { return tx.CreateNetwork(ctx, n) })
}

// Network returns the network ref names: the exact ID, then the exact
// name, then a unique ID prefix.
func (s *Store) Network(ctx context.Context, ref string) (*Network, error) {
	return findNetwork(ctx, s.db, ref)
}

// Networks lists every network, oldest first.
func (s *Store) Networks(ctx context.Context) ([]*Network, error) {
	return listNetworks(ctx, s.db)
}

// Endpoints lists endpoints in the order they were made; an empty
// containerID or networkID does not filter.
func (s *Store) Endpoints(ctx context.Context, containerID, networkID string) ([]*Endpoint, error) {
	return listEndpoints(ctx, s.db, containerID, networkID)
}

// Ports lists published ports; an empty containerID lists all.
func (s *Store) Ports(ctx context.Context, containerID string) ([]PublishedPort, error) {
	return listPorts(ctx, s.db, containerID)
}

// CreateNetwork is Store.CreateNetwork inside the transaction.
func (t *Tx) CreateNetwork(ctx context.Context, n *Network) error {
	if !isHex(n.ID) || len(n.ID) != 64 {
		return errdefs.Invalid("invalid network id %q: want 64 lower-case hex digits", n.ID)
	}
	if n.Name == "" {
		return errdefs.Invalid("a network needs a name")
	}
	if n.Created.IsZero() {
		n.Created = time.Now().UTC()
	}
	var taken int
	if err := t.tx.QueryRowContext(ctx, `SELECT count(*) FROM networks WHERE name = ?`, n.Name).Scan(&taken); err != nil {
		return fmt.Errorf("look up network %s: %w", n.Name, err)
	}
	if taken > 0 {
		return errdefs.AlreadyExists("network with name %s already exists", n.Name)
	}
	data, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("encode network %s: %w", n.Name, err)
	}
	_, err = t.tx.ExecContext(ctx, `INSERT INTO networks (id, name, created, data) VALUES (?, ?, ?, ?)`,
		n.ID, n.Name, formatTime(n.Created), string(data))
	if err != nil {
		return fmt.Errorf("store network %s: %w", n.Name, classify(err))
	}
	return nil
}

// Network is Store.Network inside the transaction.
func (t *Tx) Network(ctx context.Context, ref string) (*Network, error) {
	return findNetwork(ctx, t.tx, ref)
}

// Networks is Store.Networks inside the transaction.
func (t *Tx) Networks(ctx context.Context) ([]*Network, error) {
	return listNetworks(ctx, t.tx)
}

// DeleteNetwork removes the network with this exact ID. A network that
// containers are connected to is an errdefs.ErrFailedPrecondition error
// naming them.
func (t *Tx) DeleteNetwork(ctx context.Context, id string) error {
	users, err := t.networkUsers(ctx, id)
	if err != nil {
		return err
	}
	if len(users) > 0 {
		return errdefs.Precondition("network has containers connected: %s", strings.Join(users, ", "))
	}
	res, err := t.tx.ExecContext(ctx, `DELETE FROM networks WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete network %s: %w", id, classify(err))
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return errdefs.NotFound("no such network: %s", id)
	}
	return nil
}

// networkUsers names the containers with an endpoint on the network.
func (t *Tx) networkUsers(ctx context.Context, id string) ([]string, error) {
	rows, err := t.tx.QueryContext(ctx, `SELECT c.name FROM endpoints e JOIN containers c ON c.id = e.container_id
		WHERE e.network_id = ? ORDER BY c.name`, id)
	if err != nil {
		return nil, fmt.Errorf("find containers of network %s: %w", id, err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("find containers of network %s: %w", id, err)
		}
		names = append(names, n)
	}
	return names, rows.Err()
}

// Endpoints is Store.Endpoints inside the transaction.
func (t *Tx) Endpoints(ctx context.Context, containerID, networkID string) ([]*Endpoint, error) {
	return listEndpoints(ctx, t.tx, containerID, networkID)
}

// PutEndpoint stores an endpoint, replacing the container's earlier one on
// the same network. An address that another endpoint of the network holds
// is an errdefs.ErrAlreadyExists error.
func (t *Tx) PutEndpoint(ctx context.Context, ep *Endpoint) error {
	data, err := json.Marshal(ep)
	if err != nil {
		return fmt.Errorf("encode endpoint: %w", err)
	}
	var ip4, ip6 string
	if a := ep.Attached; a != nil {
		if p := a.Addr(4); p.IsValid() {
			ip4 = p.Addr().String()
		}
		if p := a.Addr(6); p.IsValid() {
			ip6 = p.Addr().String()
		}
	}
	_, err = t.tx.ExecContext(ctx, `INSERT INTO endpoints (container_id, network_id, ip4, ip6, data)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (container_id, network_id)
		DO UPDATE SET ip4 = excluded.ip4, ip6 = excluded.ip6, data = excluded.data`,
		ep.ContainerID, ep.NetworkID, ip4, ip6, string(data))
	if err != nil {
		err = classify(err)
		switch {
		case errors.Is(err, errdefs.ErrAlreadyExists):
			return errdefs.AlreadyExists("address %s is already in use on the network", cmp.Or(ip4, ip6))
		case errors.Is(err, errdefs.ErrFailedPrecondition):
			return errdefs.NotFound("container %s or network %s no longer exists", ep.ContainerID, ep.NetworkID)
		}
		return fmt.Errorf("store endpoint: %w", err)
	}
	return nil
}

// DeleteEndpoint removes a container's endpoint on a network; a missing
// one is an errdefs.ErrNotFound error.
func (t *Tx) DeleteEndpoint(ctx context.Context, containerID, networkID string) error {
	res, err := t.tx.ExecContext(ctx, `DELETE FROM endpoints WHERE container_id = ? AND network_id = ?`, containerID, networkID)
	if err != nil {
		return fmt.Errorf("delete endpoint: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return errdefs.NotFound("container %s is not connected to network %s", containerID, networkID)
	}
	return nil
}

// Ports is Store.Ports inside the transaction.
func (t *Tx) Ports(ctx context.Context, containerID string) ([]PublishedPort, error) {
	return listPorts(ctx, t.tx, containerID)
}

// SetPorts replaces the ports the container holds with ps. A port that
// another container holds on the same or an overlapping address is an
// errdefs.ErrAlreadyExists error, in Docker's words.
func (t *Tx) SetPorts(ctx context.Context, containerID string, ps []PublishedPort) error {
	if _, err := t.tx.ExecContext(ctx, `DELETE FROM ports WHERE container_id = ?`, containerID); err != nil {
		return fmt.Errorf("release ports: %w", err)
	}
	for _, p := range ps {
		if err := t.checkPortFree(ctx, p); err != nil {
			return err
		}
		_, err := t.tx.ExecContext(ctx, `INSERT INTO ports (container_id, proto, host_ip, host_port, container_ip, container_port)
			VALUES (?, ?, ?, ?, ?, ?)`, containerID, p.Proto, addrText(p.HostIP), p.HostPort,
			addrText(p.ContainerIP), p.ContainerPort)
		if err != nil {
			if errors.Is(classify(err), errdefs.ErrAlreadyExists) {
				return portTaken(p)
			}
			return fmt.Errorf("record port %d/%s: %w", p.HostPort, p.Proto, classify(err))
		}
	}
	return nil
}

// checkPortFree finds another binding of the same port whose address
// overlaps: the same one, or either of them every address.
func (t *Tx) checkPortFree(ctx context.Context, p PublishedPort) error {
	rows, err := t.tx.QueryContext(ctx, `SELECT host_ip FROM ports WHERE proto = ? AND host_port = ?`, p.Proto, p.HostPort)
	if err != nil {
		return fmt.Errorf("look up port %d/%s: %w", p.HostPort, p.Proto, err)
	}
	defer rows.Close()
	for rows.Next() {
		var ip string
		if err := rows.Scan(&ip); err != nil {
			return fmt.Errorf("look up port %d/%s: %w", p.HostPort, p.Proto, err)
		}
		other, _ := netip.ParseAddr(ip)
		if !other.IsValid() || !p.HostIP.IsValid() || other.IsUnspecified() || p.HostIP.IsUnspecified() ||
			other == p.HostIP {
			return portTaken(p)
		}
	}
	return rows.Err()
}

func portTaken(p PublishedPort) error {
	host := "0.0.0.0"
	if p.HostIP.IsValid() {
		host = p.HostIP.String()
	}
	return errdefs.AlreadyExists("Bind for %s failed: port is already allocated",
		netip.AddrPortFrom(netip.MustParseAddr(host), p.HostPort))
}

func addrText(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// findNetwork resolves ref as findContainer does.
func findNetwork(ctx context.Context, q querier, ref string) (*Network, error) {
	if ref == "" {
		return nil, errdefs.Invalid("no network name or id given")
	}
	lo, hi := "", ""
	if isHex(ref) {
		lo, hi = ref, ref+"g"
	}
	rows, err := q.QueryContext(ctx, `SELECT data FROM networks
		WHERE id = ?1 OR name = ?2 OR (id >= ?3 AND id < ?4)
		ORDER BY (id = ?1) DESC, (name = ?2) DESC LIMIT 2`, ref, ref, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("look up network %s: %w", ref, err)
	}
	found, err := scanNetworks(rows)
	if err != nil {
		return nil, fmt.Errorf("look up network %s: %w", ref, err)
	}
	switch {
	case len(found) == 0:
		return nil, errdefs.NotFound("network %s not found", ref)
	case found[0].ID == ref || found[0].Name == ref || len(found) == 1:
		return found[0], nil
	}
	return nil, errdefs.Invalid("network %s is ambiguous (%d matches found on name)", ref, len(found))
}

func listNetworks(ctx context.Context, q querier) ([]*Network, error) {
	rows, err := q.QueryContext(ctx, `SELECT data FROM networks ORDER BY created, rowid`)
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	ns, err := scanNetworks(rows)
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	return ns, nil
}

func scanNetworks(rows *sql.Rows) ([]*Network, error) {
	defer rows.Close()
	var out []*Network
	for rows.Next() {
		var data string
		if err := rows.Scan(&data); err != nil {
			return nil, err
		}
		var n Network
		if err := json.Unmarshal([]byte(data), &n); err != nil {
			return nil, fmt.Errorf("decode stored network: %w", err)
		}
		out = append(out, &n)
	}
	return out, rows.Err()
}

func listEndpoints(ctx context.Context, q querier, containerID, networkID string) ([]*Endpoint, error) {
	rows, err := q.QueryContext(ctx, `SELECT data FROM endpoints
		WHERE (?1 = '' OR container_id = ?1) AND (?2 = '' OR network_id = ?2) ORDER BY seq`, containerID, networkID)
	if err != nil {
		return nil, fmt.Errorf("list endpoints: %w", err)
	}
	defer rows.Close()
	var out []*Endpoint
	for rows.Next() {
		var data string
		if err := rows.Scan(&data); err != nil {
			return nil, fmt.Errorf("list endpoints: %w", err)
		}
		var ep Endpoint
		if err := json.Unmarshal([]byte(data), &ep); err != nil {
			return nil, fmt.Errorf("decode stored endpoint: %w", err)
		}
		out = append(out, &ep)
	}
	return out, rows.Err()
}

func listPorts(ctx context.Context, q querier, containerID string) ([]PublishedPort, error) {
	rows, err := q.QueryContext(ctx, `SELECT container_id, proto, host_ip, host_port, container_ip, container_port
		FROM ports WHERE ?1 = '' OR container_id = ?1 ORDER BY container_id, host_port, proto, host_ip`, containerID)
	if err != nil {
		return nil, fmt.Errorf("list ports: %w", err)
	}
	defer rows.Close()
	var out []PublishedPort
	for rows.Next() {
		var p PublishedPort
		var hostIP, ctrIP string
		if err := rows.Scan(&p.ContainerID, &p.Proto, &hostIP, &p.HostPort, &ctrIP, &p.ContainerPort); err != nil {
			return nil, fmt.Errorf("list ports: %w", err)
		}
		p.HostIP, _ = netip.ParseAddr(hostIP)
		p.ContainerIP, _ = netip.ParseAddr(ctrIP)
		out = append(out, p)
	}
	return out, rows.Err()
}
