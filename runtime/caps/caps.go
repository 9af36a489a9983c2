// Package caps turns the capability lists of an OCI process into the five
// capability sets of a Linux thread and applies them.
//
// The work is split in two steps because the container's init needs the
// bounding set dropped while it is still root (dropping needs CAP_SETPCAP)
// and the other sets applied after it has switched user with keep-caps
// (setuid clears the effective set).
package caps

import (
	"errors"
	"fmt"
	"strings"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Set is the five capability sets of a process, checked against the
// capabilities this kernel knows.
type Set struct {
	Bounding    []capability.Cap
	Effective   []capability.Cap
	Permitted   []capability.Cap
	Inheritable []capability.Cap
	Ambient     []capability.Cap
	// Unknown lists names no kernel knows ("CAP_FOO"). They are left out:
	// the runtime spec asks runtimes to warn, not fail, on capabilities
	// they cannot grant.
	Unknown []string
}

// New resolves the capability names of c. A name this build does not know
// ("CAP_FOO") is left out and listed in Unknown. A name this build knows but the running kernel
// does not (a capability newer than the kernel) is dropped silently, as runc
// does, so configs written by newer tools still run on older kernels. A nil
// c gives empty sets: the process keeps no capability.
func New(c *specs.LinuxCapabilities) (*Set, error) {
	last, err := capability.LastCap()
	if err != nil {
		return nil, fmt.Errorf("read last capability of the kernel: %w", err)
	}
	return plan(c, last)
}

// plan is New for a kernel whose highest capability is last.
func plan(c *specs.LinuxCapabilities, last capability.Cap) (*Set, error) {
	s := &Set{}
	if c == nil {
		return s, nil
	}
	lists := []struct {
		kind  string
		names []string
		dst   *[]capability.Cap
	}{
		{"bounding", c.Bounding, &s.Bounding},
		{"effective", c.Effective, &s.Effective},
		{"permitted", c.Permitted, &s.Permitted},
		{"inheritable", c.Inheritable, &s.Inheritable},
		{"ambient", c.Ambient, &s.Ambient},
	}
	unknown := map[string]bool{}
	for _, l := range lists {
		caps, bad := parse(l.names, last)
		*l.dst = caps
		for _, n := range bad {
			if !unknown[n] {
				unknown[n] = true
				s.Unknown = append(s.Unknown, n)
			}
		}
	}
	return s, nil
}

// parse maps names to capabilities, dropping those above last and
// duplicates; it returns the names it does not know apart.
func parse(names []string, last capability.Cap) ([]capability.Cap, []string) {
	byName := known()
	var caps []capability.Cap
	var unknown []string
	seen := map[capability.Cap]bool{}
	for _, n := range names {
		c, ok := byName[strings.ToUpper(n)]
		if !ok {
			unknown = append(unknown, n)
			continue
		}
		if c > last || seen[c] {
			continue
		}
		seen[c] = true
		caps = append(caps, c)
	}
	return caps, unknown
}

// known maps every "CAP_*" name this build knows to its capability.
func known() map[string]capability.Cap {
	m := map[string]capability.Cap{}
	for _, c := range capability.ListKnown() {
		m[name(c)] = c
	}
	return m
}

// name is the OCI spelling of c: "CAP_" and the upper-case kernel name.
func name(c capability.Cap) string {
	return "CAP_" + strings.ToUpper(c.String())
}

// Known returns every capability name this build knows, "CAP_*", in
// capability number order (for the features command).
func Known() []string {
	var names []string
	for _, c := range capability.ListKnown() {
		names = append(names, name(c))
	}
	return names
}

// ApplyBounding drops from the calling thread's bounding set every
// capability the set does not list. It needs CAP_SETPCAP, so it runs before
// the process changes user. Like every capability change it affects the
// calling OS thread only: the caller locks its goroutine to the thread.
func (s *Set) ApplyBounding() error {
	last, err := capability.LastCap()
	if err != nil {
		return fmt.Errorf("read last capability of the kernel: %w", err)
	}
	for _, c := range toDrop(s.Bounding, last) {
		// EINVAL means the kernel does not know c: nothing to drop.
		if err := capability.DropBound(c); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("drop %s from the bounding set: %w", name(c), err)
		}
	}
	return nil
}

// toDrop lists the capabilities up to last that keep does not contain.
func toDrop(keep []capability.Cap, last capability.Cap) []capability.Cap {
	kept := map[capability.Cap]bool{}
	for _, c := range keep {
		kept[c] = true
	}
	var drop []capability.Cap
	for c := capability.Cap(0); c <= last; c++ {
		if !kept[c] {
			drop = append(drop, c)
		}
	}
	return drop
}

// Apply sets the effective, permitted, inheritable and ambient sets of the
// calling thread to exactly those listed. It runs after the process has
// changed user with keep-caps set (so the permitted set survived) and after
// ApplyBounding. The caller locks its goroutine to the OS thread.
func (s *Set) Apply() error {
	c, err := capability.NewPid2(0)
	if err != nil {
		return fmt.Errorf("read capabilities: %w", err)
	}
	c.Clear(capability.CAPS | capability.AMBIENT)
	c.Set(capability.EFFECTIVE, s.Effective...)
	c.Set(capability.PERMITTED, s.Permitted...)
	c.Set(capability.INHERITABLE, s.Inheritable...)
	c.Set(capability.AMBIENT, s.Ambient...)
	if err := c.Apply(capability.CAPS); err != nil {
		return fmt.Errorf("set capabilities: %w", err)
	}
	// Ambient after the others: raising one needs it in the new permitted
	// and inheritable sets.
	if err := c.Apply(capability.AMBIENT); err != nil {
		return fmt.Errorf("set ambient capabilities: %w", err)
	}
	return nil
}

// DropUnheld removes from every set the capabilities the calling thread's
// bounding set lacks, and returns their names. Such a capability can never
// be granted (capset refuses it with EPERM), for example CAP_SYS_RESOURCE
// on hosts whose root was started without it. Leaving it out instead of
// failing lets configurations written for fuller hosts run, with exactly
// the privileges this host can give.
func (s *Set) DropUnheld() []string {
	held := func(c capability.Cap) bool {
		ok, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0)
		return err == nil && ok == 1
	}
	dropped := map[string]bool{}
	filter := func(in []capability.Cap) []capability.Cap {
		out := in[:0]
		for _, c := range in {
			if held(c) {
				out = append(out, c)
			} else {
				dropped[name(c)] = true
			}
		}
		return out
	}
	s.Bounding = filter(s.Bounding)
	s.Effective = filter(s.Effective)
	s.Permitted = filter(s.Permitted)
	s.Inheritable = filter(s.Inheritable)
	s.Ambient = filter(s.Ambient)
	names := make([]string, 0, len(dropped))
	for n := range dropped {
		names = append(names, n)
	}
	return names
}
