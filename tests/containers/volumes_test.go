package containers_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// volumes lists the volume names, sorted.
func (s *store) volumes(args ...string) []string {
	s.t.Helper()
	names := strings.Fields(s.must(append([]string{"volume", "ls", "-q"}, args...)...))
	sort.Strings(names)
	return names
}

// removeVolumesAtEnd removes every container and then every volume of the
// store when the test ends (this runs before the harness's own cleanup,
// registered earlier).
func (s *store) removeVolumesAtEnd() {
	s.t.Cleanup(func() {
		out, _, _ := s.run(nil, "ps", "-aq")
		for _, id := range strings.Fields(out) {
			s.run(nil, "rm", "-f", id)
		}
		out, _, _ = s.run(nil, "volume", "ls", "-q")
		for _, v := range strings.Fields(out) {
			if _, errOut, code := s.run(nil, "volume", "rm", "-f", v); code != 0 {
				s.t.Errorf("cleanup: volume rm %s: %s", v, errOut)
			}
		}
	})
}

func TestVolumeCommands(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	s.removeVolumesAtEnd()

	if out := s.must("volume", "create", "v1"); out != "v1\n" {
		t.Errorf("volume create v1 printed %q", out)
	}
	s.must("volume", "create", "--label", "team=a", "--label", "solo", "v2")
	// Without a name: a 64-hex name.
	anon := strings.TrimSpace(s.must("volume", "create"))
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(anon) {
		t.Errorf("volume create without a name printed %q", anon)
	}
	// Creating an existing volume again is fine and keeps it.
	s.must("volume", "create", "v1")

	out := s.must("volume", "ls")
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if !regexp.MustCompile(`^DRIVER +VOLUME NAME$`).MatchString(lines[0]) || len(lines) != 4 {
		t.Errorf("volume ls:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^local +v1$`).MatchString(out) {
		t.Errorf("volume ls lacks the row of v1:\n%s", out)
	}
	if got := s.volumes("--filter", "label=team=a"); strings.Join(got, ",") != "v2" {
		t.Errorf("volume ls --filter label=team=a: %v", got)
	}
	if got := s.volumes("--filter", "label=solo"); strings.Join(got, ",") != "v2" {
		t.Errorf("volume ls --filter label=solo: %v", got)
	}
	if got := s.volumes("--filter", "name=v"); strings.Join(got, ",") != "v1,v2" {
		t.Errorf("volume ls --filter name=v: %v", got)
	}
	if got := s.must("volume", "ls", "--format", "{{.Name}} {{.Driver}} {{.Labels}}", "--filter", "name=v2"); got != "v2 local solo=,team=a\n" && got != "v2 local team=a,solo=\n" {
		t.Errorf("volume ls --format: %q", got)
	}

	var vols []map[string]any
	if err := json.Unmarshal([]byte(s.must("volume", "inspect", "v2")), &vols); err != nil || len(vols) != 1 {
		t.Fatalf("volume inspect: %v", err)
	}
	v := vols[0]
	if v["Name"] != "v2" || v["Driver"] != "local" || v["Scope"] != "local" || fmt.Sprint(v["Labels"]) != "map[solo: team:a]" {
		t.Errorf("volume inspect v2: %v", v)
	}
	mp, _ := v["Mountpoint"].(string)
	if !strings.HasPrefix(mp, s.root+"/") || !strings.HasSuffix(mp, "/v2/_data") {
		t.Errorf("Mountpoint %q", mp)
	} else if st, err := os.Stat(mp); err != nil || !st.IsDir() {
		t.Errorf("Mountpoint %q: %v", mp, err)
	}
	if got := s.must("volume", "inspect", "-f", "{{.Name}}:{{.Driver}}", "v1", "v2"); got != "v1:local\nv2:local\n" {
		t.Errorf("volume inspect -f: %q", got)
	}
	if errOut := s.failsWith(1, "volume", "inspect", "nosuch"); !strings.Contains(strings.ToLower(errOut), "no such volume") {
		t.Errorf("volume inspect nosuch: %q", errOut)
	}

	// In use: rm refused (even -f, as in Docker), prune keeps it.
	s.must("run", "-d", "--name", "user", "-v", "v1:/data", "bb", "sleep", "600")
	if errOut := s.failsWith(1, "volume", "rm", "v1"); !strings.Contains(errOut, "volume is in use") {
		t.Errorf("volume rm of a volume in use: %q", errOut)
	}
	s.failsWith(1, "volume", "rm", "-f", "v1")
	// A stopped container still uses it.
	s.must("stop", "-t", "0", "user")
	s.failsWith(1, "volume", "rm", "v1")

	// prune: only anonymous unused volumes; -a: every unused one.
	out = s.must("volume", "prune", "-f")
	if !strings.Contains(out, anon) || !strings.Contains(out, "Total reclaimed space:") {
		t.Errorf("volume prune -f:\n%s", out)
	}
	if got := s.volumes(); strings.Join(got, ",") != "v1,v2" {
		t.Errorf("after prune: %v, want the named ones kept", got)
	}
	out = s.must("volume", "prune", "-a", "-f")
	if !strings.Contains(out, "Deleted Volumes:\nv2\n") {
		t.Errorf("volume prune -a -f:\n%s", out)
	}
	if got := s.volumes(); strings.Join(got, ",") != "v1" {
		t.Errorf("after prune -a: %v, want v1 (in use) only", got)
	}
	s.must("rm", "user")
	if out := s.must("volume", "rm", "v1"); out != "v1\n" {
		t.Errorf("volume rm printed %q", out)
	}
	if errOut := s.failsWith(1, "volume", "rm", "v1"); !strings.Contains(strings.ToLower(errOut), "no such volume") {
		t.Errorf("volume rm of a removed volume: %q", errOut)
	}
	s.must("volume", "rm", "-f", "v1") // -f: a missing volume is no error
	if _, err := os.Stat(filepath.Dir(mp)); !os.IsNotExist(err) {
		t.Errorf("the removed v2's directory remains: %v", err)
	}
}

func TestNamedAndImageVolumes(t *testing.T) {
	s := newStore(t)
	s.removeVolumesAtEnd()
	s.busyboxImage("withdata", map[string]string{"data/seed.txt": "from the image\n", "data/sub/deep.txt": "deep\n"}, "VOLUME /data")

	// A named volume is made on first use and outlives the container.
	s.must("run", "--name", "vw", "-v", "named:/vol", "withdata", "sh", "-c", "echo kept > /vol/f")
	if got := s.volumes(); !contains(got, "named") {
		t.Fatalf("volumes after run -v named:/vol: %v", got)
	}
	s.must("rm", "vw")
	if got := s.volumes(); !contains(got, "named") {
		t.Errorf("rm removed the named volume: %v", got)
	}
	if got := s.must("run", "--rm", "-v", "named:/again", "withdata", "cat", "/again/f"); got != "kept\n" {
		t.Errorf("named volume content after its container went: %q", got)
	}

	// The image's content at the mount point is copied into a new, empty
	// volume, anonymous or named, on first mount.
	if got := s.must("run", "--rm", "withdata", "cat", "/data/seed.txt", "/data/sub/deep.txt"); got != "from the image\ndeep\n" {
		t.Errorf("anonymous volume on the image's VOLUME: %q", got)
	}
	if got := s.must("run", "--rm", "-v", "copied:/data", "withdata", "cat", "/data/seed.txt"); got != "from the image\n" {
		t.Errorf("named volume over image content: %q", got)
	}
	// Once the volume holds data, it is not overwritten.
	s.must("run", "--rm", "-v", "copied:/data", "withdata", "sh", "-c", "echo changed > /data/seed.txt")
	if got := s.must("run", "--rm", "-v", "copied:/data", "withdata", "cat", "/data/seed.txt"); got != "changed\n" {
		t.Errorf("volume content replaced by the image's again: %q", got)
	}
	// A bind mount is never filled from the image.
	host := t.TempDir()
	if got := s.must("run", "--rm", "-v", host+":/data", "withdata", "ls", "-A", "/data"); got != "" {
		t.Errorf("bind mount filled from the image: %q", got)
	}
	// nocopy: the volume stays empty.
	if got := s.must("run", "--rm", "-v", "nocp:/data:nocopy", "withdata", "ls", "-A", "/data"); got != "" {
		t.Errorf("-v nocp:/data:nocopy: %q", got)
	}
}

func contains(list []string, x string) bool {
	for _, v := range list {
		if v == x {
			return true
		}
	}
	return false
}

func TestAnonymousVolumesLifetime(t *testing.T) {
	s := newStore(t)
	s.removeVolumesAtEnd()
	s.busyboxImage("withdata", map[string]string{"data/seed.txt": "seed\n"}, "VOLUME /data")

	// run --rm removes the anonymous volumes, not the named ones.
	s.must("run", "--rm", "-v", "/anon", "-v", "keepme:/named", "withdata", "true")
	if got := s.volumes(); strings.Join(got, ",") != "keepme" {
		t.Errorf("after run --rm: volumes %v, want keepme only", got)
	}
	// rm keeps them; rm -v removes the anonymous ones.
	s.must("create", "--name", "plain", "-v", "/anon", "withdata")
	s.must("create", "--name", "withv", "-v", "/anon", "-v", "keepme:/named", "withdata")
	anonOf := func(name string) []string {
		var out []string
		for _, l := range strings.Split(strings.TrimSpace(s.field(name, `{{range .Mounts}}{{if eq .Type "volume"}}{{.Name}} {{end}}{{end}}`)), " ") {
			if regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(l) {
				out = append(out, l)
			}
		}
		return out
	}
	plainVols, withvVols := anonOf("plain"), anonOf("withv")
	if len(plainVols) != 2 || len(withvVols) != 2 {
		t.Fatalf("anonymous volumes: plain %v, withv %v (want /anon and the image's /data each)", plainVols, withvVols)
	}
	s.must("rm", "plain")
	for _, v := range plainVols {
		if !contains(s.volumes(), v) {
			t.Errorf("plain rm removed the anonymous volume %s", v)
		}
	}
	s.must("rm", "-v", "withv")
	for _, v := range withvVols {
		if contains(s.volumes(), v) {
			t.Errorf("rm -v kept the anonymous volume %s", v)
		}
	}
	if !contains(s.volumes(), "keepme") {
		t.Error("rm -v removed the named volume")
	}
	// The anonymous volumes plain left are dangling, and prune takes them.
	if got := s.volumes("--filter", "dangling=true"); len(got) != 3 { // plain's two, keepme
		t.Errorf("dangling volumes: %v", got)
	}
	s.must("volume", "prune", "-f")
	if got := s.volumes(); strings.Join(got, ",") != "keepme" {
		t.Errorf("after prune: %v", got)
	}
}

func TestBindMounts(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	s.removeVolumesAtEnd()
	host := t.TempDir()

	// -v with a missing host path creates it (as a directory).
	missing := filepath.Join(host, "made", "by", "run")
	s.must("run", "--rm", "-v", missing+":/m", "bb", "sh", "-c", "echo in > /m/f")
	if got := readFile(t, filepath.Join(missing, "f")); got != "in\n" {
		t.Errorf("-v missing host path: %q", got)
	}
	// --mount type=bind with a missing source is refused, and creates
	// nothing.
	missing2 := filepath.Join(host, "absent")
	_, errOut, code := s.run(nil, "run", "--rm", "--mount", "type=bind,source="+missing2+",target=/m", "bb", "true")
	if first, _, _ := strings.Cut(errOut, "\n"); code != 125 || !strings.Contains(errOut, "bind source path does not exist") {
		t.Errorf("--mount missing source: exit %d, stderr %q; Docker: exit 125, invalid mount config for type \"bind\": bind source path does not exist", code, first)
	}
	if _, err := os.Stat(missing2); !os.IsNotExist(err) {
		t.Errorf("--mount created its missing source: %v", err)
	}
	if ids := strings.Fields(s.must("ps", "-aq")); len(ids) != 0 {
		t.Errorf("refused --mount left containers %v", ids)
	}

	// ro is enforced, rw writes through.
	writeFile(t, filepath.Join(host, "ro", "f"), "host\n", 0o644)
	out, _, code := s.run(nil, "run", "--rm", "-v", filepath.Join(host, "ro")+":/ro:ro", "bb", "sh", "-c", "cat /ro/f; echo x > /ro/f")
	if code == 0 || !strings.Contains(out, "host") {
		t.Errorf("-v :ro: exit %d, %q", code, out)
	}
	if got := readFile(t, filepath.Join(host, "ro", "f")); got != "host\n" {
		t.Errorf("-v :ro let the container write: %q", got)
	}
	s.must("run", "--rm", "--mount", "type=bind,source="+filepath.Join(host, "ro")+",target=/rw", "bb", "sh", "-c", "echo rw > /rw/f")
	if got := readFile(t, filepath.Join(host, "ro", "f")); got != "rw\n" {
		t.Errorf("--mount bind rw: %q", got)
	}
	if _, _, code := s.run(nil, "run", "--rm", "--mount", "type=bind,source="+filepath.Join(host, "ro")+",target=/r,readonly", "bb", "touch", "/r/g"); code == 0 {
		t.Error("--mount readonly let the container write")
	}
	// A read-only named volume.
	s.must("volume", "create", "rov")
	if _, _, code := s.run(nil, "run", "--rm", "-v", "rov:/v:ro", "bb", "touch", "/v/x"); code == 0 {
		t.Error("-v rov:/v:ro let the container write")
	}
	// A single file.
	writeFile(t, filepath.Join(host, "single"), "one file\n", 0o644)
	if got := s.must("run", "--rm", "-v", filepath.Join(host, "single")+":/etc/single:ro", "bb", "cat", "/etc/single"); got != "one file\n" {
		t.Errorf("file bind: %q", got)
	}

	// --tmpfs: a tmpfs, empty, gone with the container.
	out = s.must("run", "--rm", "--tmpfs", "/scratch:size=2m", "bb", "sh", "-c", "mount | grep ' /scratch '; echo x > /scratch/f && cat /scratch/f")
	if !strings.Contains(out, "tmpfs on /scratch type tmpfs") || !strings.Contains(out, "size=2048k") || !strings.HasSuffix(out, "x\n") {
		t.Errorf("--tmpfs /scratch:size=2m: %q", out)
	}
	out = s.must("run", "--rm", "--mount", "type=tmpfs,target=/t2,tmpfs-size=1048576", "bb", "sh", "-c", "mount | grep ' /t2 '")
	if !strings.Contains(out, "size=1024k") {
		t.Errorf("--mount type=tmpfs: %q", out)
	}
}
