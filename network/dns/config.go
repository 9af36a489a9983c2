package dns

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
)

// Config is the records file the engine writes and the resolver reads: every
// user-defined network of one store with the names its containers answer to.
// It is JSON, replaced atomically by WriteFile on every change.
//
//	{
//	  "upstreams": ["127.0.0.53"],
//	  "networks": [{
//	    "name": "app",
//	    "gateways": ["172.18.0.1", "fd00:18::1"],
//	    "subnets": ["172.18.0.0/16", "fd00:18::/64"],
//	    "endpoints": [{
//	      "name": "web",
//	      "id": "0123456789abcdef...",
//	      "aliases": ["frontend"],
//	      "addresses": ["172.18.0.2", "fd00:18::2"],
//	      "upstreams": ["9.9.9.9"]
//	    }]
//	  }]
//	}
type Config struct {
	// Upstreams are the host's resolvers, "ip" or "ip:port" ("[ip6]:port"),
	// tried in order for every name the records do not hold. Loopback
	// resolvers work: the resolver runs in the host's network namespace.
	Upstreams []string `json:"upstreams,omitempty"`
	// Networks are the user-defined networks the resolver serves.
	Networks []Network `json:"networks,omitempty"`
}

// Network is one user-defined network: the resolver listens on each of its
// gateway addresses and answers there with this network's names only.
type Network struct {
	// Name is the network's name, for people reading the file.
	Name string `json:"name,omitempty"`
	// Gateways are the bridge's addresses (one per address family); a
	// container's resolv.conf names one of them.
	Gateways []netip.Addr `json:"gateways"`
	// Subnets, when set, restrict who may query this network's listeners
	// to clients inside them (and the gateways themselves): without it a
	// container of another network could read this network's names by
	// sending its queries to this gateway.
	Subnets []netip.Prefix `json:"subnets,omitempty"`
	// Endpoints are the containers attached to the network.
	Endpoints []Endpoint `json:"endpoints,omitempty"`
}

// Endpoint is one container's attachment to a network.
type Endpoint struct {
	// Name is the container's name (without Docker's leading slash).
	Name string `json:"name"`
	// ID is the container's full ID; its first 12 characters resolve too.
	ID string `json:"id,omitempty"`
	// Aliases are the container's network-scoped aliases (--network-alias).
	Aliases []string `json:"aliases,omitempty"`
	// Addresses are the container's addresses on this network.
	Addresses []netip.Addr `json:"addresses"`
	// Upstreams, when set, replace the host's resolvers for the queries
	// this container sends (--dns), as Docker's embedded server does.
	Upstreams []string `json:"upstreams,omitempty"`
}

// ReadConfig reads and checks a records file.
func ReadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read dns records: %w", err)
	}
	return decodeConfig(data, path)
}

func decodeConfig(data []byte, path string) (*Config, error) {
	var cfg Config
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("parse dns records %s: %w", path, err)
	}
	return &cfg, nil
}

// WriteFile replaces the records file at path with cfg atomically (a
// temporary file in the same directory renamed over it), so a resolver
// reading concurrently sees the old or the new records, never a mix. It is
// not fsynced: the file is derived from the store and rewritten after a
// crash. cfg is checked first; a bad one leaves the file as it was.
func WriteFile(path string, cfg *Config) error {
	if _, err := Compile(cfg); err != nil {
		return err
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("encode dns records: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write dns records: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write dns records %s: %w", path, err)
	}
	return nil
}
