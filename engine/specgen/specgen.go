// Package specgen turns a container's Docker configuration (the moby API's
// Config and HostConfig, plus the image's config) into the OCI runtime spec
// berth's runtime runs, producing what Docker's daemon produces so that
// containers behave the way Docker users expect.
//
// Generate plans everything from its Input. The only things it asks of the
// machine go through Host (device nodes, capabilities, a seccomp profile
// file, a few /sys and /proc probes) and the container's own /etc/passwd and
// /etc/group, read inside Rootfs with in-root path resolution.
package specgen

import (
	"maps"
	"strings"

	"github.com/moby/moby/api/types/container"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-containers/berth/internal/errdefs"
)

// InitDestination is where the init binary is bound when --init is given.
const InitDestination = "/sbin/berth-init"

// Input is everything Generate needs to know about one container.
type Input struct {
	// ID is the container's full id; Name its name (the spec does not
	// use it; it travels with the rest of the container's description).
	ID, Name string
	// Config and HostConfig are the Docker API's description of the
	// container. HostConfig may be nil (all defaults); Config may not.
	Config     *container.Config
	HostConfig *container.HostConfig
	// Image is the image's config (Env, Entrypoint, Cmd, WorkingDir,
	// User); nil for an image without one (scratch).
	Image *ocispec.ImageConfig
	// Rootfs is the host path of the container's mounted root filesystem.
	Rootfs string
	// Mounts are the container's resolved bind and volume mounts; Generate
	// only checks, orders and adds them.
	Mounts []specs.Mount
	// Files are the generated /etc files to bind in.
	Files Files
	// InitPath is the host path of the binary bound at InitDestination
	// when HostConfig.Init is set.
	InitPath string
	// CgroupParent is the cgroup under which the container's cgroup is
	// made (cgroupfs driver): cgroupsPath is "/<parent>/<id>", with
	// HostConfig.CgroupParent taking precedence over this default. An
	// empty parent gives "/<id>".
	CgroupParent string
	// CgroupV2 says the host uses the unified cgroup hierarchy; it picks
	// the default cgroup namespace mode (private on v2, host on v1, as
	// Docker does).
	CgroupV2 bool
	// NetNSPath is the network namespace to join: for NetworkMode
	// "container:<id>" that container's (/proc/<pid>/ns/net), required;
	// for the other modes but host the one the engine made, or "" for a
	// new empty one.
	NetNSPath string
	// PIDNSPath is the pid namespace to join for PidMode "container:<id>".
	PIDNSPath string
	// Host answers Generate's few questions about the machine; nil means
	// the real host.
	Host *Host
}

// Files are host paths of generated files bound into the container; an
// empty path binds nothing there.
type Files struct {
	Hostname   string // bound at /etc/hostname
	Hosts      string // bound at /etc/hosts
	ResolvConf string // bound at /etc/resolv.conf
}

// Generate returns the OCI spec for the container described by in. Bad
// input gives an errdefs.ErrInvalidArgument error naming the bad value.
func Generate(in Input) (*specs.Spec, error) {
	if in.Config == nil {
		return nil, errdefs.Invalid("container config is missing")
	}
	if in.ID == "" {
		return nil, errdefs.Invalid("container id is missing")
	}
	if in.Rootfs == "" {
		return nil, errdefs.Invalid("container root filesystem path is missing")
	}
	hc := in.HostConfig
	if hc == nil {
		hc = &container.HostConfig{}
	}
	g := &generator{in: in, hc: hc, host: in.Host.orDefault()}
	return g.generate()
}

// generator carries one Generate call's input and its results so far.
type generator struct {
	in   Input
	hc   *container.HostConfig
	host *Host
	sec  securityOpts
	s    *specs.Spec
}

func (g *generator) generate() (*specs.Spec, error) {
	sec, err := parseSecurityOpts(g.hc.SecurityOpt)
	if err != nil {
		return nil, err
	}
	g.sec = sec
	g.s = &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: g.in.Rootfs, Readonly: g.hc.ReadonlyRootfs},
		Linux:   &specs.Linux{},
	}
	steps := []func() error{
		g.process,
		g.hostname,
		g.namespaces,
		g.capabilities,
		g.mounts,
		g.systemPaths,
		g.devices,
		g.sysctls,
		g.resources,
		g.cgroupsPath,
		g.seccomp, // last: its rules depend on the final capabilities
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	if len(g.hc.Annotations) > 0 {
		g.s.Annotations = maps.Clone(g.hc.Annotations)
	}
	return g.s, nil
}

// hostname sets the container's host and domain names: Config.Hostname,
// else the first 12 characters of the id, as Docker names containers. With
// the host's UTS namespace the container keeps the host's names.
func (g *generator) hostname() error {
	for _, e := range g.hc.ExtraHosts {
		if strings.HasSuffix(e, ":host-gateway") || strings.HasSuffix(e, "=host-gateway") {
			continue // the engine writes the gateway's address in /etc/hosts
		}
		if _, _, err := ParseExtraHost(e); err != nil {
			return err
		}
	}
	if g.hc.UTSMode.IsHost() {
		return nil
	}
	g.s.Hostname = g.containerHostname()
	g.s.Domainname = g.in.Config.Domainname
	return nil
}

// containerHostname is the name the container calls itself (also its
// HOSTNAME variable).
func (g *generator) containerHostname() string {
	if h := g.in.Config.Hostname; h != "" {
		return h
	}
	id := g.in.ID
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}

// cgroupsPath places the container's cgroup at /<parent>/<id>, where
// parent is HostConfig.CgroupParent, else Input.CgroupParent (cgroupfs
// layout; the runtime cleans the path so ".." cannot climb out).
func (g *generator) cgroupsPath() error {
	parent := g.in.CgroupParent
	if g.hc.CgroupParent != "" {
		parent = g.hc.CgroupParent
	}
	g.s.Linux.CgroupsPath = cgroupsPath(parent, g.in.ID)
	return nil
}

func cgroupsPath(parent, id string) string {
	p := "/" + trimSlashes(parent)
	if p == "/" {
		return "/" + id
	}
	return p + "/" + id
}

func trimSlashes(s string) string {
	for len(s) > 0 && s[0] == '/' {
		s = s[1:]
	}
	for len(s) > 0 && s[len(s)-1] == '/' {
		s = s[:len(s)-1]
	}
	return s
}
