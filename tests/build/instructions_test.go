package build_test

import (
	"encoding/json"
	"fmt"
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

	"github.com/berth-containers/berth/internal/testutil/registrytest"
)

// TestBuildOnbuildAndShell checks that ONBUILD triggers run in the child
// build and are not inherited further, and that SHELL changes the shell
// of RUN, CMD and ENTRYPOINT in shell form.
func TestBuildOnbuildAndShell(t *testing.T) {
	s := newStore(t)
	dir := t.TempDir()
	write(t, dir, "payload", "from the child's context\n")
	s.build(dir, `FROM busybox
ONBUILD COPY payload /payload
ONBUILD RUN echo triggered > /triggered
`, "-t", "ob:parent")
	assert.Equal(t, "no\n", s.Must("run", "--rm", "ob:parent", "sh", "-c", "test -e /triggered && echo yes || echo no"),
		"triggers do not run in the image that declares them")

	s.build(dir, "FROM ob:parent\n", "-t", "ob:child")
	assert.Equal(t, "from the child's context\ntriggered\n", s.Must("run", "--rm", "ob:child", "cat", "/payload", "/triggered"))
	assert.Equal(t, "null", strings.TrimSpace(s.Must("image", "inspect", "--format", "{{json .Config.OnBuild}}", "ob:child")),
		"the child does not pass the triggers on")

	s.build(dir, `FROM busybox
SHELL ["/bin/sh", "-ec"]
RUN echo "$0 $-" > /shell-flags
CMD echo cmd-in-shell
`, "-t", "sh:1")
	assert.Contains(t, s.Must("run", "--rm", "sh:1", "cat", "/shell-flags"), "e", "RUN ran under SHELL's -e")
	var cmd []string
	require.NoError(t, json.Unmarshal([]byte(s.Must("image", "inspect", "--format", "{{json .Config.Cmd}}", "sh:1")), &cmd))
	assert.Equal(t, []string{"/bin/sh", "-ec", "echo cmd-in-shell"}, cmd)
	assert.Equal(t, "cmd-in-shell\n", s.Must("run", "--rm", "sh:1"))
	errOut := s.buildFails(dir, "FROM busybox\nSHELL /bin/bash -c\n")
	assert.Contains(t, errOut, "Dockerfile:2")
}

// TestBuildAddURLAndCopyLink covers ADD of a URL (served on 127.0.0.1)
// and COPY --link.
func TestBuildAddURLAndCopyLink(t *testing.T) {
	s := newStore(t)
	base := serveHTTP(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/files/remote.txt" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, "served over http\n")
	})

	dir := t.TempDir()
	write(t, dir, "linked.txt", "linked\n")
	s.build(dir, fmt.Sprintf(`FROM busybox
ADD %s/files/remote.txt /dl/
ADD %s/files/remote.txt /named.txt
COPY --link linked.txt /deep/dir/
`, base, base), "-t", "url:1")
	got := s.Must("run", "--rm", "url:1", "sh", "-c", "cat /dl/remote.txt /named.txt /deep/dir/linked.txt; stat -c %a /named.txt")
	assert.Equal(t, "served over http\nserved over http\nlinked\n600\n", got)

	errOut := s.buildFails(dir, fmt.Sprintf("FROM busybox\nADD %s/missing /x\n", base))
	assert.Contains(t, errOut, "Dockerfile:2")
	assert.Contains(t, errOut, "404")
}

// TestBuildBindSecretTmpfsMounts covers RUN --mount=type=bind (the
// context and another stage), type=secret and type=tmpfs: each is seen
// by the step and none ends up in the image.
func TestBuildBindSecretTmpfsMounts(t *testing.T) {
	s := newStore(t)
	dir := t.TempDir()
	write(t, dir, "input.txt", "bound from the context\n")
	secret := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(secret, []byte("s3cr3t"), 0o600))
	s.build(dir, `FROM busybox AS other
RUN echo from-other > /made

FROM busybox
RUN --mount=type=bind,target=/ctx cat /ctx/input.txt > /from-ctx
RUN --mount=type=bind,from=other,source=/made,target=/m cat /m > /from-stage
RUN --mount=type=secret,id=tok test "$(cat /run/secrets/tok)" = s3cr3t && echo secret-seen > /secret-check
RUN --mount=type=secret,id=tok,target=/etc/tok,required=true wc -c < /etc/tok > /secret-len
RUN --mount=type=tmpfs,target=/scratch touch /scratch/x && grep -q ' /scratch tmpfs' /proc/mounts && echo tmpfs > /tmpfs-check
`, "-t", "mnt:1", "--secret", "id=tok,src="+secret)
	got := s.Must("run", "--rm", "mnt:1", "sh", "-c",
		"cat /from-ctx /from-stage /secret-check /secret-len /tmpfs-check; ls /ctx /m /run/secrets /scratch /etc/tok 2>/dev/null; true")
	assert.Equal(t, "bound from the context\nfrom-other\nsecret-seen\n6\ntmpfs\n", got, "the mounts leave nothing in the image")

	errOut := s.buildFails(dir, "FROM busybox\nRUN --mount=type=secret,id=absent,required=true true\n")
	assert.Contains(t, errOut, "Dockerfile:2")
	errOut = s.buildFails(dir, "FROM busybox\nRUN --mount=type=bind,target=/ctx echo x > /ctx/input.txt\n")
	assert.Contains(t, errOut, "Dockerfile:2", "a bind mount is read-only unless rw")
}

// TestBuildStagesOverlap proves that two independent stages run at the
// same time: each waits (boundedly) for a file the other writes in a
// shared cache mount, which only succeeds when both run together.
func TestBuildStagesOverlap(t *testing.T) {
	s := newStore(t)
	dir := t.TempDir()
	wait := func(me, other string) string {
		return fmt.Sprintf(`RUN --mount=type=cache,id=rendezvous,target=/sync touch /sync/%s; i=0; `+
			`while [ ! -e /sync/%s ] && [ $i -lt 150 ]; do sleep 0.1; i=$((i+1)); done; test -e /sync/%s && echo %s > /%s`,
			me, other, other, me, me)
	}
	s.build(dir, fmt.Sprintf(`FROM busybox AS one
%s

FROM busybox AS two
%s

FROM busybox
COPY --from=one /one /one
COPY --from=two /two /two
`, wait("one", "two"), wait("two", "one")), "-t", "par:1")
	assert.Equal(t, "one\ntwo\n", s.Must("run", "--rm", "par:1", "cat", "/one", "/two"))
}

// TestBuildOutputs covers --output: a local directory, a tar of the
// files, OCI and docker archives that load back, no image left in the
// store by those, and nothing written by a failed build or a bad value.
func TestBuildOutputs(t *testing.T) {
	s := newStore(t)
	dir := t.TempDir()
	out := t.TempDir()
	write(t, dir, "f", "context file\n")
	df := "FROM busybox\nCOPY f /f\nRUN echo ran > /ran\nCMD [\"cat\", \"/f\", \"/ran\"]\n"
	before := s.imageCount()

	local := filepath.Join(out, "local")
	s.build(dir, df, "-o", "type=local,dest="+local)
	data, err := os.ReadFile(filepath.Join(local, "ran"))
	require.NoError(t, err)
	assert.Equal(t, "ran\n", string(data))
	fi, err := os.Lstat(filepath.Join(local, "bin", "sh"))
	require.NoError(t, err)
	assert.NotZero(t, fi.Mode()&os.ModeSymlink|fi.Mode()&0o111, "busybox's sh came along")

	s.build(dir, "", "-o", "type=tar,dest="+filepath.Join(out, "files.tar"))
	list, err := exec.Command("tar", "-tf", filepath.Join(out, "files.tar")).Output()
	require.NoError(t, err)
	assert.Contains(t, strings.Fields(string(list)), "f")
	assert.Contains(t, strings.Fields(string(list)), "ran")

	stdout, _ := s.build(dir, "", "-o", "-")
	assert.Contains(t, stdout, "context file", "-o - writes the files' tar to stdout")

	s.build(dir, "", "-t", "exported:oci", "-o", "type=oci,dest="+filepath.Join(out, "img.oci.tar"))
	s.build(dir, "", "-t", "exported:docker", "-o", "type=docker,dest="+filepath.Join(out, "img.docker.tar"))
	assert.Equal(t, before, s.imageCount(), "outputs other than the image store leave no image there")
	s.Must("load", "-i", filepath.Join(out, "img.docker.tar"))
	assert.Equal(t, "context file\nran\n", s.Must("run", "--rm", "exported:docker"))
	s.Must("load", "-i", filepath.Join(out, "img.oci.tar"))
	assert.Equal(t, "context file\nran\n", s.Must("run", "--rm", "exported:oci"))

	s.build(dir, "", "-t", "both:1", "-o", "type=image", "-o", filepath.Join(out, "both"))
	assert.Equal(t, "context file\nran\n", s.Must("run", "--rm", "both:1"))
	assert.FileExists(t, filepath.Join(out, "both", "ran"))

	for _, bad := range []string{"type=nope,dest=x", "type=oci", "type=local", "type=registry", "dest=x", "type=local,dest=-"} {
		errOut := s.buildFails(dir, "", "-o", bad)
		assert.Contains(t, errOut, "--output", bad)
	}
	s.buildFails(dir, "FROM busybox\nRUN exit 1\n", "-o", "type=tar,dest="+filepath.Join(out, "failed.tar"), "-o", filepath.Join(out, "failed"))
	entries, err := os.ReadDir(out)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.ElementsMatch(t, []string{"local", "files.tar", "img.oci.tar", "img.docker.tar", "both"}, names,
		"a failed build leaves no output and no temporary file")
}

// TestBuildExcludeChecksumSecretEnv covers COPY --exclude, ADD
// --checksum, RUN --mount=type=secret,env= and cache mounts with
// sharing=locked, and builder prune -a emptying cache mounts.
func TestBuildExcludeChecksumSecretEnv(t *testing.T) {
	s := newStore(t)
	dir := t.TempDir()
	write(t, dir, "app/main.go", "package main\n")
	write(t, dir, "app/main_test.go", "package main\n")
	write(t, dir, "app/doc/notes.md", "notes\n")
	write(t, dir, "home.txt", "txt\n")
	write(t, dir, "home.md", "md\n")
	write(t, dir, "homer", "homer\n")
	s.build(dir, `FROM busybox
COPY --exclude=*_test.go --exclude=doc app /app/
COPY --exclude=*.txt --exclude=*.md hom* /mydir/
`, "-t", "ex:1")
	assert.Equal(t, "/app/main.go\n/mydir/homer\n", s.Must("run", "--rm", "ex:1", "find", "/app", "/mydir", "-type", "f"))
	_, plain := s.build(dir, "", "-t", "ex:1")
	assert.Equal(t, 2, strings.Count(plain, "CACHED"), plain)
	write(t, dir, "app/other_test.go", "package main\n")
	_, plain = s.build(dir, "", "-t", "ex:1")
	assert.Equal(t, 2, strings.Count(plain, "CACHED"), "an excluded file does not change the key:\n%s", plain)

	u := serveHTTP(t, func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "checked\n") }) + "/f"
	// sha256 of "checked\n".
	sum := strings.Fields(runOut(t, "sh", "-c", "printf 'checked\\n' | sha256sum"))[0]
	s.build(dir, fmt.Sprintf("FROM busybox\nADD --checksum=sha256:%s %s /f\n", sum, u), "-t", "ck:1")
	assert.Equal(t, "checked\n", s.Must("run", "--rm", "ck:1", "cat", "/f"))
	errOut := s.buildFails(dir, fmt.Sprintf("FROM busybox\nADD --checksum=sha256:%s %s /f\n", strings.Repeat("0", 64), u))
	assert.Contains(t, errOut, "digest mismatch")
	assert.Contains(t, errOut, "Dockerfile:2")
	errOut = s.buildFails(dir, fmt.Sprintf("FROM busybox\nADD --checksum=sha256:%s home.txt /f\n", sum))
	assert.Contains(t, errOut, "only for http(s)")

	secret := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(secret, []byte("s3cr3t-value"), 0o600))
	s.build(dir, `FROM busybox
RUN --mount=type=secret,id=tok,env=TOKEN test ! -e /run/secrets/tok && echo "${#TOKEN} ${TOKEN%-*}" > /env-check
`, "-t", "se:1", "--secret", "id=tok,src="+secret)
	assert.Equal(t, "12 s3cr3t\n", s.Must("run", "--rm", "se:1", "cat", "/env-check"))
	hist := s.Must("history", "--no-trunc", "--format", "{{.CreatedBy}}", "se:1")
	assert.NotContains(t, hist, "s3cr3t-value", "the secret stays out of the history")
	assert.NotContains(t, s.Must("image", "inspect", "se:1"), "s3cr3t-value")

	// Two stages at once on a locked cache mount: each sees it alone.
	step := func(name string) string {
		return fmt.Sprintf("RUN --mount=type=cache,id=turns,target=/c,sharing=locked "+
			"if [ -e /c/busy ]; then echo overlap; else echo alone; fi > /%s; touch /c/busy; sleep 0.5; rm /c/busy; echo %s >> /c/log", name, name)
	}
	s.build(dir, fmt.Sprintf("FROM busybox AS a\n%s\nFROM busybox AS b\n%s\nFROM busybox\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n",
		step("a"), step("b")), "-t", "lk:1")
	assert.Equal(t, "alone\nalone\n", s.Must("run", "--rm", "lk:1", "cat", "/a", "/b"))

	df := "FROM busybox\nRUN --mount=type=cache,id=turns,target=/c wc -l < /c/log > /lines\n"
	s.build(dir, df, "-t", "lk:2", "--no-cache")
	assert.Equal(t, "2\n", s.Must("run", "--rm", "lk:2", "cat", "/lines"))
	s.Must("builder", "prune", "-a", "-f")
	errOut = s.buildFails(dir, df, "--no-cache")
	assert.Contains(t, errOut, "/c/log", "builder prune -a empties the cache mounts")
}

// serveHTTP serves h on 127.0.0.1 for the test and returns its base URL.
func serveHTTP(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: h}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// runOut runs a host command and returns its stdout.
func runOut(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	require.NoError(t, err)
	return string(out)
}

// TestBuildFlagsAndArgs covers -f with its own ignore file, --iidfile,
// the automatic platform ARGs, proxy args (usable undeclared, kept out of
// the history), MAINTAINER and a platform that is not this machine's.
func TestBuildFlagsAndArgs(t *testing.T) {
	s := newStore(t)
	dir := t.TempDir()
	write(t, dir, "a.txt", "a\n")
	write(t, dir, "b.txt", "b\n")
	write(t, dir, ".dockerignore", "a.txt\n")
	write(t, dir, "build/app.Dockerfile", `FROM --platform=$BUILDPLATFORM busybox
ARG TARGETARCH
ARG TARGETPLATFORM
MAINTAINER someone@example.com
COPY . /ctx/
RUN echo "$TARGETARCH $TARGETPLATFORM $HTTP_PROXY" > /args
`)
	write(t, dir, "build/app.Dockerfile.dockerignore", "b.txt\nbuild\n")
	iid := filepath.Join(t.TempDir(), "iid")
	s.build(dir, "", "-f", filepath.Join(dir, "build/app.Dockerfile"), "-t", "fl:1", "--iidfile", iid,
		"--build-arg", "HTTP_PROXY=http://127.0.0.1:9")
	got := s.Must("run", "--rm", "fl:1", "sh", "-c", "ls -A /ctx; cat /args")
	arch := strings.TrimSpace(runOut(t, "go", "env", "GOARCH"))
	assert.Equal(t, fmt.Sprintf(".dockerignore\na.txt\n%s linux/%s http://127.0.0.1:9\n", arch, arch), got,
		"the Dockerfile's own ignore file wins over .dockerignore")
	id, err := os.ReadFile(iid)
	require.NoError(t, err)
	assert.Contains(t, s.Must("images", "-q", "--no-trunc", "fl:1"), string(id))
	assert.Equal(t, "someone@example.com", strings.TrimSpace(s.Must("image", "inspect", "--format", "{{.Author}}", "fl:1")))
	assert.NotContains(t, s.Must("history", "--no-trunc", "fl:1"), "127.0.0.1:9", "proxy args stay out of the history")

	errOut := s.buildFails(dir, "FROM --platform=linux/s390x busybox\n")
	assert.Contains(t, errOut, "Dockerfile:1")
	assert.Contains(t, errOut, "not this machine's")
	_, errOut, code := s.Run(nil, "build", "--platform", "linux/s390x", dir)
	assert.Equal(t, 125, code)
	assert.Contains(t, errOut, "this machine's platform")
}

// TestBuildCopyFromCache checks COPY --from's cache: a rebuild with
// nothing changed hits every step, and a change in the stage it reads
// reaches the final image.
func TestBuildCopyFromCache(t *testing.T) {
	s := newStore(t)
	dir := t.TempDir()
	write(t, dir, "in", "one\n")
	df := "FROM busybox AS a\nCOPY in /in\nRUN cp /in /out\nFROM busybox\nCOPY --from=a /out /out\n"
	s.build(dir, df, "-t", "cf:1")
	_, plain := s.build(dir, "", "-t", "cf:1")
	assert.Equal(t, 3, strings.Count(plain, "CACHED"), plain)
	write(t, dir, "in", "two\n")
	s.build(dir, "", "-t", "cf:1")
	assert.Equal(t, "two\n", s.Must("run", "--rm", "cf:1", "cat", "/out"))
	_, plain = s.build(dir, "", "-t", "cf:1", "--no-cache")
	assert.Equal(t, 0, strings.Count(plain, "CACHED"), plain)
	assert.Equal(t, "two\n", s.Must("run", "--rm", "cf:1", "cat", "/out"))
}

// TestBuildScratchExecFormAndPull covers FROM scratch, RUN in exec form,
// an ARG before FROM naming the base, and base images pulled from a
// registry on 127.0.0.1: when missing, and again with --pull after the
// registry's copy changed.
func TestBuildScratchExecFormAndPull(t *testing.T) {
	s := newStore(t)
	reg := registrytest.Start(t, registrytest.Options{})
	dir := t.TempDir()
	s.build(dir, `ARG BASE=busybox
FROM $BASE AS tools
FROM scratch
COPY --from=tools /bin/busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox echo exec-form > /e"]
CMD ["/bin/busybox", "cat", "/e"]
`, "-t", "sc:1")
	assert.Equal(t, "exec-form\n", s.Must("run", "--rm", "sc:1"))
	assert.Equal(t, "/bin/busybox\n/e\n", s.Must("run", "--rm", "sc:1", "/bin/busybox", "find", "/bin", "/e", "-type", "f"),
		"scratch starts empty")

	base := reg.Host + "/base/img:1"
	s.Must("tag", "sc:1", base)
	s.Must("push", base)
	s.Must("rmi", base)
	df := fmt.Sprintf("FROM %s\nRUN [\"/bin/busybox\", \"cp\", \"/e\", \"/copied\"]\n", base)
	s.build(dir, df, "-t", "pulled:1")
	assert.Equal(t, "exec-form\n", s.Must("run", "--rm", "pulled:1", "/bin/busybox", "cat", "/copied"))

	// The registry's copy changes; only --pull sees it.
	write(t, dir, "e", "newer\n")
	s.build(dir, "FROM sc:1\nCOPY e /e\n", "-t", base)
	s.Must("push", base)
	s.Must("tag", "sc:1", base)
	s.build(dir, df, "-t", "pulled:2")
	assert.Equal(t, "exec-form\n", s.Must("run", "--rm", "pulled:2", "/bin/busybox", "cat", "/copied"))
	s.build(dir, df, "-t", "pulled:3", "--pull")
	assert.Equal(t, "newer\n", s.Must("run", "--rm", "pulled:3", "/bin/busybox", "cat", "/copied"))
}
