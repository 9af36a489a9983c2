package containers_test

import (
	"encoding/json"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// psHeader is Docker's header of `ps`, padded as Docker pads it.
const psHeader = "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n"

// psNames lists the names `ps args...` prints, sorted.
func (s *store) psNames(args ...string) []string {
	s.t.Helper()
	out := s.must(append(append([]string{"ps"}, args...), "--format", "{{.Names}}")...)
	names := strings.Fields(out)
	sort.Strings(names)
	return names
}

func sameList(got []string, want ...string) bool {
	sort.Strings(want)
	return strings.Join(got, ",") == strings.Join(want, ",")
}

// psFixture makes containers in every state, oldest first: created,
// exited 3, running (labelled, with a volume), paused.
func psFixture(t *testing.T) *store {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	s.busyboxImage("other", map[string]string{"other": "a different image\n"})
	t.Cleanup(func() { s.run(nil, "volume", "rm", "-f", "psvol") })
	s.must("create", "--name", "c-created", "-l", "tier=db", "bb", "true")
	time.Sleep(1100 * time.Millisecond) // CREATED differs by at least a second
	if _, errOut, code := s.run(nil, "run", "--name", "c-exited", "-l", "tier=web", "other", "sh", "-c", "exit 3"); code != 3 {
		t.Fatalf("run exit 3: %d %s", code, errOut)
	}
	s.must("run", "-d", "--name", "c-running", "-l", "tier=web", "-l", "flag", "-v", "psvol:/data", "bb", "sh", "-c", "echo hello world; sleep 600")
	s.must("run", "-d", "--name", "c-paused", "bb", "sleep", "600")
	s.must("pause", "c-paused")
	return s
}

func TestPsListingAndStatus(t *testing.T) {
	s := psFixture(t)

	// An empty listing is Docker's header alone.
	if got := s.must("ps", "--filter", "name=nomatch"); got != psHeader {
		t.Errorf("empty ps: %q, want %q", got, psHeader)
	}
	out := s.must("ps")
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if !regexp.MustCompile(`^CONTAINER ID +IMAGE +COMMAND +CREATED +STATUS +PORTS +NAMES$`).MatchString(lines[0]) {
		t.Errorf("ps header %q", lines[0])
	}
	if len(lines) != 3 {
		t.Fatalf("ps shows %d rows, want the running and the paused ones:\n%s", len(lines)-1, out)
	}
	if !sameList(s.psNames(), "c-running", "c-paused") {
		t.Errorf("ps: %v", s.psNames())
	}
	if !sameList(s.psNames("-a"), "c-created", "c-exited", "c-running", "c-paused") {
		t.Errorf("ps -a: %v", s.psNames("-a"))
	}
	// The newest first.
	if got := strings.Fields(s.must("ps", "-a", "--format", "{{.Names}}")); strings.Join(got, ",") != "c-paused,c-running,c-exited,c-created" {
		t.Errorf("ps -a order: %v, want newest first", got)
	}

	status := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(s.must("ps", "-a", "--format", "{{.Names}}\t{{.Status}}\t{{.State}}")), "\n") {
		f := strings.SplitN(l, "\t", 2)
		status[f[0]] = f[1]
	}
	checks := map[string]string{
		"c-created": `^Created\tcreated$`,
		"c-exited":  `^Exited \(3\) (Less than a second|\d+ seconds?) ago\texited$`,
		"c-running": `^Up (Less than a second|\d+ seconds?)\trunning$`,
		"c-paused":  `^Up (Less than a second|\d+ seconds?) \(Paused\)\tpaused$`,
	}
	for name, re := range checks {
		if !regexp.MustCompile(re).MatchString(status[name]) {
			t.Errorf("%s: STATUS/State %q, want %s", name, status[name], re)
		}
	}
	if got := s.must("ps", "-a", "--filter", "name=c-created", "--format", "{{.RunningFor}}"); !regexp.MustCompile(`^\d+ seconds? ago\n$`).MatchString(got) {
		t.Errorf("CREATED of c-created: %q", got)
	}

	// -q: short ids, one a line; --no-trunc: full ones.
	short := strings.Fields(s.must("ps", "-aq"))
	full := strings.Fields(s.must("ps", "-aq", "--no-trunc"))
	if len(short) != 4 || len(full) != 4 {
		t.Fatalf("ps -aq: %v; --no-trunc: %v", short, full)
	}
	for i := range short {
		if len(short[i]) != 12 || len(full[i]) != 64 || !strings.HasPrefix(full[i], short[i]) {
			t.Errorf("ids %q / %q", short[i], full[i])
		}
	}
	// -n N and -l: the last created, whatever their state (-n implies -a).
	if got := s.must("ps", "-n", "2", "--format", "{{.Names}}"); got != "c-paused\nc-running\n" {
		t.Errorf("ps -n 2: %q", got)
	}
	if got := s.must("ps", "-l", "-q"); got != short[0]+"\n" {
		t.Errorf("ps -l -q: %q, want %s", got, short[0])
	}
	s.must("unpause", "c-paused")
	s.must("stop", "-t", "0", "c-paused")
	if got := s.must("ps", "-l", "--format", "{{.Names}}"); got != "c-paused\n" {
		t.Errorf("ps -l shows %q; it includes stopped containers", got)
	}

	// Aliases.
	for _, alias := range [][]string{{"container", "ls"}, {"container", "list"}, {"container", "ps"}} {
		if got := s.must(append(alias, "-aq")...); got != strings.Join(short, "\n")+"\n" {
			t.Errorf("%v -aq: %q", alias, got)
		}
	}
}

func TestPsCommandColumn(t *testing.T) {
	s := psFixture(t)
	// Docker quotes arguments holding a space, joins with spaces, quotes
	// the whole, and cuts it at 20 characters with an ellipsis.
	cmd := s.must("ps", "--filter", "name=c-running", "--format", "{{.Command}}")
	if cmd != `"sh -c 'echo hello w…"`+"\n" {
		t.Errorf("COMMAND: %q, want %q", cmd, `"sh -c 'echo hello w…"`)
	}
	cmd = s.must("ps", "--no-trunc", "--filter", "name=c-running", "--format", "{{.Command}}")
	if cmd != `"sh -c 'echo hello world; sleep 600'"`+"\n" {
		t.Errorf("COMMAND --no-trunc: %q", cmd)
	}
	if cmd := s.must("ps", "-a", "--filter", "name=c-created", "--format", "{{.Command}}"); cmd != `"true"`+"\n" {
		t.Errorf("short COMMAND: %q", cmd)
	}
	table := s.must("ps", "--filter", "name=c-running")
	if !strings.Contains(table, `"sh -c 'echo hello w…"`) {
		t.Errorf("ps table COMMAND:\n%s", table)
	}
}

func TestPsFormatsAndSize(t *testing.T) {
	s := psFixture(t)
	// A table template: the header names the columns.
	out := s.must("ps", "-a", "--filter", "name=c-exited", "--format", "table {{.Names}}\t{{.Image}}\t{{.Label \"tier\"}}")
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	// Docker heads a .Label column with the label's name.
	if len(lines) != 2 || !regexp.MustCompile(`^NAMES +IMAGE +(tier|TIER)$`).MatchString(lines[0]) ||
		!regexp.MustCompile(`^c-exited +other +web$`).MatchString(lines[1]) {
		t.Errorf("ps table template:\n%s", out)
	}
	// A plain template: no header.
	if got := s.must("ps", "-a", "--filter", "name=c-exited", "--format", "{{.ID}} {{.Names}} {{.Labels}}"); !regexp.MustCompile(`^[0-9a-f]{12} c-exited tier=web\n$`).MatchString(got) {
		t.Errorf("ps template: %q", got)
	}
	// json: one object a line, Docker's keys.
	out = s.must("ps", "-a", "--format", "json")
	rows := strings.Split(strings.TrimSpace(out), "\n")
	if len(rows) != 4 {
		t.Fatalf("ps --format json: %d lines:\n%s", len(rows), out)
	}
	for _, r := range rows {
		var m map[string]any
		if err := json.Unmarshal([]byte(r), &m); err != nil {
			t.Fatalf("ps --format json line %q: %v", r, err)
		}
		for _, k := range []string{"ID", "Image", "Command", "CreatedAt", "RunningFor", "Status", "State", "Ports", "Names", "Labels", "Mounts", "Networks", "LocalVolumes", "Size"} {
			if _, ok := m[k]; !ok {
				t.Errorf("ps json lacks %s: %s", k, r)
			}
		}
	}
	// -s: a SIZE column, "N (virtual M)".
	out = s.must("ps", "-s", "--filter", "name=c-running")
	lines = strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 2 || !regexp.MustCompile(`NAMES +SIZE$`).MatchString(lines[0]) {
		t.Fatalf("ps -s:\n%s", out)
	}
	if !regexp.MustCompile(`c-running +\d+(\.\d+)?k?B \(virtual \d+(\.\d+)?[kM]B\)$`).MatchString(lines[1]) {
		t.Errorf("ps -s row %q", lines[1])
	}
	if got := s.must("ps", "--filter", "name=c-running", "--format", "{{.Mounts}} {{.LocalVolumes}} {{.Networks}}"); got != "psvol 1 bridge\n" {
		t.Errorf("Mounts/LocalVolumes/Networks: %q", got)
	}
}

func TestPsFilters(t *testing.T) {
	s := psFixture(t)
	ids := map[string]string{}
	for _, n := range []string{"c-created", "c-exited", "c-running", "c-paused"} {
		ids[n] = s.field(n, "{{.ID}}")
	}
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"-a", "--filter", "name=c-ex"}, []string{"c-exited"}},
		{[]string{"-a", "--filter", "name=^c-(created|paused)$"}, []string{"c-created", "c-paused"}},
		{[]string{"-a", "--filter", "id=" + ids["c-running"][:6]}, []string{"c-running"}},
		{[]string{"-a", "--filter", "label=tier"}, []string{"c-created", "c-exited", "c-running"}},
		{[]string{"-a", "--filter", "label=tier=web"}, []string{"c-exited", "c-running"}},
		{[]string{"-a", "--filter", "label=tier=web", "--filter", "label=flag"}, []string{"c-running"}},
		{[]string{"-a", "--filter", "status=created"}, []string{"c-created"}},
		{[]string{"-a", "--filter", "status=exited"}, []string{"c-exited"}},
		{[]string{"-a", "--filter", "status=running"}, []string{"c-running"}},
		{[]string{"-a", "--filter", "status=paused"}, []string{"c-paused"}},
		{[]string{"-a", "--filter", "status=running", "--filter", "status=paused"}, []string{"c-running", "c-paused"}},
		{[]string{"-a", "--filter", "exited=3"}, []string{"c-exited"}},
		{[]string{"-a", "--filter", "exited=0"}, nil},
		{[]string{"-a", "--filter", "ancestor=other"}, []string{"c-exited"}},
		{[]string{"-a", "--filter", "ancestor=bb"}, []string{"c-created", "c-running", "c-paused"}},
		{[]string{"-a", "--filter", "before=c-running"}, []string{"c-created", "c-exited"}},
		{[]string{"-a", "--filter", "since=c-exited"}, []string{"c-running", "c-paused"}},
		{[]string{"-a", "--filter", "volume=psvol"}, []string{"c-running"}},
		{[]string{"-a", "--filter", "volume=/data"}, []string{"c-running"}},
		{[]string{"-a", "--filter", "health=none"}, []string{"c-created", "c-exited", "c-running", "c-paused"}},
		{[]string{"-a", "--filter", "health=healthy"}, nil},
		{[]string{"--filter", "label=tier"}, []string{"c-running"}},
	}
	for _, c := range cases {
		if got := s.psNames(c.args...); !sameList(got, c.want...) {
			t.Errorf("ps %v: %v, want %v", c.args, got, c.want)
		}
	}
	// ancestor also matches by image id.
	imgID := strings.TrimPrefix(strings.TrimSpace(s.must("image", "inspect", "-f", "{{.ID}}", "other")), "sha256:")
	if got := s.psNames("-a", "--filter", "ancestor="+imgID[:12]); !sameList(got, "c-exited") {
		t.Errorf("ps --filter ancestor=<image id>: %v", got)
	}
	// A value naming no image matches nothing, even where it is the start
	// of an image ID (docker: "No such image", and no container).
	for _, v := range []string{imgID[:2], "nosuchimage"} {
		if got := s.psNames("-a", "--filter", "ancestor="+v); len(got) != 0 {
			t.Errorf("ps --filter ancestor=%s: %v, want none", v, got)
		}
	}
	// An image built on bb counts as bb's descendant.
	s.must("commit", "c-exited", "child")
	s.must("create", "--name", "c-child", "child", "true")
	if got := s.psNames("-a", "--filter", "ancestor=other"); !sameList(got, "c-exited", "c-child") {
		t.Errorf("ps --filter ancestor=other with a child image: %v", got)
	}
	if got := s.psNames("-a", "--filter", "ancestor=child"); !sameList(got, "c-child") {
		t.Errorf("ps --filter ancestor=child: %v", got)
	}
	s.must("rm", "c-child")
	// A health filter on a container with a health check.
	s.must("run", "-d", "--name", "c-healthy", "--health-cmd", "true", "--health-interval", "1s", "bb", "sleep", "600")
	s.waitFor(20*time.Second, "healthy", func() bool {
		return sameList(s.psNames("--filter", "health=healthy"), "c-healthy")
	})
	if got := s.psNames("--filter", "health=none"); !sameList(got, "c-running", "c-paused") {
		t.Errorf("ps --filter health=none: %v", got)
	}
	// Unknown filter keys and bad values are refused.
	if errOut := s.failsWith(1, "ps", "--filter", "nosuchkey=1"); !strings.Contains(strings.ToLower(errOut), "invalid filter") {
		t.Errorf("unknown filter: %q", errOut)
	}
	s.failsWith(1, "ps", "--filter", "status=sleeping")
}
