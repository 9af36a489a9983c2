package engine

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/berth-containers/berth/engine/state"
	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/network/dns"
	"github.com/berth-containers/berth/network/firewall"
	"github.com/berth-containers/berth/network/link"
	"github.com/berth-containers/berth/network/netns"
)

// Files of the network state directory.
const (
	resolverRecords = "dns.json"
	resolverLock    = "dns.lock"
	resolverLog     = "dns.log"
	bootIDFile      = "boot-id"
)

// The embedded resolver is berth re-executed as argv {resolverArg0}, with
// the store's root in envMonitorRoot. It exits once no user-defined
// network has a running container for resolverIdle.
const (
	resolverArg0 = "berth-dns"
	resolverIdle = 30 * time.Second
)

// syncFirewall makes the host firewall match the store: every bridge
// network and every published port. The caller holds the network lock.
func (e *Engine) syncFirewall(ctx context.Context) error {
	db, err := e.db(ctx)
	if err != nil {
		return err
	}
	nets, err := db.Networks(ctx)
	if err != nil {
		return err
	}
	ports, err := db.Ports(ctx, "")
	if err != nil {
		return err
	}
	var s firewall.State
	for _, n := range nets {
		if n.Driver != "bridge" {
			continue
		}
		fn := firewall.Network{Name: n.Name, Bridge: n.Bridge, Internal: n.Internal}
		for _, sub := range n.Subnets {
			fn.Subnets = append(fn.Subnets, sub.Subnet)
		}
		s.Networks = append(s.Networks, fn)
	}
	for _, p := range ports {
		s.Ports = append(s.Ports, firewall.Port{Proto: p.Proto, HostIP: p.HostIP, HostPort: p.HostPort,
			ContainerIP: p.ContainerIP, ContainerPort: p.ContainerPort})
	}
	if err := firewall.NewHost(firewall.Table(e.firewallTable())).Apply(ctx, s); err != nil {
		return fmt.Errorf("host firewall: %w", err)
	}
	return nil
}

// writeResolverRecords writes the names the embedded resolver answers:
// the running containers of every user-defined network. The caller holds
// the network lock.
func (e *Engine) writeResolverRecords(ctx context.Context) error {
	db, err := e.db(ctx)
	if err != nil {
		return err
	}
	nets, err := db.Networks(ctx)
	if err != nil {
		return err
	}
	host, err := readHostFile("/etc/resolv.conf")
	if err != nil {
		return err
	}
	cfg := &dns.Config{Upstreams: dns.ParseResolvConf(host).Upstreams()}
	for _, n := range nets {
		if n.Driver != "bridge" || n.Name == defaultNetwork {
			continue
		}
		dn, err := e.resolverNetwork(ctx, db, n)
		if err != nil {
			return err
		}
		if len(dn.Endpoints) > 0 {
			cfg.Networks = append(cfg.Networks, dn)
		}
	}
	if err := dns.WriteFile(e.networkPath(resolverRecords), cfg); err != nil {
		return fmt.Errorf("resolver records: %w", err)
	}
	return nil
}

// resolverNetwork is one network's part of the resolver's records.
func (e *Engine) resolverNetwork(ctx context.Context, db *state.Store, n *state.Network) (dns.Network, error) {
	dn := dns.Network{Name: n.Name}
	for _, s := range n.Subnets {
		dn.Gateways = append(dn.Gateways, s.Gateway)
		dn.Subnets = append(dn.Subnets, s.Subnet)
	}
	eps, err := db.Endpoints(ctx, "", n.ID)
	if err != nil {
		return dn, err
	}
	for _, ep := range eps {
		if ep.Attached == nil {
			continue
		}
		c, err := db.Container(ctx, ep.ContainerID)
		if err != nil {
			continue // removed meanwhile
		}
		de := dns.Endpoint{Name: c.Name, ID: c.ID, Aliases: ep.Aliases}
		for _, p := range ep.Attached.Addrs {
			de.Addresses = append(de.Addresses, p.Addr())
		}
		for _, a := range c.HostConfig.DNS {
			de.Upstreams = append(de.Upstreams, a.String())
		}
		dn.Endpoints = append(dn.Endpoints, de)
	}
	return dn, nil
}

// ensureResolver starts the store's resolver unless one runs. Records
// are written first: a resolver about to leave idle sees them and stays.
func (e *Engine) ensureResolver() error {
	running, err := dns.Running(e.networkPath(resolverLock))
	if err != nil || running {
		return err
	}
	logf, err := os.OpenFile(e.networkPath(resolverLog), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("resolver log: %w", err)
	}
	defer logf.Close()
	cmd := &exec.Cmd{
		Path: "/proc/self/exe", Args: []string{resolverArg0},
		Env:    []string{envMonitorRoot + "=" + e.root},
		Stdout: logf, Stderr: logf,
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start resolver: %w", err)
	}
	return cmd.Process.Release()
}

// IsResolver says whether this process is a store's embedded resolver.
func IsResolver() bool { return filepath.Base(os.Args[0]) == resolverArg0 }

// RunResolver serves DNS to the user-defined networks of the store named
// by the environment until they have been idle a while or a signal
// comes; it returns the process's exit code.
func RunResolver() int {
	root := os.Getenv(envMonitorRoot)
	if root == "" {
		fmt.Fprintln(os.Stderr, "berth-dns: no store root given")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	dir := filepath.Join(root, "network")
	logErr := func(err error) {
		fmt.Fprintf(os.Stderr, "%s berth-dns: %v\n", time.Now().UTC().Format(time.RFC3339), err)
	}
	err := dns.Serve(ctx, dns.NewFileSource(filepath.Join(dir, resolverRecords), 0), dns.Options{
		IdleExit: resolverIdle, LockPath: filepath.Join(dir, resolverLock), OnError: logErr,
	})
	if err != nil && !errors.Is(err, errdefs.ErrAlreadyExists) && !errors.Is(err, context.Canceled) {
		logErr(err)
		return 1
	}
	return 0
}

// embeddedResolvConf is a user-defined network's container's resolv.conf:
// the embedded resolver on the network's gateway, the container's own
// search domains and options, the host's otherwise.
func (e *Engine) embeddedResolvConf(c *state.Container, gw netip.Addr) ([]byte, error) {
	host, err := os.ReadFile("/etc/resolv.conf")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read the host's resolv.conf: %w", err)
	}
	user := dns.ContainerDNS{Search: c.HostConfig.DNSSearch, Options: c.HostConfig.DNSOptions}
	for _, a := range c.HostConfig.DNS {
		user.Servers = append(user.Servers, a.String())
	}
	return dns.ContainerResolvConf(dns.ParseResolvConf(host), user, gw).Bytes(), nil
}

// ReconcileNetworks removes what no running container of the store
// accounts for: attachments and ports left by a start or stop that was
// killed, veths on the store's bridges, namespaces; then it rewrites the
// host firewall and the resolver's records from the store, and starts the
// resolver if containers need it and it is gone. Containers whose monitor
// died are found and stopped first.
func (e *Engine) ReconcileNetworks(ctx context.Context) error {
	cs, err := e.Containers(ctx) // reconciles dead monitors
	if err != nil {
		return err
	}
	live := map[string]bool{}
	for _, c := range cs {
		if active(c.State.Status) || c.State.Status == StatusRemoving {
			live[c.ID] = true
		}
	}
	db, err := e.db(ctx)
	if err != nil {
		return err
	}
	eps, err := db.Endpoints(ctx, "", "")
	if err != nil {
		return err
	}
	ports, err := db.Ports(ctx, "")
	if err != nil {
		return err
	}
	var errs []error
	stale := map[string]bool{}
	for _, ep := range eps {
		if ep.Attached != nil && !live[ep.ContainerID] {
			stale[ep.ContainerID] = true
		}
	}
	for _, p := range ports {
		if !live[p.ContainerID] {
			stale[p.ContainerID] = true
		}
	}
	for id := range stale {
		errs = append(errs, e.teardownNetwork(ctx, id))
	}
	errs = append(errs, e.sweepHost(ctx, live))
	lock, err := e.lockNetworks(ctx)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	defer func() { _ = lock.Unlock() }()
	errs = append(errs, e.syncFirewall(ctx), e.writeResolverRecords(ctx))
	if cfg, err := dns.ReadConfig(e.networkPath(resolverRecords)); err == nil && len(cfg.Networks) > 0 {
		// Containers run on user-defined networks: their resolver too,
		// even if it was killed.
		errs = append(errs, e.ensureResolver())
	}
	return errors.Join(errs...)
}

// sweepHost deletes veths on the store's bridges and network namespaces
// that belong to no running container.
func (e *Engine) sweepHost(ctx context.Context, live map[string]bool) error {
	db, err := e.db(ctx)
	if err != nil {
		return err
	}
	nets, err := db.Networks(ctx)
	if err != nil {
		return err
	}
	eps, err := db.Endpoints(ctx, "", "")
	if err != nil {
		return err
	}
	var bridges []string
	for _, n := range nets {
		if n.Driver == "bridge" {
			bridges = append(bridges, n.Bridge)
		}
	}
	want := map[string]bool{}
	for _, ep := range eps {
		if ep.Attached != nil && live[ep.ContainerID] {
			want[ep.Attached.HostIf] = true
		}
	}
	var errs []error
	veths, err := link.BridgeVeths(ctx, link.HostIfPrefix, bridges)
	errs = append(errs, err)
	for _, v := range veths {
		if !want[v] {
			errs = append(errs, link.Detach(ctx, v))
		}
	}
	files, err := netns.List(filepath.Join(e.root, "netns"))
	errs = append(errs, err)
	for _, f := range files {
		if !live[filepath.Base(f)] {
			errs = append(errs, netns.Remove(f))
		}
	}
	return errors.Join(errs...)
}

// rebootedSinceLastLook says whether the machine booted since the store
// last recorded the boot (bridges, veths and firewall are then gone), and
// records this boot.
func (e *Engine) rebootedSinceLastLook() (bool, error) {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		// No boot id (an unusual kernel): reboots go unnoticed, and
		// network ls or prune repairs what they leave.
		return false, nil
	}
	now := strings.TrimSpace(string(b))
	old, err := os.ReadFile(e.networkPath(bootIDFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("read the recorded boot id: %w", err)
	}
	if strings.TrimSpace(string(old)) == now {
		return false, nil
	}
	if err := os.MkdirAll(e.networkDir(), 0o700); err != nil {
		return false, fmt.Errorf("record the boot id: %w", err)
	}
	if err := os.WriteFile(e.networkPath(bootIDFile), []byte(now+"\n"), 0o600); err != nil {
		return false, fmt.Errorf("record the boot id: %w", err)
	}
	return len(old) > 0, nil
}
