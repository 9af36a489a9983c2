package progress

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// plain writes one line per event, as Docker's plain progress does:
//
//	#3 [2/4] RUN echo hi
//	#3 hi
//	#3 DONE 0.4s
type plain struct {
	mu     sync.Mutex
	w      io.Writer
	now    func() time.Time
	steps  map[int]*plainStep
	closed bool
}

// plainStep is what plain keeps of a running step: only its unfinished
// line, since complete lines are written at once.
type plainStep struct {
	start time.Time
	lines splitter
}

func newPlain(w io.Writer) *plain {
	return &plain{w: w, now: time.Now, steps: map[int]*plainStep{}}
}

// printf writes unless the display is closed; a failing writer (a closed
// pipe) is no reason to fail the build, so its error is dropped.
func (p *plain) printf(format string, args ...any) {
	if !p.closed {
		_, _ = fmt.Fprintf(p.w, format, args...)
	}
}

func (p *plain) Start(s Step) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.steps[s.ID] = &plainStep{start: p.now()}
	p.printf("#%d %s\n", s.ID, s.title())
}

func (p *plain) Output(id int, b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st, ok := p.steps[id]
	if !ok {
		return
	}
	for _, l := range st.lines.feed(b) {
		p.printf("#%d %s\n", id, l)
	}
}

func (p *plain) Done(id int, cached bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st, ok := p.steps[id]
	if !ok {
		return
	}
	delete(p.steps, id)
	if l, ok := st.lines.flush(); ok {
		p.printf("#%d %s\n", id, l)
	}
	switch {
	case err != nil:
		p.printf("#%d ERROR: %v\n", id, err)
	case cached:
		p.printf("#%d CACHED\n", id)
	default:
		p.printf("#%d DONE %.1fs\n", id, p.now().Sub(st.start).Seconds())
	}
}

func (p *plain) Message(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.printf(format+"\n", args...)
}

func (p *plain) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.steps = map[int]*plainStep{}
	return nil
}
