package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/sys/capability"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/engine/specgen"
	"github.com/berth-containers/berth/engine/state"
	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/network/firewall"
	"github.com/berth-containers/berth/network/link"
)

// Values the run/create flags take when they are not given, as docker has
// them.
const (
	pullMissing       = "missing"
	pullAlways        = "always"
	pullNever         = "never"
	defaultDetachKeys = "ctrl-p,ctrl-q"
	// minMemory is the smallest --memory the kernel can run a container
	// in; docker refuses less with the same words.
	minMemory = 6 * 1024 * 1024
)

// runFlags holds the values of the run/create flags.
type runFlags struct {
	detach      bool // -d, which only run defines
	quiet       bool
	rm          bool
	interactive bool
	tty         bool
	sigProxy    bool
	attach      []string
	name        string
	pull        string
	platform    string
	detachKeys  string

	env, envFiles     []string
	labels, labelFile []string
	annotations       []string
	workdir, user     string
	entrypoint        string
	hostname, domain  string
	stopSignal        string
	stopTimeout       int
	init              bool
	restart           string
	cidfile           string
	runtime           string

	volumes     []string
	mounts      []mount.Mount
	tmpfs       []string
	volumesFrom []string
	readOnly    bool

	memory, memoryReservation, shmSize memBytes
	memorySwap                         memSwapBytes
	memorySwappiness                   int64
	cpus                               nanoCPUs
	cpuShares, cpuPeriod, cpuQuota     int64
	cpusetCpus, cpusetMems             string
	pidsLimit                          int64
	ulimits                            ulimitList
	oomScoreAdj                        int
	oomKillDisable                     bool
	cgroupParent                       string

	capAdd, capDrop []string
	privileged      bool
	securityOpt     []string
	devices         []string
	groupAdd        []string
	sysctls         []string
	ipc, pid, uts   string
	userns          string
	cgroupns        string

	healthCmd                                                     string
	healthInterval, healthTimeout, healthStart, healthStartInterv time.Duration
	healthRetries                                                 int
	noHealthcheck                                                 bool

	networks                   []string
	dns, dnsSearch, dnsOptions []string
	addHosts                   []string
	publish, expose            []string
	publishAll                 bool
	ip, ip6, macAddress        string
	networkAliases             []string
	firewall, firewallDefault  []string
	routes                     []string

	logDriver string
	logOpts   []string
}

// runRequest is everything the engine needs to create the container.
type runRequest struct {
	Name       string
	Config     *container.Config
	HostConfig *container.HostConfig
	Pull       string // "missing" (default), "always", "never"
	Platform   string // validated against this machine; empty if not given
	DetachKeys string // validated: comma-separated keys, default ctrl-p,ctrl-q
	// Detach is -d (run only): the CLI prints the id and leaves.
	Detach bool
	// SigProxy forwards the signals the CLI receives to the container.
	SigProxy bool
	// Attach lists the streams named with -a (lower case); empty means
	// the default, stdout and stderr (and stdin with -i).
	Attach []string
	// Quiet silences the pull progress.
	Quiet bool
	// NetworkingConfig holds --ip, --ip6, --mac-address and
	// --network-alias for the container's network; nil when none is given.
	NetworkingConfig *network.NetworkingConfig
	// Net holds berth's own --firewall, --firewall-default and --route.
	Net state.NetConfig
	// Warnings are told to the user before the container is created, as
	// docker prints the daemon's.
	Warnings []string
}

// addRunFlags defines the flags on fs (both run and create use it; run
// adds -d, bound to runFlags.detach; --rm is on both like docker).
func addRunFlags(fs *pflag.FlagSet) *runFlags {
	f := &runFlags{}
	// Everything after IMAGE is the container's command line, not ours.
	fs.SetInterspersed(false)
	// -h is --hostname, as in docker, so help gets no shorthand; defining
	// it here keeps cobra from claiming -h for itself.
	if fs.Lookup("help") == nil {
		fs.Bool("help", false, "Print usage")
	}

	fs.BoolVarP(&f.quiet, "quiet", "q", false, "Suppress the pull output")
	fs.BoolVar(&f.rm, "rm", false, "Automatically remove the container and its anonymous volumes when it exits")
	fs.BoolVarP(&f.interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	fs.BoolVarP(&f.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	fs.BoolVar(&f.sigProxy, "sig-proxy", true, "Proxy received signals to the process")
	checkedListVarP(fs, &f.attach, "attach", "a", "Attach to STDIN, STDOUT or STDERR", checkAttach)
	checkedStringVar(fs, &f.name, "name", "", "Assign a name to the container", checkContainerName)
	checkedStringVar(fs, &f.pull, "pull", pullMissing, `Pull image before running ("always", "missing", "never")`, checkPull)
	checkedStringVar(fs, &f.platform, "platform", os.Getenv("DOCKER_DEFAULT_PLATFORM"),
		"Set platform (this machine's only: berth does not emulate)", func(s string) error {
			_, err := parsePlatform(s)
			return err
		})
	checkedStringVar(fs, &f.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container", func(s string) error {
		_, err := parseDetachKeys(s)
		return err
	})

	// Process.
	checkedListVarP(fs, &f.env, "env", "e", "Set environment variables", checkEnv)
	checkedListVar(fs, &f.envFiles, "env-file", "Read in a file of environment variables", nil)
	fs.StringVarP(&f.workdir, "workdir", "w", "", "Working directory inside the container")
	fs.StringVarP(&f.user, "user", "u", "", "Username or UID (format: <name|uid>[:<group|gid>])")
	fs.StringVar(&f.entrypoint, "entrypoint", "", "Overwrite the default ENTRYPOINT of the image")
	fs.StringVarP(&f.hostname, "hostname", "h", "", "Container host name")
	fs.StringVar(&f.domain, "domainname", "", "Container NIS domain name")
	checkedStringVar(fs, &f.stopSignal, "stop-signal", "", "Signal to stop the container", checkStopSignal)
	fs.IntVar(&f.stopTimeout, "stop-timeout", 0, "Timeout (in seconds) to stop a container")
	fs.BoolVar(&f.init, "init", false, "Run an init inside the container that forwards signals and reaps processes")
	checkedStringVar(fs, &f.restart, "restart", string(container.RestartPolicyDisabled), "Restart policy to apply when a container exits", func(s string) error {
		_, err := parseRestart(s)
		return err
	})
	fs.StringVar(&f.cidfile, "cidfile", "", "Write the container ID to the file")
	checkedStringVar(fs, &f.runtime, "runtime", "", "Runtime to use for this container (berth only)", checkRuntime)

	// Metadata.
	checkedListVarP(fs, &f.labels, "label", "l", "Set meta data on a container", checkLabel)
	checkedListVar(fs, &f.labelFile, "label-file", "Read in a line delimited file of labels", nil)
	checkedListVar(fs, &f.annotations, "annotation", "Add an annotation to the container (passed through to the OCI runtime)", checkAnnotation)

	// Storage.
	checkedListVarP(fs, &f.volumes, "volume", "v", "Bind mount a volume", checkVolume)
	fs.Var(&mountList{mounts: &f.mounts}, "mount", "Attach a filesystem mount to the container")
	checkedListVar(fs, &f.tmpfs, "tmpfs", "Mount a tmpfs directory", checkTmpfs)
	checkedListVar(fs, &f.volumesFrom, "volumes-from", "Mount volumes from the specified container(s)", checkNonEmpty)
	fs.BoolVar(&f.readOnly, "read-only", false, "Mount the container's root filesystem as read only")

	// Resources.
	fs.VarP(&f.memory, "memory", "m", "Memory limit")
	fs.Var(&f.memoryReservation, "memory-reservation", "Memory soft limit")
	fs.Var(&f.memorySwap, "memory-swap", "Swap limit equal to memory plus swap: '-1' to enable unlimited swap")
	fs.Int64Var(&f.memorySwappiness, "memory-swappiness", -1, "Tune container memory swappiness (0 to 100)")
	fs.Var(&f.shmSize, "shm-size", "Size of /dev/shm")
	fs.Var(&f.cpus, "cpus", "Number of CPUs")
	fs.Int64VarP(&f.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fs.Int64Var(&f.cpuPeriod, "cpu-period", 0, "Limit CPU CFS (Completely Fair Scheduler) period")
	fs.Int64Var(&f.cpuQuota, "cpu-quota", 0, "Limit CPU CFS (Completely Fair Scheduler) quota")
	checkedStringVar(fs, &f.cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)", checkCPUSet)
	checkedStringVar(fs, &f.cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)", checkCPUSet)
	fs.Int64Var(&f.pidsLimit, "pids-limit", 0, "Tune container pids limit (set -1 for unlimited)")
	fs.Var(&f.ulimits, "ulimit", "Ulimit options")
	fs.IntVar(&f.oomScoreAdj, "oom-score-adj", 0, "Tune host's OOM preferences (-1000 to 1000)")
	fs.BoolVar(&f.oomKillDisable, "oom-kill-disable", false, "Disable OOM Killer")
	fs.StringVar(&f.cgroupParent, "cgroup-parent", "", "Optional parent cgroup for the container")

	// Security and namespaces.
	checkedListVar(fs, &f.capAdd, "cap-add", "Add Linux capabilities", checkCapability)
	checkedListVar(fs, &f.capDrop, "cap-drop", "Drop Linux capabilities", checkCapability)
	fs.BoolVar(&f.privileged, "privileged", false, "Give extended privileges to this container")
	checkedListVar(fs, &f.securityOpt, "security-opt", "Security Options", checkSecurityOpt)
	checkedListVar(fs, &f.devices, "device", "Add a host device to the container", checkDevice)
	checkedListVar(fs, &f.groupAdd, "group-add", "Add additional groups to join", checkNonEmpty)
	checkedListVar(fs, &f.sysctls, "sysctl", "Sysctl options", checkSysctl)
	checkedStringVar(fs, &f.ipc, "ipc", "", "IPC mode to use", checkIpcMode)
	checkedStringVar(fs, &f.pid, "pid", "", "PID namespace to use", checkPidMode)
	checkedStringVar(fs, &f.uts, "uts", "", "UTS namespace to use", checkUTSMode)
	checkedStringVar(fs, &f.userns, "userns", "", `User namespace to use ("host" or empty)`, checkUsernsMode)
	checkedStringVar(fs, &f.cgroupns, "cgroupns", "", `Cgroup namespace to use (host|private)`, checkCgroupnsMode)

	// Health.
	fs.StringVar(&f.healthCmd, "health-cmd", "", "Command to run to check health")
	fs.DurationVar(&f.healthInterval, "health-interval", 0, "Time between running the check (ms|s|m|h) (default 0s)")
	fs.IntVar(&f.healthRetries, "health-retries", 0, "Consecutive failures needed to report unhealthy")
	fs.DurationVar(&f.healthTimeout, "health-timeout", 0, "Maximum time to allow one check to run (ms|s|m|h) (default 0s)")
	fs.DurationVar(&f.healthStart, "health-start-period", 0, "Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)")
	fs.DurationVar(&f.healthStartInterv, "health-start-interval", 0, "Time between running the check during the start period (ms|s|m|h) (default 0s)")
	fs.BoolVar(&f.noHealthcheck, "no-healthcheck", false, "Disable any container-specified HEALTHCHECK")

	// Network. --net and --dns-opt are docker's older spellings, kept
	// hidden as docker keeps them.
	nets := &checkedList{list: &f.networks, check: checkNetwork}
	fs.Var(nets, "network", "Connect a container to a network")
	fs.Var(nets, "net", "Connect a container to a network")
	_ = fs.MarkHidden("net")
	checkedListVar(fs, &f.dns, "dns", "Set custom DNS servers", checkIPAddress)
	checkedListVar(fs, &f.dnsSearch, "dns-search", "Set custom DNS search domains", checkDNSSearch)
	dnsOpts := &checkedList{list: &f.dnsOptions}
	fs.Var(dnsOpts, "dns-option", "Set DNS options")
	fs.Var(dnsOpts, "dns-opt", "Set DNS options")
	_ = fs.MarkHidden("dns-opt")
	checkedListVar(fs, &f.addHosts, "add-host", "Add a custom host-to-IP mapping (host:ip)", checkExtraHost)
	checkedListVarP(fs, &f.publish, "publish", "p", "Publish a container's port(s) to the host", checkPublish)
	fs.BoolVarP(&f.publishAll, "publish-all", "P", false, "Publish all exposed ports to random ports")
	checkedListVar(fs, &f.expose, "expose", "Expose a port or a range of ports", checkExpose)
	checkedStringVar(fs, &f.ip, "ip", "", "IPv4 address (e.g., 172.30.100.104)", checkIPv4)
	checkedStringVar(fs, &f.ip6, "ip6", "", "IPv6 address (e.g., 2001:db8::33)", checkIPv6)
	checkedStringVar(fs, &f.macAddress, "mac-address", "", "Container MAC address (e.g., 92:d0:c6:0a:29:33)", checkMAC)
	aliases := &checkedList{list: &f.networkAliases, check: checkNonEmpty}
	fs.Var(aliases, "network-alias", "Add network-scoped alias for the container")
	fs.Var(aliases, "net-alias", "Add network-scoped alias for the container")
	_ = fs.MarkHidden("net-alias")
	checkedListVar(fs, &f.firewall, "firewall",
		"Add a firewall rule inside the container, first match wins: "+
			"direction=ingress|egress,action=allow|deny[,cidr=PREFIX][,proto=tcp|udp|icmp][,port=N[-M]]", checkFirewallRule)
	checkedListVar(fs, &f.firewallDefault, "firewall-default",
		"Set the container's default firewall policy for traffic no --firewall rule matches "+
			"(e.g. egress=deny or ingress=deny,egress=allow; later values win per direction, default allow)", checkFirewallDefault)
	checkedListVar(fs, &f.routes, "route",
		"Add a route inside the container: DEST[,via=GATEWAY] (e.g. 10.9.0.0/16,via=172.18.0.5; without via, DEST is on-link)", checkRoute)

	// Logging.
	checkedStringVar(fs, &f.logDriver, "log-driver", "", "Logging driver for the container (json-file or none)", checkLogDriver)
	checkedListVar(fs, &f.logOpts, "log-opt", "Log driver options", checkLogOpt)
	return f
}

// parse builds the request from the flags plus the positional IMAGE
// [COMMAND [ARG...]]. Every error it returns is of class
// errdefs.ErrInvalidArgument: the user gave a bad or conflicting value
// (docker exits 125 then). Values checked as they were parsed fail in
// fs.Parse with pflag's "invalid argument" message instead.
func (f *runFlags) parse(fs *pflag.FlagSet, image string, args []string) (*runRequest, error) {
	req, err := f.build(fs, image, args)
	if err != nil {
		return nil, errdefs.Invalid("%w", err)
	}
	return req, nil
}

func (f *runFlags) build(fs *pflag.FlagSet, image string, args []string) (*runRequest, error) {
	if image == "" {
		return nil, errors.New("image name must not be empty")
	}
	detach := f.detach
	if detach && len(f.attach) > 0 {
		return nil, errors.New("conflicting options: cannot specify both --attach and --detach")
	}
	platform, err := parsePlatform(f.platform)
	if err != nil {
		return nil, fmt.Errorf("--platform: %w", err)
	}
	keys := f.detachKeys
	if keys == "" {
		keys = defaultDetachKeys
	}
	exposed, bindings, err := parsePortSpecs(f.publish)
	if err != nil {
		return nil, fmt.Errorf("--publish: %w", err)
	}
	config, err := f.config(fs, image, args, detach, exposed)
	if err != nil {
		return nil, err
	}
	hostConfig, err := f.hostConfig(fs, bindings)
	if err != nil {
		return nil, err
	}
	if hostConfig.AutoRemove && !hostConfig.RestartPolicy.IsNone() {
		return nil, errors.New("conflicting options: cannot specify both --restart and --rm")
	}
	warnings, err := f.checkNetworkMode(hostConfig)
	if err != nil {
		return nil, err
	}
	netConfig, err := f.networkingConfig(hostConfig.NetworkMode)
	if err != nil {
		return nil, err
	}
	berthNet, err := f.netConfig()
	if err != nil {
		return nil, err
	}
	// Anonymous volumes live in Config.Volumes, binds in HostConfig.Binds.
	for _, v := range f.volumes {
		bind, anonymous, err := parseVolume(v)
		if err != nil {
			return nil, fmt.Errorf("--volume: %w", err)
		}
		if anonymous {
			config.Volumes[bind] = struct{}{}
		} else if !slices.Contains(hostConfig.Binds, bind) {
			hostConfig.Binds = append(hostConfig.Binds, bind)
		}
	}
	pull := f.pull
	if pull == "" {
		pull = pullMissing
	}
	return &runRequest{
		Name:       strings.TrimPrefix(f.name, "/"),
		Config:     config,
		HostConfig: hostConfig,
		Pull:       pull,
		Platform:   platform,
		DetachKeys: keys,
		Detach:     detach,
		SigProxy:   f.sigProxy,
		Attach:     slices.Clone(f.attach),
		Quiet:      f.quiet,

		NetworkingConfig: netConfig,
		Net:              berthNet,
		Warnings:         warnings,
	}, nil
}

// ownStack reports whether mode gives the container a network stack of
// its own, with an interface berth configures: not none (no interface),
// host (the host's) or container:X (another container's).
func ownStack(mode container.NetworkMode) bool {
	return !mode.IsNone() && !mode.IsHost() && !mode.IsContainer()
}

// checkNetworkMode refuses the flags that need an interface of the
// container's own when the network mode gives it none, in docker's
// words where docker has them. Published ports under --network host are
// dropped with a warning, as docker does: the container's ports are the
// host's already.
func (f *runFlags) checkNetworkMode(hc *container.HostConfig) (warnings []string, err error) {
	mode := hc.NetworkMode
	if ownStack(mode) {
		return nil, nil
	}
	publishes := len(hc.PortBindings) > 0 || hc.PublishAllPorts
	switch {
	case mode.IsHost() && publishes:
		hc.PortBindings, hc.PublishAllPorts = network.PortMap{}, false
		warnings = append(warnings, "Published ports are discarded when using host network mode")
	case publishes:
		return nil, errors.New("conflicting options: port publishing and the container type network mode")
	case mode.IsContainer() && len(f.expose) > 0:
		return nil, errors.New("conflicting options: port exposing and the container type network mode")
	}
	for _, o := range []struct {
		name string
		set  bool
	}{
		{"ip", f.ip != ""},
		{"ip6", f.ip6 != ""},
		{"mac-address", f.macAddress != ""},
		{"network-alias", len(f.networkAliases) > 0},
		{"firewall", len(f.firewall) > 0},
		{"firewall-default", len(f.firewallDefault) > 0},
		{"route", len(f.routes) > 0},
	} {
		if o.set {
			return nil, fmt.Errorf("conflicting options: %s and the network mode", o.name)
		}
	}
	return warnings, nil
}

// networkingConfig builds the endpoint settings of the container's one
// network from --ip, --ip6, --mac-address and --network-alias; nil when
// none is given. The default network is keyed "bridge", its name.
func (f *runFlags) networkingConfig(mode container.NetworkMode) (*network.NetworkingConfig, error) {
	if f.ip == "" && f.ip6 == "" && f.macAddress == "" && len(f.networkAliases) == 0 {
		return nil, nil
	}
	name := string(mode)
	if mode.IsDefault() || name == "" {
		name = network.NetworkBridge
	}
	if name == network.NetworkBridge {
		// The default bridge has neither fixed addresses nor the DNS
		// server that would answer for aliases.
		if len(f.networkAliases) > 0 {
			return nil, errors.New("network-scoped aliases are only supported for user-defined networks")
		}
		if f.ip != "" || f.ip6 != "" {
			return nil, errors.New("user specified IP address is supported on user defined networks only")
		}
	}
	es, err := endpointSettings(f.ip, f.ip6, f.macAddress, f.networkAliases)
	if err != nil {
		return nil, err
	}
	return &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{name: es}}, nil
}

// endpointSettings builds what run and network connect ask of one
// network: fixed addresses, a MAC address and aliases (any may be empty).
func endpointSettings(ip, ip6, mac string, aliases []string) (*network.EndpointSettings, error) {
	es := &network.EndpointSettings{Aliases: slices.Clone(aliases)}
	if ip != "" || ip6 != "" {
		es.IPAMConfig = &network.EndpointIPAMConfig{}
	}
	if ip != "" {
		a, err := parseIPv4(ip)
		if err != nil {
			return nil, err
		}
		es.IPAMConfig.IPv4Address = a
	}
	if ip6 != "" {
		a, err := parseIPv6(ip6)
		if err != nil {
			return nil, err
		}
		es.IPAMConfig.IPv6Address = a
	}
	if mac != "" {
		hw, err := parseMAC(mac)
		if err != nil {
			return nil, err
		}
		es.MacAddress = network.HardwareAddr(hw)
	}
	return es, nil
}

// netConfig gathers berth's own network flags in their canonical text,
// which the engine parses again.
func (f *runFlags) netConfig() (state.NetConfig, error) {
	nc := state.NetConfig{Firewall: slices.Clone(f.firewall), Routes: slices.Clone(f.routes)}
	if len(f.firewallDefault) > 0 {
		p, err := firewall.ParseDefaults(f.firewallDefault...)
		if err != nil {
			return nc, fmt.Errorf("--firewall-default: %w", err)
		}
		nc.FirewallDefault = formatPolicy(p)
	}
	return nc, nil
}

// formatPolicy writes a default policy in the --firewall-default syntax,
// both directions named, so that the stored text says all of it.
func formatPolicy(p firewall.Policy) string {
	return firewall.Ingress.String() + "=" + p.Ingress.String() + "," +
		firewall.Egress.String() + "=" + p.Egress.String()
}

// config builds the portable half of the request, as docker's CLI does;
// exposed holds the ports -p published, --expose adds its own.
func (f *runFlags) config(fs *pflag.FlagSet, image string, args []string, detach bool, exposed network.PortSet) (*container.Config, error) {
	env, err := readKVFiles(f.envFiles, os.LookupEnv, "env")
	if err != nil {
		return nil, fmt.Errorf("--env-file: %w", err)
	}
	for _, e := range f.env {
		if e, ok := envFromCaller(e); ok {
			env = append(env, e)
		}
	}
	labelLines, err := readKVFiles(f.labelFile, nil, "label")
	if err != nil {
		return nil, fmt.Errorf("--label-file: %w", err)
	}
	labels := kvLinesMap(append(labelLines, f.labels...))

	for _, e := range f.expose {
		pr, err := parseExpose(e)
		if err != nil {
			return nil, fmt.Errorf("--expose: %w", err)
		}
		for p := range pr.All() {
			exposed[p] = struct{}{}
		}
	}

	health, err := f.healthcheck()
	if err != nil {
		return nil, err
	}

	c := &container.Config{
		Hostname:     f.hostname,
		Domainname:   f.domain,
		User:         f.user,
		ExposedPorts: exposed,
		Tty:          f.tty,
		OpenStdin:    f.interactive,
		Env:          env,
		Image:        image,
		Volumes:      map[string]struct{}{},
		WorkingDir:   f.workdir,
		Labels:       labels,
		StopSignal:   f.stopSignal,
		Healthcheck:  health,
	}
	if len(args) > 0 {
		c.Cmd = slices.Clone(args)
	}
	// An explicit --entrypoint "" clears the image's entrypoint; docker
	// says so to the engine with [""].
	if f.entrypoint != "" {
		c.Entrypoint = []string{f.entrypoint}
	} else if fs.Changed("entrypoint") {
		c.Entrypoint = []string{""}
	}
	if fs.Changed("stop-timeout") {
		t := f.stopTimeout
		c.StopTimeout = &t
	}

	// Streams: -a picks them; without -a, stdout and stderr, and stdin
	// with -i. A detached container has nothing attached.
	c.AttachStdin = f.interactive || slices.Contains(f.attach, "stdin")
	c.AttachStdout = len(f.attach) == 0 || slices.Contains(f.attach, "stdout")
	c.AttachStderr = len(f.attach) == 0 || slices.Contains(f.attach, "stderr")
	// Stdin given to an attached client closes when that client leaves.
	c.StdinOnce = c.OpenStdin && c.AttachStdin
	if detach {
		c.AttachStdin, c.AttachStdout, c.AttachStderr, c.StdinOnce = false, false, false, false
	}
	return c, nil
}

// healthcheck builds Config.Healthcheck: nil keeps the image's.
func (f *runFlags) healthcheck() (*container.HealthConfig, error) {
	have := f.healthCmd != "" || f.healthInterval != 0 || f.healthTimeout != 0 ||
		f.healthStart != 0 || f.healthStartInterv != 0 || f.healthRetries != 0
	if f.noHealthcheck {
		if have {
			return nil, errors.New("--no-healthcheck conflicts with --health-* options")
		}
		return &container.HealthConfig{Test: []string{"NONE"}}, nil
	}
	if !have {
		return nil, nil
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"--health-interval", f.healthInterval},
		{"--health-timeout", f.healthTimeout},
		{"--health-start-period", f.healthStart},
		{"--health-start-interval", f.healthStartInterv},
	} {
		if d.v < 0 {
			return nil, fmt.Errorf("%s cannot be negative", d.name)
		}
	}
	if f.healthRetries < 0 {
		return nil, errors.New("--health-retries cannot be negative")
	}
	h := &container.HealthConfig{
		Interval:      f.healthInterval,
		Timeout:       f.healthTimeout,
		StartPeriod:   f.healthStart,
		StartInterval: f.healthStartInterv,
		Retries:       f.healthRetries,
	}
	if f.healthCmd != "" {
		h.Test = []string{"CMD-SHELL", f.healthCmd}
	}
	return h, nil
}

// hostConfig builds the host-specific half of the request.
func (f *runFlags) hostConfig(fs *pflag.FlagSet, bindings network.PortMap) (*container.HostConfig, error) {
	resources, err := f.resources(fs)
	if err != nil {
		return nil, err
	}
	restart, err := parseRestart(f.restart)
	if err != nil {
		return nil, fmt.Errorf("--restart: %w", err)
	}
	logConfig, err := parseLogConfig(f.logDriver, f.logOpts)
	if err != nil {
		return nil, err
	}
	securityOpt, masked, readonly, err := parseSecurityOpts(f.securityOpt)
	if err != nil {
		return nil, err
	}
	if f.oomScoreAdj < -1000 || f.oomScoreAdj > 1000 {
		return nil, fmt.Errorf("--oom-score-adj: invalid value %d, range for oom score adj is [-1000, 1000]", f.oomScoreAdj)
	}
	netMode := network.NetworkDefault
	switch len(f.networks) {
	case 0:
	case 1:
		netMode = f.networks[0]
	default:
		return nil, fmt.Errorf("--network: one network only, got %s", strings.Join(f.networks, ", "))
	}
	var dns []netip.Addr
	for _, s := range f.dns {
		// Checked when the flag was parsed.
		dns = append(dns, netip.MustParseAddr(s))
	}
	tmpfs := map[string]string{}
	for _, t := range f.tmpfs {
		dst, opts, _ := strings.Cut(t, ":")
		tmpfs[path.Clean(dst)] = opts
	}
	h := &container.HostConfig{
		ContainerIDFile: f.cidfile,
		LogConfig:       logConfig,
		NetworkMode:     container.NetworkMode(netMode),
		PortBindings:    bindings,
		RestartPolicy:   restart,
		AutoRemove:      f.rm,
		VolumesFrom:     slices.Clone(f.volumesFrom),
		Annotations:     kvLinesMap(f.annotations),
		CapAdd:          slices.Clone(f.capAdd),
		CapDrop:         slices.Clone(f.capDrop),
		CgroupnsMode:    container.CgroupnsMode(f.cgroupns),
		// docker never sends nil DNS lists to the engine.
		DNS:             dns,
		DNSOptions:      append([]string{}, f.dnsOptions...),
		DNSSearch:       append([]string{}, f.dnsSearch...),
		ExtraHosts:      slices.Clone(f.addHosts),
		GroupAdd:        slices.Clone(f.groupAdd),
		IpcMode:         container.IpcMode(f.ipc),
		OomScoreAdj:     f.oomScoreAdj,
		PidMode:         container.PidMode(f.pid),
		Privileged:      f.privileged,
		PublishAllPorts: f.publishAll,
		ReadonlyRootfs:  f.readOnly,
		SecurityOpt:     securityOpt,
		Tmpfs:           tmpfs,
		UTSMode:         container.UTSMode(f.uts),
		UsernsMode:      container.UsernsMode(f.userns),
		ShmSize:         int64(f.shmSize),
		Sysctls:         kvLinesMap(f.sysctls),
		Runtime:         f.runtime,
		Resources:       resources,
		Mounts:          slices.Clone(f.mounts),
		MaskedPaths:     masked,
		ReadonlyPaths:   readonly,
	}
	if fs.Changed("init") {
		v := f.init
		h.Init = &v
	}
	return h, nil
}

// resources builds the cgroup limits. The checks are those the engine
// would make anyway, done here so a typo fails before anything is pulled.
// Pointer fields are set only for flags the user gave, so nil keeps the
// engine's default.
func (f *runFlags) resources(fs *pflag.FlagSet) (container.Resources, error) {
	r := container.Resources{
		CgroupParent:      f.cgroupParent,
		Memory:            int64(f.memory),
		MemoryReservation: int64(f.memoryReservation),
		MemorySwap:        int64(f.memorySwap),
		NanoCPUs:          int64(f.cpus),
		CPUShares:         f.cpuShares,
		CPUPeriod:         f.cpuPeriod,
		CPUQuota:          f.cpuQuota,
		CpusetCpus:        f.cpusetCpus,
		CpusetMems:        f.cpusetMems,
		Ulimits:           f.ulimits.list(),
		Devices:           []container.DeviceMapping{},
	}
	if r.Memory > 0 && r.Memory < minMemory {
		return r, errors.New("--memory: minimum memory limit allowed is 6MB")
	}
	if r.MemorySwap > 0 && r.Memory == 0 {
		return r, errors.New("--memory-swap: you should always set the memory limit when using memoryswap limit, see usage")
	}
	if r.MemorySwap > 0 && r.MemorySwap < r.Memory {
		return r, errors.New("--memory-swap: minimum memoryswap limit should be larger than memory limit, see usage")
	}
	if r.Memory > 0 && r.MemoryReservation > r.Memory {
		return r, errors.New("--memory-reservation: minimum memory limit can not be less than memory reservation limit, see usage")
	}
	if fs.Changed("memory-swappiness") {
		s := f.memorySwappiness
		if s != -1 && (s < 0 || s > 100) {
			return r, fmt.Errorf("--memory-swappiness: invalid value: %d. Valid memory swappiness range is 0-100", s)
		}
		r.MemorySwappiness = &s
	}
	if r.NanoCPUs > 0 && r.CPUPeriod > 0 {
		return r, errors.New("conflicting options: Nano CPUs and CPU Period cannot both be set")
	}
	if r.NanoCPUs > 0 && r.CPUQuota > 0 {
		return r, errors.New("conflicting options: Nano CPUs and CPU Quota cannot both be set")
	}
	if r.CPUPeriod != 0 && (r.CPUPeriod < 1000 || r.CPUPeriod > 1000000) {
		return r, errors.New("--cpu-period: CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
	}
	if r.CPUQuota > 0 && r.CPUQuota < 1000 {
		return r, errors.New("--cpu-quota: CPU cfs quota can not be less than 1ms (i.e. 1000)")
	}
	if r.CPUShares < 0 {
		return r, fmt.Errorf("--cpu-shares: invalid value %d: must not be negative", r.CPUShares)
	}
	if fs.Changed("pids-limit") {
		p := f.pidsLimit
		r.PidsLimit = &p
	}
	if fs.Changed("oom-kill-disable") {
		b := f.oomKillDisable
		r.OomKillDisable = &b
	}
	var cdi []string
	for _, d := range f.devices {
		if isCDIName(d) {
			cdi = append(cdi, d)
			continue
		}
		m, err := parseDevice(d)
		if err != nil {
			return r, fmt.Errorf("--device: %w", err)
		}
		r.Devices = append(r.Devices, m)
	}
	if len(cdi) > 0 {
		r.DeviceRequests = []container.DeviceRequest{{Driver: "cdi", DeviceIDs: cdi}}
	}
	return r, nil
}

// --- flag value types ---

// checkedList is a repeatable string flag whose values are checked (and
// normalised) as they are given, so a bad one fails in pflag's words,
// naming the flag and the value.
type checkedList struct {
	list  *[]string
	check func(string) (string, error)
}

func (l *checkedList) Set(s string) error {
	if l.check != nil {
		v, err := l.check(s)
		if err != nil {
			return errdefs.Invalid("%w", err)
		}
		s = v
	}
	*l.list = append(*l.list, s)
	return nil
}

func (l *checkedList) String() string {
	if len(*l.list) == 0 {
		return ""
	}
	return "[" + strings.Join(*l.list, " ") + "]"
}

func (l *checkedList) Type() string { return "list" }

func checkedListVar(fs *pflag.FlagSet, p *[]string, name, usage string, check func(string) (string, error)) {
	fs.Var(&checkedList{list: p, check: check}, name, usage)
}

func checkedListVarP(fs *pflag.FlagSet, p *[]string, name, short, usage string, check func(string) (string, error)) {
	fs.VarP(&checkedList{list: p, check: check}, name, short, usage)
}

// checkedString is a string flag checked as it is given.
type checkedString struct {
	p     *string
	check func(string) error
}

func (s *checkedString) Set(v string) error {
	if err := s.check(v); err != nil {
		return errdefs.Invalid("%w", err)
	}
	*s.p = v
	return nil
}

func (s *checkedString) String() string { return *s.p }
func (s *checkedString) Type() string   { return "string" }

func checkedStringVar(fs *pflag.FlagSet, p *string, name, def, usage string, check func(string) error) {
	*p = def
	fs.Var(&checkedString{p: p, check: check}, name, usage)
}

// memBytes is a size flag in docker's units ("512m", "1g": powers of 1024).
type memBytes int64

func (m *memBytes) Set(s string) error {
	v, err := parseMemory(s)
	if err != nil {
		return errdefs.Invalid("%w", err)
	}
	*m = memBytes(v)
	return nil
}

func (m *memBytes) String() string {
	// pflag hides a default of "0", not of "0B".
	if *m == 0 {
		return "0"
	}
	return units.BytesSize(float64(*m))
}

func (m *memBytes) Type() string { return "bytes" }

// memSwapBytes is memBytes that also takes -1, "unlimited swap".
type memSwapBytes int64

func (m *memSwapBytes) Set(s string) error {
	if s == "-1" {
		*m = -1
		return nil
	}
	v, err := parseMemory(s)
	if err != nil {
		return errdefs.Invalid("%w", err)
	}
	*m = memSwapBytes(v)
	return nil
}

func (m *memSwapBytes) String() string {
	b := memBytes(*m)
	return b.String()
}

func (m *memSwapBytes) Type() string { return "bytes" }

// parseMemory reads a size in docker's units: a number with an optional
// b, k, m, g, t or p suffix, in powers of 1024.
func parseMemory(s string) (int64, error) {
	return units.RAMInBytes(s)
}

// nanoCPUs is --cpus: a decimal number of CPUs, kept in billionths.
type nanoCPUs int64

func (c *nanoCPUs) Set(s string) error {
	v, err := parseCPUs(s)
	if err != nil {
		return errdefs.Invalid("%w", err)
	}
	*c = nanoCPUs(v)
	return nil
}

func (c *nanoCPUs) String() string {
	if *c == 0 {
		return ""
	}
	return big.NewRat(int64(*c), 1e9).FloatString(3)
}

func (c *nanoCPUs) Type() string { return "decimal" }

// parseCPUs turns "1.5" into 1500000000 nano CPUs; exact arithmetic, so
// a value finer than one nano CPU is refused rather than rounded.
func parseCPUs(s string) (int64, error) {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return 0, fmt.Errorf("failed to parse %v as a rational number", s)
	}
	if r.Sign() < 0 {
		return 0, errors.New("number of CPUs cannot be negative")
	}
	nano := r.Mul(r, big.NewRat(1e9, 1))
	if !nano.IsInt() {
		return 0, errors.New("value is too precise")
	}
	if !nano.Num().IsInt64() {
		return 0, errors.New("value is too large")
	}
	return nano.Num().Int64(), nil
}

// ulimitList is --ulimit: a later value for a name replaces the earlier.
type ulimitList struct {
	limits []*container.Ulimit
}

func (u *ulimitList) Set(s string) error {
	l, err := parseUlimit(s)
	if err != nil {
		return errdefs.Invalid("%w", err)
	}
	for i, old := range u.limits {
		if old.Name == l.Name {
			u.limits[i] = l
			return nil
		}
	}
	u.limits = append(u.limits, l)
	return nil
}

func (u *ulimitList) String() string {
	if len(u.limits) == 0 {
		return ""
	}
	s := make([]string, len(u.limits))
	for i, l := range u.limits {
		s[i] = l.String()
	}
	return "[" + strings.Join(s, " ") + "]"
}

func (u *ulimitList) Type() string { return "ulimit" }

func (u *ulimitList) list() []*container.Ulimit {
	return slices.Clone(u.limits)
}

// parseUlimit reads name=soft[:hard]; hard defaults to soft.
func parseUlimit(s string) (*container.Ulimit, error) {
	return units.ParseUlimit(s)
}

// mountList is --mount, each value docker's CSV syntax.
type mountList struct {
	mounts *[]mount.Mount
}

func (m *mountList) Set(s string) error {
	mnt, err := specgen.ParseMountFlag(s)
	if err != nil {
		return errdefs.Invalid("%w", err)
	}
	*m.mounts = append(*m.mounts, mnt)
	return nil
}

func (m *mountList) String() string { return "" }
func (m *mountList) Type() string   { return "mount" }

// --- checks run as flags are parsed ---

func checkNonEmpty(s string) (string, error) {
	if s == "" {
		return "", errors.New("value must not be empty")
	}
	return s, nil
}

func checkAttach(s string) (string, error) {
	v := strings.ToLower(s)
	if v == "stdin" || v == "stdout" || v == "stderr" {
		return v, nil
	}
	return "", errors.New("valid streams are STDIN, STDOUT and STDERR")
}

// checkContainerName applies docker's rule for container names.
func checkContainerName(s string) error {
	n := strings.TrimPrefix(s, "/")
	valid := n != ""
	for i, r := range n {
		alnum := r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r))
		if !alnum && (i == 0 || (r != '_' && r != '.' && r != '-')) {
			valid = false
			break
		}
	}
	if !valid {
		return fmt.Errorf("invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", s)
	}
	return nil
}

func checkPull(s string) error {
	switch s {
	case pullAlways, pullMissing, pullNever, "":
		return nil
	}
	return fmt.Errorf("invalid pull option: '%s': must be one of %q, %q or %q", s, pullAlways, pullMissing, pullNever)
}

// checkEnv refuses an empty name; engine and image decide the rest, as
// in docker.
func checkEnv(s string) (string, error) {
	if k, _, _ := strings.Cut(s, "="); k == "" {
		return "", errors.New("invalid environment variable: " + s)
	}
	return s, nil
}

// envFromCaller resolves -e KEY (no "=") from the caller's environment;
// a KEY the caller does not have set is dropped.
func envFromCaller(s string) (string, bool) {
	if strings.Contains(s, "=") {
		return s, true
	}
	v, ok := os.LookupEnv(s)
	if !ok {
		return "", false
	}
	return s + "=" + v, true
}

func checkLabel(s string) (string, error) {
	k, _, _ := strings.Cut(s, "=")
	k = strings.TrimLeft(k, " \t")
	if k == "" {
		return "", fmt.Errorf("invalid label '%s': empty name", s)
	}
	if strings.ContainsAny(k, " \t") {
		return "", fmt.Errorf("label '%s' contains whitespaces", k)
	}
	return s, nil
}

func checkAnnotation(s string) (string, error) {
	if k, _, _ := strings.Cut(s, "="); k == "" {
		return "", errors.New("empty annotation name")
	}
	return s, nil
}

// checkSysctl allows the namespaced sysctls docker allows; the others
// would change the host.
func checkSysctl(s string) (string, error) {
	k, _, ok := strings.Cut(s, "=")
	if ok && k != "" {
		switch k {
		case "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
			"kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced":
			return s, nil
		}
		if strings.HasPrefix(k, "net.") || strings.HasPrefix(k, "fs.mqueue.") {
			return s, nil
		}
	}
	return "", fmt.Errorf("sysctl '%s' is not allowed", s)
}

// kvLinesMap turns KEY[=VALUE] lines into a map; later keys win.
func kvLinesMap(lines []string) map[string]string {
	m := make(map[string]string, len(lines))
	for _, l := range lines {
		k, v, _ := strings.Cut(l, "=")
		m[k] = v
	}
	return m
}

// checkStopSignal accepts what docker accepts for --stop-signal: a name with
// or without SIG, any case, RTMIN+n / RTMAX-n, or a number.
func checkStopSignal(s string) error {
	if _, err := parseStopSignal(s); err != nil {
		return err
	}
	return nil
}

func parseStopSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("invalid signal: %s", s)
		}
		return unix.Signal(n), nil
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	for _, rt := range []struct {
		prefix string
		base   int
		sign   int
	}{{"RTMIN", 34, 1}, {"RTMAX", 64, -1}} {
		rest, ok := strings.CutPrefix(name, rt.prefix)
		if !ok {
			continue
		}
		if rest == "" {
			return unix.Signal(rt.base), nil
		}
		sep := "+"
		if rt.sign < 0 {
			sep = "-"
		}
		off, err := strconv.Atoi(strings.TrimPrefix(rest, sep))
		if err != nil || !strings.HasPrefix(rest, sep) || off < 0 || off > 30 {
			return 0, fmt.Errorf("invalid signal: %s", s)
		}
		return unix.Signal(rt.base + rt.sign*off), nil
	}
	if sig := unix.SignalNum("SIG" + name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("invalid signal: %s", s)
}

func checkRuntime(s string) error {
	if s == "" || s == "berth" {
		return nil
	}
	return fmt.Errorf("unknown or invalid runtime name: %s (berth runs containers with its own runtime)", s)
}

// checkVolume checks -v's syntax; parseVolume does the rest later.
func checkVolume(s string) (string, error) {
	if _, _, err := splitVolume(s); err != nil {
		return "", err
	}
	return s, nil
}

// splitVolume splits [SOURCE:]DESTINATION[:OPTIONS] and checks it: the
// destination must be absolute, the options among those the engine knows.
func splitVolume(s string) (src, dst string, err error) {
	if s == "" {
		return "", "", errors.New("invalid empty volume spec")
	}
	parts := strings.Split(s, ":")
	if slices.Contains(parts, "") {
		return "", "", fmt.Errorf("invalid volume specification: %s: empty section between colons", s)
	}
	var opts string
	switch len(parts) {
	case 1:
		dst = parts[0]
	case 2:
		src, dst = parts[0], parts[1]
	case 3:
		src, dst, opts = parts[0], parts[1], parts[2]
	default:
		return "", "", fmt.Errorf("invalid volume specification: %s: too many colons", s)
	}
	if !path.IsAbs(dst) {
		return "", "", fmt.Errorf("invalid volume specification: %s: destination %q is not an absolute path", s, dst)
	}
	if dst == "/" {
		return "", "", fmt.Errorf("invalid volume specification: %s: destination can't be '/'", s)
	}
	if opts != "" {
		for o := range strings.SplitSeq(opts, ",") {
			switch o {
			case "ro", "rw", "z", "Z", "nocopy",
				"shared", "rshared", "slave", "rslave", "private", "rprivate":
			default:
				return "", "", fmt.Errorf("invalid volume specification: %s: invalid mode: %s", s, o)
			}
		}
	}
	return src, dst, nil
}

// parseVolume turns a -v value into a Binds entry, or into an anonymous
// volume's destination (anonymous true). A host path starting with "." is
// made absolute against the current directory, as docker does.
func parseVolume(s string) (string, bool, error) {
	src, dst, err := splitVolume(s)
	if err != nil {
		return "", false, err
	}
	if src == "" {
		return path.Clean(dst), true, nil
	}
	if strings.HasPrefix(src, ".") {
		abs, err := filepath.Abs(src)
		if err != nil {
			return "", false, fmt.Errorf("resolve %s: %w", src, err)
		}
		_, rest, _ := strings.Cut(s, ":")
		return abs + ":" + rest, false, nil
	}
	return s, false, nil
}

func checkTmpfs(s string) (string, error) {
	dst, _, _ := strings.Cut(s, ":")
	if !path.IsAbs(dst) {
		return "", fmt.Errorf("invalid tmpfs %q: destination must be an absolute path", s)
	}
	return s, nil
}

func checkCPUSet(s string) error {
	if s == "" {
		return nil
	}
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.ParseUint(lo, 10, 16)
		b, err2 := a, error(nil)
		if isRange {
			b, err2 = strconv.ParseUint(hi, 10, 16)
		}
		if err1 != nil || err2 != nil || b < a {
			return fmt.Errorf("invalid value %s: want a list like 0-3,5", s)
		}
	}
	return nil
}

// checkCapability accepts a capability this build knows, with or without
// CAP_, any case, or ALL; the value is passed on as given.
func checkCapability(s string) (string, error) {
	name := strings.ToLower(strings.TrimPrefix(strings.ToUpper(s), "CAP_"))
	if name == "all" {
		return s, nil
	}
	for _, c := range capability.ListKnown() {
		if c.String() == name {
			return s, nil
		}
	}
	return "", fmt.Errorf("unknown capability: %q", s)
}

// checkSecurityOpt checks the form docker checks: key=value (or the old
// key:value), or no-new-privileges alone.
func checkSecurityOpt(s string) (string, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok && k != "no-new-privileges" {
		k, v, ok = strings.Cut(s, ":")
	}
	if (!ok || v == "") && k != "no-new-privileges" {
		return "", fmt.Errorf("invalid --security-opt: %q", s)
	}
	switch k {
	case "label", "apparmor", "seccomp", "no-new-privileges", "systempaths", "unmask", "mask":
	default:
		return "", fmt.Errorf("invalid --security-opt: %q: unknown option %q", s, k)
	}
	if k == "no-new-privileges" && ok {
		if _, err := strconv.ParseBool(v); err != nil {
			return "", fmt.Errorf("invalid --security-opt: %q: want no-new-privileges[=true|false]", s)
		}
	}
	if k == "systempaths" && v != "unconfined" {
		return "", fmt.Errorf("invalid --security-opt: %q: systempaths takes only unconfined", s)
	}
	return s, nil
}

// parseSecurityOpts finishes --security-opt as docker's CLI does: a
// seccomp profile named by file is sent as its JSON, and
// systempaths=unconfined becomes empty masked and read-only path lists
// (nil lists keep the engine's defaults).
func parseSecurityOpts(opts []string) (out, masked, readonly []string, err error) {
	for _, o := range opts {
		if o == "systempaths=unconfined" {
			masked, readonly = []string{}, []string{}
			continue
		}
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			k, v, _ = strings.Cut(o, ":")
		}
		if k == "seccomp" && v != "unconfined" && v != "builtin" {
			data, err := os.ReadFile(v)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("--security-opt: opening seccomp profile (%s) failed: %w", v, err)
			}
			var b bytes.Buffer
			if err := json.Compact(&b, data); err != nil {
				return nil, nil, nil, fmt.Errorf("--security-opt: compacting json for seccomp profile (%s) failed: %w", v, err)
			}
			o = "seccomp=" + b.String()
		}
		out = append(out, o)
	}
	return out, masked, readonly, nil
}

// checkDevice checks a --device value when it is given.
func checkDevice(s string) (string, error) {
	if isCDIName(s) {
		return s, nil
	}
	if _, err := parseDevice(s); err != nil {
		return "", err
	}
	return s, nil
}

// parseDevice reads HOST[:CONTAINER][:PERMISSIONS]; the container path
// defaults to the host path, the permissions (a subset of rwm) to rwm.
func parseDevice(s string) (container.DeviceMapping, error) {
	parts := strings.Split(s, ":")
	if len(parts) > 3 || parts[0] == "" {
		return container.DeviceMapping{}, fmt.Errorf("bad format for path: %s", s)
	}
	m := container.DeviceMapping{PathOnHost: path.Clean(parts[0]), CgroupPermissions: "rwm"}
	switch len(parts) {
	case 2:
		if validDeviceMode(parts[1]) {
			m.CgroupPermissions = parts[1]
		} else {
			m.PathInContainer = parts[1]
		}
	case 3:
		if !validDeviceMode(parts[2]) {
			return container.DeviceMapping{}, fmt.Errorf("bad mode specified: %s", parts[2])
		}
		m.PathInContainer, m.CgroupPermissions = parts[1], parts[2]
	}
	if m.PathInContainer == "" {
		m.PathInContainer = m.PathOnHost
	}
	for _, p := range []string{m.PathOnHost, m.PathInContainer} {
		if !path.IsAbs(p) {
			return container.DeviceMapping{}, fmt.Errorf("%s is not an absolute path", p)
		}
	}
	m.PathInContainer = path.Clean(m.PathInContainer)
	return m, nil
}

// validDeviceMode reports whether mode is a non-empty set of r, w and m.
func validDeviceMode(mode string) bool {
	if mode == "" {
		return false
	}
	seen := map[rune]bool{}
	for _, c := range mode {
		if (c != 'r' && c != 'w' && c != 'm') || seen[c] {
			return false
		}
		seen[c] = true
	}
	return true
}

// isCDIName reports whether s is a CDI device name, vendor/class=name,
// which goes to the engine as a device request rather than a path.
func isCDIName(s string) bool {
	kind, name, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return false
	}
	vendor, class, ok := strings.Cut(kind, "/")
	if !ok || vendor == "" || class == "" || strings.Contains(class, "/") {
		return false
	}
	ok = true
	for _, r := range vendor + class {
		if r >= utf8.RuneSelf || (!unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '.' && r != '-' && r != '_') {
			ok = false
		}
	}
	first := rune(vendor[0])
	return ok && (unicode.IsLetter(first) || unicode.IsDigit(first))
}

func checkIpcMode(s string) error {
	m := container.IpcMode(s)
	if !m.Valid() || (m.IsContainer() && m.Container() == "") {
		return fmt.Errorf("invalid IPC mode %q: use none, private, shareable, host or container:<name|id>", s)
	}
	return nil
}

func checkPidMode(s string) error {
	if !container.PidMode(s).Valid() {
		return fmt.Errorf("invalid PID mode %q: use host or container:<name|id>", s)
	}
	return nil
}

func checkUTSMode(s string) error {
	if !container.UTSMode(s).Valid() {
		return fmt.Errorf("invalid UTS mode %q: use host", s)
	}
	return nil
}

func checkUsernsMode(s string) error {
	if !container.UsernsMode(s).Valid() {
		return fmt.Errorf("invalid USER mode %q: only host is supported", s)
	}
	return nil
}

func checkCgroupnsMode(s string) error {
	if !container.CgroupnsMode(s).Valid() {
		return fmt.Errorf("invalid CGROUP mode %q: use host or private", s)
	}
	return nil
}

// checkNetwork accepts docker's simple --network forms; which of them
// the engine can provide is the engine's call.
func checkNetwork(s string) (string, error) {
	switch {
	case strings.TrimSpace(s) == "":
		return "", errors.New("no name set for network")
	case strings.ContainsAny(s, "=,"):
		return "", errors.New("the name=...,alias=... form is not supported: give the network's name")
	case strings.HasPrefix(s, "container:") && strings.TrimPrefix(s, "container:") == "":
		return "", errors.New("container: needs a container name or id")
	}
	return s, nil
}

func checkIPv4(s string) error {
	_, err := parseIPv4(s)
	return err
}

func checkIPv6(s string) error {
	_, err := parseIPv6(s)
	return err
}

// parseIPv4 reads --ip: one IPv4 address.
func parseIPv4(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, fmt.Errorf("invalid IPv4 address: %s", s)
	}
	return a, nil
}

// parseIPv6 reads --ip6: one IPv6 address, without a zone (the
// container's interface is the only one it could name).
func parseIPv6(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() || a.Is4In6() || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("invalid IPv6 address: %s", s)
	}
	return a, nil
}

func checkMAC(s string) error {
	_, err := parseMAC(s)
	return err
}

// parseMAC reads --mac-address: an Ethernet (48-bit) unicast address.
// A multicast one (the lowest bit of the first byte set) cannot be an
// interface's own.
func parseMAC(s string) (net.HardwareAddr, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return nil, fmt.Errorf("%s is not a valid mac address", s)
	}
	if hw[0]&1 != 0 {
		return nil, fmt.Errorf("%s is not a valid mac address: it is a multicast address, the first byte must be even", s)
	}
	return hw, nil
}

// checkFirewallRule validates a --firewall rule and gives its canonical
// form.
func checkFirewallRule(s string) (string, error) {
	r, err := firewall.ParseRule(s)
	if err != nil {
		return "", err
	}
	return r.String(), nil
}

func checkFirewallDefault(s string) (string, error) {
	if _, err := firewall.ParseDefaults(s); err != nil {
		return "", err
	}
	return s, nil
}

func checkRoute(s string) (string, error) {
	r, err := link.ParseRoute(s)
	if err != nil {
		return "", err
	}
	return r.String(), nil
}

func checkIPAddress(s string) (string, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil || a.Zone() != "" {
		return "", fmt.Errorf("IP address is not correctly formatted: %s", s)
	}
	return a.String(), nil
}

// checkDNSSearch accepts a domain name, or "." for none.
func checkDNSSearch(s string) (string, error) {
	v := strings.Trim(s, " ")
	if v == "." {
		return v, nil
	}
	v = strings.TrimSuffix(v, ".")
	hasLetter := false
	ok := v != "" && len(v) < 255
	for label := range strings.SplitSeq(v, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			ok = false
		}
		for _, r := range label {
			if r >= utf8.RuneSelf || (!unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '-') {
				ok = false
			}
			hasLetter = hasLetter || unicode.IsLetter(r)
		}
	}
	if !ok || !hasLetter {
		return "", fmt.Errorf("%s is not a valid domain", s)
	}
	return v, nil
}

// checkExtraHost takes host:ip or host=ip, the ip possibly in brackets or
// the word host-gateway, and gives the engine host:ip.
func checkExtraHost(s string) (string, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		k, v, ok = strings.Cut(s, ":")
	}
	if !ok || k == "" || strings.Contains(k, ":") {
		return "", fmt.Errorf("bad format for add-host: %q", s)
	}
	if v != "host-gateway" {
		if len(v) > 2 && v[0] == '[' && v[len(v)-1] == ']' {
			v = v[1 : len(v)-1]
		}
		if _, err := checkIPAddress(v); err != nil {
			return "", fmt.Errorf("invalid IP address in add-host: %q", v)
		}
	}
	return k + ":" + v, nil
}

func checkPublish(s string) (string, error) {
	if _, err := parsePortSpec(s); err != nil {
		return "", err
	}
	return s, nil
}

func checkExpose(s string) (string, error) {
	if _, err := parseExpose(s); err != nil {
		return "", err
	}
	return s, nil
}

// parseExpose reads PORT[-END][/PROTO].
func parseExpose(s string) (network.PortRange, error) {
	pr, err := network.ParsePortRange(s)
	if err != nil {
		return pr, fmt.Errorf("invalid range format for --expose: %w", err)
	}
	if err := checkProto(string(pr.Proto())); err != nil {
		return pr, err
	}
	return pr, nil
}

func checkProto(p string) error {
	switch network.IPProtocol(p) {
	case network.TCP, network.UDP, network.SCTP:
		return nil
	}
	return errors.New("invalid proto: " + p)
}

// publishedPort is one container port of a -p value and its host binding.
type publishedPort struct {
	port    network.Port
	binding network.PortBinding
}

// parsePortSpecs reads all -p values into the exposed ports and their
// bindings. Both maps are non-nil, as docker sends them.
func parsePortSpecs(specs []string) (network.PortSet, network.PortMap, error) {
	exposed, bindings := network.PortSet{}, network.PortMap{}
	for _, s := range specs {
		ms, err := parsePortSpec(s)
		if err != nil {
			return nil, nil, err
		}
		for _, m := range ms {
			exposed[m.port] = struct{}{}
			bindings[m.port] = append(bindings[m.port], m.binding)
		}
	}
	return exposed, bindings, nil
}

// parsePortSpec reads [[IP:]HOST:]CONTAINER[/PROTO], where HOST and
// CONTAINER may be ranges of one length, or HOST a range and CONTAINER one
// port (the engine picks a free host port from the range). It also takes
// docker's long form published=H,target=C,protocol=P.
func parsePortSpec(s string) ([]publishedPort, error) {
	if strings.Contains(s, "=") {
		long, err := longPortSpec(s)
		if err != nil {
			return nil, err
		}
		s = long
	}
	ip, hostPort, ctrPort := splitPortParts(s)
	ctrPort, proto, _ := strings.Cut(ctrPort, "/")
	if ctrPort == "" {
		return nil, fmt.Errorf("no port specified: %s<empty>", s)
	}
	proto = strings.ToLower(proto)
	if proto == "" {
		proto = string(network.TCP)
	}
	if err := checkProto(proto); err != nil {
		return nil, err
	}
	var hostIP netip.Addr
	if ip != "" {
		raw := ip
		if len(raw) > 2 && raw[0] == '[' && raw[len(raw)-1] == ']' {
			raw = raw[1 : len(raw)-1]
		}
		a, err := netip.ParseAddr(raw)
		if err != nil || a.Zone() != "" {
			return nil, errors.New("invalid IP address: " + ip)
		}
		hostIP = a
	}
	start, end, err := parsePortRange(ctrPort)
	if err != nil || start == 0 {
		return nil, errors.New("invalid containerPort: " + ctrPort)
	}
	var hStart, hEnd int
	if hostPort != "" {
		if hStart, hEnd, err = parsePortRange(hostPort); err != nil {
			return nil, errors.New("invalid hostPort: " + hostPort)
		}
		if end-start != hEnd-hStart && end != start {
			return nil, fmt.Errorf("invalid ranges specified for container and host Ports: %s and %s", ctrPort, hostPort)
		}
	}
	n := end - start + 1
	out := make([]publishedPort, 0, n)
	for i := range n {
		p, _ := network.PortFrom(uint16(start+i), network.IPProtocol(proto))
		b := network.PortBinding{HostIP: hostIP}
		if hostPort != "" {
			b.HostPort = strconv.Itoa(hStart + i)
			if n == 1 && hStart != hEnd {
				b.HostPort += "-" + strconv.Itoa(hEnd)
			}
		}
		out = append(out, publishedPort{port: p, binding: b})
	}
	return out, nil
}

// splitPortParts splits at the colons: the last part is the container's,
// the one before the host's, anything earlier the IP (which may hold
// colons of its own).
func splitPortParts(s string) (ip, host, ctr string) {
	parts := strings.Split(s, ":")
	n := len(parts)
	switch n {
	case 1:
		return "", "", parts[0]
	case 2:
		return "", parts[0], parts[1]
	default:
		return strings.Join(parts[:n-2], ":"), parts[n-2], parts[n-1]
	}
}

func longPortSpec(s string) (string, error) {
	params := map[string]string{"protocol": "tcp"}
	for p := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return "", fmt.Errorf("invalid publish opts format (should be name=value but got '%s')", p)
		}
		switch k {
		case "published", "target", "protocol", "mode":
		default:
			return "", fmt.Errorf("invalid publish option %q", k)
		}
		params[k] = v
	}
	if m := params["mode"]; m != "" && m != "host" && m != "ingress" {
		return "", fmt.Errorf("invalid publish mode %q", m)
	}
	return params["published"] + ":" + params["target"] + "/" + params["protocol"], nil
}

// parsePortRange reads N or N-M.
func parsePortRange(s string) (int, int, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return 0, 0, err
	}
	b := a
	if isRange {
		if b, err = strconv.ParseUint(hi, 10, 16); err != nil {
			return 0, 0, err
		}
	}
	if b < a {
		return 0, 0, fmt.Errorf("invalid range specified for port: %s", s)
	}
	return int(a), int(b), nil
}

// parseRestart reads no | always | unless-stopped | on-failure[:N].
func parseRestart(s string) (container.RestartPolicy, error) {
	if s == "" {
		return container.RestartPolicy{}, nil
	}
	name, count, hasCount := strings.Cut(s, ":")
	p := container.RestartPolicy{Name: container.RestartPolicyMode(name)}
	switch p.Name {
	case container.RestartPolicyDisabled, container.RestartPolicyAlways,
		container.RestartPolicyUnlessStopped, container.RestartPolicyOnFailure:
	default:
		return p, fmt.Errorf("invalid restart policy %q: use no, always, unless-stopped or on-failure[:max-retries]", s)
	}
	if !hasCount {
		return p, nil
	}
	if p.Name != container.RestartPolicyOnFailure {
		return p, fmt.Errorf("invalid restart policy %q: maximum retry count can only be used with 'on-failure'", s)
	}
	n, err := strconv.Atoi(count)
	if err != nil {
		return p, fmt.Errorf("invalid restart policy %q: maximum retry count must be an integer", s)
	}
	if n < 0 {
		return p, fmt.Errorf("invalid restart policy %q: maximum retry count cannot be negative", s)
	}
	p.MaximumRetryCount = n
	return p, nil
}

// The log drivers berth has; the engine writes json-file logs itself.
const (
	logDriverJSONFile = "json-file"
	logDriverNone     = "none"
)

func checkLogDriver(s string) error {
	switch s {
	case "", logDriverJSONFile, logDriverNone:
		return nil
	}
	return fmt.Errorf("log driver %q is not supported: use json-file or none", s)
}

func checkLogOpt(s string) (string, error) {
	k, _, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return "", fmt.Errorf("invalid log option %q: want key=value", s)
	}
	return s, nil
}

// parseLogConfig checks the --log-opt values against the driver (the
// default driver is json-file).
func parseLogConfig(driver string, opts []string) (container.LogConfig, error) {
	c := container.LogConfig{Type: driver, Config: kvLinesMap(opts)}
	if driver == logDriverNone {
		if len(opts) > 0 {
			return c, fmt.Errorf("--log-opt: invalid logging opts for driver %s", driver)
		}
		return c, nil
	}
	for _, o := range opts {
		k, v, _ := strings.Cut(o, "=")
		switch k {
		case "max-size":
			n, err := units.FromHumanSize(v)
			if err != nil {
				return c, fmt.Errorf("--log-opt: invalid max-size %q: %w", v, err)
			}
			if n <= 0 {
				return c, fmt.Errorf("--log-opt: invalid max-size %q: must be a positive size", v)
			}
		case "max-file":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return c, fmt.Errorf("--log-opt: invalid max-file %q: must be a positive integer", v)
			}
		case "compress":
			if _, err := strconv.ParseBool(v); err != nil {
				return c, fmt.Errorf("--log-opt: invalid compress %q: want true or false", v)
			}
		case "labels", "labels-regex", "env", "env-regex", "tag":
		default:
			return c, fmt.Errorf("--log-opt: unknown log opt '%s' for json-file log driver", k)
		}
	}
	return c, nil
}

// parsePlatform checks --platform against this machine: berth runs
// native images only. It returns the normalised os/arch[/variant], or ""
// for "".
func parsePlatform(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	parts := strings.Split(strings.ToLower(s), "/")
	if len(parts) > 3 || slices.Contains(parts, "") {
		return "", fmt.Errorf("invalid platform %q: want os[/arch[/variant]]", s)
	}
	osName, arch, variant := goruntime.GOOS, goruntime.GOARCH, ""
	switch {
	case len(parts) == 1 && parts[0] == goruntime.GOOS:
	case len(parts) == 1:
		arch = parts[0]
		osName = goruntime.GOOS
	default:
		osName, arch = parts[0], parts[1]
		if len(parts) == 3 {
			variant = parts[2]
		}
	}
	arch, variant = normalizeArch(arch, variant)
	if osName != goruntime.GOOS || arch != goruntime.GOARCH {
		return "", fmt.Errorf("platform %q does not match this machine (%s/%s): berth does not emulate", s, goruntime.GOOS, goruntime.GOARCH)
	}
	out := osName + "/" + arch
	if variant != "" {
		out += "/" + variant
	}
	return out, nil
}

// normalizeArch maps the other names of an architecture to Go's, as
// image indexes use them.
func normalizeArch(arch, variant string) (string, string) {
	switch arch {
	case "x86_64", "x86-64", "amd64":
		arch = "amd64"
		if variant == "v1" {
			variant = ""
		}
	case "aarch64", "arm64":
		arch = "arm64"
		if variant == "v8" {
			variant = ""
		}
	case "i386", "i686", "386":
		arch = "386"
	case "armhf":
		arch, variant = "arm", "v7"
	case "armel":
		arch, variant = "arm", "v6"
	}
	return arch, variant
}

// parseDetachKeys reads a comma-separated key sequence: ctrl-@, ctrl-a to
// ctrl-z, ctrl-[, ctrl-\, ctrl-], ctrl-^, ctrl-_, DEL, or one character.
func parseDetachKeys(s string) ([]byte, error) {
	if s == "" {
		s = defaultDetachKeys
	}
	var out []byte
	for key := range strings.SplitSeq(s, ",") {
		b, ok := detachKey(key)
		if !ok {
			return nil, fmt.Errorf("invalid detach keys (%s): unknown character: '%s'", s, key)
		}
		out = append(out, b)
	}
	return out, nil
}

func detachKey(key string) (byte, bool) {
	if len(key) == 1 {
		return key[0], true
	}
	if key == "DEL" {
		return 127, true
	}
	c, ok := strings.CutPrefix(key, "ctrl-")
	if !ok || len(c) != 1 {
		return 0, false
	}
	// ctrl-@ is 0, ctrl-a 1 ... ctrl-z 26, then [ \ ] ^ _ up to 31.
	switch ch := c[0]; {
	case ch >= 'a' && ch <= 'z':
		return ch - 'a' + 1, true
	case ch == '@' || (ch >= '[' && ch <= '_'):
		return ch - '@', true
	}
	return 0, false
}

// readKVFiles reads KEY[=VALUE] files (--env-file, --label-file) in
// order. A KEY without "=" takes its value from lookup, or is left out
// when lookup is nil or has none.
func readKVFiles(files []string, lookup func(string) (string, bool), kind string) ([]string, error) {
	var out []string
	for _, name := range files {
		lines, err := parseEnvFile(name, lookup, kind)
		if err != nil {
			return nil, err
		}
		out = append(out, lines...)
	}
	return out, nil
}

// parseEnvFile reads one file in docker's env-file format.
func parseEnvFile(name string, lookup func(string) (string, bool), kind string) ([]string, error) {
	fh, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	lines, err := parseKVLines(fh, lookup)
	if err != nil {
		return nil, fmt.Errorf("invalid %s file (%s): %w", kind, name, err)
	}
	return lines, nil
}

// parseKVLines is docker's env-file format: UTF-8; a BOM is dropped;
// leading white space is dropped; blank lines and lines starting with #
// are skipped; every other line is KEY=VALUE, taken as it is (no quotes,
// no expansion, trailing white space kept), or KEY alone.
func parseKVLines(r io.Reader, lookup func(string) (string, bool)) ([]string, error) {
	out := []string{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		b := sc.Bytes()
		if !utf8.Valid(b) {
			return nil, fmt.Errorf("invalid utf8 bytes at line %d: %v", n, b)
		}
		if n == 1 {
			b = bytes.TrimPrefix(b, []byte{0xEF, 0xBB, 0xBF})
		}
		line := strings.TrimLeftFunc(string(b), unicode.IsSpace)
		if line == "" || line[0] == '#' {
			continue
		}
		key, _, hasValue := strings.Cut(line, "=")
		if key == "" {
			return nil, fmt.Errorf("no variable name on line '%s'", line)
		}
		if strings.ContainsAny(key, " \t") {
			return nil, fmt.Errorf("variable '%s' contains whitespaces", key)
		}
		if hasValue {
			out = append(out, line)
			continue
		}
		if lookup != nil {
			if v, ok := lookup(key); ok {
				out = append(out, key+"="+v)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	return out, nil
}
