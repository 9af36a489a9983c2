package containers_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// tarNames lists the entry names of a tar stream, "./" and trailing "/"
// stripped.
func tarNames(t *testing.T, data []byte) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	tr := tar.NewReader(maybeGunzip(t, data))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read tar: %v (after %d entries)", err, len(names))
		}
		n := strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		if n != "" && n != "." {
			names[n] = true
		}
	}
	return names
}

// maybeGunzip undoes gzip when the data is compressed (saved layers may
// be).
func maybeGunzip(t *testing.T, data []byte) io.Reader {
	t.Helper()
	if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		return bytes.NewReader(data)
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	return zr
}

// tarFile returns the content of one regular file of a tar stream.
func tarFile(t *testing.T, data []byte, name string) (string, bool) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err != nil {
			return "", false
		}
		if strings.TrimPrefix(h.Name, "./") == name {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatalf("read %s from tar: %v", name, err)
			}
			return string(b), true
		}
	}
}

// runOut runs berth and returns its stdout as bytes, for binary output.
func (s *store) mustBytes(args ...string) []byte {
	s.t.Helper()
	out, errOut, code := s.run(nil, args...)
	if code != 0 {
		s.t.Fatalf("berth %v: exit %d: %s", args, code, errOut)
	}
	return []byte(out)
}

func writeFile(t *testing.T, path, data string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("read %s: %v", path, err)
		return ""
	}
	return string(b)
}

func TestCopyIntoAndOutOf(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	s.must("run", "-d", "--name", "cp", "bb", "sleep", "600")
	host := t.TempDir()
	writeFile(t, filepath.Join(host, "f.txt"), "host file\n", 0o640)
	writeFile(t, filepath.Join(host, "dir", "sub", "x"), "x\n", 0o644)

	// A file into an existing directory keeps its name and mode.
	s.must("cp", filepath.Join(host, "f.txt"), "cp:/tmp")
	if got := s.must("exec", "cp", "cat", "/tmp/f.txt"); got != "host file\n" {
		t.Errorf("cp file into /tmp: %q", got)
	}
	if got := s.must("exec", "cp", "stat", "-c", "%a", "/tmp/f.txt"); got != "640\n" {
		t.Errorf("cp file: mode %q, want 640", got)
	}
	// A file to a missing name is a rename.
	s.must("cp", filepath.Join(host, "f.txt"), "cp:/tmp/renamed.txt")
	if got := s.must("exec", "cp", "cat", "/tmp/renamed.txt"); got != "host file\n" {
		t.Errorf("cp file to a new name: %q", got)
	}
	// A directory to a missing name becomes that name; to an existing
	// directory it goes inside it.
	s.must("cp", filepath.Join(host, "dir"), "cp:/tmp/newdir")
	if got := s.must("exec", "cp", "cat", "/tmp/newdir/sub/x"); got != "x\n" {
		t.Errorf("cp dir to a new name: %q", got)
	}
	s.must("cp", filepath.Join(host, "dir"), "cp:/tmp/newdir")
	if got := s.must("exec", "cp", "cat", "/tmp/newdir/dir/sub/x"); got != "x\n" {
		t.Errorf("cp dir into an existing dir: %q", got)
	}
	// A file onto a path whose parent is missing is an error.
	s.failsWith(1, "cp", filepath.Join(host, "f.txt"), "cp:/no/such/parent/f")

	// Out of the container: into a directory, to a new name, a directory.
	s.must("cp", "cp:/etc/passwd", host)
	if got := readFile(t, filepath.Join(host, "passwd")); !strings.HasPrefix(got, "root:x:0:0:") {
		t.Errorf("cp out into a dir: %q", got)
	}
	s.must("cp", "cp:/etc/group", filepath.Join(host, "grp"))
	if got := readFile(t, filepath.Join(host, "grp")); got != "root:x:0:\nnogroup:x:65534:\n" {
		t.Errorf("cp out to a new name: %q", got)
	}
	s.must("cp", "cp:/tmp/newdir", filepath.Join(host, "out"))
	if got := readFile(t, filepath.Join(host, "out", "dir", "sub", "x")); got != "x\n" {
		t.Errorf("cp a dir out: %q", got)
	}
	// Missing source: Docker says "Could not find the file /nosuch in
	// container cp", exit 1.
	errOut := s.failsWith(1, "cp", "cp:/nosuch", host)
	if !strings.Contains(strings.ToLower(errOut), "could not find the file /nosuch in container") {
		t.Errorf("cp of a missing file: %q", errOut)
	}

	// To - writes a tar of the source, named by its base name.
	tarData := s.mustBytes("cp", "cp:/tmp/newdir", "-")
	names := tarNames(t, tarData)
	for _, want := range []string{"newdir", "newdir/sub", "newdir/sub/x", "newdir/dir/sub/x"} {
		if !names[want] {
			t.Errorf("cp to -: tar lacks %q: %v", want, names)
		}
	}
	if got, ok := tarFile(t, s.mustBytes("cp", "cp:/etc/group", "-"), "group"); !ok || got != "root:x:0:\nnogroup:x:65534:\n" {
		t.Errorf("cp file to -: %q, %v", got, ok)
	}
	// From - extracts a tar into a directory.
	in, err := exec.Command("tar", "-C", host, "-cf", "-", "f.txt", "dir").Output()
	if err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := s.run(in, "cp", "-", "cp:/root"); code != 0 {
		t.Fatalf("cp - cp:/root: %s", errOut)
	}
	if got := s.must("exec", "cp", "cat", "/root/f.txt", "/root/dir/sub/x"); got != "host file\nx\n" {
		t.Errorf("cp from -: %q", got)
	}
	// ... and only into a directory.
	if _, errOut, code := s.run(in, "cp", "-", "cp:/etc/passwd"); code != 1 || !strings.Contains(errOut, "must be a directory") {
		t.Errorf("cp - onto a file: exit %d, stderr %q; Docker: exit 1, destination \"cp:/etc/passwd\" must be a directory", code, errOut)
	}
}

func TestCopyStoppedContainer(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	s.must("create", "--name", "created", "bb")
	host := t.TempDir()
	writeFile(t, filepath.Join(host, "in.txt"), "into a created container\n", 0o644)
	s.must("cp", filepath.Join(host, "in.txt"), "created:/in.txt")
	s.must("cp", "created:/in.txt", filepath.Join(host, "back.txt"))
	if got := readFile(t, filepath.Join(host, "back.txt")); got != "into a created container\n" {
		t.Errorf("cp round trip on a created container: %q", got)
	}
	s.must("run", "--name", "ran", "bb", "sh", "-c", "echo exited > /out.txt")
	s.must("cp", "ran:/out.txt", filepath.Join(host, "out.txt"))
	if got := readFile(t, filepath.Join(host, "out.txt")); got != "exited\n" {
		t.Errorf("cp from an exited container: %q", got)
	}
	s.must("cp", filepath.Join(host, "in.txt"), "ran:/tmp/")
	s.must("start", "-a", "created")
	if got := s.must("logs", "created"); got != "" {
		t.Errorf("created container printed %q", got)
	}
	// The file is there when the container runs.
	s.must("run", "-d", "--name", "later", "bb", "sleep", "600")
	s.must("stop", "-t", "0", "later")
	s.must("cp", filepath.Join(host, "in.txt"), "later:/tmp/late.txt")
	s.must("start", "later")
	if got := s.must("exec", "later", "cat", "/tmp/late.txt"); got != "into a created container\n" {
		t.Errorf("file copied into a stopped container, after start: %q", got)
	}
}

// TestCopySymlinksStayInside checks that symbolic links in the container
// are resolved inside its root, as Docker does: a link to / or /etc leads
// to the container's root or /etc, never to the host's.
func TestCopySymlinksStayInside(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	s.must("run", "-d", "--name", "ln", "bb", "sleep", "600")
	s.must("exec", "ln", "sh", "-c", "ln -s / /escape && ln -s /etc /escetc && ln -s ../../../../../.. /tmp/up")

	host := t.TempDir()
	secret := filepath.Join(host, "secret")
	writeFile(t, secret, "host secret\n", 0o600)
	out := t.TempDir()

	// Reading through the links finds no host file.
	for _, src := range []string{"/escape" + secret, "/tmp/up" + secret} {
		dst := filepath.Join(out, filepath.Base(src)+"-copy")
		if _, _, code := s.run(nil, "cp", "ln:"+src, dst); code == 0 {
			t.Errorf("cp ln:%s succeeded", src)
		}
		if data, err := os.ReadFile(dst); err == nil {
			t.Errorf("cp ln:%s read the host file: %q", src, data)
		}
		if data, _, _ := s.run(nil, "cp", "ln:"+src, "-"); strings.Contains(data, "host secret") {
			t.Errorf("cp ln:%s - read the host file", src)
		}
	}
	// /escetc/passwd is the container's /etc/passwd, not the host's.
	tarOut, errOut, code := s.run(nil, "cp", "ln:/escetc/passwd", "-")
	got, ok := tarFile(t, []byte(tarOut), "passwd")
	if code != 0 || !ok || !strings.HasPrefix(got, "root:x:0:0:root:/root:/bin/sh\nnobody:") {
		t.Errorf("cp ln:/escetc/passwd -: exit %d, %q (found %v), stderr %q; want the container's /etc/passwd", code, got, ok, errOut)
	}

	// Writing through the links lands in the container, never on the host.
	name := uniqueName("berth-cp-escape-")
	hostEtc := filepath.Join("/etc", name)
	t.Cleanup(func() { os.Remove(hostEtc); os.Remove(filepath.Join(host, name)) })
	src := filepath.Join(host, "payload")
	writeFile(t, src, "payload\n", 0o644)
	if _, errOut, code := s.run(nil, "cp", src, "ln:/escetc/"+name); code != 0 {
		t.Errorf("cp into ln:/escetc/%s: exit %d: %s; Docker writes the container's /etc/%s", name, code, errOut, name)
	}
	if _, err := os.Stat(hostEtc); err == nil {
		t.Fatalf("cp through /escetc wrote the host's %s", hostEtc)
	}
	if got, _, _ := s.run(nil, "exec", "ln", "cat", "/etc/"+name); got != "payload\n" {
		t.Errorf("cp through /escetc: the container's /etc/%s holds %q", name, got)
	}
	// The host directory does not exist in the container: Docker fails.
	s.failsWith(1, "cp", src, "ln:/escape"+host+"/")
	if _, err := os.Stat(filepath.Join(host, name)); err == nil {
		t.Fatalf("cp through /escape wrote the host's %s", filepath.Join(host, name))
	}
	if got := readFile(t, secret); got != "host secret\n" {
		t.Errorf("host secret changed: %q", got)
	}
	// The link itself, as the last component, is copied as a link.
	names := tarNames(t, s.mustBytes("cp", "ln:/escetc", "-"))
	if len(names) != 1 || !names["escetc"] {
		t.Errorf("cp ln:/escetc - followed the link: %v", names)
	}
}

// diffLines runs diff and returns its lines, sorted.
func diffLines(out string) []string {
	var lines []string
	for l := range lineSet(out) {
		lines = append(lines, l)
	}
	sort.Strings(lines)
	return lines
}

func TestDiffMatchesDocker(t *testing.T) {
	s := newStore(t)
	tarData := busyboxTar(t, nil)
	s.importTar(tarData, "bb")
	changes := "touch /tmp/new && rm /bin/vi && echo more >> /etc/passwd && mkdir -p /root/a/b && echo x > /root/a/b/f"
	want := []string{"A /root/a", "A /root/a/b", "A /root/a/b/f", "A /tmp/new", "C /bin", "C /etc", "C /etc/passwd", "C /root", "C /tmp", "D /bin/vi"}

	s.must("run", "-d", "--name", "df", "bb", "sleep", "600")
	if got := s.must("diff", "df"); got != "" {
		t.Errorf("diff of a fresh container (Docker prints nothing):\n%s", got)
	}
	s.must("exec", "df", "sh", "-c", changes)
	got := diffLines(s.must("diff", "df"))
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("diff:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, l := range strings.Split(strings.TrimSpace(s.must("diff", "df")), "\n") {
		if !regexp.MustCompile(`^[ACD] /`).MatchString(l) {
			t.Errorf("diff line %q is not KIND PATH", l)
		}
	}
	// The same on a stopped container.
	s.must("stop", "-t", "0", "df")
	if again := diffLines(s.must("diff", "df")); strings.Join(again, "\n") != strings.Join(got, "\n") {
		t.Errorf("diff after stop:\n%s", strings.Join(again, "\n"))
	}

	d := newDockerSide(t)
	img := d.importImage(tarData)
	c := d.container("run", "-d", img, "sleep", "600")
	d.must("exec", c, "sh", "-c", changes)
	dockerLines := diffLines(d.must("diff", c))
	if strings.Join(dockerLines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("this test's expectation is wrong: docker diff:\n%s", strings.Join(dockerLines, "\n"))
	}
}

// TestDiffImageWithoutEtc: the /etc that starting a container makes for
// its generated files is no change of the container's, as under Docker
// (whose init layer holds it); a file added there shows it as changed.
func TestDiffImageWithoutEtc(t *testing.T) {
	s := newStore(t)
	tarData := busyboxTar(t, nil)
	bare := withoutDirs(t, tarData, "etc")
	s.importTar(bare, "bare")
	want := []string{"A /etc/new", "C /etc"}

	s.must("run", "-d", "--name", "de", "bare", "sleep", "600")
	if got := s.must("diff", "de"); got != "" {
		t.Errorf("diff of a fresh container from an image without /etc (Docker prints nothing):\n%s", got)
	}
	s.must("exec", "de", "sh", "-c", "echo x > /etc/new")
	if got := diffLines(s.must("diff", "de")); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("diff:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	d := newDockerSide(t)
	img := d.importImage(bare)
	c := d.container("run", "-d", img, "sleep", "600")
	if got := d.must("diff", c); got != "" {
		t.Fatalf("this test's expectation is wrong: docker diff of a fresh container:\n%s", got)
	}
	d.must("exec", c, "sh", "-c", "echo x > /etc/new")
	if got := diffLines(d.must("diff", c)); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("this test's expectation is wrong: docker diff:\n%s", strings.Join(got, "\n"))
	}
}

// withoutDirs copies a tar, leaving out the top-level directories dirs
// and everything under them.
func withoutDirs(t *testing.T, data []byte, dirs ...string) []byte {
	t.Helper()
	var out bytes.Buffer
	tr, tw := tar.NewReader(bytes.NewReader(data)), tar.NewWriter(&out)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		top, _, _ := strings.Cut(strings.TrimPrefix(h.Name, "./"), "/")
		if slices.Contains(dirs, top) {
			continue
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestCommitImageWithoutMountPoints: the /dev, /proc, /sys and /etc that
// starting a container makes where the image has none stay out of its
// commit, as Docker's init layer keeps them out; so does --init's
// /sbin/berth-init. What the container wrote is in.
func TestCommitImageWithoutMountPoints(t *testing.T) {
	s := newStore(t)
	s.importTar(withoutDirs(t, busyboxTar(t, nil), "dev", "proc", "sys", "etc", "sbin"), "bare")
	for _, init := range []bool{false, true} {
		args := []string{"run", "--name", "cm", "bare", "sh", "-c", "echo x > /data"}
		if init {
			args = append(args[:1], append([]string{"--init"}, args[1:]...)...)
		}
		s.must(args...)
		s.must("commit", "cm", "bare:committed")
		if names := tarNames(t, committedLayer(t, s, "bare:committed")); len(names) != 1 || !names["data"] {
			t.Errorf("committed layer (--init %v): %v, want only data", init, names)
		}
		s.must("rm", "cm")
		s.must("rmi", "bare:committed")
	}
}

func TestExport(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	s.must("run", "--name", "ex", "bb", "sh", "-c", "echo written > /tmp/written && rm /bin/vi")
	tarData := s.mustBytes("export", "ex")
	names := tarNames(t, tarData)
	for _, want := range []string{"bin", "bin/busybox", "bin/sh", "etc/passwd", "etc/group", "tmp", "tmp/written"} {
		if !names[want] {
			t.Errorf("export lacks %s", want)
		}
	}
	if names["bin/vi"] {
		t.Error("export has the deleted bin/vi")
	}
	for n := range names {
		if strings.Contains(n, ".wh.") {
			t.Errorf("export has a whiteout %s", n)
		}
	}
	if got, _ := tarFile(t, tarData, "tmp/written"); got != "written\n" {
		t.Errorf("export tmp/written: %q", got)
	}
	// -o writes a file.
	file := filepath.Join(t.TempDir(), "e.tar")
	if out := s.must("export", "-o", file, "ex"); out != "" {
		t.Errorf("export -o printed %q", out)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !tarNames(t, data)["tmp/written"] {
		t.Error("export -o: no tmp/written")
	}
	// Docker refuses to write a tar to a terminal; here stdout is a pipe,
	// so the check is that an unknown container fails cleanly.
	s.failsWith(1, "export", "nosuch")
}

// committedLayer saves ref, an image of two layers (one image layer and
// a commit's), and returns the second layer's tar.
func committedLayer(t *testing.T, s *store, ref string) []byte {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("tar", "-C", dir, "-xf", "-")
	cmd.Stdin = bytes.NewReader(s.mustBytes("save", ref))
	if o, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("untar save: %v: %s", err, o)
	}
	var manifest []struct{ Layers []string }
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(dir, "manifest.json"))), &manifest); err != nil || len(manifest) != 1 || len(manifest[0].Layers) != 2 {
		t.Fatalf("manifest.json: %+v, %v (want one image of two layers)", manifest, err)
	}
	layer, err := os.ReadFile(filepath.Join(dir, manifest[0].Layers[1]))
	if err != nil {
		t.Fatal(err)
	}
	return layer
}

func TestCommit(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	s.must("run", "--name", "src", "-e", "KEEP=1", "bb", "sh", "-c", "echo committed > /data.txt && rm /bin/vi")
	out := s.must("commit", "-c", `CMD ["cat", "/data.txt"]`, "-m", "a message", "-a", "An Author <a@example.com>", "src", "committed:v1")
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}\n$`).MatchString(out) {
		t.Errorf("commit printed %q, want sha256:<64 hex>", out)
	}
	t.Cleanup(func() { s.run(nil, "rmi", "-f", "committed:v1") })

	// The new image runs the new CMD, has the file, lacks the deleted one,
	// and keeps the container's environment.
	if got := s.must("run", "--rm", "committed:v1"); got != "committed\n" {
		t.Errorf("run of the committed image: %q", got)
	}
	if _, _, code := s.run(nil, "run", "--rm", "committed:v1", "test", "-e", "/bin/vi"); code == 0 {
		t.Error("the committed image has the deleted /bin/vi")
	}
	if got := s.must("run", "--rm", "committed:v1", "sh", "-c", "echo $KEEP"); got != "1\n" {
		t.Errorf("committed image env: KEEP=%q", got)
	}
	if got := strings.TrimSpace(s.must("image", "inspect", "--format", "{{json .Config.Cmd}}|{{.Comment}}|{{.Author}}", "committed:v1")); got != `["cat","/data.txt"]|a message|An Author <a@example.com>` {
		t.Errorf("image inspect: %q", got)
	}
	hist := s.must("history", "committed:v1")
	if !strings.Contains(hist, "a message") {
		t.Errorf("history lacks the commit message:\n%s", hist)
	}

	// The committed layer holds the change, not the files berth manages
	// (/etc/hosts, /etc/hostname, /etc/resolv.conf).
	names := tarNames(t, committedLayer(t, s, "committed:v1"))
	if !names["data.txt"] || !names["bin/.wh.vi"] {
		t.Errorf("committed layer lacks data.txt or the whiteout of bin/vi: %v", names)
	}
	for _, n := range []string{"etc/hosts", "etc/hostname", "etc/resolv.conf", ".dockerenv"} {
		if names[n] {
			t.Errorf("committed layer holds %s", n)
		}
	}
	s.failsWith(1, "commit", "nosuch", "x:y")
}
