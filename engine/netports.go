package engine

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/berth-containers/berth/engine/state"
	"github.com/berth-containers/berth/internal/errdefs"
)

// Host ports -P and `-p CONTAINER` draw from when the kernel's ephemeral
// range cannot be read: Linux's default.
const (
	ephemeralFirst = 32768
	ephemeralLast  = 60999
)

// portRequest is one container port to publish: on a fixed host port
// (first == last), a range to pick one from, or any (both 0).
type portRequest struct {
	proto         string
	hostIP        netip.Addr
	first, last   uint16
	containerPort uint16
}

// portRequests expands a container's -p bindings, and with -P its exposed
// ports, into one request per container port and host address.
func portRequests(c *state.Container) ([]portRequest, error) {
	bindings := c.HostConfig.PortBindings
	if c.HostConfig.PublishAllPorts {
		bindings = maps(bindings)
		for p := range c.Config.ExposedPorts {
			if _, ok := bindings[p]; !ok {
				bindings[p] = []network.PortBinding{{}}
			}
		}
	}
	var out []portRequest
	for p, bs := range bindings {
		for _, b := range bs {
			r := portRequest{proto: string(p.Proto()), hostIP: b.HostIP.Unmap(), containerPort: p.Num()}
			if r.proto != "tcp" && r.proto != "udp" {
				return nil, errdefs.Invalid("cannot publish %s: berth publishes tcp and udp ports", p)
			}
			var err error
			if r.first, r.last, err = hostPortRange(b.HostPort); err != nil {
				return nil, err
			}
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b portRequest) int {
		if a.containerPort != b.containerPort {
			return int(a.containerPort) - int(b.containerPort)
		}
		return strings.Compare(a.proto, b.proto)
	})
	return out, nil
}

func maps(m network.PortMap) network.PortMap {
	out := network.PortMap{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// hostPortRange reads a binding's host port: "" (any), "8080" or
// "8000-8010" (one of them).
func hostPortRange(s string) (uint16, uint16, error) {
	if s == "" || s == "0" {
		return 0, 0, nil
	}
	lo, hi, isRange := strings.Cut(s, "-")
	first, err := strconv.ParseUint(lo, 10, 16)
	last := first
	if err == nil && isRange {
		last, err = strconv.ParseUint(hi, 10, 16)
	}
	if err != nil || first == 0 || last < first {
		return 0, 0, errdefs.Invalid("invalid host port %q", s)
	}
	return uint16(first), uint16(last), nil
}

// allocatePorts picks the host port of every request, in the store's
// transaction so that no other container takes it, and checks that no
// host process listens there. Ports go to the container's first address
// of the host address's family (IPv4 when the host address is any).
func (e *Engine) allocatePorts(ctx context.Context, tx *state.Tx, c *state.Container, first *state.Attachment) ([]state.PublishedPort, error) {
	reqs, err := portRequests(c)
	if err != nil || len(reqs) == 0 {
		return nil, err
	}
	held, err := tx.Ports(ctx, "")
	if err != nil {
		return nil, err
	}
	var out []state.PublishedPort
	for _, r := range reqs {
		family := 4
		if r.hostIP.Is6() {
			family = 6
		}
		ctr := first.Addr(family)
		if !ctr.IsValid() {
			return nil, errdefs.Invalid("cannot publish port %d/%s on %s: the container has no IPv%d address", r.containerPort, r.proto, r.hostIP, family)
		}
		p := state.PublishedPort{ContainerID: c.ID, Proto: r.proto, HostIP: r.hostIP, ContainerIP: ctr.Addr(), ContainerPort: r.containerPort}
		if p.HostPort, err = pickHostPort(r, append(held, out...)); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// pickHostPort returns the request's fixed port if it is free, or a free
// one of its range (any: the ephemeral range), starting at a random
// place so that containers do not all try the same ports first.
func pickHostPort(r portRequest, held []state.PublishedPort) (uint16, error) {
	if r.first != 0 && r.first == r.last {
		if conflict(r, r.first, held) {
			return 0, portInUse(r, r.first, "port is already allocated")
		}
		if err := bindable(r, r.first); err != nil {
			return 0, portInUse(r, r.first, err.Error())
		}
		return r.first, nil
	}
	first, last := r.first, r.last
	if first == 0 {
		first, last = ephemeralRange()
	}
	n := int(last-first) + 1
	start := rand.IntN(n)
	for i := range n {
		port := first + uint16((start+i)%n)
		if !conflict(r, port, held) && bindable(r, port) == nil {
			return port, nil
		}
	}
	return 0, errdefs.Precondition("no free host port in %d-%d for %d/%s", first, last, r.containerPort, r.proto)
}

func portInUse(r portRequest, port uint16, why string) error {
	host := "0.0.0.0"
	if r.hostIP.IsValid() {
		host = r.hostIP.String()
	}
	return errdefs.AlreadyExists("Bind for %s failed: %s", net.JoinHostPort(host, strconv.Itoa(int(port))), why)
}

// conflict says whether another container holds port on an overlapping
// host address.
func conflict(r portRequest, port uint16, held []state.PublishedPort) bool {
	for _, h := range held {
		if h.Proto == r.proto && h.HostPort == port &&
			(!h.HostIP.IsValid() || h.HostIP.IsUnspecified() || !r.hostIP.IsValid() || r.hostIP.IsUnspecified() || h.HostIP == r.hostIP) {
			return true
		}
	}
	return false
}

// bindable checks that no host process listens on the port: the kernel's
// DNAT would hide it from the outside without a word. Berth holds no
// socket of its own on the port afterwards (no proxy process).
func bindable(r portRequest, port uint16) error {
	host := "0.0.0.0"
	if r.hostIP.IsValid() {
		host = r.hostIP.String()
	}
	addr := net.JoinHostPort(host, strconv.Itoa(int(port)))
	if r.proto == "udp" {
		c, err := net.ListenPacket("udp", addr)
		if err != nil {
			return fmt.Errorf("address already in use")
		}
		return c.Close()
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("address already in use")
	}
	return l.Close()
}

// ephemeralRange reads the kernel's local port range, where -P picks.
func ephemeralRange() (uint16, uint16) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		f := strings.Fields(string(b))
		if len(f) == 2 {
			lo, err1 := strconv.ParseUint(f[0], 10, 16)
			hi, err2 := strconv.ParseUint(f[1], 10, 16)
			if err1 == nil && err2 == nil && lo > 0 && lo <= hi {
				return uint16(lo), uint16(hi)
			}
		}
	}
	return ephemeralFirst, ephemeralLast
}

// checkPorts refuses, at create, bindings that cannot work: port
// publishing needs a bridge network (Docker drops them for host).
func checkPorts(hc *container.HostConfig) error {
	if len(hc.PortBindings) == 0 && !hc.PublishAllPorts {
		return nil
	}
	if hc.NetworkMode.IsHost() {
		hc.PortBindings, hc.PublishAllPorts = nil, false
		return nil
	}
	if hc.NetworkMode.IsNone() || hc.NetworkMode.IsContainer() {
		return errdefs.Invalid("conflicting options: port publishing and the container type network mode")
	}
	for p, bs := range hc.PortBindings {
		for _, b := range bs {
			if _, _, err := hostPortRange(b.HostPort); err != nil {
				return err
			}
		}
		if p.Proto() != "tcp" && p.Proto() != "udp" {
			return errdefs.Invalid("cannot publish %s: berth publishes tcp and udp ports", p)
		}
	}
	return nil
}
