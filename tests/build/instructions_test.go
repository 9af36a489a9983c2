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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/files/remote.txt" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, "served over http\n")
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	base := "http://" + ln.Addr().String()

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
