package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	units "github.com/docker/go-units"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-containers/berth/engine/specgen"
	"github.com/berth-containers/berth/engine/state"
	"github.com/berth-containers/berth/image"
	"github.com/berth-containers/berth/image/mediatype"
	"github.com/berth-containers/berth/image/reference"
	"github.com/berth-containers/berth/internal/errdefs"
)

// Pull policies of run and create.
const (
	PullMissing = "missing"
	PullAlways  = "always"
	PullNever   = "never"
)

// Log defaults: Docker keeps json-file logs unbounded; berth bounds them
// unless --log-opt says otherwise.
const (
	defaultLogMaxSize  = 10 << 20
	defaultLogMaxFiles = 3
)

// CreateRequest is what create and run ask for: Docker's API types, so
// the Docker API can pass requests through unchanged.
type CreateRequest struct {
	Name       string
	Config     *container.Config
	HostConfig *container.HostConfig
	// Pull is PullMissing (default), PullAlways or PullNever.
	Pull     string
	Platform string
	// PullProgress reports a pull that create has to do; nil: silent.
	PullProgress image.ProgressFunc
	// OnPull is called before create pulls a missing image (run prints
	// Docker's "Unable to find image" line there).
	OnPull func(ref string)
	// NetworkingConfig holds the settings per network, as Docker's API
	// has them: aliases, --ip/--ip6 (IPAMConfig), --mac-address.
	NetworkingConfig *network.NetworkingConfig
	// Net holds berth's own network settings: firewall rules and routes
	// in their flag syntax.
	Net state.NetConfig
}

// Create makes a container: its record, root filesystem snapshot,
// volumes and generated files. Whatever it made goes again when it fails.
func (e *Engine) Create(ctx context.Context, req CreateRequest) (c *state.Container, err error) {
	db, err := e.db(ctx)
	if err != nil {
		return nil, err
	}
	if err := validateCreate(&req); err != nil {
		return nil, err
	}
	img, imgConf, err := e.imageFor(ctx, req)
	if err != nil {
		return nil, err
	}
	id, err := newID()
	if err != nil {
		return nil, err
	}
	c = &state.Container{
		ID: id, Image: req.Config.Image, ImageID: img.Config.String(), Created: time.Now().UTC(),
		Config: req.Config, HostConfig: req.HostConfig, LogPath: e.logPath(id),
		State: state.State{Status: StatusCreated}, Net: req.Net,
	}
	if req.HostConfig.LogConfig.Type == "none" {
		c.LogPath = ""
	}
	fillDefaults(c)
	mergeImageConfig(c.Config, imgConf.Config.ImageConfig)
	if c.Config.Healthcheck == nil {
		c.Config.Healthcheck = healthcheckOf(imgConf.Config.Healthcheck)
	}
	if err := e.insert(ctx, db, c, req.Name); err != nil {
		return nil, err
	}
	made := c // the named result is nil on the error paths below
	defer func() {
		if err != nil {
			e.discard(context.WithoutCancel(ctx), made)
		}
	}()
	if err := os.MkdirAll(e.containerPath(id, rootfsDir), 0o700); err != nil {
		return nil, fmt.Errorf("make container directory: %w", err)
	}
	if _, err := e.Snapshots.Prepare(ctx, id, img.DiffIDs, false); err != nil {
		return nil, fmt.Errorf("prepare root filesystem: %w", err)
	}
	eps, err := e.createEndpoints(ctx, c, req.NetworkingConfig)
	if err != nil {
		return nil, err
	}
	mounts, err := e.resolveMounts(ctx, c, imgConf.Config.Volumes)
	if err != nil {
		return nil, err
	}
	if err := e.writeEtcFiles(c); err != nil {
		return nil, err
	}
	err = db.Tx(ctx, func(tx *state.Tx) error {
		for _, ep := range eps {
			if err := tx.PutEndpoint(ctx, ep); err != nil {
				return err
			}
		}
		mode := c.HostConfig.NetworkMode
		c, err = tx.UpdateContainer(ctx, id, func(r *state.Container) error {
			r.Mounts = mounts
			r.HostConfig.NetworkMode = mode
			return nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	e.event(ctx, c, "create", nil)
	return c, nil
}

// validateCreate fills defaults and refuses what berth cannot do.
func validateCreate(req *CreateRequest) error {
	if req.Config == nil || req.Config.Image == "" {
		return errdefs.Invalid("an image is required")
	}
	if req.HostConfig == nil {
		req.HostConfig = &container.HostConfig{}
	}
	hc := req.HostConfig
	if req.Name != "" {
		if err := validName(strings.TrimPrefix(req.Name, "/")); err != nil {
			return err
		}
	}
	switch req.Pull {
	case "":
		req.Pull = PullMissing
	case PullMissing, PullAlways, PullNever:
	default:
		return errdefs.Invalid("invalid pull option %q: must be missing, always or never", req.Pull)
	}
	if hc.AutoRemove && hc.RestartPolicy.Name != "" && hc.RestartPolicy.Name != container.RestartPolicyDisabled {
		return errdefs.Invalid("conflicting options: cannot specify both --restart and --rm")
	}
	switch hc.LogConfig.Type {
	case "", "json-file", "none":
	default:
		return errdefs.Invalid("log driver %q is not supported: use json-file or none", hc.LogConfig.Type)
	}
	if _, _, err := logLimits(hc.LogConfig.Config); err != nil {
		return err
	}
	return validateNetwork(req)
}

// validateNetwork checks what can be checked of the network settings
// before the networks are looked up.
func validateNetwork(req *CreateRequest) error {
	hc := req.HostConfig
	if hc.NetworkMode.IsContainer() && hc.NetworkMode.ConnectedContainer() == "" {
		return errdefs.Invalid("--network container: needs a container name or id")
	}
	if !ownNetNS(hc) || hc.NetworkMode.IsNone() {
		if nc := req.NetworkingConfig; nc != nil {
			for _, es := range nc.EndpointsConfig {
				if es != nil && (len(es.Aliases) > 0 || es.IPAMConfig != nil && (es.IPAMConfig.IPv4Address.IsValid() || es.IPAMConfig.IPv6Address.IsValid())) {
					return errdefs.Invalid("conflicting options: network aliases and addresses need a bridge network, not --network %s", hc.NetworkMode)
				}
			}
		}
	}
	if err := checkPorts(hc); err != nil {
		return err
	}
	return checkNetConfig(hc, req.Net)
}

// createEndpoints resolves the networks a new container joins, for Create
// to record: the one its network mode names, then any other its endpoint
// settings name. A --network container:<id> must name an existing
// container.
func (e *Engine) createEndpoints(ctx context.Context, c *state.Container, nc *network.NetworkingConfig) ([]*state.Endpoint, error) {
	mode := c.HostConfig.NetworkMode
	if mode.IsContainer() {
		_, err := e.Container(ctx, mode.ConnectedContainer())
		return nil, err
	}
	first, err := e.networkFor(ctx, mode)
	if err != nil || first == nil {
		return nil, err
	}
	if mode == "" || mode.IsDefault() {
		c.HostConfig.NetworkMode = container.NetworkMode(first.Name)
	}
	settings := map[string]*network.EndpointSettings{}
	if nc != nil {
		settings = nc.EndpointsConfig
	}
	nets := []*state.Network{first}
	for ref := range settings {
		if ref == first.Name || ref == first.ID || ref == string(mode) {
			continue
		}
		n, err := e.networkFor(ctx, container.NetworkMode(ref))
		if err != nil {
			return nil, err
		}
		if n == nil {
			return nil, errdefs.Invalid("container cannot be connected to network %s as well as %s", ref, first.Name)
		}
		nets = append(nets, n)
	}
	var eps []*state.Endpoint
	for _, n := range nets {
		es := settings[n.Name]
		if es == nil {
			es = settings[n.ID]
		}
		if es == nil && n == first {
			es = settings[string(mode)]
		}
		ep, err := endpointFor(c, n, es)
		if err != nil {
			return nil, err
		}
		eps = append(eps, ep)
	}
	return eps, nil
}

// validName checks a container name as Docker does:
// [a-zA-Z0-9][a-zA-Z0-9_.-]+.
func validName(name string) error {
	ok := len(name) >= 2
	for i, c := range name {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || (c != '_' && c != '.' && c != '-')) {
			ok = false
		}
	}
	if !ok {
		return errdefs.Invalid("invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
	}
	return nil
}

// logLimits reads max-size and max-file from --log-opt.
func logLimits(opts map[string]string) (size int64, files int, err error) {
	size, files = defaultLogMaxSize, defaultLogMaxFiles
	for k, v := range opts {
		switch k {
		case "max-size":
			if size, err = units.RAMInBytes(v); err != nil || size < 0 {
				return 0, 0, errdefs.Invalid("invalid log option max-size %q", v)
			}
			if size == 0 {
				size = 1 << 62 // Docker's -1 / unset: unbounded when asked for
			}
		case "max-file":
			if files, err = strconv.Atoi(v); err != nil || files < 1 {
				return 0, 0, errdefs.Invalid("invalid log option max-file %q: must be a positive number", v)
			}
		default:
			return 0, 0, errdefs.Invalid("unknown log option %q for json-file: use max-size or max-file", k)
		}
	}
	return size, files, nil
}

// imageFor finds (pulling when the policy says so) the image and reads
// its config, with Docker's extension (HEALTHCHECK) that ocispec lacks.
func (e *Engine) imageFor(ctx context.Context, req CreateRequest) (image.Image, dockerspec.DockerOCIImage, error) {
	ref := req.Config.Image
	img, err := e.Images.Get(ctx, ref)
	missing := errors.Is(err, errdefs.ErrNotFound)
	if err != nil && !missing {
		return image.Image{}, dockerspec.DockerOCIImage{}, err
	}
	if req.Pull == PullAlways || (missing && req.Pull == PullMissing) {
		if _, perr := reference.Parse(ref); perr != nil {
			return image.Image{}, dockerspec.DockerOCIImage{}, perr
		}
		if missing && req.OnPull != nil {
			req.OnPull(ref)
		}
		img, err = e.Pull(ctx, ref, PullOptions{Platform: req.Platform, Progress: req.PullProgress})
	} else if missing {
		err = errdefs.NotFound("no such image: %s", ref)
	}
	if err != nil {
		return image.Image{}, dockerspec.DockerOCIImage{}, err
	}
	conf, err := e.dockerConfig(ctx, img)
	if err != nil {
		return image.Image{}, dockerspec.DockerOCIImage{}, err
	}
	if req.Platform != "" {
		if err := checkPlatform(req.Platform, conf.Image); err != nil {
			return image.Image{}, dockerspec.DockerOCIImage{}, err
		}
	}
	return img, conf, nil
}

// checkPlatform refuses an image built for another platform than asked.
func checkPlatform(want string, conf ocispec.Image) error {
	p, err := image.ParsePlatform(want)
	if err != nil {
		return err
	}
	if p.OS != conf.OS || p.Architecture != conf.Architecture {
		return errdefs.Invalid("image is %s/%s, not the requested platform %s", conf.OS, conf.Architecture, want)
	}
	return nil
}

// mergeImageConfig records the image's defaults where the request left
// them empty, as Docker's inspect shows them.
func mergeImageConfig(c *container.Config, img ocispec.ImageConfig) {
	if c.User == "" {
		c.User = img.User
	}
	if c.WorkingDir == "" {
		c.WorkingDir = img.WorkingDir
	}
	if len(c.Entrypoint) == 0 {
		c.Entrypoint = img.Entrypoint
		if len(c.Cmd) == 0 {
			c.Cmd = img.Cmd
		}
	} else if len(c.Entrypoint) == 1 && c.Entrypoint[0] == "" {
		c.Entrypoint = nil // --entrypoint "": none, and not the image's
	}
	c.Env = specgen.MergeEnv(img.Env, c.Env)
	if c.StopSignal == "" {
		c.StopSignal = img.StopSignal
	}
	if c.Labels == nil && len(img.Labels) > 0 {
		c.Labels = map[string]string{}
	}
	for k, v := range img.Labels {
		if _, ok := c.Labels[k]; !ok {
			c.Labels[k] = v
		}
	}
}

// insert stores the new record under the requested name, or under a
// drawn one, retrying when another process took it first.
func (e *Engine) insert(ctx context.Context, db *state.Store, c *state.Container, name string) error {
	if name != "" {
		c.Name = strings.TrimPrefix(name, "/")
		return db.CreateContainer(ctx, c)
	}
	for i := range 20 {
		c.Name = randomName()
		if i >= 3 {
			c.Name += strconv.Itoa(i)
		}
		err := db.CreateContainer(ctx, c)
		if !errors.Is(err, errdefs.ErrAlreadyExists) {
			return err
		}
	}
	return fmt.Errorf("could not find a free container name")
}

// writeEtcFiles writes the container's /etc/hostname, /etc/hosts and
// /etc/resolv.conf.
// readHostFile reads one of the host's /etc files; a host without it
// reads as empty.
func readHostFile(p string) ([]byte, error) {
	b, err := os.ReadFile(p)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read the host's %s: %w", p, err)
	}
	return b, nil
}

func (e *Engine) writeEtcFiles(c *state.Container) error {
	hostname := c.Config.Hostname
	if hostname == "" {
		hostname = c.ID[:12]
	}
	hostResolv, err := readHostFile("/etc/resolv.conf")
	if err != nil {
		return err
	}
	hc := c.HostConfig
	files := map[string][]byte{
		hostnameFile: specgen.Hostname(hostname),
		hostsFile:    specgen.Hosts(hostname, hc.ExtraHosts),
		resolvFile:   specgen.ResolvConf(hostResolv, hc.DNS, hc.DNSSearch, hc.DNSOptions),
	}
	if hc.NetworkMode == "host" {
		if files[hostsFile], err = readHostFile("/etc/hosts"); err != nil {
			return err
		}
		files[resolvFile] = hostResolv
	}
	for name, data := range files {
		if err := os.WriteFile(e.containerPath(c.ID, name), data, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}

// dockerConfig reads an image's config as Docker's image spec has it:
// the OCI config plus Docker's extension (HEALTHCHECK), from one read.
func (e *Engine) dockerConfig(ctx context.Context, img image.Image) (dockerspec.DockerOCIImage, error) {
	var conf dockerspec.DockerOCIImage
	b, err := e.Images.Content.ReadBlob(ctx, img.Config, mediatype.MaxManifestSize)
	if err != nil {
		return conf, fmt.Errorf("image %s: %w", image.ShortID(img.Config), err)
	}
	oci, err := image.ParseConfig(b)
	if err != nil {
		return conf, err
	}
	if err := json.Unmarshal(b, &conf); err != nil {
		return conf, fmt.Errorf("image config: %w", err)
	}
	conf.Image = oci
	return conf, nil
}

// healthcheckOf converts an image's HEALTHCHECK to the API's type.
func healthcheckOf(h *dockerspec.HealthcheckConfig) *container.HealthConfig {
	if h == nil {
		return nil
	}
	return &container.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout,
		StartPeriod: h.StartPeriod, StartInterval: h.StartInterval, Retries: h.Retries}
}

// fillDefaults records the values Docker records for what the request
// left unset, so inspect shows what the container runs with.
func fillDefaults(c *state.Container) {
	hc := c.HostConfig
	if c.Config.Hostname == "" {
		c.Config.Hostname = c.ID[:12]
		if hc.NetworkMode == "host" {
			if h, err := os.Hostname(); err == nil {
				c.Config.Hostname = h
			}
		}
	}
	if hc.LogConfig.Type == "" {
		hc.LogConfig.Type = "json-file"
	}
	if hc.ShmSize == 0 {
		hc.ShmSize = specgen.DefaultShmSize
	}
}
