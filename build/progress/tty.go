package progress

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
)

// liveLines is how many output lines a running step shows beneath it.
const liveLines = 6

// redrawEvery bounds how often the live block is redrawn.
const redrawEvery = 100 * time.Millisecond

// tty redraws a block of every step in place: ANSI cursor-up and erase.
type tty struct {
	mu       sync.Mutex
	w        io.Writer
	steps    map[int]*stepState
	messages []string
	drawn    int // lines of the last drawing, to move back over
	dirty    bool
	closed   bool
	stop     chan struct{}
	stopped  chan struct{}
}

func newTTY(w io.Writer) *tty {
	t := &tty{w: w, steps: map[int]*stepState{}, stop: make(chan struct{}), stopped: make(chan struct{})}
	go t.loop()
	return t
}

// loop redraws while something changed, until Close.
func (t *tty) loop() {
	defer close(t.stopped)
	tick := time.NewTicker(redrawEvery)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
			t.mu.Lock()
			if t.dirty {
				t.draw()
			}
			t.mu.Unlock()
		}
	}
}

func (t *tty) Start(s Step) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.steps[s.ID] = &stepState{step: s, start: time.Now()}
	t.dirty = true
}

func (t *tty) Output(id int, p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if st, ok := t.steps[id]; ok {
		st.feed(p)
		t.dirty = true
	}
}

func (t *tty) Done(id int, cached bool, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st, ok := t.steps[id]
	if !ok {
		return
	}
	st.done, st.cached, st.err, st.elapsed = true, cached, err, time.Since(st.start)
	t.draw()
}

func (t *tty) Message(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.messages = append(t.messages, fmt.Sprintf(format, args...))
	t.dirty = true
}

// Close draws the final state, then a failed step's output tail.
func (t *tty) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	close(t.stop)
	t.mu.Unlock()
	<-t.stopped
	t.mu.Lock()
	defer t.mu.Unlock()
	t.draw()
	for _, st := range t.sorted() {
		if st.err != nil && len(st.tail) > 0 {
			fmt.Fprintf(t.w, "------\n > %s:\n", st.step.title())
			for _, l := range st.tail {
				fmt.Fprintf(t.w, "   %s\n", l)
			}
			fmt.Fprintln(t.w, "------")
		}
	}
	return nil
}

func (t *tty) sorted() []*stepState {
	out := make([]*stepState, 0, len(t.steps))
	for _, st := range t.steps {
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].step.ID < out[j].step.ID })
	return out
}

// draw moves back over the last drawing and writes the block again.
func (t *tty) draw() {
	var b strings.Builder
	if t.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", t.drawn)
	}
	lines := 0
	line := func(s string) {
		b.WriteString("\x1b[2K" + s + "\n")
		lines++
	}
	for _, st := range t.sorted() {
		line(st.status())
		if !st.done {
			tail := st.tail
			if len(tail) > liveLines {
				tail = tail[len(tail)-liveLines:]
			}
			for _, l := range tail {
				line(" => " + l)
			}
		}
	}
	for _, m := range t.messages {
		line(m)
	}
	// Lines of a longer earlier drawing are erased.
	for i := lines; i < t.drawn; i++ {
		b.WriteString("\x1b[2K\n")
	}
	if extra := t.drawn - lines; extra > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", extra)
	}
	t.drawn, t.dirty = lines, false
	_, _ = io.WriteString(t.w, b.String())
}

// status is a step's line in the live block.
func (s *stepState) status() string {
	el := s.elapsed
	if !s.done {
		el = time.Since(s.start)
	}
	state := fmt.Sprintf("%.1fs", el.Seconds())
	switch {
	case s.err != nil:
		state = "ERROR"
	case s.cached:
		state = "CACHED"
	case s.done:
		state = "DONE " + state
	}
	return fmt.Sprintf("#%d %s  %s", s.step.ID, s.step.title(), state)
}
