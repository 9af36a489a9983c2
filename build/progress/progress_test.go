package progress

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/berth-containers/berth/internal/errdefs"
	"github.com/berth-containers/berth/internal/testutil"
)

// clock is a fake time source tests move by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock                   { return &clock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)} }

func step(id int, stage string, i, n int, text string) Step {
	return Step{ID: id, Stage: stage, Index: i, Total: n, Text: text, Line: id}
}

// event is one call on a Display; wait moves the fake clock first.
type event struct {
	wait   time.Duration
	start  *Step
	output string
	id     int
	done   bool
	cached bool
	err    error
	msg    string
	close  bool
}

func play(d Display, c *clock, events []event) {
	for _, e := range events {
		c.advance(e.wait)
		switch {
		case e.start != nil:
			d.Start(*e.start)
		case e.output != "":
			d.Output(e.id, []byte(e.output))
		case e.done:
			d.Done(e.id, e.cached, e.err)
		case e.msg != "":
			d.Message("%s", e.msg)
		case e.close:
			_ = d.Close()
		}
	}
}

func startEv(s Step) event { return event{start: &s} }

func TestNewModes(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	for _, tc := range []struct {
		mode string
		w    any
		want string
	}{
		{"plain", &bytes.Buffer{}, "*progress.plain"},
		{"tty", &bytes.Buffer{}, "*progress.tty"},
		{"quiet", &bytes.Buffer{}, "progress.quiet"},
		{"auto", &bytes.Buffer{}, "*progress.plain"},
		{"", &bytes.Buffer{}, "*progress.plain"},
		{"auto", w, "*progress.plain"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			var d Display
			if buf, ok := tc.w.(*bytes.Buffer); ok {
				d, err = New(buf, tc.mode)
			} else {
				d, err = New(tc.w.(*os.File), tc.mode)
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, fmt.Sprintf("%T", d))
			require.NoError(t, d.Close())
		})
	}
	_, err = New(&bytes.Buffer{}, "fancy")
	require.ErrorIs(t, err, errdefs.ErrInvalidArgument)
	assert.Contains(t, err.Error(), `"fancy"`)
}

// TestAutoOnTerminal opens a pseudo-terminal: auto must pick the live
// display there, and read the terminal's width.
func TestAutoOnTerminal(t *testing.T) {
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		testutil.Missing(t, "pseudo-terminals: %v", err)
	}
	defer master.Close()
	fd := int(master.Fd())
	require.NoError(t, unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0))
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	require.NoError(t, err)
	slave, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	require.NoError(t, err)
	defer slave.Close()
	require.NoError(t, unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 132}))

	t.Setenv("TERM", "xterm")
	d, err := New(slave, "auto")
	require.NoError(t, err)
	tt, ok := d.(*tty)
	require.True(t, ok, "got %T", d)
	assert.Equal(t, 132, tt.width())
	require.NoError(t, d.Close())

	t.Setenv("TERM", "dumb")
	d, err = New(slave, "auto")
	require.NoError(t, err)
	assert.IsType(t, &plain{}, d)
}

func TestPlain(t *testing.T) {
	for _, tc := range []struct {
		name   string
		events []event
		want   string
	}{
		{
			name: "cached, run, failed, messages",
			events: []event{
				startEv(step(1, "", 1, 3, "FROM alpine")),
				{id: 1, done: true, cached: true},
				startEv(step(2, "", 2, 3, "RUN echo hi && echo there")),
				{id: 2, output: "h"},
				{id: 2, output: "i\nthe"},
				{id: 2, output: "re\r\n"},
				{wait: 420 * time.Millisecond, id: 2, done: true},
				startEv(step(3, "", 3, 3, "RUN false")),
				{id: 3, output: "oops"},
				{wait: time.Second, id: 3, done: true, err: errors.New("process exited with code 1")},
				{msg: "naming to docker.io/library/x:latest"},
			},
			want: "#1 [1/3] FROM alpine\n" +
				"#1 CACHED\n" +
				"#2 [2/3] RUN echo hi && echo there\n" +
				"#2 hi\n" +
				"#2 there\n" +
				"#2 DONE 0.4s\n" +
				"#3 [3/3] RUN false\n" +
				"#3 oops\n" +
				"#3 ERROR: process exited with code 1\n" +
				"naming to docker.io/library/x:latest\n",
		},
		{
			name: "stages interleaved, heredoc title, progress bar",
			events: []event{
				startEv(step(1, "builder", 1, 2, "FROM golang")),
				startEv(step(2, "1", 1, 2, "FROM alpine")),
				{id: 2, done: true, cached: true},
				{id: 1, done: true, cached: true},
				startEv(step(3, "builder", 2, 2, "RUN <<EOF\nmake\nEOF")),
				{id: 3, output: "10%\r50%\r100%\n"},
				{wait: 2 * time.Second, id: 3, done: true},
			},
			want: "#1 [builder 1/2] FROM golang\n" +
				"#2 [1 1/2] FROM alpine\n" +
				"#2 CACHED\n" +
				"#1 CACHED\n" +
				"#3 [builder 2/2] RUN <<EOF ...\n" +
				"#3 100%\n" +
				"#3 DONE 2.0s\n",
		},
		{
			name: "unknown steps ignored, nothing after close",
			events: []event{
				{id: 9, output: "stray\n"},
				{id: 9, done: true},
				startEv(step(1, "", 1, 1, "RUN x")),
				{close: true},
				{id: 1, output: "late\n"},
				{id: 1, done: true},
				{msg: "late"},
			},
			want: "#1 [1/1] RUN x\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			c := newClock()
			p := newPlain(&buf)
			p.now = c.now
			play(p, c, tc.events)
			assert.Equal(t, tc.want, buf.String())
		})
	}
}

func TestQuietPrintsNothing(t *testing.T) {
	var buf bytes.Buffer
	d, err := New(&buf, "quiet")
	require.NoError(t, err)
	c := newClock()
	play(d, c, []event{
		startEv(step(1, "", 1, 1, "RUN x")),
		{id: 1, output: "out\n"},
		{id: 1, done: true, err: errors.New("bad")},
		{msg: "writing image sha256:abc"},
		{close: true},
	})
	assert.Empty(t, buf.String())
}

func TestSplitter(t *testing.T) {
	long := strings.Repeat("x", maxLine+10)
	for _, tc := range []struct {
		name    string
		chunks  []string
		lines   []string
		pending string
	}{
		{"whole lines", []string{"a\nb\n"}, []string{"a", "b"}, ""},
		{"split anywhere", []string{"ab", "c\nd", "e\n", "f"}, []string{"abc", "de"}, "f"},
		{"crlf", []string{"a\r\nb\r", "\n"}, []string{"a", "b"}, ""},
		{"overwritten", []string{"1%\r2%\r3"}, nil, "3"},
		{"empty lines", []string{"\n\n"}, []string{"", ""}, ""},
		{"endless line in pieces", []string{long}, []string{long[:maxLine]}, long[maxLine:]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s splitter
			var got []string
			for _, c := range tc.chunks {
				got = append(got, s.feed([]byte(c))...)
			}
			assert.Equal(t, tc.lines, got)
			assert.Equal(t, tc.pending, s.pending())
			assert.LessOrEqual(t, len(s.partial), maxLine)
		})
	}
}

func TestRing(t *testing.T) {
	for _, tc := range []struct {
		size, adds, n int
		want          []string
	}{
		{size: 3, adds: 0, n: 3, want: []string{}},
		{size: 3, adds: 2, n: 3, want: []string{"0", "1"}},
		{size: 3, adds: 3, n: 2, want: []string{"1", "2"}},
		{size: 3, adds: 7, n: 3, want: []string{"4", "5", "6"}},
		{size: 40, adds: 10000, n: 6, want: []string{"9994", "9995", "9996", "9997", "9998", "9999"}},
	} {
		r := newRing(tc.size)
		for i := range tc.adds {
			r.add(fmt.Sprint(i))
		}
		assert.Equal(t, tc.want, r.last(tc.n), "size %d adds %d", tc.size, tc.adds)
		assert.LessOrEqual(t, len(r.lines), tc.size)
	}
}

func TestSanitizeAndFit(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"\x1b[31mred\x1b[0m", "red"},
		{"a\tb", "a b"},
		{"up\x1b[2Ahere", "uphere"},
		{"bell\a", "bell"},
		{"esc at end\x1b", "esc at end"},
		{"\x1b7saved", "saved"},
	} {
		assert.Equal(t, tc.want, sanitize(tc.in), "%q", tc.in)
	}
	for _, tc := range []struct {
		in    string
		width int
		want  string
	}{
		{"short", 10, "short"},
		{"exactly", 7, "exactly"},
		{"a longer line", 8, "a lon..."},
		{"héllo wörld", 6, "hél..."},
		{"abc", 2, "ab"},
		{"abc", 0, ""},
	} {
		assert.Equal(t, tc.want, fit(tc.in, tc.width), "%q %d", tc.in, tc.width)
	}
}
