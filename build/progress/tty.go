package progress

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

const (
	// liveLines is how many output lines a running step shows beneath it.
	liveLines = 6
	// errorLines is how much of a step's output is kept for the report of
	// its failure.
	errorLines = 40
	// redrawEvery bounds how often the live block is redrawn.
	redrawEvery = 100 * time.Millisecond
	// defaultWidth is assumed when the writer's width cannot be asked.
	defaultWidth = 80
	// outputIndent sets a step's output apart from the step lines.
	outputIndent = "    "
)

// ANSI sequences the live block is drawn with.
const (
	eraseLine = "\x1b[2K"
	eraseDown = "\x1b[J"
	cursorUp  = "\x1b[%dA"
)

// tty draws the running steps as a block it moves back over and redraws
// in place. A finished step's line, and every message, is written once
// above the block and left alone, so the block holds only what still
// changes and stays as short as the build is parallel; when the build ends
// the screen holds every step's final line.
//
//	#1 [1/3] FROM docker.io/library/alpine  DONE 0.3s
//	#2 [2/3] RUN make  1.2s          <- the block: redrawn
//	    cc -c main.c
type tty struct {
	mu      sync.Mutex
	w       io.Writer
	now     func() time.Time
	width   func() int
	running map[int]*ttyStep
	failed  []*ttyStep // their output is printed on Close
	drawn   int        // lines of the block on screen
	dirty   bool
	closed  bool
	closing bool // Close has begun: a second one returns at once
	stop    chan struct{}
	stopped chan struct{}
}

// ttyStep is what the tty display keeps of a step: its last lines only.
type ttyStep struct {
	step   Step
	start  time.Time
	lines  splitter
	tail   *ring
	status string // the final state, once done
}

func newTTY(w io.Writer, every time.Duration) *tty {
	t := &tty{
		w: w, now: time.Now, width: widthOf(w),
		running: map[int]*ttyStep{},
		stop:    make(chan struct{}), stopped: make(chan struct{}),
	}
	go t.loop(every)
	return t
}

// widthOf returns how to ask w's width: lines longer than the terminal
// would wrap, and the block's cursor movement would miss them.
func widthOf(w io.Writer) func() int {
	f, ok := w.(*os.File)
	return func() int {
		if ok {
			if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 0 {
				return cols
			}
		}
		return defaultWidth
	}
}

// loop redraws on each tick while something runs (its time moves) or
// changed, until Close.
func (t *tty) loop(every time.Duration) {
	defer close(t.stopped)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
			t.mu.Lock()
			if !t.closed && (t.dirty || len(t.running) > 0) {
				t.redraw(nil)
			}
			t.mu.Unlock()
		}
	}
}

func (t *tty) Start(s Step) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	t.running[s.ID] = &ttyStep{step: s, start: t.now(), tail: newRing(errorLines)}
	t.dirty = true
}

func (t *tty) Output(id int, p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st, ok := t.running[id]
	if !ok {
		return
	}
	for _, l := range st.lines.feed(p) {
		st.tail.add(l)
	}
	t.dirty = true
}

// Done moves the step's final line above the block at once.
func (t *tty) Done(id int, cached bool, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st, ok := t.running[id]
	if !ok || t.closed {
		return
	}
	delete(t.running, id)
	if l, ok := st.lines.flush(); ok {
		st.tail.add(l)
	}
	switch {
	case err != nil:
		st.status = "ERROR"
		t.failed = append(t.failed, st)
	case cached:
		st.status = "CACHED"
	default:
		st.status = fmt.Sprintf("DONE %.1fs", t.now().Sub(st.start).Seconds())
	}
	t.redraw([]string{t.stepLine(st, t.width())})
}

func (t *tty) Message(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	// A message may hold several lines; each is a line the block's
	// cursor movement must not count.
	msg := strings.Split(strings.TrimRight(fmt.Sprintf(format, args...), "\n"), "\n")
	t.redraw(msg)
}

// Close stops the redrawing, leaves the last state of any step still
// running on screen, and prints the output tail of each failed step.
func (t *tty) Close() error {
	t.mu.Lock()
	if t.closing {
		t.mu.Unlock()
		return nil
	}
	t.closing = true
	close(t.stop)
	t.mu.Unlock()
	<-t.stopped

	t.mu.Lock()
	defer t.mu.Unlock()
	width := t.width()
	var final []string
	for _, st := range t.sortedRunning() {
		final = append(final, t.stepLine(st, width))
	}
	t.running = map[int]*ttyStep{}
	for _, st := range t.failed {
		final = append(final, failureReport(st)...)
	}
	t.failed = nil
	t.redraw(final)
	t.closed = true
	return nil
}

// failureReport is a failed step's output tail, framed as Docker frames
// it; nothing when the step wrote nothing.
func failureReport(st *ttyStep) []string {
	tail := st.tail.last(errorLines)
	if len(tail) == 0 {
		return nil
	}
	out := []string{"------", " > " + st.step.title() + ":"}
	for _, l := range tail {
		out = append(out, "   "+sanitize(l))
	}
	return append(out, "------")
}

func (t *tty) sortedRunning() []*ttyStep {
	out := make([]*ttyStep, 0, len(t.running))
	for _, st := range t.running {
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].step.ID < out[j].step.ID })
	return out
}

// redraw moves back over the block, writes the permanent lines where it
// was, then the block again beneath them, all in one write.
func (t *tty) redraw(permanent []string) {
	width := t.width()
	var b strings.Builder
	if t.drawn > 0 {
		fmt.Fprintf(&b, "\r"+cursorUp, t.drawn)
	}
	for _, l := range permanent {
		b.WriteString(eraseLine + l + "\n")
	}
	block := t.block(width)
	for _, l := range block {
		b.WriteString(eraseLine + l + "\n")
	}
	// What an earlier, taller block left below is cleared.
	b.WriteString(eraseDown)
	t.drawn, t.dirty = len(block), false
	_, _ = io.WriteString(t.w, b.String())
}

// block is the running steps, each followed by its last output lines.
func (t *tty) block(width int) []string {
	var out []string
	for _, st := range t.sortedRunning() {
		out = append(out, t.stepLine(st, width))
		lines := st.tail.last(liveLines)
		if p := st.lines.pending(); p != "" {
			lines = append(lines, p)
			if len(lines) > liveLines {
				lines = lines[1:]
			}
		}
		for _, l := range lines {
			out = append(out, outputIndent+fit(sanitize(l), width-1-len(outputIndent)))
		}
	}
	return out
}

// stepLine is a step's line: "#3 [2/4] RUN make  1.2s", its title
// shortened to fit the terminal with the state still shown.
func (t *tty) stepLine(st *ttyStep, width int) string {
	state := st.status
	if state == "" {
		state = fmt.Sprintf("%.1fs", t.now().Sub(st.start).Seconds())
	}
	prefix := fmt.Sprintf("#%d ", st.step.ID)
	suffix := "  " + state
	title := fit(sanitize(st.step.title()), width-1-len(prefix)-len(suffix))
	return prefix + title + suffix
}
