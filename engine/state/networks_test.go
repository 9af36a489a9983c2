package state

import (
	"context"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/internal/errdefs"
)

func sampleNetwork(name string) *Network {
	return &Network{
		ID: hexID(), Name: name, Driver: "bridge", Bridge: "br-" + name,
		Subnets: []Subnet{{
			Subnet: netip.MustParsePrefix("172.18.0.0/16"), IPRange: netip.MustParsePrefix("172.18.1.0/24"),
			Gateway: netip.MustParseAddr("172.18.0.1"),
		}},
		Internal: true, MTU: 1400, Labels: map[string]string{"a": "b"},
	}
}

func TestNetworkRoundTripAndLookup(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	n := sampleNetwork("app")
	require.NoError(t, s.CreateNetwork(ctx, n))
	for _, ref := range []string{n.ID, "app", n.ID[:12]} {
		got, err := s.Network(ctx, ref)
		require.NoError(t, err, ref)
		assert.Equal(t, n.ID, got.ID)
		assert.Equal(t, n.Subnets, got.Subnets)
		assert.Equal(t, n.MTU, got.MTU)
		assert.True(t, got.Internal)
		assert.True(t, got.Created.Equal(n.Created))
	}
	_, err := s.Network(ctx, "nope")
	assert.ErrorIs(t, err, errdefs.ErrNotFound)

	err = s.CreateNetwork(ctx, sampleNetwork("app"))
	assert.ErrorIs(t, err, errdefs.ErrAlreadyExists)
	assert.ErrorContains(t, err, "network with name app already exists")

	require.NoError(t, s.CreateNetwork(ctx, sampleNetwork("db")))
	all, err := s.Networks(ctx)
	require.NoError(t, err)
	require.Len(t, all, 2)
	assert.Equal(t, "app", all[0].Name, "oldest first")
}

func TestEndpointsAddressesAndNetworkRemoval(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	n := sampleNetwork("app")
	require.NoError(t, s.CreateNetwork(ctx, n))
	c1, c2 := sampleContainer(hexID(), "one"), sampleContainer(hexID(), "two")
	require.NoError(t, s.CreateContainer(ctx, c1))
	require.NoError(t, s.CreateContainer(ctx, c2))

	addr := netip.MustParsePrefix("172.18.1.2/16")
	ep1 := &Endpoint{ContainerID: c1.ID, NetworkID: n.ID, Aliases: []string{"web"},
		Attached: &Attachment{EndpointID: "e1", IfName: "eth0", HostIf: "bv1", Addrs: []netip.Prefix{addr}}}
	require.NoError(t, s.Tx(ctx, func(tx *Tx) error { return tx.PutEndpoint(ctx, ep1) }))

	// The same address for a second container is refused.
	ep2 := &Endpoint{ContainerID: c2.ID, NetworkID: n.ID,
		Attached: &Attachment{EndpointID: "e2", Addrs: []netip.Prefix{addr}}}
	err := s.Tx(ctx, func(tx *Tx) error { return tx.PutEndpoint(ctx, ep2) })
	assert.ErrorIs(t, err, errdefs.ErrAlreadyExists)
	assert.ErrorContains(t, err, "172.18.1.2 is already in use")

	// Detached (no address), the row stays and the address is free.
	ep1.Attached = nil
	require.NoError(t, s.Tx(ctx, func(tx *Tx) error { return tx.PutEndpoint(ctx, ep1) }))
	require.NoError(t, s.Tx(ctx, func(tx *Tx) error { return tx.PutEndpoint(ctx, ep2) }))

	eps, err := s.Endpoints(ctx, "", n.ID)
	require.NoError(t, err)
	require.Len(t, eps, 2)
	assert.Equal(t, []string{"web"}, eps[0].Aliases)
	assert.Nil(t, eps[0].Attached)
	assert.Equal(t, addr, eps[1].Attached.Addr(4))

	err = s.Tx(ctx, func(tx *Tx) error { return tx.DeleteNetwork(ctx, n.ID) })
	assert.ErrorIs(t, err, errdefs.ErrFailedPrecondition)
	assert.ErrorContains(t, err, "one, two")

	// Endpoints go with their container.
	require.NoError(t, s.DeleteContainer(ctx, c1.ID))
	require.NoError(t, s.Tx(ctx, func(tx *Tx) error { return tx.DeleteEndpoint(ctx, c2.ID, n.ID) }))
	err = s.Tx(ctx, func(tx *Tx) error { return tx.DeleteEndpoint(ctx, c2.ID, n.ID) })
	assert.ErrorIs(t, err, errdefs.ErrNotFound)
	require.NoError(t, s.Tx(ctx, func(tx *Tx) error { return tx.DeleteNetwork(ctx, n.ID) }))
	_, err = s.Network(ctx, n.ID)
	assert.ErrorIs(t, err, errdefs.ErrNotFound)
}

func TestPorts(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	c1, c2 := sampleContainer(hexID(), "one"), sampleContainer(hexID(), "two")
	require.NoError(t, s.CreateContainer(ctx, c1))
	require.NoError(t, s.CreateContainer(ctx, c2))
	ip := netip.MustParseAddr("172.18.0.2")
	local := netip.MustParseAddr("127.0.0.1")
	set := func(id string, ps ...PublishedPort) error {
		return s.Tx(ctx, func(tx *Tx) error { return tx.SetPorts(ctx, id, ps) })
	}
	require.NoError(t, set(c1.ID,
		PublishedPort{Proto: "tcp", HostIP: local, HostPort: 8080, ContainerIP: ip, ContainerPort: 80},
		PublishedPort{Proto: "udp", HostPort: 53, ContainerIP: ip, ContainerPort: 53}))

	// Every address overlaps 127.0.0.1; another address of udp/53 does too.
	err := set(c2.ID, PublishedPort{Proto: "tcp", HostPort: 8080, ContainerIP: ip, ContainerPort: 80})
	assert.ErrorIs(t, err, errdefs.ErrAlreadyExists)
	assert.ErrorContains(t, err, "Bind for 0.0.0.0:8080 failed: port is already allocated")
	err = set(c2.ID, PublishedPort{Proto: "udp", HostIP: local, HostPort: 53, ContainerIP: ip, ContainerPort: 53})
	assert.ErrorIs(t, err, errdefs.ErrAlreadyExists)
	// Another address, another protocol: free.
	require.NoError(t, set(c2.ID,
		PublishedPort{Proto: "tcp", HostIP: netip.MustParseAddr("127.0.0.2"), HostPort: 8080, ContainerIP: ip, ContainerPort: 80},
		PublishedPort{Proto: "udp", HostPort: 8080, ContainerIP: ip, ContainerPort: 80}))

	ps, err := s.Ports(ctx, c1.ID)
	require.NoError(t, err)
	require.Len(t, ps, 2)
	assert.Equal(t, uint16(53), ps[0].HostPort)
	assert.False(t, ps[0].HostIP.IsValid())
	assert.Equal(t, local, ps[1].HostIP)

	// Replacing releases; the ports go with their container.
	require.NoError(t, set(c1.ID))
	require.NoError(t, s.DeleteContainer(ctx, c2.ID))
	all, err := s.Ports(ctx, "")
	require.NoError(t, err)
	assert.Empty(t, all)
}

func TestMigrationFromVersion1KeepsContainers(t *testing.T) {
	ctx := context.Background()
	saved := migrations
	t.Cleanup(func() { migrations = saved })
	migrations = saved[:1]
	s, path := newStore(t)
	c := sampleContainer(hexID(), "old")
	// Version 1 stored no NetConfig; insert the way it did.
	_, err := s.db.Exec(`INSERT INTO containers (id, name, image, image_id, created, status, config, host_config, mounts, state)
		VALUES (?, 'old', 'busybox', 'sha256:x', '2026-11-23T12:00:00.000000000Z', 'exited', '{}', '{}', '[]', '{"Status":"exited"}')`, c.ID)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	migrations = saved

	s2, err := Open(ctx, path)
	require.NoError(t, err)
	defer s2.Close()
	got, err := s2.Container(ctx, "old")
	require.NoError(t, err)
	assert.Empty(t, got.Net.Firewall)
	require.NoError(t, s2.CreateNetwork(ctx, sampleNetwork("app")))
}
