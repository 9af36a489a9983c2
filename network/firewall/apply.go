package firewall

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"syscall"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	"golang.org/x/sys/unix"
)

// Host applies berth's host firewall in one network namespace: the
// current one, or the one given with InNetNS.
type Host struct {
	netns string
	table string
}

// Option configures a Host.
type Option func(*Host)

// InNetNS makes the Host work in the network namespace at path (a bound
// /proc/<pid>/ns/net file) instead of the current one: nftables,
// iptables-nft chains and sysctls alike.
func InNetNS(path string) Option {
	return func(h *Host) { h.netns = path }
}

// Table makes the Host own the table inet name instead of TableName, and
// mark its rules in other chains with name instead of Marker: each berth
// store on a host keeps its own firewall, and one never replaces
// another's.
func Table(name string) Option {
	return func(h *Host) { h.table = name }
}

// NewHost returns a Host for the current network namespace, unless an
// option says otherwise.
func NewHost(opts ...Option) *Host {
	h := &Host{table: TableName}
	for _, o := range opts {
		o(h)
	}
	return h
}

// Installed is what berth has in a namespace's firewall, whatever the
// desired state.
type Installed struct {
	// Table reports whether table inet berth exists.
	Table bool
	// ForwardRules counts the rules marked berth in the iptables-nft
	// FORWARD chains of tables ip filter and ip6 filter.
	ForwardRules int
}

// Empty reports whether berth has nothing installed.
func (i Installed) Empty() bool { return !i.Table && i.ForwardRules == 0 }

// Apply makes the firewall match s: it ensures the sysctls, then replaces
// berth's table and its marked FORWARD rules in one transaction.
func (h *Host) Apply(ctx context.Context, s State) error {
	rs, err := Plan(s)
	if err != nil {
		return err
	}
	return h.ApplyRuleset(ctx, rs)
}

// ApplyRuleset applies a planned ruleset, as Apply does with Plan's.
func (h *Host) ApplyRuleset(ctx context.Context, rs *Ruleset) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ns, err := openNetNS(h.netns)
	if err != nil {
		return err
	}
	defer ns.close()
	if err := ns.writeSysctls(rs.Sysctls); err != nil {
		return err
	}
	return ns.replace(ctx, h.table, rs.marked(h.table))
}

// Current reports what berth has installed.
func (h *Host) Current(ctx context.Context) (Installed, error) {
	if err := ctx.Err(); err != nil {
		return Installed{}, err
	}
	ns, err := openNetNS(h.netns)
	if err != nil {
		return Installed{}, err
	}
	defer ns.close()
	cc, err := ns.conn()
	if err != nil {
		return Installed{}, err
	}
	defer func() { _ = cc.CloseLasting() }()
	var inst Installed
	tables, err := cc.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return Installed{}, fmt.Errorf("list nftables tables: %w", err)
	}
	for _, t := range tables {
		if t.Name == h.table {
			inst.Table = true
		}
	}
	fwd, err := findForward(cc, h.table)
	if err != nil {
		return Installed{}, err
	}
	for _, f := range fwd {
		inst.ForwardRules += len(f.marked)
	}
	return inst, nil
}

// Remove deletes berth's table and its marked rules in other chains. It
// leaves sysctls as they are.
func (h *Host) Remove(ctx context.Context) error {
	return h.ApplyRuleset(ctx, &Ruleset{})
}

// ApplyContainer writes a container's firewall into the network namespace
// at netnsPath, replacing any earlier one atomically.
func ApplyContainer(ctx context.Context, netnsPath string, rules []Rule, defaults Policy) error {
	rs, err := PlanContainer(rules, defaults)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if netnsPath == "" {
		return fmt.Errorf("container firewall: no network namespace given")
	}
	ns, err := openNetNS(netnsPath)
	if err != nil {
		return err
	}
	defer ns.close()
	cc, err := ns.conn()
	if err != nil {
		return err
	}
	defer func() { _ = cc.CloseLasting() }()
	queueReplaceTable(cc, TableName)
	if err := queueTable(cc, TableName, rs); err != nil {
		return err
	}
	if err := cc.Flush(); err != nil {
		return fmt.Errorf("apply container firewall in %s: %w", netnsPath, err)
	}
	return nil
}

// netNS is an open network namespace; fd 0 stands for the current one,
// as nftables.WithNetNSFd reads it.
type netNS struct {
	path string
	fd   int
}

func openNetNS(path string) (*netNS, error) {
	if path == "" {
		return &netNS{}, nil
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open network namespace %s: %w", path, err)
	}
	return &netNS{path: path, fd: fd}, nil
}

func (n *netNS) close() {
	if n.fd > 0 {
		_ = unix.Close(n.fd)
	}
}

// conn opens one netlink socket for all requests of an operation.
func (n *netNS) conn() (*nftables.Conn, error) {
	cc, err := nftables.New(nftables.WithNetNSFd(n.fd), nftables.AsLasting())
	if err != nil {
		return nil, fmt.Errorf("open nftables netlink socket: %w", err)
	}
	return cc, nil
}

// forwardChain is an iptables-nft FORWARD chain and berth's rules in it.
type forwardChain struct {
	chain  *nftables.Chain
	drop   bool
	marked []*nftables.Rule
}

// findForward looks for the FORWARD chains of tables ip filter and ip6
// filter, which iptables-nft (and so dockerd) uses.
func findForward(cc *nftables.Conn, marker string) ([]forwardChain, error) {
	var out []forwardChain
	for _, family := range []nftables.TableFamily{nftables.TableFamilyIPv4, nftables.TableFamilyIPv6} {
		table := &nftables.Table{Name: "filter", Family: family}
		ch, err := cc.ListChain(table, "FORWARD")
		if err != nil {
			if isNotExist(err) {
				continue
			}
			return nil, fmt.Errorf("look up chain FORWARD of table %s filter: %w", familyName(family), err)
		}
		if ch.Hooknum == nil || *ch.Hooknum != *nftables.ChainHookForward {
			continue // a regular chain named FORWARD: traffic never enters it by itself
		}
		ch.Table = table
		rules, err := cc.GetRules(table, ch)
		if err != nil {
			return nil, fmt.Errorf("list chain FORWARD of table %s filter: %w", familyName(family), err)
		}
		f := forwardChain{chain: ch, drop: ch.Policy != nil && *ch.Policy == nftables.ChainPolicyDrop}
		for _, r := range rules {
			if commentOf(r.UserData) == marker {
				r.Table, r.Chain = table, ch
				f.marked = append(f.marked, r)
			}
		}
		out = append(out, f)
	}
	return out, nil
}

// holds reports whether the chain's marked rules are those rs wants
// there, in order, so they need no rewrite.
func (f *forwardChain) holds(rs *Ruleset) bool {
	var want []ChainRule
	if f.drop && !rs.Empty() {
		want = rs.ForwardAccept
	}
	if len(f.marked) != len(want) {
		return false
	}
	for i, r := range f.marked {
		if forwardSignature(r.Exprs) != wantSignature(want[i]) {
			return false
		}
	}
	return true
}

// forwardSignature reads back a rule berth inserted into FORWARD: its
// input or output interface name. A rule of another shape gives "?".
func forwardSignature(exprs []expr.Any) string {
	if len(exprs) < 3 {
		return "?"
	}
	meta, ok1 := exprs[0].(*expr.Meta)
	cmp, ok2 := exprs[1].(*expr.Cmp)
	verdict, ok3 := exprs[len(exprs)-1].(*expr.Verdict)
	if !ok1 || !ok2 || !ok3 || cmp.Op != expr.CmpOpEq || verdict.Kind != expr.VerdictAccept {
		return "?"
	}
	ct := ""
	for _, e := range exprs[2 : len(exprs)-1] {
		if m, ok := e.(*expr.Match); ok && m.Name == "conntrack" {
			ct = "|ct"
		}
	}
	name := strings.TrimRight(string(cmp.Data), "\x00")
	switch meta.Key {
	case expr.MetaKeyIIFNAME:
		return name + "|" + ct
	case expr.MetaKeyOIFNAME:
		return "|" + name + ct
	}
	return "?"
}

// compileForwardRule compiles a rule for the iptables-nft FORWARD chain
// in the form iptables itself writes: a conntrack state match is the
// xtables "conntrack" match, not nftables' native ct expression, which
// iptables cannot read back (`iptables -S` and ufw would then refuse the
// whole chain).
func compileForwardRule(r ChainRule) ([]expr.Any, error) {
	state := r.CtState
	r.CtState = 0
	exprs, err := compileRule(r, nil)
	if err != nil || state == 0 {
		return exprs, err
	}
	m := &expr.Match{Name: "conntrack", Rev: 3, Info: &xt.ConntrackMtinfo3{
		ConntrackMtinfo2: xt.ConntrackMtinfo2{
			ConntrackMtinfoBase: xt.ConntrackMtinfoBase{MatchFlags: uint16(xt.ConntrackState)},
			StateMask:           uint16(state),
		},
	}}
	last := len(exprs) - 1
	return append(append(exprs[:last:last], m), exprs[last]), nil
}

// wantSignature is forwardSignature's value for a planned rule.
func wantSignature(r ChainRule) string {
	s := r.IIF + "|" + r.OIF
	if r.CtState != 0 {
		s += "|ct"
	}
	return s
}

// isNotExist recognises ENOENT from the nftables library, which formats
// netlink errors with %v and so loses the errno for errors.Is.
func isNotExist(err error) bool {
	return errors.Is(err, unix.ENOENT) || strings.Contains(err.Error(), unix.ENOENT.Error())
}

func familyName(f nftables.TableFamily) string {
	if f == nftables.TableFamilyIPv6 {
		return "ip6"
	}
	return "ip"
}

// replace swaps berth's rules for rs in one transaction. Someone else may
// delete a marked rule between our listing and the batch (the batch then
// fails whole, with ENOENT), so it retries a few times.
func (n *netNS) replace(ctx context.Context, table string, rs *Ruleset) error {
	cc, err := n.conn()
	if err != nil {
		return err
	}
	defer func() { _ = cc.CloseLasting() }()
	const attempts = 3
	for i := 0; ; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := n.replaceOnce(cc, table, rs)
		if err == nil || i == attempts-1 || !isNotExist(err) {
			return err
		}
	}
}

func (n *netNS) replaceOnce(cc *nftables.Conn, table string, rs *Ruleset) error {
	fwd, err := findForward(cc, table)
	if err != nil {
		return err
	}
	digest := rs.digest()
	if n.upToDate(cc, table, rs, digest, fwd) {
		return nil
	}
	queueReplaceTable(cc, table)
	if !rs.Empty() {
		if err := queueTable(cc, table, rs); err != nil {
			return err
		}
		queueDigest(cc, table, digest)
	}
	for _, f := range fwd {
		if f.holds(rs) {
			continue
		}
		for _, r := range f.marked {
			if err := cc.DelRule(r); err != nil {
				return fmt.Errorf("queue deletion of a berth rule in FORWARD: %w", err)
			}
		}
		if !f.drop {
			continue
		}
		// Each insert goes to the top: insert in reverse to keep the order.
		for i := len(rs.ForwardAccept) - 1; i >= 0; i-- {
			r := rs.ForwardAccept[i]
			exprs, err := compileForwardRule(r)
			if err != nil {
				return fmt.Errorf("forward rule %q: %w", r.String(), err)
			}
			cc.InsertRule(&nftables.Rule{Table: f.chain.Table, Chain: f.chain, Exprs: exprs, UserData: ruleUserData(r)})
		}
	}
	if err := cc.Flush(); err != nil {
		return fmt.Errorf("apply berth firewall: %w", err)
	}
	return nil
}

// upToDate reports whether the kernel already holds rs: berth's table
// carries the digest of the ruleset it was written from, and each FORWARD
// chain holds as many marked rules as rs wants there. Most containers
// join a network without publishing ports, so the host firewall does not
// change and Apply costs two netlink round trips instead of a rewrite.
func (n *netNS) upToDate(cc *nftables.Conn, table string, rs *Ruleset, digest string, fwd []forwardChain) bool {
	for _, f := range fwd {
		if !f.holds(rs) {
			return false
		}
	}
	t := &nftables.Table{Name: table, Family: nftables.TableFamilyINet}
	rules, err := cc.GetRules(t, &nftables.Chain{Name: chainDigest, Table: t})
	if err != nil || len(rules) != 1 {
		// No table (or no digest chain): up to date only if rs is empty,
		// and then deleting is cheap; rewrite to be sure.
		return false
	}
	return commentOf(rules[0].UserData) == digest
}

// queueReplaceTable queues the deletion of table inet berth, creating it
// first so that the deletion cannot fail: what follows in the batch then
// recreates it, and the kernel commits all of it at once.
func queueReplaceTable(cc *nftables.Conn, table string) {
	t := &nftables.Table{Name: table, Family: nftables.TableFamilyINet}
	cc.AddTable(t)
	cc.DelTable(t)
}

// writeSysctls ensures each setting, inside the namespace.
func (n *netNS) writeSysctls(list []Sysctl) error {
	if len(list) == 0 {
		return nil
	}
	return n.do(func() error {
		for _, s := range list {
			if err := ensureSysctl(s); err != nil {
				return err
			}
		}
		return nil
	})
}

// ensureSysctl reads, and writes when it differs, one setting. Raw
// syscalls: os.ReadFile costs several times more on /proc, and Apply reads
// one file per bridge.
func ensureSysctl(s Sysctl) error {
	p := "/proc/sys/" + s.Path
	fd, err := unix.Open(p, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open sysctl %s: %w", s.Path, err)
	}
	defer func() { _ = unix.Close(fd) }()
	var buf [64]byte
	n, err := unix.Read(fd, buf[:])
	if err != nil {
		return fmt.Errorf("read sysctl %s: %w", s.Path, err)
	}
	if strings.TrimSpace(string(buf[:n])) == s.Value {
		return nil
	}
	if _, err := unix.Pwrite(fd, []byte(s.Value), 0); err != nil {
		return fmt.Errorf("set sysctl %s=%s: %w", s.Path, s.Value, err)
	}
	return nil
}

// do runs fn with the calling thread in the namespace. /proc/sys/net
// shows the namespace of the thread that opens a file there, so fn runs
// on a locked thread moved into the namespace and back; a thread that
// cannot move back is left locked, and Go ends it with the goroutine.
func (n *netNS) do(fn func() error) error {
	if n.fd == 0 {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open current network namespace: %w", err)
			return
		}
		defer func() { _ = unix.Close(orig) }()
		if err := unix.Setns(n.fd, syscall.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter network namespace %s: %w", n.path, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(orig, syscall.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("leave network namespace %s: %w", n.path, err))
			return // thread stays locked and dies with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
