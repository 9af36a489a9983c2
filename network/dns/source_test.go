package dns

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// oneContainer is a config whose single container's address encodes i, so
// successive versions have the same size.
func oneContainer(i int) *Config {
	return &Config{Networks: []Network{{
		Gateways:  []netip.Addr{gwA},
		Endpoints: []Endpoint{{Name: "c", Addresses: []netip.Addr{netip.AddrFrom4([4]byte{172, 18, byte(i / 100), byte(100 + i%100)})}}},
	}}}
}

func TestFileSourceFollowsEveryWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dns.json")
	src := NewFileSource(path, 0)
	ctx := context.Background()

	r, err := src.Records(ctx)
	require.NoError(t, err)
	assert.Empty(t, r.Gateways(), "a missing file holds no network")

	// Back-to-back writes of same-sized files, many within one timestamp
	// tick: every one must be seen by the next call.
	for i := range 200 {
		cfg := oneContainer(i)
		require.NoError(t, WriteFile(path, cfg))
		r, err := src.Records(ctx)
		require.NoError(t, err)
		addrs, ok := r.Lookup(gwA, "c")
		require.True(t, ok)
		require.Equal(t, cfg.Networks[0].Endpoints[0].Addresses, addrs, "write %d", i)
	}

	require.NoError(t, os.Remove(path))
	r, err = src.Records(ctx)
	require.NoError(t, err)
	assert.Empty(t, r.Gateways(), "a removed file holds no network")

	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	assert.Empty(t, entries, "no temporary file left behind")
}

func TestFileSourceBadFileKeepsRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dns.json")
	src := NewFileSource(path, 0)
	ctx := context.Background()
	require.NoError(t, WriteFile(path, oneContainer(1)))
	_, err := src.Records(ctx)
	require.NoError(t, err)

	require.NoError(t, os.WriteFile(path+".tmp", []byte("{not json"), 0o600))
	require.NoError(t, os.Rename(path+".tmp", path))
	r, err := src.Records(ctx)
	require.Error(t, err)
	_, ok := r.Lookup(gwA, "c")
	assert.True(t, ok, "the last good records stay")

	r, err = src.Records(ctx)
	require.NoError(t, err, "a bad version is reported once")
	_, ok = r.Lookup(gwA, "c")
	assert.True(t, ok)

	bad := &Config{Upstreams: []string{"not an address"}}
	require.Error(t, WriteFile(path, bad), "WriteFile refuses what Compile refuses")
}

func TestFileSourceInterval(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dns.json")
	src := NewFileSource(path, time.Hour)
	ctx := context.Background()
	require.NoError(t, WriteFile(path, oneContainer(1)))
	_, err := src.Records(ctx)
	require.NoError(t, err)
	require.NoError(t, WriteFile(path, oneContainer(2)))
	r, err := src.Records(ctx)
	require.NoError(t, err)
	addrs, _ := r.Lookup(gwA, "c")
	assert.Equal(t, oneContainer(1).Networks[0].Endpoints[0].Addresses, addrs, "within the interval the file is not checked")
}

// bigConfig is a store with nets networks of per containers each.
func bigConfig(nets, per int) *Config {
	cfg := &Config{Upstreams: []string{"127.0.0.53"}}
	for n := range nets {
		nw := Network{Name: fmt.Sprintf("net%d", n), Gateways: []netip.Addr{netip.AddrFrom4([4]byte{10, byte(n), 0, 1})}}
		for c := range per {
			nw.Endpoints = append(nw.Endpoints, Endpoint{
				Name:      fmt.Sprintf("container-%d-%d", n, c),
				ID:        fmt.Sprintf("%064x", n*100000+c),
				Aliases:   []string{fmt.Sprintf("svc%d", c%10)},
				Addresses: []netip.Addr{netip.AddrFrom4([4]byte{10, byte(n), byte(c / 250), byte(2 + c%250)})},
			})
		}
		cfg.Networks = append(cfg.Networks, nw)
	}
	return cfg
}

// BenchmarkFileSourceUnchanged is the cost a query pays to learn the file
// did not change: one stat.
func BenchmarkFileSourceUnchanged(b *testing.B) {
	path := filepath.Join(b.TempDir(), "dns.json")
	require.NoError(b, WriteFile(path, bigConfig(10, 100)))
	src := NewFileSource(path, 0)
	ctx := context.Background()
	for b.Loop() {
		if _, err := src.Records(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFileSourceReload is the cost of a change: read, parse and
// index a store of one small network, and one of 10 networks of 100
// containers.
func BenchmarkFileSourceReload(b *testing.B) {
	for _, size := range [][2]int{{1, 20}, {10, 100}} {
		b.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "dns.json")
			src := NewFileSource(path, 0)
			ctx := context.Background()
			cfgs := []*Config{bigConfig(size[0], size[1]), bigConfig(size[0], size[1]+1)}
			i := 0
			for b.Loop() {
				b.StopTimer()
				require.NoError(b, WriteFile(path, cfgs[i%2]))
				i++
				b.StartTimer()
				if _, err := src.Records(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWriteFile is what the engine pays per change.
func BenchmarkWriteFile(b *testing.B) {
	for _, size := range [][2]int{{1, 20}, {10, 100}} {
		b.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "dns.json")
			cfg := bigConfig(size[0], size[1])
			for b.Loop() {
				if err := WriteFile(path, cfg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
