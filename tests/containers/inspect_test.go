package containers_test

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-containers/berth/internal/testutil"
)

// dockerSide drives the docker CLI beside berth, so that a test can check
// berth's output against Docker's for the same image and commands. Every
// container and image it makes is removed when the test ends.
type dockerSide struct {
	t          *testing.T
	containers []string
	images     []string
}

// newDockerSide returns a docker driver, starting dockerd with the
// project's script when none answers; it skips the test, saying why, when
// docker cannot be had.
func newDockerSide(t *testing.T) *dockerSide {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		testutil.Missing(t, "docker is not installed; this test compares berth with docker")
	}
	if exec.Command("docker", "info").Run() != nil {
		script, _ := filepath.Abs("../../scripts/dockerd.sh")
		if out, err := exec.Command(script).CombinedOutput(); err != nil {
			testutil.Missing(t, "dockerd does not start: %v: %s", err, out)
		}
		if exec.Command("docker", "info").Run() != nil {
			testutil.Missing(t, "docker does not answer; this test compares berth with docker")
		}
	}
	d := &dockerSide{t: t}
	t.Cleanup(d.cleanup)
	return d
}

func (d *dockerSide) cleanup() {
	for _, c := range d.containers {
		_ = exec.Command("docker", "rm", "-f", "-v", c).Run()
	}
	for _, i := range d.images {
		_ = exec.Command("docker", "rmi", "-f", i).Run()
	}
}

// run runs one docker command.
func (d *dockerSide) run(stdin []byte, args ...string) (string, string, int) {
	d.t.Helper()
	return testutil.RunCommand(d.t, nil, stdin, "docker", args...)
}

// must runs a docker command that has to succeed.
func (d *dockerSide) must(args ...string) string {
	d.t.Helper()
	out, errOut, code := d.run(nil, args...)
	if code != 0 {
		d.t.Fatalf("docker %v: exit %d: %s", args, code, errOut)
	}
	return out
}

// uniqueName makes a docker object name no other test uses.
func uniqueName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// importImage imports a root filesystem tar under a fresh name and
// returns the name.
func (d *dockerSide) importImage(tarData []byte, changes ...string) string {
	d.t.Helper()
	name := uniqueName("berthtest-img-")
	args := []string{"import"}
	for _, c := range append([]string{`CMD ["/bin/sh"]`}, changes...) {
		args = append(args, "--change", c)
	}
	d.images = append(d.images, name)
	if _, errOut, code := d.run(tarData, append(args, "-", name)...); code != 0 {
		d.t.Fatalf("docker import: %s", errOut)
	}
	return name
}

// create runs `docker create` (or run -d when run is set) with no
// network, as dockerd here runs without a bridge, and returns the name.
func (d *dockerSide) container(verb string, args ...string) string {
	d.t.Helper()
	name := uniqueName("berthtest-c-")
	d.containers = append(d.containers, name)
	d.must(append([]string{verb, "--network", "none", "--name", name}, args...)...)
	return name
}

// busyboxTar builds the same tree as store.busyboxImage, as a tar, so that
// berth and docker can import identical images.
func busyboxTar(t *testing.T, extra map[string]string) []byte {
	t.Helper()
	dir := t.TempDir()
	testutil.BusyboxRootfs(t, dir)
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home/nobody:/bin/sh\n",
		"etc/group":  "root:x:0:\nnogroup:x:65534:\n",
	}
	for k, v := range extra {
		files[k] = v
	}
	for n, data := range files {
		p := filepath.Join(dir, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tarData, err := exec.Command("tar", "-C", dir, "--numeric-owner", "-cf", "-", ".").Output()
	if err != nil {
		t.Fatalf("tar rootfs: %v", err)
	}
	return tarData
}

// importTar imports a root filesystem tar into berth as name.
func (s *store) importTar(tarData []byte, name string, changes ...string) {
	s.t.Helper()
	args := []string{"import"}
	for _, c := range append([]string{`CMD ["/bin/sh"]`}, changes...) {
		args = append(args, "--change", c)
	}
	if _, errOut, code := s.run(tarData, append(args, "-", name)...); code != 0 {
		s.t.Fatalf("import: %s", errOut)
	}
}

// lineSet splits output into a set of its non-empty lines.
func lineSet(out string) map[string]bool {
	set := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimRight(l, "\r"); l != "" {
			set[l] = true
		}
	}
	return set
}

// inspectOne runs inspect on one object and decodes its single element.
func (s *store) inspectOne(args ...string) map[string]any {
	s.t.Helper()
	out := s.must(append([]string{"inspect"}, args...)...)
	var list []map[string]any
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		s.t.Fatalf("inspect %v: %v\n%s", args, err, out)
	}
	if len(list) != 1 {
		s.t.Fatalf("inspect %v: %d objects", args, len(list))
	}
	return list[0]
}

func TestInspectContainerFields(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	host := t.TempDir()
	t.Cleanup(func() { s.run(nil, "volume", "rm", "-f", "ivol") })
	id := strings.TrimSpace(s.must("run", "-d", "--name", "insp", "-e", "A=1", "-l", "k=v", "-l", "other=x y",
		"--restart", "on-failure:3", "-m", "64m", "-v", "ivol:/data", "-v", host+":/hd:ro", "bb", "sleep", "600"))

	c := s.inspectOne("insp")
	if c["Id"] != id {
		t.Errorf("Id %v, want %s", c["Id"], id)
	}
	if c["Name"] != "/insp" {
		t.Errorf("Name %v, want /insp", c["Name"])
	}
	if c["Path"] != "sleep" || fmt.Sprint(c["Args"]) != "[600]" {
		t.Errorf("Path %v Args %v", c["Path"], c["Args"])
	}
	if c["RestartCount"] != float64(0) {
		t.Errorf("RestartCount %v", c["RestartCount"])
	}
	if !strings.HasPrefix(fmt.Sprint(c["Image"]), "sha256:") {
		t.Errorf("Image %v, want the image id", c["Image"])
	}
	logPath, _ := c["LogPath"].(string)
	if _, err := os.Stat(logPath); err != nil {
		t.Errorf("LogPath %q: %v", logPath, err)
	}
	for _, k := range []string{"HostsPath", "HostnamePath", "ResolvConfPath"} {
		if p, _ := c[k].(string); p == "" {
			t.Errorf("%s empty", k)
		} else if _, err := os.Stat(p); err != nil {
			t.Errorf("%s %q: %v", k, p, err)
		}
	}

	st := c["State"].(map[string]any)
	if st["Status"] != "running" || st["Running"] != true || st["Paused"] != false || st["ExitCode"] != float64(0) {
		t.Errorf("State %v", st)
	}
	pid := int(st["Pid"].(float64))
	if pid <= 0 {
		t.Errorf("State.Pid %d", pid)
	} else if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err != nil || !strings.HasPrefix(string(cmdline), "sleep\x00600") {
		t.Errorf("State.Pid %d is not the container's sleep: %q, %v", pid, cmdline, err)
	}
	started, err := time.Parse(time.RFC3339Nano, fmt.Sprint(st["StartedAt"]))
	if err != nil || time.Since(started) > time.Minute || time.Since(started) < 0 {
		t.Errorf("State.StartedAt %v: %v", st["StartedAt"], err)
	}
	if st["FinishedAt"] != "0001-01-01T00:00:00Z" {
		t.Errorf("State.FinishedAt %v before the container finished", st["FinishedAt"])
	}

	cfg := c["Config"].(map[string]any)
	if fmt.Sprint(cfg["Cmd"]) != "[sleep 600]" {
		t.Errorf("Config.Cmd %v", cfg["Cmd"])
	}
	if cfg["Image"] != "bb" {
		t.Errorf("Config.Image %v, want bb", cfg["Image"])
	}
	env := fmt.Sprint(cfg["Env"])
	// The image sets no Env, so (as in Docker) only -e's are recorded.
	if env != "[A=1]" {
		t.Errorf("Config.Env %v", env)
	}
	if labels, _ := cfg["Labels"].(map[string]any); labels["k"] != "v" || labels["other"] != "x y" {
		t.Errorf("Config.Labels %v", cfg["Labels"])
	}
	if hn, _ := cfg["Hostname"].(string); hn != id[:12] {
		t.Errorf("Config.Hostname %q, want %s", hn, id[:12])
	}

	hc := c["HostConfig"].(map[string]any)
	if rp := hc["RestartPolicy"].(map[string]any); rp["Name"] != "on-failure" || rp["MaximumRetryCount"] != float64(3) {
		t.Errorf("HostConfig.RestartPolicy %v", rp)
	}
	if hc["Memory"] != float64(64<<20) {
		t.Errorf("HostConfig.Memory %v, want %d", hc["Memory"], 64<<20)
	}
	if fmt.Sprint(hc["Binds"]) != fmt.Sprint([]string{"ivol:/data", host + ":/hd:ro"}) {
		t.Errorf("HostConfig.Binds %v", hc["Binds"])
	}
	// Docker records the default log driver, json-file, and shm size.
	if lc := hc["LogConfig"].(map[string]any); lc["Type"] != "json-file" {
		t.Errorf("HostConfig.LogConfig.Type %q, want json-file", lc["Type"])
	}
	if hc["ShmSize"] != float64(64<<20) {
		t.Errorf("HostConfig.ShmSize %v, want Docker's default %d", hc["ShmSize"], 64<<20)
	}

	mounts, _ := c["Mounts"].([]any)
	byDest := map[string]map[string]any{}
	for _, m := range mounts {
		mm := m.(map[string]any)
		byDest[fmt.Sprint(mm["Destination"])] = mm
	}
	if v := byDest["/data"]; v == nil || v["Type"] != "volume" || v["Name"] != "ivol" || v["Driver"] != "local" || v["RW"] != true {
		t.Errorf("volume mount %v", v)
	} else if src := fmt.Sprint(v["Source"]); !strings.HasPrefix(src, s.root) {
		t.Errorf("volume mount source %s is not under the store", src)
	}
	if b := byDest["/hd"]; b == nil || b["Type"] != "bind" || b["Source"] != host || b["RW"] != false || b["Mode"] != "ro" {
		t.Errorf("bind mount %v", b)
	}

	// After the container ends: exit code, FinishedAt, not running.
	s.must("kill", "insp")
	s.waitFor(10*time.Second, "the exit", func() bool { return s.field("insp", "{{.State.Status}}") == "exited" })
	st = s.inspectOne("insp")["State"].(map[string]any)
	if st["Running"] != false || st["ExitCode"] != float64(137) || st["Pid"] != float64(0) {
		t.Errorf("State after kill %v", st)
	}
	finished, err := time.Parse(time.RFC3339Nano, fmt.Sprint(st["FinishedAt"]))
	if err != nil || finished.Before(started) {
		t.Errorf("State.FinishedAt %v: %v", st["FinishedAt"], err)
	}
}

func TestInspectFormatTypesAndErrors(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("imgx", nil)
	t.Cleanup(func() { s.run(nil, "volume", "rm", "-f", "fvol") })
	s.must("run", "-d", "--name", "fmt", "-l", "k=v", "-v", "fvol:/data", "imgx", "sleep", "600")

	cases := map[string]string{
		"{{.Name}}":                    "/fmt",
		"{{.State.Running}}":           "true",
		"{{json .Config.Labels}}":      `{"k":"v"}`,
		`{{index .Config.Labels "k"}}`: "v",
		"{{range .Mounts}}{{.Name}}:{{.Destination}}{{end}}": "fvol:/data",
		"{{.Config.Image}} {{len .Config.Cmd}}":              "imgx 2",
		"{{upper .Config.Image}}":                            "IMGX",
		"{{join .Config.Cmd \",\"}}":                         "sleep,600",
	}
	for tmpl, want := range cases {
		if got, errOut, code := s.run(nil, "inspect", "--format", tmpl, "fmt"); code != 0 || got != want+"\n" {
			t.Errorf("inspect --format %q: %q (exit %d, %s), want %q", tmpl, got, code, errOut, want)
		}
	}
	// -f is --format; one line per object.
	if got := s.must("inspect", "-f", "{{.Name}}", "fmt", "fmt"); got != "/fmt\n/fmt\n" {
		t.Errorf("inspect -f of two: %q", got)
	}

	// The top-level command finds images and volumes too.
	img := s.inspectOne("imgx")
	if tags := fmt.Sprint(img["RepoTags"]); tags != "[imgx:latest]" || !strings.HasPrefix(fmt.Sprint(img["Id"]), "sha256:") {
		t.Errorf("inspect imgx: RepoTags %v Id %v", tags, img["Id"])
	}
	vol := s.inspectOne("fvol")
	if vol["Name"] != "fvol" || vol["Driver"] != "local" || !strings.HasPrefix(fmt.Sprint(vol["Mountpoint"]), s.root) {
		t.Errorf("inspect fvol: %v", vol)
	}
	if got := s.must("inspect", "--type", "volume", "-f", "{{.Name}} {{.Driver}}", "fvol"); got != "fvol local\n" {
		t.Errorf("inspect --type volume: %q", got)
	}
	if got := s.must("inspect", "--type", "image", "-f", "{{index .RepoTags 0}}", "imgx"); got != "imgx:latest\n" {
		t.Errorf("inspect --type image: %q", got)
	}
	if got := s.must("inspect", "--type", "container", "-f", "{{.Name}}", "fmt"); got != "/fmt\n" {
		t.Errorf("inspect --type container: %q", got)
	}
	// --type narrows the search: a container is not an image.
	if errOut := s.failsWith(1, "inspect", "--type", "image", "fmt"); !strings.Contains(strings.ToLower(errOut), "no such image: fmt") {
		t.Errorf("inspect --type image of a container: %q", errOut)
	}
	if errOut := s.failsWith(1, "inspect", "--type", "container", "imgx"); !strings.Contains(strings.ToLower(errOut), "no such container: imgx") {
		t.Errorf("inspect --type container of an image: %q", errOut)
	}

	// Unknown: "[]" on stdout, "Error: No such object: nosuch", exit 1.
	out, errOut, code := s.run(nil, "inspect", "nosuch")
	if code != 1 || strings.TrimSpace(out) != "[]" || !strings.Contains(strings.ToLower(errOut), "no such object: nosuch") {
		t.Errorf("inspect nosuch: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// One unknown among known ones: the known are printed, exit 1.
	out, errOut, code = s.run(nil, "inspect", "-f", "{{.Name}}", "fmt", "nosuch")
	if code != 1 || out != "/fmt\n" || !strings.Contains(strings.ToLower(errOut), "no such object: nosuch") {
		t.Errorf("inspect fmt nosuch: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// A prefix of the id finds the container.
	// {{.Id}} is the JSON key, as Docker's users write it.
	if got, errOut, code := s.run(nil, "inspect", "-f", "{{.Id}}", "fmt"); code != 0 || len(strings.TrimSpace(got)) != 64 {
		t.Errorf("inspect -f {{.Id}}: exit %d, %q, %s", code, got, errOut)
	}
	id := s.field("fmt", "{{.ID}}")
	if got := s.field(id[:8], "{{.Name}}"); got != "/fmt" {
		t.Errorf("inspect by id prefix: %q", got)
	}
	// -s adds sizes.
	if got, errOut, code := s.run(nil, "inspect", "-s", "-f", "{{.SizeRootFs}}", "fmt"); code != 0 {
		t.Errorf("inspect -s: exit %d: %s", code, errOut)
	} else if n, err := strconv.ParseInt(strings.TrimSpace(got), 10, 64); err != nil || n < 1<<20 {
		t.Errorf("inspect -s: SizeRootFs %q, want the busybox image's size or more", got)
	}
}

// keysOf lists the keys of a decoded JSON object at path, prefixed.
func keysOf(obj map[string]any, prefix string) map[string]bool {
	out := map[string]bool{}
	for k, v := range obj {
		out[prefix+k] = true
		if sub, ok := v.(map[string]any); ok && (prefix == "" && (k == "State" || k == "Config" || k == "HostConfig" || k == "NetworkSettings" || k == "GraphDriver")) {
			for kk := range keysOf(sub, prefix+k+".") {
				out[kk] = true
			}
		}
	}
	return out
}

func TestInspectKeysMatchDocker(t *testing.T) {
	s := newStore(t)
	tarData := busyboxTar(t, nil)
	s.importTar(tarData, "bb")
	d := newDockerSide(t)
	img := d.importImage(tarData)
	host := t.TempDir()
	vol := uniqueName("berthtestvol")
	var dc string
	t.Cleanup(func() {
		s.run(nil, "rm", "-f", "keys")
		s.run(nil, "volume", "rm", "-f", vol)
		if dc != "" {
			if out, err := exec.Command("docker", "rm", "-f", dc).CombinedOutput(); err != nil {
				t.Errorf("docker rm -f %s: %v: %s", dc, err, out)
			}
		}
		if out, err := exec.Command("docker", "volume", "rm", "-f", vol).CombinedOutput(); err != nil {
			t.Errorf("docker volume rm %s: %v: %s", vol, err, out)
		}
	})
	args := []string{"-l", "k=v", "-e", "A=1", "-v", vol + ":/data", "-v", host + ":/hd", "bb", "sleep", "600"}
	s.must(append([]string{"run", "-d", "--network", "none", "--name", "keys"}, args...)...)
	dargs := append([]string{}, args...)
	dargs[len(dargs)-3] = img
	dc = d.container("run", append([]string{"-d"}, dargs...)...)

	var bl, dl []map[string]any
	if err := json.Unmarshal([]byte(s.must("inspect", "keys")), &bl); err != nil || len(bl) != 1 {
		t.Fatalf("berth inspect: %v", err)
	}
	if err := json.Unmarshal([]byte(d.must("inspect", dc)), &dl); err != nil || len(dl) != 1 {
		t.Fatalf("docker inspect: %v", err)
	}
	bk, dk := keysOf(bl[0], ""), keysOf(dl[0], "")
	var extra, missing []string
	for k := range bk {
		if !dk[k] {
			extra = append(extra, k)
		}
	}
	for k := range dk {
		if !bk[k] {
			missing = append(missing, k)
		}
	}
	sort.Strings(extra)
	sort.Strings(missing)
	if len(extra) > 0 {
		t.Errorf("berth's inspect has keys docker's lacks: %v", extra)
	}
	t.Logf("keys of docker's inspect that berth's lacks: %v", missing)
	if len(bk) < len(dk)/2 {
		t.Errorf("berth's inspect has %d keys, docker's %d", len(bk), len(dk))
	}

	// The mounts carry the same keys, and the same values where they do
	// not depend on the store.
	bm, dm := mountsByDest(bl[0]), mountsByDest(dl[0])
	for dest, want := range dm {
		got := bm[dest]
		if got == nil {
			t.Errorf("berth lacks the mount on %s", dest)
			continue
		}
		for k, v := range want {
			if k == "Source" && want["Type"] == "volume" {
				continue
			}
			if fmt.Sprint(got[k]) != fmt.Sprint(v) {
				t.Logf("mount %s: %s is %v in berth, %v in docker", dest, k, got[k], v)
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("mount %s: berth has key %s docker lacks", dest, k)
			}
		}
	}
	// Values that do not depend on the engine.
	for _, path := range []string{"{{.Path}}", "{{json .Args}}", "{{json .Config.Cmd}}", "{{json .Config.Labels}}", "{{.State.Status}}",
		"{{.HostConfig.NetworkMode}}", "{{.HostConfig.LogConfig.Type}}", "{{.HostConfig.ShmSize}}", "{{json .HostConfig.RestartPolicy}}",
		"{{.Config.WorkingDir}}", "{{.Config.User}}", "{{.Platform}}", "{{.RestartCount}}", "{{.Config.Tty}}", "{{.Config.OpenStdin}}"} {
		if b, dv := s.field("keys", path), strings.TrimSpace(d.must("inspect", "-f", path, dc)); b != dv {
			t.Errorf("inspect %s: berth %q, docker %q", path, b, dv)
		}
	}
}

func mountsByDest(c map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	ms, _ := c["Mounts"].([]any)
	for _, m := range ms {
		mm := m.(map[string]any)
		out[fmt.Sprint(mm["Destination"])] = mm
	}
	return out
}
