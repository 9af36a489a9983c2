package main

import (
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/engine/specgen"
	"github.com/berth-containers/berth/engine/state"
	"github.com/berth-containers/berth/internal/errdefs"
)

// parseRunArgs parses argv as `berth run` (withDetach) or `berth create`
// would, the first non-flag argument being the image.
func parseRunArgs(t *testing.T, withDetach bool, argv ...string) (*runRequest, error) {
	t.Helper()
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := addRunFlags(fs)
	if withDetach {
		// run's -d, as the run command binds it.
		fs.BoolVarP(&f.detach, "detach", "d", false, "")
	}
	if err := fs.Parse(argv); err != nil {
		return nil, err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return f.parse(fs, "", nil)
	}
	return f.parse(fs, rest[0], rest[1:])
}

// baseRunRequest is what `berth run img` gives.
func baseRunRequest() *runRequest {
	return &runRequest{
		Config: &container.Config{
			Image:        "img",
			AttachStdout: true,
			AttachStderr: true,
			ExposedPorts: network.PortSet{},
			Volumes:      map[string]struct{}{},
			Labels:       map[string]string{},
		},
		HostConfig: &container.HostConfig{
			LogConfig:     container.LogConfig{Config: map[string]string{}},
			NetworkMode:   "default",
			PortBindings:  network.PortMap{},
			RestartPolicy: container.RestartPolicy{Name: "no"},
			Annotations:   map[string]string{},
			DNSOptions:    []string{},
			DNSSearch:     []string{},
			Tmpfs:         map[string]string{},
			Sysctls:       map[string]string{},
			Resources:     container.Resources{Devices: []container.DeviceMapping{}},
		},
		Pull:       "missing",
		DetachKeys: "ctrl-p,ctrl-q",
		SigProxy:   true,
	}
}

// parsedMount is what the --mount parser gives for csv: the flag passes
// it through unchanged.
func parsedMount(t *testing.T, csv string) mount.Mount {
	t.Helper()
	m, err := specgen.ParseMountFlag(csv)
	require.NoError(t, err)
	return m
}

func rfPtr[T any](v T) *T { return &v }

func rfPort(s string) network.Port { return network.MustParsePort(s) }

func TestRunFlagsParse(t *testing.T) {
	dir := t.TempDir()
	envFile := filepath.Join(dir, "env")
	require.NoError(t, os.WriteFile(envFile, []byte("\xEF\xBB\xBF# comment\n\n  A=1\nB= spaced \nFROM_CALLER\nNOT_SET_ANYWHERE\nC=x=y\n"), 0o600))
	envFile2 := filepath.Join(dir, "env2")
	require.NoError(t, os.WriteFile(envFile2, []byte("A=2\n"), 0o600))
	labelFile := filepath.Join(dir, "labels")
	require.NoError(t, os.WriteFile(labelFile, []byte("# labels\nl1=a\nl2=b\nbare\n"), 0o600))
	seccomp := filepath.Join(dir, "seccomp.json")
	require.NoError(t, os.WriteFile(seccomp, []byte("{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\"\n}\n"), 0o600))
	t.Setenv("FROM_CALLER", "caller-value")
	cwd, err := os.Getwd()
	require.NoError(t, err)
	host := goruntime.GOOS + "/" + goruntime.GOARCH
	const mountA = "type=bind,source=/a,target=/b,readonly"
	const mountB = "type=tmpfs,target=/scratch"

	tests := []struct {
		name   string
		detach bool // parse as run, which has -d
		argv   []string
		want   func(r *runRequest)
	}{
		{"defaults", false, []string{"img"}, func(r *runRequest) {}},
		{"command and args", false, []string{"img", "ls", "-l", "--all"}, func(r *runRequest) {
			r.Config.Cmd = []string{"ls", "-l", "--all"}
		}},
		{"flags after image belong to the command", false, []string{"img", "--rm", "-e", "X=1"}, func(r *runRequest) {
			r.Config.Cmd = []string{"--rm", "-e", "X=1"}
		}},
		{"name", false, []string{"--name", "web.1_a-b", "img"}, func(r *runRequest) { r.Name = "web.1_a-b" }},
		{"name with slash", false, []string{"--name", "/web", "img"}, func(r *runRequest) { r.Name = "web" }},
		{"rm", false, []string{"--rm", "img"}, func(r *runRequest) { r.HostConfig.AutoRemove = true }},
		{"rm with restart no", false, []string{"--rm", "--restart", "no", "img"}, func(r *runRequest) { r.HostConfig.AutoRemove = true }},
		{"interactive tty", false, []string{"-it", "img"}, func(r *runRequest) {
			r.Config.Tty, r.Config.OpenStdin, r.Config.AttachStdin, r.Config.StdinOnce = true, true, true, true
		}},
		{"detached", true, []string{"-d", "img"}, func(r *runRequest) {
			r.Detach = true
			r.Config.AttachStdout, r.Config.AttachStderr = false, false
		}},
		{"detached interactive", true, []string{"-d", "-i", "img"}, func(r *runRequest) {
			r.Detach = true
			r.Config.OpenStdin = true
			r.Config.AttachStdout, r.Config.AttachStderr = false, false
		}},
		{"attach stdin only", false, []string{"-a", "STDIN", "img"}, func(r *runRequest) {
			r.Attach = []string{"stdin"}
			r.Config.AttachStdin, r.Config.AttachStdout, r.Config.AttachStderr = true, false, false
		}},
		{"attach stdout stderr with -i", false, []string{"-a", "stdout", "--attach=stderr", "-i", "img"}, func(r *runRequest) {
			r.Attach = []string{"stdout", "stderr"}
			r.Config.OpenStdin, r.Config.AttachStdin, r.Config.StdinOnce = true, true, true
		}},
		{"sig-proxy off", false, []string{"--sig-proxy=false", "img"}, func(r *runRequest) { r.SigProxy = false }},
		{"quiet", false, []string{"-q", "img"}, func(r *runRequest) { r.Quiet = true }},
		{"env", false, []string{"-e", "A=1", "--env", "B=", "-e", "FROM_CALLER", "-e", "NOT_SET_ANYWHERE", "-e", "C=x=y", "img"}, func(r *runRequest) {
			r.Config.Env = []string{"A=1", "B=", "FROM_CALLER=caller-value", "C=x=y"}
		}},
		{"env-file then env", false, []string{"--env-file", envFile, "--env-file", envFile2, "-e", "A=3", "img"}, func(r *runRequest) {
			r.Config.Env = []string{"A=1", "B= spaced ", "FROM_CALLER=caller-value", "C=x=y", "A=2", "A=3"}
		}},
		{"workdir user", false, []string{"-w", "/srv", "-u", "1000:1000", "img"}, func(r *runRequest) {
			r.Config.WorkingDir, r.Config.User = "/srv", "1000:1000"
		}},
		{"workdir long", false, []string{"--workdir=/x", "--user", "nobody", "img"}, func(r *runRequest) {
			r.Config.WorkingDir, r.Config.User = "/x", "nobody"
		}},
		{"entrypoint", false, []string{"--entrypoint", "/bin/sh", "img", "-c", "true"}, func(r *runRequest) {
			r.Config.Entrypoint = []string{"/bin/sh"}
			r.Config.Cmd = []string{"-c", "true"}
		}},
		{"entrypoint cleared", false, []string{"--entrypoint", "", "img"}, func(r *runRequest) {
			r.Config.Entrypoint = []string{""}
		}},
		{"entrypoint cleared with =", false, []string{"--entrypoint=", "img"}, func(r *runRequest) {
			r.Config.Entrypoint = []string{""}
		}},
		{"volumes", false, []string{"-v", "/data", "-v", "vol:/srv:ro", "-v", "/host:/ctr:rw,Z", "-v", "./rel:/rel", "-v", "vol:/srv:ro", "img"}, func(r *runRequest) {
			r.Config.Volumes = map[string]struct{}{"/data": {}}
			r.HostConfig.Binds = []string{"vol:/srv:ro", "/host:/ctr:rw,Z", filepath.Join(cwd, "rel") + ":/rel"}
		}},
		{"mounts", false, []string{"--mount", mountA, "--mount", mountB, "img"}, func(r *runRequest) {
			r.HostConfig.Mounts = []mount.Mount{parsedMount(t, mountA), parsedMount(t, mountB)}
		}},
		{"tmpfs", false, []string{"--tmpfs", "/run", "--tmpfs", "/tmp:rw,size=64m,mode=1777", "img"}, func(r *runRequest) {
			r.HostConfig.Tmpfs = map[string]string{"/run": "", "/tmp": "rw,size=64m,mode=1777"}
		}},
		{"read-only", false, []string{"--read-only", "img"}, func(r *runRequest) { r.HostConfig.ReadonlyRootfs = true }},
		{"volumes-from", false, []string{"--volumes-from", "other:ro", "img"}, func(r *runRequest) {
			r.HostConfig.VolumesFrom = []string{"other:ro"}
		}},
		{"memory", false, []string{"-m", "512m", "--memory-swap", "1g", "--memory-reservation", "256m", "img"}, func(r *runRequest) {
			r.HostConfig.Memory = 512 << 20
			r.HostConfig.MemorySwap = 1 << 30
			r.HostConfig.MemoryReservation = 256 << 20
		}},
		{"memory swap unlimited", false, []string{"--memory=1g", "--memory-swap=-1", "img"}, func(r *runRequest) {
			r.HostConfig.Memory = 1 << 30
			r.HostConfig.MemorySwap = -1
		}},
		{"memory swappiness", false, []string{"--memory-swappiness", "10", "img"}, func(r *runRequest) {
			r.HostConfig.MemorySwappiness = rfPtr(int64(10))
		}},
		{"shm-size", false, []string{"--shm-size", "128m", "img"}, func(r *runRequest) { r.HostConfig.ShmSize = 128 << 20 }},
		{"cpus", false, []string{"--cpus", "1.5", "img"}, func(r *runRequest) { r.HostConfig.NanoCPUs = 1_500_000_000 }},
		{"cpus fraction", false, []string{"--cpus", "0.001", "img"}, func(r *runRequest) { r.HostConfig.NanoCPUs = 1_000_000 }},
		{"cpu shares period quota", false, []string{"-c", "512", "--cpu-period", "100000", "--cpu-quota", "50000", "img"}, func(r *runRequest) {
			r.HostConfig.CPUShares, r.HostConfig.CPUPeriod, r.HostConfig.CPUQuota = 512, 100000, 50000
		}},
		{"cpuset", false, []string{"--cpuset-cpus", "0-3,5", "--cpuset-mems", "0", "img"}, func(r *runRequest) {
			r.HostConfig.CpusetCpus, r.HostConfig.CpusetMems = "0-3,5", "0"
		}},
		{"pids-limit", false, []string{"--pids-limit", "100", "img"}, func(r *runRequest) { r.HostConfig.PidsLimit = rfPtr(int64(100)) }},
		{"pids-limit unlimited", false, []string{"--pids-limit=-1", "img"}, func(r *runRequest) { r.HostConfig.PidsLimit = rfPtr(int64(-1)) }},
		{"ulimits", false, []string{"--ulimit", "nofile=1024:2048", "--ulimit", "nproc=10", "--ulimit", "nofile=512", "img"}, func(r *runRequest) {
			r.HostConfig.Ulimits = []*container.Ulimit{{Name: "nofile", Soft: 512, Hard: 512}, {Name: "nproc", Soft: 10, Hard: 10}}
		}},
		{"oom", false, []string{"--oom-score-adj", "-500", "--oom-kill-disable", "img"}, func(r *runRequest) {
			r.HostConfig.OomScoreAdj = -500
			r.HostConfig.OomKillDisable = rfPtr(true)
		}},
		{"cgroup-parent", false, []string{"--cgroup-parent", "/mine", "img"}, func(r *runRequest) { r.HostConfig.CgroupParent = "/mine" }},
		{"caps", false, []string{"--cap-add", "NET_ADMIN", "--cap-add", "cap_sys_time", "--cap-drop", "ALL", "img"}, func(r *runRequest) {
			r.HostConfig.CapAdd = []string{"NET_ADMIN", "cap_sys_time"}
			r.HostConfig.CapDrop = []string{"ALL"}
		}},
		{"privileged", false, []string{"--privileged", "img"}, func(r *runRequest) { r.HostConfig.Privileged = true }},
		{"security-opt", false, []string{"--security-opt", "no-new-privileges", "--security-opt", "apparmor=unconfined", "--security-opt", "label:disable", "--security-opt", "seccomp=unconfined", "img"}, func(r *runRequest) {
			r.HostConfig.SecurityOpt = []string{"no-new-privileges", "apparmor=unconfined", "label:disable", "seccomp=unconfined"}
		}},
		{"security-opt seccomp file", false, []string{"--security-opt", "seccomp=" + seccomp, "img"}, func(r *runRequest) {
			r.HostConfig.SecurityOpt = []string{`seccomp={"defaultAction":"SCMP_ACT_ALLOW"}`}
		}},
		{"security-opt systempaths", false, []string{"--security-opt", "systempaths=unconfined", "img"}, func(r *runRequest) {
			r.HostConfig.MaskedPaths, r.HostConfig.ReadonlyPaths = []string{}, []string{}
		}},
		{"devices", false, []string{"--device", "/dev/fuse", "--device", "/dev/sda:/dev/xvda:r", "--device", "/dev/null:rw", "--device", "/dev/zero:/dev/z", "img"}, func(r *runRequest) {
			r.HostConfig.Devices = []container.DeviceMapping{
				{PathOnHost: "/dev/fuse", PathInContainer: "/dev/fuse", CgroupPermissions: "rwm"},
				{PathOnHost: "/dev/sda", PathInContainer: "/dev/xvda", CgroupPermissions: "r"},
				{PathOnHost: "/dev/null", PathInContainer: "/dev/null", CgroupPermissions: "rw"},
				{PathOnHost: "/dev/zero", PathInContainer: "/dev/z", CgroupPermissions: "rwm"},
			}
		}},
		{"cdi device", false, []string{"--device", "nvidia.com/gpu=all", "img"}, func(r *runRequest) {
			r.HostConfig.DeviceRequests = []container.DeviceRequest{{Driver: "cdi", DeviceIDs: []string{"nvidia.com/gpu=all"}}}
		}},
		{"group-add", false, []string{"--group-add", "audio", "--group-add", "1001", "img"}, func(r *runRequest) {
			r.HostConfig.GroupAdd = []string{"audio", "1001"}
		}},
		{"hostname domainname", false, []string{"-h", "box", "--domainname", "example.org", "img"}, func(r *runRequest) {
			r.Config.Hostname, r.Config.Domainname = "box", "example.org"
		}},
		{"init", false, []string{"--init", "img"}, func(r *runRequest) { r.HostConfig.Init = rfPtr(true) }},
		{"init false", false, []string{"--init=false", "img"}, func(r *runRequest) { r.HostConfig.Init = rfPtr(false) }},
		{"restart always", false, []string{"--restart", "always", "img"}, func(r *runRequest) {
			r.HostConfig.RestartPolicy = container.RestartPolicy{Name: "always"}
		}},
		{"restart unless-stopped", false, []string{"--restart=unless-stopped", "img"}, func(r *runRequest) {
			r.HostConfig.RestartPolicy = container.RestartPolicy{Name: "unless-stopped"}
		}},
		{"restart on-failure", false, []string{"--restart", "on-failure:5", "img"}, func(r *runRequest) {
			r.HostConfig.RestartPolicy = container.RestartPolicy{Name: "on-failure", MaximumRetryCount: 5}
		}},
		{"restart on-failure no count", false, []string{"--restart", "on-failure", "img"}, func(r *runRequest) {
			r.HostConfig.RestartPolicy = container.RestartPolicy{Name: "on-failure"}
		}},
		{"stop signal and timeout", false, []string{"--stop-signal", "SIGUSR1", "--stop-timeout", "30", "img"}, func(r *runRequest) {
			r.Config.StopSignal = "SIGUSR1"
			r.Config.StopTimeout = rfPtr(30)
		}},
		{"stop signal forms", false, []string{"--stop-signal", "9", "--stop-signal", "RTMIN+3", "--stop-signal", "quit", "--stop-timeout=0", "img"}, func(r *runRequest) {
			r.Config.StopSignal = "quit"
			r.Config.StopTimeout = rfPtr(0)
		}},
		{"labels", false, []string{"--label-file", labelFile, "-l", "l2=override", "--label", "flag", "-l", "k=v=w", "img"}, func(r *runRequest) {
			r.Config.Labels = map[string]string{"l1": "a", "l2": "override", "flag": "", "k": "v=w"}
		}},
		{"annotations", false, []string{"--annotation", "a=b", "--annotation", "c", "img"}, func(r *runRequest) {
			r.HostConfig.Annotations = map[string]string{"a": "b", "c": ""}
		}},
		{"health", false, []string{"--health-cmd", "curl -f localhost", "--health-interval", "5s", "--health-timeout", "2s", "--health-start-period", "1m", "--health-start-interval", "1s", "--health-retries", "3", "img"}, func(r *runRequest) {
			r.Config.Healthcheck = &container.HealthConfig{
				Test: []string{"CMD-SHELL", "curl -f localhost"}, Interval: 5 * time.Second, Timeout: 2 * time.Second,
				StartPeriod: time.Minute, StartInterval: time.Second, Retries: 3,
			}
		}},
		{"health without command", false, []string{"--health-interval", "5s", "img"}, func(r *runRequest) {
			r.Config.Healthcheck = &container.HealthConfig{Interval: 5 * time.Second}
		}},
		{"no-healthcheck", false, []string{"--no-healthcheck", "img"}, func(r *runRequest) {
			r.Config.Healthcheck = &container.HealthConfig{Test: []string{"NONE"}}
		}},
		{"pull always", false, []string{"--pull", "always", "img"}, func(r *runRequest) { r.Pull = "always" }},
		{"pull never", false, []string{"--pull=never", "img"}, func(r *runRequest) { r.Pull = "never" }},
		{"pull empty", false, []string{"--pull=", "img"}, func(r *runRequest) {}},
		{"platform", false, []string{"--platform", host, "img"}, func(r *runRequest) { r.Platform = host }},
		{"platform arch only", false, []string{"--platform", goruntime.GOARCH, "img"}, func(r *runRequest) { r.Platform = host }},
		{"platform upper case", false, []string{"--platform", strings.ToUpper(host), "img"}, func(r *runRequest) { r.Platform = host }},
		{"detach keys", false, []string{"--detach-keys", "ctrl-a,x,ctrl-@,ctrl-[,DEL", "img"}, func(r *runRequest) {
			r.DetachKeys = "ctrl-a,x,ctrl-@,ctrl-[,DEL"
		}},
		{"network host", false, []string{"--network", "host", "img"}, func(r *runRequest) { r.HostConfig.NetworkMode = "host" }},
		{"network none via --net", false, []string{"--net=none", "img"}, func(r *runRequest) { r.HostConfig.NetworkMode = "none" }},
		{"network container", false, []string{"--network", "container:web", "img"}, func(r *runRequest) { r.HostConfig.NetworkMode = "container:web" }},
		{"network named", false, []string{"--network", "mynet", "img"}, func(r *runRequest) { r.HostConfig.NetworkMode = "mynet" }},
		{"network bridge", false, []string{"--network", "bridge", "img"}, func(r *runRequest) { r.HostConfig.NetworkMode = "bridge" }},
		{"dns", false, []string{"--dns", "1.1.1.1", "--dns", " 2001:db8::1 ", "--dns-search", "example.com.", "--dns-search", ".", "--dns-option", "ndots:2", "--dns-opt", "rotate", "img"}, func(r *runRequest) {
			r.HostConfig.DNS = []netip.Addr{netip.MustParseAddr("1.1.1.1"), netip.MustParseAddr("2001:db8::1")}
			r.HostConfig.DNSSearch = []string{"example.com", "."}
			r.HostConfig.DNSOptions = []string{"ndots:2", "rotate"}
		}},
		{"add-host", false, []string{"--add-host", "db:10.0.0.2", "--add-host", "gw=host-gateway", "--add-host", "v6:[::1]", "--add-host", "v6b:::2", "img"}, func(r *runRequest) {
			r.HostConfig.ExtraHosts = []string{"db:10.0.0.2", "gw:host-gateway", "v6:::1", "v6b:::2"}
		}},
		{"publish simple", false, []string{"-p", "8080:80", "img"}, func(r *runRequest) {
			r.Config.ExposedPorts = network.PortSet{rfPort("80/tcp"): {}}
			r.HostConfig.PortBindings = network.PortMap{rfPort("80/tcp"): {{HostPort: "8080"}}}
		}},
		{"publish container only and ip", false, []string{"-p", "53/udp", "-p", "127.0.0.1:5353:53/UDP", "-p", "[::1]::443", "img"}, func(r *runRequest) {
			r.Config.ExposedPorts = network.PortSet{rfPort("53/udp"): {}, rfPort("443/tcp"): {}}
			r.HostConfig.PortBindings = network.PortMap{
				rfPort("53/udp"):  {{}, {HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: "5353"}},
				rfPort("443/tcp"): {{HostIP: netip.MustParseAddr("::1")}},
			}
		}},
		{"publish ranges", false, []string{"-p", "9000-9001:80-81", "-p", "7000-7010:22/sctp", "img"}, func(r *runRequest) {
			r.Config.ExposedPorts = network.PortSet{rfPort("80/tcp"): {}, rfPort("81/tcp"): {}, rfPort("22/sctp"): {}}
			r.HostConfig.PortBindings = network.PortMap{
				rfPort("80/tcp"):  {{HostPort: "9000"}},
				rfPort("81/tcp"):  {{HostPort: "9001"}},
				rfPort("22/sctp"): {{HostPort: "7000-7010"}},
			}
		}},
		{"publish long form", false, []string{"-p", "published=8080,target=80,protocol=udp", "img"}, func(r *runRequest) {
			r.Config.ExposedPorts = network.PortSet{rfPort("80/udp"): {}}
			r.HostConfig.PortBindings = network.PortMap{rfPort("80/udp"): {{HostPort: "8080"}}}
		}},
		{"publish-all and expose", false, []string{"-P", "--expose", "80", "--expose", "1000-1002/udp", "img"}, func(r *runRequest) {
			r.HostConfig.PublishAllPorts = true
			r.Config.ExposedPorts = network.PortSet{rfPort("80/tcp"): {}, rfPort("1000/udp"): {}, rfPort("1001/udp"): {}, rfPort("1002/udp"): {}}
		}},
		{"log driver json-file", false, []string{"--log-driver", "json-file", "--log-opt", "max-size=10m", "--log-opt", "max-file=3", "--log-opt", "compress=true", "img"}, func(r *runRequest) {
			r.HostConfig.LogConfig = container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "10m", "max-file": "3", "compress": "true"}}
		}},
		{"log opts with default driver", false, []string{"--log-opt", "tag={{.Name}}", "img"}, func(r *runRequest) {
			r.HostConfig.LogConfig = container.LogConfig{Config: map[string]string{"tag": "{{.Name}}"}}
		}},
		{"log driver none", false, []string{"--log-driver=none", "img"}, func(r *runRequest) {
			r.HostConfig.LogConfig.Type = "none"
		}},
		{"sysctl", false, []string{"--sysctl", "net.ipv4.ip_forward=1", "--sysctl", "kernel.shmmax=1024", "img"}, func(r *runRequest) {
			r.HostConfig.Sysctls = map[string]string{"net.ipv4.ip_forward": "1", "kernel.shmmax": "1024"}
		}},
		{"namespaces", false, []string{"--ipc", "shareable", "--pid", "host", "--uts", "host", "--userns", "host", "--cgroupns", "private", "img"}, func(r *runRequest) {
			r.HostConfig.IpcMode, r.HostConfig.PidMode, r.HostConfig.UTSMode = "shareable", "host", "host"
			r.HostConfig.UsernsMode, r.HostConfig.CgroupnsMode = "host", "private"
		}},
		{"namespaces from containers", false, []string{"--ipc", "container:a", "--pid", "container:b", "--cgroupns=host", "img"}, func(r *runRequest) {
			r.HostConfig.IpcMode, r.HostConfig.PidMode, r.HostConfig.CgroupnsMode = "container:a", "container:b", "host"
		}},
		{"cidfile and runtime", false, []string{"--cidfile", "/tmp/cid", "--runtime", "berth", "img"}, func(r *runRequest) {
			r.HostConfig.ContainerIDFile, r.HostConfig.Runtime = "/tmp/cid", "berth"
		}},
		{"endpoint settings on a user network", false, []string{"--network", "mynet", "--ip", "172.20.0.5", "--ip6", "2001:db8::5",
			"--mac-address", "92:D0:C6:0A:29:33", "--network-alias", "web", "--net-alias", "www", "img"}, func(r *runRequest) {
			r.HostConfig.NetworkMode = "mynet"
			r.NetworkingConfig = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
				"mynet": {
					IPAMConfig: &network.EndpointIPAMConfig{
						IPv4Address: netip.MustParseAddr("172.20.0.5"),
						IPv6Address: netip.MustParseAddr("2001:db8::5"),
					},
					Aliases:    []string{"web", "www"},
					MacAddress: network.HardwareAddr{0x92, 0xd0, 0xc6, 0x0a, 0x29, 0x33},
				},
			}}
		}},
		{"ip alone", false, []string{"--network", "mynet", "--ip", "10.1.0.9", "img"}, func(r *runRequest) {
			r.HostConfig.NetworkMode = "mynet"
			r.NetworkingConfig = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
				"mynet": {IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: netip.MustParseAddr("10.1.0.9")}},
			}}
		}},
		{"mac address on the default network is keyed bridge", false, []string{"--mac-address", "02:42:ac:11:00:02", "img"}, func(r *runRequest) {
			r.NetworkingConfig = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
				"bridge": {MacAddress: network.HardwareAddr{0x02, 0x42, 0xac, 0x11, 0x00, 0x02}},
			}}
		}},
		{"mac address on bridge", false, []string{"--network", "bridge", "--mac-address", "02-42-ac-11-00-03", "img"}, func(r *runRequest) {
			r.HostConfig.NetworkMode = "bridge"
			r.NetworkingConfig = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
				"bridge": {MacAddress: network.HardwareAddr{0x02, 0x42, 0xac, 0x11, 0x00, 0x03}},
			}}
		}},
		{"firewall rules in canonical form", false, []string{
			"--firewall", "direction=egress,action=deny,cidr=10.1.0.0/16,proto=tcp,port=443",
			"--firewall", "Action=Allow, DIRECTION=ingress, proto=udp, port=53-54", "img"}, func(r *runRequest) {
			r.Net.Firewall = []string{
				"direction=egress,action=deny,cidr=10.1.0.0/16,proto=tcp,port=443",
				"direction=ingress,action=allow,proto=udp,port=53-54",
			}
		}},
		{"firewall default", false, []string{"--firewall-default", "egress=deny", "img"}, func(r *runRequest) {
			r.Net.FirewallDefault = "ingress=allow,egress=deny"
		}},
		{"firewall default later wins per direction", false, []string{"--firewall-default", "ingress=deny,egress=deny", "--firewall-default", "egress=allow", "img"}, func(r *runRequest) {
			r.Net.FirewallDefault = "ingress=deny,egress=allow"
		}},
		{"routes", false, []string{"--route", "10.9.0.0/16,via=172.18.0.5", "--route", "192.0.2.0/24", "--route", " 198.51.100.7 ",
			"--route", "2001:db8:1::/48,via=fe80::1", "--route", "2001:db8::9", "img"}, func(r *runRequest) {
			r.Net.Routes = []string{"10.9.0.0/16,via=172.18.0.5", "192.0.2.0/24", "198.51.100.7/32", "2001:db8:1::/48,via=fe80::1", "2001:db8::9/128"}
		}},
		{"berth's network flags on a user network", false, []string{"--network", "mynet", "--firewall", "direction=ingress,action=deny",
			"--route", "10.0.0.0/8,via=10.1.0.1", "img"}, func(r *runRequest) {
			r.HostConfig.NetworkMode = "mynet"
			r.Net = state.NetConfig{Firewall: []string{"direction=ingress,action=deny"}, Routes: []string{"10.0.0.0/8,via=10.1.0.1"}}
		}},
		{"publish with host network is dropped with a warning", false, []string{"--network", "host", "-p", "8080:80", "-P", "img"}, func(r *runRequest) {
			r.HostConfig.NetworkMode = "host"
			// The port stays exposed, as in docker; only the bindings go.
			r.Config.ExposedPorts = network.PortSet{rfPort("80/tcp"): {}}
			r.Warnings = []string{"Published ports are discarded when using host network mode"}
		}},
		{"expose with host network", false, []string{"--network", "host", "--expose", "80", "img"}, func(r *runRequest) {
			r.HostConfig.NetworkMode = "host"
			r.Config.ExposedPorts = network.PortSet{rfPort("80/tcp"): {}}
		}},
		{"expose with no network", false, []string{"--network", "none", "--expose", "80", "img"}, func(r *runRequest) {
			r.HostConfig.NetworkMode = "none"
			r.Config.ExposedPorts = network.PortSet{rfPort("80/tcp"): {}}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseRunArgs(t, tc.detach, tc.argv...)
			require.NoError(t, err)
			want := baseRunRequest()
			tc.want(want)
			assert.Equal(t, want, got)
		})
	}
}

func TestRunFlagsErrors(t *testing.T) {
	dir := t.TempDir()
	badEnv := filepath.Join(dir, "bad.env")
	require.NoError(t, os.WriteFile(badEnv, []byte("OK=1\nBAD KEY=2\n"), 0o600))
	badLabels := filepath.Join(dir, "bad.labels")
	require.NoError(t, os.WriteFile(badLabels, []byte("=x\n"), 0o600))
	badSeccomp := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(badSeccomp, []byte("{not json"), 0o600))
	other := "linux/arm64"
	if goruntime.GOARCH == "arm64" {
		other = "linux/amd64"
	}

	tests := []struct {
		name   string
		detach bool
		argv   []string
		want   string // the whole message, or a part of it after "~"
	}{
		{"no image", false, nil, "image name must not be empty"},
		{"memory", false, []string{"-m", "abc", "img"}, `invalid argument "abc" for "-m, --memory" flag: invalid size: 'abc'`},
		{"memory suffix", false, []string{"--memory", "1x", "img"}, `~invalid argument "1x" for "-m, --memory" flag: invalid suffix`},
		{"memory too small", false, []string{"-m", "1m", "img"}, "--memory: minimum memory limit allowed is 6MB"},
		{"memory-swap bad", false, []string{"--memory-swap", "-2", "img"}, `invalid argument "-2" for "--memory-swap" flag: invalid size: '-2'`},
		{"memory-swap without memory", false, []string{"--memory-swap", "1g", "img"}, "~you should always set the memory limit when using memoryswap limit"},
		{"memory-swap below memory", false, []string{"-m", "1g", "--memory-swap", "512m", "img"}, "~minimum memoryswap limit should be larger than memory limit"},
		{"memory-reservation above memory", false, []string{"-m", "64m", "--memory-reservation", "128m", "img"}, "~minimum memory limit can not be less than memory reservation limit"},
		{"memory-swappiness range", false, []string{"--memory-swappiness", "101", "img"}, "--memory-swappiness: invalid value: 101. Valid memory swappiness range is 0-100"},
		{"shm-size", false, []string{"--shm-size", "big", "img"}, `invalid argument "big" for "--shm-size" flag: invalid size: 'big'`},
		{"cpus", false, []string{"--cpus", "abc", "img"}, `invalid argument "abc" for "--cpus" flag: failed to parse abc as a rational number`},
		{"cpus too precise", false, []string{"--cpus", "0.0000000001", "img"}, `~"--cpus" flag: value is too precise`},
		{"cpus negative", false, []string{"--cpus=-1", "img"}, `~"--cpus" flag: number of CPUs cannot be negative`},
		{"cpus with period", false, []string{"--cpus", "1", "--cpu-period", "100000", "img"}, "conflicting options: Nano CPUs and CPU Period cannot both be set"},
		{"cpus with quota", false, []string{"--cpus", "1", "--cpu-quota", "100000", "img"}, "conflicting options: Nano CPUs and CPU Quota cannot both be set"},
		{"cpu-period range", false, []string{"--cpu-period", "10", "img"}, "~--cpu-period: CPU cfs period can not be less than 1ms"},
		{"cpu-quota range", false, []string{"--cpu-quota", "10", "img"}, "~--cpu-quota: CPU cfs quota can not be less than 1ms"},
		{"cpu-shares type", false, []string{"-c", "many", "img"}, `~invalid argument "many" for "-c, --cpu-shares" flag`},
		{"cpu-shares negative", false, []string{"--cpu-shares=-2", "img"}, "--cpu-shares: invalid value -2: must not be negative"},
		{"cpuset-cpus", false, []string{"--cpuset-cpus", "0-x", "img"}, `invalid argument "0-x" for "--cpuset-cpus" flag: invalid value 0-x: want a list like 0-3,5`},
		{"cpuset-mems reversed", false, []string{"--cpuset-mems", "3-1", "img"}, `~invalid argument "3-1" for "--cpuset-mems" flag`},
		{"pids-limit", false, []string{"--pids-limit", "lots", "img"}, `~invalid argument "lots" for "--pids-limit" flag`},
		{"ulimit format", false, []string{"--ulimit", "nofile", "img"}, `invalid argument "nofile" for "--ulimit" flag: invalid ulimit argument: nofile`},
		{"ulimit type", false, []string{"--ulimit", "bogus=1", "img"}, `invalid argument "bogus=1" for "--ulimit" flag: invalid ulimit type: bogus`},
		{"ulimit soft above hard", false, []string{"--ulimit", "nofile=10:5", "img"}, `~"--ulimit" flag: ulimit soft limit must be less than or equal to hard limit`},
		{"oom-score-adj", false, []string{"--oom-score-adj", "2000", "img"}, "--oom-score-adj: invalid value 2000, range for oom score adj is [-1000, 1000]"},
		{"name", false, []string{"--name", "-bad", "img"}, `invalid argument "-bad" for "--name" flag: invalid container name (-bad), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`},
		{"name chars", false, []string{"--name", "a b", "img"}, `~invalid container name (a b)`},
		{"env empty name", false, []string{"-e", "=x", "img"}, `invalid argument "=x" for "-e, --env" flag: invalid environment variable: =x`},
		{"env-file missing", false, []string{"--env-file", filepath.Join(dir, "nope"), "img"}, "~--env-file: open "},
		{"env-file bad key", false, []string{"--env-file", badEnv, "img"}, "~variable 'BAD KEY' contains whitespaces"},
		{"label empty", false, []string{"-l", "=v", "img"}, `invalid argument "=v" for "-l, --label" flag: invalid label '=v': empty name`},
		{"label whitespace", false, []string{"-l", "a b=c", "img"}, `~label 'a b' contains whitespaces`},
		{"label-file bad", false, []string{"--label-file", badLabels, "img"}, "~--label-file: invalid label file"},
		{"annotation empty key", false, []string{"--annotation", "=x", "img"}, `~"--annotation" flag: empty annotation name`},
		{"volume empty", false, []string{"-v", "", "img"}, `invalid argument "" for "-v, --volume" flag: invalid empty volume spec`},
		{"volume relative destination", false, []string{"-v", "/host:rel", "img"}, `~destination "rel" is not an absolute path`},
		{"volume relative anonymous", false, []string{"-v", "data", "img"}, `~destination "data" is not an absolute path`},
		{"volume empty section", false, []string{"-v", "/a::/b", "img"}, "~empty section between colons"},
		{"volume too many colons", false, []string{"-v", "/a:/b:ro:x", "img"}, "~too many colons"},
		{"volume bad mode", false, []string{"-v", "/a:/b:rx", "img"}, "~invalid mode: rx"},
		{"volume root destination", false, []string{"-v", "/a:/", "img"}, "~destination can't be '/'"},
		{"mount", false, []string{"--mount", "type=bind,source=/a", "img"}, `~invalid argument "type=bind,source=/a" for "--mount" flag: `},
		{"tmpfs relative", false, []string{"--tmpfs", "run:size=1m", "img"}, `~"--tmpfs" flag: invalid tmpfs "run:size=1m": destination must be an absolute path`},
		{"volumes-from empty", false, []string{"--volumes-from=", "img"}, `~"--volumes-from" flag: value must not be empty`},
		{"cap unknown", false, []string{"--cap-add", "CAP_FLY", "img"}, `invalid argument "CAP_FLY" for "--cap-add" flag: unknown capability: "CAP_FLY"`},
		{"cap-drop unknown", false, []string{"--cap-drop", "nope", "img"}, `~unknown capability: "nope"`},
		{"security-opt format", false, []string{"--security-opt", "apparmor", "img"}, `invalid argument "apparmor" for "--security-opt" flag: invalid --security-opt: "apparmor"`},
		{"security-opt unknown", false, []string{"--security-opt", "foo=bar", "img"}, `~unknown option "foo"`},
		{"security-opt nnp value", false, []string{"--security-opt", "no-new-privileges=maybe", "img"}, "~want no-new-privileges[=true|false]"},
		{"security-opt systempaths", false, []string{"--security-opt", "systempaths=confined", "img"}, "~systempaths takes only unconfined"},
		{"seccomp file missing", false, []string{"--security-opt", "seccomp=" + filepath.Join(dir, "nope.json"), "img"}, "~opening seccomp profile"},
		{"seccomp file not json", false, []string{"--security-opt", "seccomp=" + badSeccomp, "img"}, "~compacting json for seccomp profile"},
		{"device mode", false, []string{"--device", "/dev/a:/dev/b:rwx", "img"}, `invalid argument "/dev/a:/dev/b:rwx" for "--device" flag: bad mode specified: rwx`},
		{"device repeated mode", false, []string{"--device", "/dev/a:/dev/b:rr", "img"}, "~bad mode specified: rr"},
		{"device relative", false, []string{"--device", "/dev/a:dev/b", "img"}, "~dev/b is not an absolute path"},
		{"device relative host", false, []string{"--device", "sda", "img"}, "~sda is not an absolute path"},
		{"device format", false, []string{"--device", "/a:/b:r:x", "img"}, "~bad format for path: /a:/b:r:x"},
		{"device empty host", false, []string{"--device", ":/b", "img"}, "~bad format for path: :/b"},
		{"group-add empty", false, []string{"--group-add=", "img"}, "~value must not be empty"},
		{"sysctl host", false, []string{"--sysctl", "kernel.panic=1", "img"}, `invalid argument "kernel.panic=1" for "--sysctl" flag: sysctl 'kernel.panic=1' is not allowed`},
		{"sysctl format", false, []string{"--sysctl", "net.core.somaxconn", "img"}, "~sysctl 'net.core.somaxconn' is not allowed"},
		{"ipc", false, []string{"--ipc", "weird", "img"}, `~"--ipc" flag: invalid IPC mode "weird"`},
		{"ipc container empty", false, []string{"--ipc", "container:", "img"}, `~invalid IPC mode "container:"`},
		{"pid", false, []string{"--pid", "container:", "img"}, `~"--pid" flag: invalid PID mode "container:"`},
		{"uts", false, []string{"--uts", "private", "img"}, `~"--uts" flag: invalid UTS mode "private"`},
		{"userns", false, []string{"--userns", "keep-id", "img"}, `invalid argument "keep-id" for "--userns" flag: invalid USER mode "keep-id": only host is supported`},
		{"cgroupns", false, []string{"--cgroupns", "shared", "img"}, `~"--cgroupns" flag: invalid CGROUP mode "shared": use host or private`},
		{"restart unknown", false, []string{"--restart", "sometimes", "img"}, `invalid argument "sometimes" for "--restart" flag: invalid restart policy "sometimes": use no, always, unless-stopped or on-failure[:max-retries]`},
		{"restart count on always", false, []string{"--restart", "always:3", "img"}, `~invalid restart policy "always:3": maximum retry count can only be used with 'on-failure'`},
		{"restart count not a number", false, []string{"--restart", "on-failure:x", "img"}, "~maximum retry count must be an integer"},
		{"restart count negative", false, []string{"--restart", "on-failure:-1", "img"}, "~maximum retry count cannot be negative"},
		{"restart empty policy", false, []string{"--restart", ":3", "img"}, `~invalid restart policy ":3"`},
		{"restart with rm", false, []string{"--rm", "--restart", "always", "img"}, "conflicting options: cannot specify both --restart and --rm"},
		{"stop-signal", false, []string{"--stop-signal", "SIGNOPE", "img"}, `invalid argument "SIGNOPE" for "--stop-signal" flag: invalid signal: SIGNOPE`},
		{"stop-signal number", false, []string{"--stop-signal", "99", "img"}, "~invalid signal: 99"},
		{"stop-signal rt", false, []string{"--stop-signal", "RTMIN+40", "img"}, "~invalid signal: RTMIN+40"},
		{"stop-timeout", false, []string{"--stop-timeout", "soon", "img"}, `~invalid argument "soon" for "--stop-timeout" flag`},
		{"no-healthcheck with cmd", false, []string{"--no-healthcheck", "--health-cmd", "true", "img"}, "--no-healthcheck conflicts with --health-* options"},
		{"no-healthcheck with retries", false, []string{"--no-healthcheck", "--health-retries", "2", "img"}, "--no-healthcheck conflicts with --health-* options"},
		{"health interval negative", false, []string{"--health-interval=-1s", "img"}, "--health-interval cannot be negative"},
		{"health timeout negative", false, []string{"--health-timeout=-1s", "img"}, "--health-timeout cannot be negative"},
		{"health start period negative", false, []string{"--health-start-period=-1s", "img"}, "--health-start-period cannot be negative"},
		{"health start interval negative", false, []string{"--health-start-interval=-1s", "img"}, "--health-start-interval cannot be negative"},
		{"health retries negative", false, []string{"--health-retries=-1", "img"}, "--health-retries cannot be negative"},
		{"health interval format", false, []string{"--health-interval", "5", "img"}, `~invalid argument "5" for "--health-interval" flag`},
		{"pull", false, []string{"--pull", "sometimes", "img"}, `invalid argument "sometimes" for "--pull" flag: invalid pull option: 'sometimes': must be one of "always", "missing" or "never"`},
		{"platform other arch", false, []string{"--platform", other, "img"}, `~"--platform" flag: platform "` + other + `" does not match this machine`},
		{"platform other os", false, []string{"--platform", "windows/" + goruntime.GOARCH, "img"}, "~does not match this machine"},
		{"platform format", false, []string{"--platform", "linux//x", "img"}, `~invalid platform "linux//x"`},
		{"detach keys", false, []string{"--detach-keys", "ctrl-1", "img"}, `invalid argument "ctrl-1" for "--detach-keys" flag: invalid detach keys (ctrl-1): unknown character: 'ctrl-1'`},
		{"detach keys empty item", false, []string{"--detach-keys", "ctrl-p,", "img"}, "~unknown character: ''"},
		{"network empty", false, []string{"--network", "", "img"}, `invalid argument "" for "--network" flag: no name set for network`},
		{"network advanced", false, []string{"--network", "name=a,alias=b", "img"}, "~name=...,alias=... form is not supported"},
		{"network container empty", false, []string{"--net", "container:", "img"}, `~"--net" flag: container: needs a container name or id`},
		{"network twice", false, []string{"--network", "a", "--network", "b", "img"}, "--network: one network only, got a, b"},
		{"dns", false, []string{"--dns", "8.8.8", "img"}, `invalid argument "8.8.8" for "--dns" flag: IP address is not correctly formatted: 8.8.8`},
		{"dns-search", false, []string{"--dns-search", "-bad.example", "img"}, `invalid argument "-bad.example" for "--dns-search" flag: -bad.example is not a valid domain`},
		{"dns-search digits", false, []string{"--dns-search", "123", "img"}, "~123 is not a valid domain"},
		{"add-host format", false, []string{"--add-host", "nohost", "img"}, `invalid argument "nohost" for "--add-host" flag: bad format for add-host: "nohost"`},
		{"add-host ip", false, []string{"--add-host", "db:1.2.3", "img"}, `~invalid IP address in add-host: "1.2.3"`},
		{"publish container port", false, []string{"-p", "8080:http", "img"}, `invalid argument "8080:http" for "-p, --publish" flag: invalid containerPort: http`},
		{"publish host port", false, []string{"-p", "x:80", "img"}, "~invalid hostPort: x"},
		{"publish port zero", false, []string{"-p", "0", "img"}, "~invalid containerPort: 0"},
		{"publish ip", false, []string{"-p", "1.2.3:80:80", "img"}, "~invalid IP address: 1.2.3"},
		{"publish proto", false, []string{"-p", "80/icmp", "img"}, "~invalid proto: icmp"},
		{"publish empty", false, []string{"-p", "8080:", "img"}, "~no port specified: 8080:<empty>"},
		{"publish ranges", false, []string{"-p", "1-3:1-2", "img"}, "~invalid ranges specified for container and host Ports: 1-2 and 1-3"},
		{"publish long form", false, []string{"-p", "target", "img"}, "~invalid containerPort: target"},
		{"publish long form key", false, []string{"-p", "target=80,bogus=1", "img"}, `~invalid publish option "bogus"`},
		{"expose", false, []string{"--expose", "http", "img"}, `~invalid argument "http" for "--expose" flag: invalid range format for --expose`},
		{"expose proto", false, []string{"--expose", "80/icmp", "img"}, "~invalid proto: icmp"},
		{"log driver", false, []string{"--log-driver", "syslog", "img"}, `invalid argument "syslog" for "--log-driver" flag: log driver "syslog" is not supported: use json-file or none`},
		{"log opt format", false, []string{"--log-opt", "max-size", "img"}, `invalid argument "max-size" for "--log-opt" flag: invalid log option "max-size": want key=value`},
		{"log opt with none", false, []string{"--log-driver", "none", "--log-opt", "max-size=1m", "img"}, "--log-opt: invalid logging opts for driver none"},
		{"log opt max-size", false, []string{"--log-opt", "max-size=lots", "img"}, `~--log-opt: invalid max-size "lots"`},
		{"log opt max-size zero", false, []string{"--log-opt", "max-size=0", "img"}, "~must be a positive size"},
		{"log opt max-file", false, []string{"--log-opt", "max-file=0", "img"}, `--log-opt: invalid max-file "0": must be a positive integer`},
		{"log opt compress", false, []string{"--log-opt", "compress=yes please", "img"}, `~invalid compress "yes please"`},
		{"log opt unknown", false, []string{"--log-driver", "json-file", "--log-opt", "colour=red", "img"}, "--log-opt: unknown log opt 'colour' for json-file log driver"},
		{"runtime", false, []string{"--runtime", "runc", "img"}, `~invalid argument "runc" for "--runtime" flag: unknown or invalid runtime name: runc`},
		{"attach stream", false, []string{"-a", "stdlog", "img"}, `invalid argument "stdlog" for "-a, --attach" flag: valid streams are STDIN, STDOUT and STDERR`},
		{"attach with detach", true, []string{"-d", "-a", "stdout", "img"}, "conflicting options: cannot specify both --attach and --detach"},
		{"create has no -d", false, []string{"-d", "img"}, "unknown shorthand flag: 'd' in -d"},
		{"ip not IPv4", false, []string{"--network", "n", "--ip", "2001:db8::1", "img"}, `invalid argument "2001:db8::1" for "--ip" flag: invalid IPv4 address: 2001:db8::1`},
		{"ip garbage", false, []string{"--ip", "10.0.0", "img"}, "~invalid IPv4 address: 10.0.0"},
		{"ip6 not IPv6", false, []string{"--ip6", "10.0.0.1", "img"}, `invalid argument "10.0.0.1" for "--ip6" flag: invalid IPv6 address: 10.0.0.1`},
		{"ip6 mapped IPv4", false, []string{"--ip6", "::ffff:10.0.0.1", "img"}, "~invalid IPv6 address: ::ffff:10.0.0.1"},
		{"ip6 zone", false, []string{"--ip6", "fe80::1%eth0", "img"}, "~invalid IPv6 address: fe80::1%eth0"},
		{"mac garbage", false, []string{"--mac-address", "92:d0:c6:0a:29", "img"}, `invalid argument "92:d0:c6:0a:29" for "--mac-address" flag: 92:d0:c6:0a:29 is not a valid mac address`},
		{"mac not ethernet", false, []string{"--mac-address", "02:00:5e:10:00:00:00:01", "img"}, "~02:00:5e:10:00:00:00:01 is not a valid mac address"},
		{"mac multicast", false, []string{"--mac-address", "01:00:5e:00:00:01", "img"}, "~01:00:5e:00:00:01 is not a valid mac address: it is a multicast address"},
		{"mac broadcast", false, []string{"--mac-address", "ff:ff:ff:ff:ff:ff", "img"}, "~it is a multicast address"},
		{"alias empty", false, []string{"--network-alias=", "img"}, `invalid argument "" for "--network-alias" flag: value must not be empty`},
		{"alias on the default network", false, []string{"--network-alias", "web", "img"}, "network-scoped aliases are only supported for user-defined networks"},
		{"alias on bridge", false, []string{"--network", "bridge", "--net-alias", "web", "img"}, "network-scoped aliases are only supported for user-defined networks"},
		{"ip on the default network", false, []string{"--ip", "172.17.0.9", "img"}, "user specified IP address is supported on user defined networks only"},
		{"ip6 on bridge", false, []string{"--network", "bridge", "--ip6", "2001:db8::9", "img"}, "user specified IP address is supported on user defined networks only"},
		{"ip with none", false, []string{"--network", "none", "--ip", "10.0.0.2", "img"}, "conflicting options: ip and the network mode"},
		{"ip6 with host", false, []string{"--network", "host", "--ip6", "2001:db8::2", "img"}, "conflicting options: ip6 and the network mode"},
		{"alias with container", false, []string{"--network", "container:web", "--network-alias", "a", "img"}, "conflicting options: network-alias and the network mode"},
		{"mac with host", false, []string{"--net", "host", "--mac-address", "02:42:ac:11:00:02", "img"}, "conflicting options: mac-address and the network mode"},
		{"firewall with host", false, []string{"--network", "host", "--firewall", "direction=egress,action=deny", "img"}, "conflicting options: firewall and the network mode"},
		{"firewall default with none", false, []string{"--network", "none", "--firewall-default", "egress=deny", "img"}, "conflicting options: firewall-default and the network mode"},
		{"route with container", false, []string{"--network", "container:web", "--route", "10.0.0.0/8", "img"}, "conflicting options: route and the network mode"},
		{"publish with none", false, []string{"--network", "none", "-p", "80", "img"}, "conflicting options: port publishing and the container type network mode"},
		{"publish-all with container", false, []string{"--network", "container:web", "-P", "img"}, "conflicting options: port publishing and the container type network mode"},
		{"expose with container", false, []string{"--network", "container:web", "--expose", "80", "img"}, "conflicting options: port exposing and the container type network mode"},
		{"firewall direction", false, []string{"--firewall", "direction=up,action=deny", "img"}, `invalid argument "direction=up,action=deny" for "--firewall" flag: firewall rule "direction=up,action=deny": direction: "up": want ingress or egress`},
		{"firewall missing action", false, []string{"--firewall", "direction=egress", "img"}, "~action: missing"},
		{"firewall port without proto", false, []string{"--firewall", "direction=egress,action=deny,port=443", "img"}, "~port: needs proto=tcp or proto=udp"},
		{"firewall default action", false, []string{"--firewall-default", "egress=maybe", "img"}, `~invalid argument "egress=maybe" for "--firewall-default" flag: firewall default "egress=maybe": egress`},
		{"firewall default direction", false, []string{"--firewall-default", "sideways=deny", "img"}, "~unknown direction; want ingress or egress"},
		{"route host bits", false, []string{"--route", "10.1.2.3/16", "img"}, `invalid argument "10.1.2.3/16" for "--route" flag: invalid route "10.1.2.3/16": destination 10.1.2.3/16 has host bits set: did you mean 10.1.0.0/16?`},
		{"route destination", false, []string{"--route", "somewhere", "img"}, `~invalid route "somewhere": destination "somewhere" is not an IP address or prefix`},
		{"route bad prefix", false, []string{"--route", "10.0.0.0/33", "img"}, `~destination "10.0.0.0/33" is not a prefix`},
		{"route gateway family", false, []string{"--route", "10.0.0.0/8,via=2001:db8::1", "img"}, "~gateway 2001:db8::1 is not of the destination's address family"},
		{"route gateway address", false, []string{"--route", "10.0.0.0/8,via=gw", "img"}, `~gateway "gw" is not an IP address`},
		{"route gateway unspecified", false, []string{"--route", "10.0.0.0/8,via=0.0.0.0", "img"}, "~gateway 0.0.0.0 cannot be a next hop"},
		{"route key", false, []string{"--route", "10.0.0.0/8,gw=10.1.0.1", "img"}, `~invalid route "10.0.0.0/8,gw=10.1.0.1": want DEST[,via=GATEWAY]`},
		{"route trailing comma", false, []string{"--route", "10.0.0.0/8,", "img"}, "~want DEST[,via=GATEWAY]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := parseRunArgs(t, tc.detach, tc.argv...)
			require.Error(t, err, "request: %+v", req)
			if part, ok := strings.CutPrefix(tc.want, "~"); ok {
				assert.Contains(t, err.Error(), part)
			} else {
				assert.Equal(t, tc.want, err.Error())
			}
			assert.NotContains(t, err.Error(), "\n", "one line")
			// Every error is marked for exit status 125: either the
			// class the caller maps, or a flag error from pflag itself.
			var ive *pflag.InvalidValueError
			if !errors.As(err, &ive) && !strings.HasPrefix(err.Error(), "unknown shorthand") {
				assert.ErrorIs(t, err, errdefs.ErrInvalidArgument)
			}
		})
	}
}

// The values berth checks itself carry the invalid-argument class even
// inside pflag's error, so callers need only errors.Is.
func TestRunFlagsErrorClassThroughPflag(t *testing.T) {
	_, err := parseRunArgs(t, false, "--restart", "sometimes", "img")
	require.Error(t, err)
	assert.ErrorIs(t, err, errdefs.ErrInvalidArgument)
	_, err = parseRunArgs(t, false, "-m", "abc", "img")
	require.Error(t, err)
	assert.ErrorIs(t, err, errdefs.ErrInvalidArgument)
}

// -h is --hostname; addRunFlags defines --help so cobra does not try to
// claim -h as well (which would panic).
func TestRunFlagsCobraHelp(t *testing.T) {
	cmd := &cobra.Command{Use: "run"}
	addRunFlags(cmd.Flags())
	require.NotPanics(t, cmd.InitDefaultHelpFlag)
	require.NoError(t, cmd.ParseFlags([]string{"-h", "box", "img"}))
	h, err := cmd.Flags().GetString("hostname")
	require.NoError(t, err)
	assert.Equal(t, "box", h)
	help, err := cmd.Flags().GetBool("help")
	require.NoError(t, err)
	assert.False(t, help)
}

func TestParseDetachKeys(t *testing.T) {
	tests := []struct {
		in   string
		want []byte
	}{
		{"", []byte{16, 17}},
		{"ctrl-p,ctrl-q", []byte{16, 17}},
		{"ctrl-a,ctrl-z", []byte{1, 26}},
		{"ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_", []byte{0, 27, 28, 29, 30, 31}},
		{"a,DEL,,", nil},
		{"ctrl-A", nil},
		{"ctrl-`", nil},
		{"q,x", []byte{'q', 'x'}},
		{"DEL", []byte{127}},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseDetachKeys(tc.in)
			if tc.want == nil {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestParseKVLines(t *testing.T) {
	lookup := func(k string) (string, bool) {
		if k == "HOME" {
			return "/root", true
		}
		return "", false
	}
	tests := []struct {
		name    string
		in      string
		lookup  func(string) (string, bool)
		want    []string
		wantErr string
	}{
		{"empty", "", lookup, []string{}, ""},
		{"comments and blanks", "# c\n\n   \n\t# indented comment\nA=1\n", lookup, []string{"A=1"}, ""},
		{"values kept as they are", "A=\"quoted\"\nB=  two  \nC=\nD=$HOME\n", lookup, []string{`A="quoted"`, "B=  two  ", "C=", "D=$HOME"}, ""},
		{"leading space dropped", "   A=1\n", lookup, []string{"A=1"}, ""},
		{"key alone from lookup", "HOME\nMISSING\n", lookup, []string{"HOME=/root"}, ""},
		{"key alone without lookup", "HOME\nA=1\n", nil, []string{"A=1"}, ""},
		{"bom", "\xEF\xBB\xBFA=1\n", lookup, []string{"A=1"}, ""},
		{"crlf line ends", "A=1\r\nB=2\r\n", lookup, []string{"A=1", "B=2"}, ""},
		{"no name", "=1\n", lookup, nil, "no variable name on line '=1'"},
		{"space in key", "A B=1\n", lookup, nil, "variable 'A B' contains whitespaces"},
		{"invalid utf8", "A=\xff\n", lookup, nil, "invalid utf8 bytes at line 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseKVLines(strings.NewReader(tc.in), tc.lookup)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestParseRestart(t *testing.T) {
	tests := []struct {
		in      string
		want    container.RestartPolicy
		wantErr bool
	}{
		{"", container.RestartPolicy{}, false},
		{"no", container.RestartPolicy{Name: "no"}, false},
		{"always", container.RestartPolicy{Name: "always"}, false},
		{"unless-stopped", container.RestartPolicy{Name: "unless-stopped"}, false},
		{"on-failure", container.RestartPolicy{Name: "on-failure"}, false},
		{"on-failure:0", container.RestartPolicy{Name: "on-failure"}, false},
		{"on-failure:10", container.RestartPolicy{Name: "on-failure", MaximumRetryCount: 10}, false},
		{"no:1", container.RestartPolicy{}, true},
		{"unless-stopped:1", container.RestartPolicy{}, true},
		{"on-failure:", container.RestartPolicy{}, true},
		{"Always", container.RestartPolicy{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseRestart(tc.in)
			if tc.wantErr {
				require.Error(t, err)
				assert.Contains(t, err.Error(), `invalid restart policy "`+tc.in+`"`)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestParseDevice(t *testing.T) {
	tests := []struct {
		in      string
		want    container.DeviceMapping
		wantErr string
	}{
		{"/dev/fuse", container.DeviceMapping{PathOnHost: "/dev/fuse", PathInContainer: "/dev/fuse", CgroupPermissions: "rwm"}, ""},
		{"/dev/fuse:m", container.DeviceMapping{PathOnHost: "/dev/fuse", PathInContainer: "/dev/fuse", CgroupPermissions: "m"}, ""},
		{"/dev/sda:/dev/xvda", container.DeviceMapping{PathOnHost: "/dev/sda", PathInContainer: "/dev/xvda", CgroupPermissions: "rwm"}, ""},
		{"/dev/sda:/dev/xvda:wr", container.DeviceMapping{PathOnHost: "/dev/sda", PathInContainer: "/dev/xvda", CgroupPermissions: "wr"}, ""},
		{"/dev//x/:/dev/y/", container.DeviceMapping{PathOnHost: "/dev/x", PathInContainer: "/dev/y", CgroupPermissions: "rwm"}, ""},
		{"/dev/a:/dev/b:", container.DeviceMapping{}, "bad mode specified: "},
		{"/dev/a:/dev/b:q", container.DeviceMapping{}, "bad mode specified: q"},
		{"", container.DeviceMapping{}, "bad format for path: "},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseDevice(tc.in)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Equal(t, tc.wantErr, err.Error())
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestIsCDIName(t *testing.T) {
	for in, want := range map[string]bool{
		"nvidia.com/gpu=all": true,
		"vendor.com/class=0": true,
		"/dev/nvidia0":       false,
		"nvidia.com/gpu":     false,
		"nvidia.com/gpu=":    false,
		"/x/y=z":             false,
		"a/b/c=d":            false,
		"-a/b=c":             false,
	} {
		assert.Equal(t, want, isCDIName(in), in)
	}
}

func TestParseRunPlatform(t *testing.T) {
	host := goruntime.GOOS + "/" + goruntime.GOARCH
	got, err := parsePlatform("")
	require.NoError(t, err)
	assert.Equal(t, "", got)
	got, err = parsePlatform(goruntime.GOOS)
	require.NoError(t, err)
	assert.Equal(t, host, got)
	if goruntime.GOARCH == "amd64" {
		for _, in := range []string{"linux/x86_64", "linux/amd64/v1", "x86_64"} {
			got, err = parsePlatform(in)
			require.NoError(t, err, in)
			assert.Equal(t, "linux/amd64", got, in)
		}
		got, err = parsePlatform("linux/amd64/v3")
		require.NoError(t, err)
		assert.Equal(t, "linux/amd64/v3", got)
		_, err = parsePlatform("linux/arm/v7")
		require.Error(t, err)
		_, err = parsePlatform("linux/aarch64")
		require.Error(t, err)
	}
	_, err = parsePlatform("linux/amd64/v1/extra")
	require.Error(t, err)
}

func TestParseCPUs(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1": 1e9, "0.5": 5e8, "2.25": 2_250_000_000, "1/4": 25e7, "0.000000001": 1} {
		got, err := parseCPUs(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "x", "1e-10", "-0.5", "99999999999999999999"} {
		_, err := parseCPUs(in)
		assert.Error(t, err, in)
	}
}

func TestParseStopSignal(t *testing.T) {
	for in, want := range map[string]int{"SIGTERM": 15, "term": 15, "KILL": 9, "9": 9, "SIGRTMIN": 34, "RTMIN+3": 37, "SIGRTMAX-1": 63, "rtmax": 64, "SIGWINCH": 28} {
		got, err := parseStopSignal(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, int(got), in)
	}
	for _, in := range []string{"", "0", "65", "-1", "SIGFOO", "RTMIN-1", "RTMAX+1", "RTMIN+x"} {
		_, err := parseStopSignal(in)
		assert.Error(t, err, in)
	}
}

func TestParseMemoryAndUlimit(t *testing.T) {
	n, err := parseMemory("1.5g")
	require.NoError(t, err)
	assert.Equal(t, int64(3<<29), n)
	n, err = parseMemory("100")
	require.NoError(t, err)
	assert.Equal(t, int64(100), n)
	_, err = parseMemory("-1")
	require.Error(t, err)

	u, err := parseUlimit("nofile=1024:4096")
	require.NoError(t, err)
	assert.Equal(t, &container.Ulimit{Name: "nofile", Soft: 1024, Hard: 4096}, u)
	u, err = parseUlimit("core=-1")
	require.NoError(t, err)
	assert.Equal(t, &container.Ulimit{Name: "core", Soft: -1, Hard: -1}, u)
}

// Without -a a detached container attaches nothing; create attaches
// stdout and stderr as docker's create does, for a later start -a.
func TestRunFlagsDetachedRunVersusCreate(t *testing.T) {
	run, err := parseRunArgs(t, true, "-d", "-it", "img")
	require.NoError(t, err)
	assert.True(t, run.Detach)
	assert.False(t, run.Config.AttachStdin || run.Config.AttachStdout || run.Config.AttachStderr || run.Config.StdinOnce)
	assert.True(t, run.Config.OpenStdin)
	assert.True(t, run.Config.Tty)

	create, err := parseRunArgs(t, false, "-it", "img")
	require.NoError(t, err)
	assert.False(t, create.Detach)
	assert.True(t, create.Config.AttachStdin && create.Config.AttachStdout && create.Config.AttachStderr && create.Config.StdinOnce)
}

func TestEndpointSettings(t *testing.T) {
	es, err := endpointSettings("", "", "", nil)
	require.NoError(t, err)
	assert.Equal(t, &network.EndpointSettings{}, es, "nothing asked, nothing set")

	es, err = endpointSettings("", "2001:db8::7", "", []string{"db"})
	require.NoError(t, err)
	assert.Equal(t, &network.EndpointSettings{
		IPAMConfig: &network.EndpointIPAMConfig{IPv6Address: netip.MustParseAddr("2001:db8::7")},
		Aliases:    []string{"db"},
	}, es)

	_, err = endpointSettings("10.0.0", "", "", nil)
	require.EqualError(t, err, "invalid IPv4 address: 10.0.0")
	_, err = endpointSettings("", "", "03:00:00:00:00:01", nil)
	require.ErrorContains(t, err, "multicast")
}
