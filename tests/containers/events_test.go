package containers_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// event is one line of `events --format '{{json .}}'`.
type event struct {
	Type   string
	Action string
	Actor  struct {
		ID         string
		Attributes map[string]string
	}
	Scope    string `json:"scope"`
	Time     int64  `json:"time"`
	TimeNano int64  `json:"timeNano"`
}

// events lists the recorded events between since and now (plus a second),
// decoded, with extra arguments such as filters.
func (s *store) events(since time.Time, args ...string) []event {
	s.t.Helper()
	until := strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10)
	out := s.must(append([]string{"events", "--since", strconv.FormatInt(since.Unix(), 10), "--until", until, "--format", "{{json .}}"}, args...)...)
	var evs []event
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var e event
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			s.t.Fatalf("event line %q: %v", l, err)
		}
		evs = append(evs, e)
	}
	return evs
}

// actions lists the actions of events about one container id.
func actions(evs []event, id string) []string {
	var out []string
	for _, e := range evs {
		if e.Actor.ID == id {
			out = append(out, e.Action)
		}
	}
	return out
}

func TestEventsLifecycle(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	since := time.Now().Add(-time.Second)
	s.must("create", "--name", "ev", "-l", "team=a", "bb", "sh", "-c", "exit 3")
	id := s.field("ev", "{{.ID}}")
	if _, _, code := s.run(nil, "start", "-a", "ev"); code != 3 {
		t.Fatalf("start -a: exit %d", code)
	}
	s.must("rm", "ev")

	evs := s.events(since)
	got := actions(evs, id)
	if strings.Join(got, ",") != "create,attach,start,die,destroy" && strings.Join(got, ",") != "create,start,die,destroy" {
		t.Errorf("events of ev: %v, want create,(attach,)start,die,destroy", got)
	}
	for _, e := range evs {
		if e.Actor.ID != id {
			continue
		}
		if e.Type != "container" || e.Scope != "local" || e.Actor.Attributes["name"] != "ev" || e.Actor.Attributes["image"] != "bb" {
			t.Errorf("event %+v", e)
		}
		// Docker puts the container's labels among the attributes.
		if e.Actor.Attributes["team"] != "a" {
			t.Errorf("event %s lacks the label team=a: %v", e.Action, e.Actor.Attributes)
		}
		if e.Time != e.TimeNano/1e9 || time.Since(time.Unix(0, e.TimeNano)) > time.Minute {
			t.Errorf("event %s time %d / %d", e.Action, e.Time, e.TimeNano)
		}
		if e.Action == "die" && e.Actor.Attributes["exitCode"] != "3" {
			t.Errorf("die event exitCode %q, want 3", e.Actor.Attributes["exitCode"])
		}
	}
	// The plain format: "TIME TYPE ACTION ID (attrs)" with sorted attributes.
	until := strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10)
	out := s.must("events", "--since", strconv.FormatInt(since.Unix(), 10), "--until", until, "--filter", "event=die")
	re := `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z container die ` + id + ` \(exitCode=3, image=bb, name=ev, team=a\)\n$`
	if !regexp.MustCompile(re).MatchString(out) {
		t.Errorf("events plain line:\n%q\nwant %s", out, re)
	}
	// Times in the future or an empty window list nothing.
	if out := s.must("events", "--since", until, "--until", until); out != "" {
		t.Errorf("events of an empty window: %q", out)
	}
	// Relative --since.
	if evs := s.events(time.Now().Add(-time.Hour), "--since", "1h"); len(actions(evs, id)) < 4 {
		t.Errorf("events --since 1h: %v", actions(evs, id))
	}
}

func TestEventsMoreActionsAndFilters(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	t.Cleanup(func() { s.run(nil, "rm", "-f", "-v", "ev2"); s.run(nil, "volume", "rm", "-f", "evvol") })
	since := time.Now().Add(-time.Second)
	s.must("run", "-d", "--name", "ev1", "bb", "sleep", "600")
	id1 := s.field("ev1", "{{.ID}}")
	s.must("run", "-d", "--name", "ev2", "-v", "evvol:/v", "--health-cmd", "true", "--health-interval", "1s", "bb", "sleep", "600")
	id2 := s.field("ev2", "{{.ID}}")
	s.must("pause", "ev1")
	s.must("unpause", "ev1")
	s.must("rename", "ev1", "ev1b")
	s.must("kill", "ev1b")
	s.waitFor(20*time.Second, "ev2 healthy", func() bool { return s.field("ev2", "{{.State.Health.Status}}") == "healthy" })

	evs := s.events(since)
	got := strings.Join(actions(evs, id1), ",")
	if got != "create,start,pause,unpause,rename,kill,die" {
		var detail []string
		for _, e := range evs {
			if e.Actor.ID == id1 {
				detail = append(detail, fmt.Sprintf("%s@%d%v", e.Action, e.TimeNano, e.Actor.Attributes))
			}
		}
		t.Errorf("events of ev1: %s, want create,start,pause,unpause,rename,kill,die\n%s", got, strings.Join(detail, "\n"))
	}
	for _, e := range evs {
		switch {
		case e.Actor.ID == id1 && e.Action == "kill":
			if e.Actor.Attributes["signal"] != "9" {
				t.Errorf("kill event signal %q, want 9", e.Actor.Attributes["signal"])
			}
		case e.Actor.ID == id1 && e.Action == "rename":
			if e.Actor.Attributes["oldName"] != "/ev1" || e.Actor.Attributes["name"] != "ev1b" {
				t.Errorf("rename event attributes %v", e.Actor.Attributes)
			}
		case e.Actor.ID == id1 && e.Action == "die":
			if e.Actor.Attributes["exitCode"] != "137" {
				t.Errorf("die after kill: exitCode %q", e.Actor.Attributes["exitCode"])
			}
		}
	}
	if !contains(actions(evs, id2), "health_status: healthy") {
		t.Errorf("events of ev2 lack health_status: healthy: %v", actions(evs, id2))
	}

	// Filters.
	for _, e := range s.events(since, "--filter", "event=die") {
		if e.Action != "die" {
			t.Errorf("--filter event=die gave %s", e.Action)
		}
	}
	if n := len(s.events(since, "--filter", "event=die")); n != 1 {
		t.Errorf("--filter event=die: %d events, want 1", n)
	}
	if got := actions(s.events(since, "--filter", "container=ev2"), id2); len(got) < 2 || got[0] != "create" {
		t.Errorf("--filter container=ev2: %v", got)
	}
	if evs := s.events(since, "--filter", "container=ev2"); len(actions(evs, id1)) != 0 {
		t.Errorf("--filter container=ev2 lists ev1's events")
	}
	if got := actions(s.events(since, "--filter", "container="+id1[:12]), id1); len(got) != 7 {
		t.Errorf("--filter container=<short id>: %v", got)
	}
	// Two values of one key: either; two keys: both.
	if n := len(s.events(since, "--filter", "event=pause", "--filter", "event=unpause")); n != 2 {
		t.Errorf("--filter event=pause --filter event=unpause: %d events", n)
	}
	if n := len(s.events(since, "--filter", "event=start", "--filter", "container=ev2")); n != 1 {
		t.Errorf("--filter event=start --filter container=ev2: %d events", n)
	}
	// type=volume: the named volume's create and mount.
	vol := s.events(since, "--filter", "type=volume")
	var volActions []string
	for _, e := range vol {
		if e.Type != "volume" {
			t.Errorf("--filter type=volume gave %s", e.Type)
		}
		if e.Actor.ID == "evvol" {
			volActions = append(volActions, e.Action)
		}
	}
	if !contains(volActions, "create") || !contains(volActions, "mount") {
		t.Errorf("volume events of evvol: %v", volActions)
	}
	for _, e := range s.events(since, "--filter", "type=container") {
		if e.Type != "container" {
			t.Errorf("--filter type=container gave %s", e.Type)
		}
	}
	if errOut := s.failsWith(1, "events", "--until", "1", "--filter", "nosuch=1"); !strings.Contains(strings.ToLower(errOut), "invalid filter") {
		t.Errorf("unknown filter: %q", errOut)
	}
}

func TestEventsFollow(t *testing.T) {
	s := newStore(t)
	s.busyboxImage("bb", nil)
	cmd := exec.Command(s.bin, "--root", s.root, "events", "--filter", "type=container", "--format", "{{.Action}} {{.Actor.Attributes.name}}")
	cmd.Env = s.env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		<-done
	})
	lines := make(chan string, 100)
	go func() {
		defer close(done)
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	// The follower is listening once it has started; give it a moment, then
	// make events.
	time.Sleep(500 * time.Millisecond)
	s.must("run", "--rm", "--name", "live", "bb", "true")

	want := []string{"create live", "start live", "die live", "destroy live"}
	var got []string
	deadline := time.After(20 * time.Second)
	for len(got) < len(want) {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("events ended early; got %v", got)
			}
			if strings.HasSuffix(l, " live") && l != "attach live" {
				got = append(got, l)
			}
		case <-deadline:
			t.Fatalf("events follower: got %v within 20s, want %v", got, want)
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("followed events %v, want %v", got, want)
	}
	// It is still following.
	if cmd.ProcessState != nil {
		t.Error("events without --until exited")
	}
}
