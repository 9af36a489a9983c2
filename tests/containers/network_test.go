package containers_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/internal/testutil"
)

// fetch is a shell command that fetches url within 5 seconds. timeout
// must not be the container's PID 1, which SIGTERM does not end.
// (nor may a shell that execs it as its last command).
func fetch(url string) string { return "timeout 5 wget -q -O - " + url + "; exit $?" }

// netImage is a busybox image with a page for httpd under /www.
func netImage(s *store) {
	s.busyboxImage("bb", map[string]string{"www/index.html": "hello from berth\n"})
}

// ipOf is a container's address on its first network.
func ipOf(s *store, name string) string {
	s.t.Helper()
	return s.field(name, "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}")
}

// freePort asks the kernel for a free TCP port on 127.0.0.1.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// httpd starts a detached busybox httpd serving /www on port 80.
func httpd(s *store, name string, args ...string) {
	s.t.Helper()
	run := append([]string{"run", "-d", "--name", name}, args...)
	s.must(append(run, "bb", "httpd", "-f", "-p", "80", "-h", "/www")...)
}

// reach runs a throwaway container on network that fetches url with
// wget; it returns the output and whether it worked.
func reach(s *store, network, url string) (string, bool) {
	s.t.Helper()
	out, errOut, code := s.run(nil, "run", "--rm", "--network", network, "bb", "sh", "-c", fetch(url))
	return out + errOut, code == 0
}

func TestNetworkContainersTalkByName(t *testing.T) {
	s := newStore(t)
	netImage(s)
	s.must("network", "create", "app")
	httpd(s, "web", "--network", "app", "--network-alias", "frontend")

	for _, name := range []string{"web", "frontend"} {
		out, ok := reach(s, "app", "http://"+name+"/")
		assert.True(t, ok, "by %s: %s", name, out)
		assert.Equal(t, "hello from berth\n", out)
	}
	// The resolver forwards nothing it does not know to containers: an
	// unknown name fails.
	_, ok := reach(s, "app", "http://nosuchname/")
	assert.False(t, ok)
	// resolv.conf names the network's gateway; /etc/hosts the container.
	gw := s.field("web", `{{(index .NetworkSettings.Networks "app").Gateway}}`)
	out := s.must("run", "--rm", "--network", "app", "--hostname", "me", "bb", "cat", "/etc/resolv.conf", "/etc/hosts")
	assert.Contains(t, out, "nameserver "+gw)
	assert.Regexp(t, `\n172\.[0-9.]+\tme\n|\n[0-9.]+\tme\n`, out)

	// A killed resolver is started again by the next reconcile.
	killed := 0
	for _, pid := range s.processes() {
		if cmdline, _ := os.ReadFile("/proc/" + pid + "/cmdline"); strings.HasPrefix(string(cmdline), "berth-dns\x00") {
			require.NoError(t, exec.Command("kill", "-9", pid).Run())
			killed++
		}
	}
	require.Equal(t, 1, killed, "one resolver per store")
	s.must("network", "ls")
	out, ok = reach(s, "app", "http://web/")
	assert.True(t, ok, "after the resolver was killed: %s", out)
}

func TestNetworkPublishedPortOnLoopback(t *testing.T) {
	s := newStore(t)
	netImage(s)
	port := freePort(t)
	httpd(s, "pub", "-p", fmt.Sprintf("127.0.0.1:%d:80", port))

	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	body := httpGet(t, url)
	assert.Equal(t, "hello from berth\n", body)
	assert.Equal(t, fmt.Sprintf("80/tcp -> 127.0.0.1:%d\n", port), s.must("port", "pub"))
	assert.Contains(t, s.must("ps"), fmt.Sprintf("127.0.0.1:%d->80/tcp", port))
	assert.Equal(t, fmt.Sprint(port), s.field("pub", `{{range $p, $b := .NetworkSettings.Ports}}{{range $b}}{{.HostPort}}{{end}}{{end}}`))

	// The same port again is refused, and nothing of the second is left.
	errOut := s.fails(125, "run", "-d", "--name", "again", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), "bb", "sleep", "60")
	assert.Contains(t, errOut, "port is already allocated")
	assert.Equal(t, "created", s.field("again", "{{.State.Status}}"))

	// A host process on a port makes publishing there fail.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	busy := l.Addr().(*net.TCPAddr).Port
	errOut = s.fails(125, "run", "-d", "-p", fmt.Sprintf("127.0.0.1:%d:80", busy), "bb", "sleep", "60")
	assert.Contains(t, errOut, "address already in use")

	// -P picks a port from the ephemeral range for each exposed port.
	s.must("run", "-d", "--name", "all", "-P", "--expose", "80", "bb", "httpd", "-f", "-p", "80", "-h", "/www")
	line := strings.TrimSpace(s.must("port", "all", "80"))
	_, p, err := net.SplitHostPort(line)
	require.NoError(t, err, line)
	assert.Equal(t, "hello from berth\n", httpGet(t, "http://127.0.0.1:"+p+"/"))
	// Hairpin: another container on the same bridge reaches it through a
	// host address (its gateway) and the published port.
	gw := s.field("all", `{{(index .NetworkSettings.Networks "bridge").Gateway}}`)
	out, ok := reach(s, "bridge", "http://"+gw+":"+p+"/")
	assert.True(t, ok, "hairpin through %s:%s: %s", gw, p, out)
	assert.Equal(t, "hello from berth\n", out)

	s.must("rm", "-f", "pub")
	_, err = (&http.Client{Timeout: 2 * time.Second}).Get(url)
	assert.Error(t, err, "the port still answers after rm")
	assert.NotContains(t, nftTable(t, s.root), fmt.Sprintf("dport %d", port))
}

// httpGet fetches url from the host, retrying for a few seconds while the
// server starts.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	var lastErr error
	for range 25 {
		resp, err := client.Get(url)
		if err == nil {
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, rerr)
			return string(b)
		}
		lastErr = err
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("GET %s: %v", url, lastErr)
	return ""
}

// nftTable lists the store's firewall table ("" when there is none).
func nftTable(t *testing.T, root string) string {
	t.Helper()
	for _, name := range hostTables(root) {
		out, err := exec.Command("nft", "list", "table", "inet", name).CombinedOutput()
		if err == nil {
			return string(out)
		}
	}
	return ""
}

func hostTables(root string) []string {
	left := hostNetworking(root)
	var names []string
	for _, l := range left {
		if name, ok := strings.CutPrefix(l, "nftables table inet "); ok {
			names = append(names, name)
		}
	}
	return names
}

func TestNetworksAreIsolated(t *testing.T) {
	s := newStore(t)
	netImage(s)
	s.must("network", "create", "a")
	s.must("network", "create", "b")
	httpd(s, "in-a", "--network", "a")
	httpd(s, "in-b", "--network", "b")
	ipA, ipB := strings.TrimSpace(ipOf(s, "in-a")), strings.TrimSpace(ipOf(s, "in-b"))

	out, ok := reach(s, "a", "http://"+ipA+"/")
	assert.True(t, ok, "same network: %s", out)
	out, ok = reach(s, "a", "http://"+ipB+"/")
	assert.False(t, ok, "network a reached b: %s", out)
	out, ok = reach(s, "b", "http://"+ipA+"/")
	assert.False(t, ok, "network b reached a: %s", out)
}

func TestInternalNetworkHasNoWayOut(t *testing.T) {
	s := newStore(t)
	netImage(s)
	outside := outsideServer(t)
	s.must("network", "create", "open")
	s.must("network", "create", "--internal", "closed")

	out, ok := reach(s, "open", "http://"+outside+"/")
	assert.True(t, ok, "a normal network reaches out: %s", out)
	out, ok = reach(s, "closed", "http://"+outside+"/")
	assert.False(t, ok, "an internal network reached out: %s", out)
	routes := s.must("run", "--rm", "--network", "closed", "bb", "ip", "route")
	assert.NotContains(t, routes, "default")
}

// outsideServer makes a network namespace beyond the host, reached
// through a veth with addresses of the test's own, runs an HTTP server
// there, and returns its address.
func outsideServer(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("berthout%d", os.Getpid()%100000)
	host, peer := "bto"+fmt.Sprint(os.Getpid()%100000), "btp"+fmt.Sprint(os.Getpid()%100000)
	sh := func(args ...string) {
		t.Helper()
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		require.NoError(t, err, "%v: %s", args, out)
	}
	sh("ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	sh("ip", "link", "add", host, "type", "veth", "peer", "name", peer)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", host).Run() })
	sh("ip", "link", "set", peer, "netns", name)
	sh("ip", "addr", "add", "198.18.77.1/30", "dev", host)
	sh("ip", "link", "set", host, "up")
	sh("ip", "-n", name, "addr", "add", "198.18.77.2/30", "dev", peer)
	sh("ip", "-n", name, "link", "set", peer, "up")
	sh("ip", "-n", name, "link", "set", "lo", "up")
	www := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(www, "index.html"), []byte("outside\n"), 0o644))
	srv := exec.Command("ip", "netns", "exec", name, "busybox", "httpd", "-f", "-p", "80", "-h", www)
	require.NoError(t, srv.Start())
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	return "198.18.77.2"
}

func TestContainerFirewallRules(t *testing.T) {
	s := newStore(t)
	netImage(s)
	s.must("network", "create", "app")
	httpd(s, "web", "--network", "app")
	httpd(s, "guarded", "--network", "app", "--firewall", "direction=ingress,action=deny,proto=tcp,port=80")
	web, guarded := strings.TrimSpace(ipOf(s, "web")), strings.TrimSpace(ipOf(s, "guarded"))

	// Egress: a deny rule for web's port 80 blocks it, and only it.
	deny := "direction=egress,action=deny,cidr=" + web + "/32,proto=tcp,port=80"
	_, errOut, code := s.run(nil, "run", "--rm", "--network", "app", "--firewall", deny, "bb",
		"sh", "-c", fetch("http://"+web+"/"))
	assert.NotEqual(t, 0, code, "the denied fetch worked: %s", errOut)
	out := s.must("run", "--rm", "--network", "app", "--firewall", deny, "bb", "ping", "-c1", "-W2", web)
	assert.Contains(t, out, "1 packets received")

	// Ingress: guarded's port 80 is closed to everyone, its ping is not.
	out, ok := reach(s, "app", "http://"+guarded+"/")
	assert.False(t, ok, "reached a port an ingress rule denies: %s", out)
	out = s.must("run", "--rm", "--network", "app", "bb", "ping", "-c1", "-W2", guarded)
	assert.Contains(t, out, "1 packets received")

	// A default policy: egress denied, one allow rule.
	out = s.must("run", "--rm", "--network", "app", "--firewall-default", "egress=deny",
		"--firewall", "direction=egress,action=allow,cidr="+web+"/32,proto=tcp,port=80", "bb",
		"sh", "-c", fetch("http://"+web+"/"))
	assert.Equal(t, "hello from berth\n", out)

	// inspect shows them.
	assert.Equal(t, "[direction=ingress,action=deny,proto=tcp,port=80] ingress=allow,egress=allow",
		s.field("guarded", "{{.Firewall.Rules}} {{.Firewall.Default}}"))
	// Bad rules are refused at create.
	errOut = s.fails(125, "run", "--rm", "--network", "app", "--firewall", "direction=sideways,action=deny", "bb", "true")
	assert.Contains(t, errOut, "direction")
	errOut = s.fails(125, "run", "--rm", "--network", "none", "--firewall", deny, "bb", "true")
	assert.Contains(t, errOut, "conflicting options")
}

func TestNetworkRoutesAndAddresses(t *testing.T) {
	s := newStore(t)
	netImage(s)
	s.must("network", "create", "--subnet", "10.231.0.0/24", "--gateway", "10.231.0.254", "fixed")
	out := s.must("run", "--rm", "--network", "fixed", "--ip", "10.231.0.77", "--mac-address", "02:00:00:aa:bb:cc",
		"--route", "192.0.2.0/24,via=10.231.0.9", "--add-host", "gw:host-gateway", "bb",
		"sh", "-c", "ip addr show eth0; ip route; cat /etc/hosts")
	assert.Contains(t, out, "inet 10.231.0.77/24")
	assert.Contains(t, out, "02:00:00:aa:bb:cc")
	assert.Contains(t, out, "default via 10.231.0.254")
	assert.Contains(t, out, "192.0.2.0/24 via 10.231.0.9")
	assert.Contains(t, out, "10.231.0.254\tgw")

	// An address outside the subnet, or taken, is refused.
	errOut := s.fails(125, "run", "--rm", "--network", "fixed", "--ip", "10.9.9.9", "bb", "true")
	assert.Contains(t, errOut, "10.9.9.9")
	s.must("run", "-d", "--name", "holder", "--network", "fixed", "--ip", "10.231.0.5", "bb", "sleep", "60")
	_, errOut, code := s.run(nil, "run", "--rm", "--network", "fixed", "--ip", "10.231.0.5", "bb", "true")
	assert.NotEqual(t, 0, code)
	assert.Contains(t, errOut, "10.231.0.5")
}

func TestNetworkConnectDisconnect(t *testing.T) {
	s := newStore(t)
	netImage(s)
	s.must("network", "create", "one")
	s.must("network", "create", "two")
	s.must("run", "-d", "--name", "cc", "--network", "one", "bb", "sleep", "120")
	httpd(s, "peer", "--network", "two")

	s.must("network", "connect", "--alias", "cee", "two", "cc")
	links := s.must("exec", "cc", "ip", "-o", "link")
	assert.Contains(t, links, "eth1")
	out := s.must("exec", "cc", "sh", "-c", fetch("http://peer/"))
	assert.Equal(t, "hello from berth\n", out)
	inspect := s.must("network", "inspect", "two")
	assert.Contains(t, inspect, `"Name": "cc"`)

	s.fails(1, "network", "rm", "two")
	s.must("network", "disconnect", "two", "cc")
	assert.NotContains(t, s.must("exec", "cc", "ip", "-o", "link"), "eth1")
	s.fails(1, "network", "disconnect", "two", "cc")
}

func TestNetworkNothingLeftAfterRmAndCrash(t *testing.T) {
	s := newStore(t)
	netImage(s)
	s.must("network", "create", "app")
	port := freePort(t)
	id := strings.TrimSpace(s.must("run", "-d", "--network", "app", "-p", fmt.Sprintf("127.0.0.1:%d:80", port),
		"bb", "httpd", "-f", "-p", "80", "-h", "/www"))
	hostIf := vethOf(t, s, id)
	require.True(t, linkExists(hostIf), "veth %s of the running container", hostIf)
	s.must("rm", "-f", id)
	// The kernel deletes the veths of a namespace that died in the
	// background, within moments.
	s.waitFor(5*time.Second, "veth "+hostIf+" deleted after rm", func() bool { return !linkExists(hostIf) })
	assertNoNetworkLeft(t, s, port)

	// A crash: the monitor and the container killed, nothing told. The
	// next berth command puts the host right.
	id = strings.TrimSpace(s.must("run", "-d", "--network", "app", "-p", fmt.Sprintf("127.0.0.1:%d:80", port),
		"bb", "httpd", "-f", "-p", "80", "-h", "/www"))
	hostIf = vethOf(t, s, id)
	mon := s.field(id, "{{.State.Pid}}")
	for _, pid := range append(s.monitors(), mon) {
		_ = exec.Command("kill", "-9", pid).Run()
	}
	s.must("network", "ls")
	s.waitFor(5*time.Second, "veth "+hostIf+" deleted after a crash", func() bool { return !linkExists(hostIf) })
	assertNoNetworkLeft(t, s, port)
	assert.Equal(t, "exited", s.field(id, "{{.State.Status}}"))
	// The address is free again: the next container gets the same one.
	s.must("rm", id)
}

// vethOf finds the host end of a container's first endpoint: the veth
// whose peer index is eth0's inside.
func vethOf(t *testing.T, s *store, id string) string {
	t.Helper()
	out := s.must("exec", id, "cat", "/sys/class/net/eth0/iflink")
	idx := strings.TrimSpace(out)
	ifs, err := net.Interfaces()
	require.NoError(t, err)
	for _, i := range ifs {
		if fmt.Sprint(i.Index) == idx {
			return i.Name
		}
	}
	t.Fatalf("no host interface with index %s", idx)
	return ""
}

func linkExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

// assertNoNetworkLeft checks that the store holds no published port, no
// network namespace and no address allocation of a running container.
func assertNoNetworkLeft(t *testing.T, s *store, port int) {
	t.Helper()
	assert.NotContains(t, nftTable(t, s.root), fmt.Sprintf("dport %d", port))
	ents, _ := os.ReadDir(filepath.Join(s.root, "netns"))
	assert.Empty(t, ents, "network namespaces left")
	assert.Contains(t, s.must("network", "inspect", "--format", "{{len .Containers}}", "app"), "0")
}

func TestNetworkCommands(t *testing.T) {
	s := newStore(t)
	testutil.RequiresRoot(t)
	out := s.must("network", "ls", "--format", "{{.Name}} {{.Driver}}")
	assert.Equal(t, "bridge bridge\nhost host\nnone null\n", sortLines(out, false))
	id := strings.TrimSpace(s.must("network", "create", "--subnet", "10.232.0.0/24", "--ip-range", "10.232.0.128/25",
		"-o", "mtu=1400", "--label", "team=a", "lab"))
	assert.Len(t, id, 64)
	assert.Equal(t, "10.232.0.0/24 10.232.0.128/25 10.232.0.128 1400",
		strings.TrimSpace(s.must("network", "inspect", "--format",
			`{{range .IPAM.Config}}{{.Subnet}} {{.IPRange}} {{.Gateway}}{{end}} {{index .Options "com.docker.network.driver.mtu"}}`, "lab")))
	errOut := s.fails(1, "network", "create", "--subnet", "10.232.0.0/25", "other")
	assert.Contains(t, errOut, "overlaps")
	errOut = s.fails(1, "network", "create", "lab")
	assert.Contains(t, errOut, "already exists")
	errOut = s.fails(1, "network", "rm", "bridge")
	assert.Contains(t, errOut, "pre-defined")
	s.must("network", "create", "spare")
	assert.Equal(t, "Deleted Networks:\nlab\nspare\n\n", s.must("network", "prune", "--force"))
	assert.NotContains(t, s.must("network", "ls"), "lab")
}

// sortLines sorts output lines (descending with rev) for order-free
// comparisons.
func sortLines(s string, rev bool) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := range lines {
		for j := i + 1; j < len(lines); j++ {
			if (lines[j] < lines[i]) != rev {
				lines[i], lines[j] = lines[j], lines[i]
			}
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

// TestNetworkAfterReboot simulates a machine that went down with
// containers running: their processes, veths, bridges and firewall are
// gone, the store still records them running. The first start after the
// reboot puts the host right and recreates what is missing.
func TestNetworkAfterReboot(t *testing.T) {
	s := newStore(t)
	netImage(s)
	s.must("network", "create", "app")
	port := freePort(t)
	old := strings.TrimSpace(s.must("run", "-d", "--network", "app", "-p", fmt.Sprintf("127.0.0.1:%d:80", port),
		"bb", "httpd", "-f", "-p", "80", "-h", "/www"))
	appBridge := s.field("app", "{{index .Options \"com.docker.network.bridge.name\"}}")
	// The crash: every process killed, links and rules gone, boot id new.
	pid := s.field(old, "{{.State.Pid}}")
	for _, p := range append(s.monitors(), pid) {
		_ = exec.Command("kill", "-9", p).Run()
	}
	for _, br := range []string{appBridge} {
		out, err := exec.Command("ip", "link", "del", br).CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	for _, table := range hostTables(s.root) {
		out, err := exec.Command("nft", "delete", "table", "inet", table).CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	require.NoError(t, os.WriteFile(filepath.Join(s.root, "network", "boot-id"), []byte("an earlier boot\n"), 0o600))

	// A new container on the same network and port starts and is reached.
	httpd(s, "after", "--network", "app", "-p", fmt.Sprintf("127.0.0.1:%d:80", port))
	assert.Equal(t, "hello from berth\n", httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port)))
	assert.Equal(t, "exited", s.field(old, "{{.State.Status}}"))
	assert.True(t, linkExists(appBridge), "bridge %s recreated", appBridge)
	ents, _ := os.ReadDir(filepath.Join(s.root, "netns"))
	assert.Len(t, ents, 1, "only the new container's namespace")
}

// TestNetworkQuickRestart stops and starts a container at once, many
// times: its veth of the last run may still be going when the next needs
// the same name.
func TestNetworkQuickRestart(t *testing.T) {
	s := newStore(t)
	netImage(s)
	s.must("network", "create", "app")
	s.must("run", "-d", "--name", "rs", "--network", "app", "bb", "sleep", "600")
	ip := ipOf(s, "rs")
	for range 5 {
		s.must("stop", "-t", "0", "rs")
		s.must("start", "rs")
		assert.Equal(t, ip, ipOf(s, "rs"), "the lowest free address again")
	}
	assert.Contains(t, s.must("exec", "rs", "ip", "-o", "addr", "show", "eth0"), strings.TrimSpace(ip))
}

func TestNetworkContainerModeAndDNSFlags(t *testing.T) {
	s := newStore(t)
	netImage(s)
	s.must("network", "create", "app")
	s.must("run", "-d", "--name", "owner", "--network", "app", "bb", "sleep", "600")
	ip := strings.TrimSpace(ipOf(s, "owner"))
	out := s.must("run", "--rm", "--network", "container:owner", "bb", "ip", "-o", "addr", "show", "eth0")
	assert.Contains(t, out, "inet "+ip+"/", "the joiner sees the owner's interface")

	// On a user network resolv.conf keeps the embedded resolver and takes
	// the search domains and options; --dns goes to the resolver instead.
	out = s.must("run", "--rm", "--network", "app", "--dns", "192.0.2.53", "--dns-search", "corp.example",
		"--dns-option", "ndots:2", "bb", "cat", "/etc/resolv.conf")
	gw := s.field("owner", `{{(index .NetworkSettings.Networks "app").Gateway}}`)
	assert.Contains(t, out, "nameserver "+gw)
	assert.NotContains(t, out, "192.0.2.53")
	assert.Contains(t, out, "search corp.example")
	assert.Contains(t, out, "ndots:2")
	// On the default bridge --dns is the nameserver itself.
	out = s.must("run", "--rm", "--dns", "192.0.2.53", "bb", "cat", "/etc/resolv.conf")
	assert.Contains(t, out, "nameserver 192.0.2.53")
}

func TestNetworkPublishesUDPAndRanges(t *testing.T) {
	s := newStore(t)
	// busybox has no UDP server: a static one, built for the test.
	s.busyboxImage("bb", map[string]string{"www/index.html": "hello from berth\n", "udpecho": udpServer(t)})
	port := freeUDPPort(t)
	s.must("run", "-d", "--name", "udp", "-p", fmt.Sprintf("127.0.0.1:%d:9999/udp", port), "bb", "sh", "-c", "chmod +x /udpecho && exec /udpecho")
	s.waitFor(5*time.Second, "the datagram to arrive", func() bool {
		conn, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			_, _ = conn.Write([]byte("ping over udp\n"))
			conn.Close()
		}
		out, _, _ := s.run(nil, "logs", "udp")
		return strings.Contains(out, "ping over udp")
	})
	assert.Equal(t, fmt.Sprintf("9999/udp -> 127.0.0.1:%d\n", port), s.must("port", "udp"))

	// A range maps port by port.
	first := freePort(t)
	s.must("run", "-d", "--name", "rng", "-p", fmt.Sprintf("127.0.0.1:%d-%d:80-81", first, first+1), "bb", "httpd", "-f", "-p", "81", "-h", "/www")
	out := s.must("port", "rng")
	assert.Contains(t, out, fmt.Sprintf("80/tcp -> 127.0.0.1:%d", first))
	assert.Contains(t, out, fmt.Sprintf("81/tcp -> 127.0.0.1:%d", first+1))
	assert.Equal(t, "hello from berth\n", httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", first+1)))
}

// udpServer builds a static program that prints every datagram it gets
// on UDP port 9999, and returns the binary.
func udpServer(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src := `package main

import (
	"fmt"
	"net"
)

func main() {
	c, err := net.ListenPacket("udp", ":9999")
	if err != nil {
		panic(err)
	}
	buf := make([]byte, 1500)
	for {
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			panic(err)
		}
		fmt.Print(string(buf[:n]))
	}
}
`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module udpecho\n\ngo 1.22\n"), 0o644))
	cmd := exec.Command("go", "build", "-o", "udpecho", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	bin, err := os.ReadFile(filepath.Join(dir, "udpecho"))
	require.NoError(t, err)
	return string(bin)
}

// freeUDPPort asks the kernel for a free UDP port on 127.0.0.1.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// TestNetworkIPv6 gives a network an IPv6 subnet: its containers get an
// address there and a default route through the gateway, and reach each
// other by name over IPv6.
func TestNetworkIPv6(t *testing.T) {
	s := newStore(t)
	netImage(s)
	s.must("network", "create", "--ipv6", "--subnet", "fd00:77:1::/64", "six")
	assert.Contains(t, s.must("network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}} {{end}}", "six"), "fd00:77:1::/64")
	httpd(s, "web6", "--network", "six")
	ip6 := s.field("web6", `{{(index .NetworkSettings.Networks "six").GlobalIPv6Address}}`)
	require.True(t, strings.HasPrefix(ip6, "fd00:77:1::"), "address %q", ip6)
	out := s.must("run", "--rm", "--network", "six", "bb", "sh", "-c", "ip -6 route; ping -6 -c1 -W2 "+ip6)
	assert.Contains(t, out, "default via fd00:77:1::1")
	assert.Contains(t, out, "1 packets received")
	got, ok := reach(s, "six", "http://["+ip6+"]/")
	assert.True(t, ok, "http over IPv6: %s", got)
}
