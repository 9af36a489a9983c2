// Package progress shows a build's steps as they run: plain lines for
// logs and pipes, a live block redrawn in place on a terminal.
package progress

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/berth-containers/berth/internal/errdefs"
)

// Step identifies one build step on the display.
type Step struct {
	// ID is unique within the build, in the order steps started.
	ID int
	// Stage names the stage ("builder", "1"); "" in a one-stage build.
	Stage string
	// Index and Total place the step within its stage.
	Index, Total int
	// Text is the instruction as written.
	Text string
	// Line is its Dockerfile line.
	Line int
}

// Display shows a build's progress. It is safe for concurrent use:
// independent stages build in parallel.
type Display interface {
	// Start says a step began.
	Start(s Step)
	// Output passes on bytes a RUN step wrote.
	Output(id int, p []byte)
	// Done says a step ended: served by the cache, run, or failed.
	Done(id int, cached bool, err error)
	// Message prints a line of its own.
	Message(format string, args ...any)
	// Close flushes; nothing is printed after it.
	Close() error
}

// New returns the display for mode: plain, tty, quiet or auto (tty on a
// terminal, else plain).
func New(w io.Writer, mode string) (Display, error) {
	switch mode {
	case "plain":
		return &plain{w: w, steps: map[int]*stepState{}}, nil
	case "quiet":
		return quiet{}, nil
	case "tty":
		return newTTY(w), nil
	case "auto", "":
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			return newTTY(w), nil
		}
		return &plain{w: w, steps: map[int]*stepState{}}, nil
	}
	return nil, errdefs.Invalid("unknown progress mode %q (auto, plain, tty or quiet)", mode)
}

// tailLines is how many lines of a step's output are kept, for the live
// view and for the failure report.
const tailLines = 40

// stepState is what a display keeps of one step.
type stepState struct {
	step    Step
	start   time.Time
	elapsed time.Duration
	done    bool
	cached  bool
	err     error
	partial []byte   // an unfinished output line
	tail    []string // the last tailLines complete lines
}

// feed splits output into lines, keeping the last tailLines, and returns
// the lines completed by p.
func (s *stepState) feed(p []byte) []string {
	s.partial = append(s.partial, p...)
	var lines []string
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			break
		}
		lines = append(lines, strings.TrimRight(string(s.partial[:i]), "\r"))
		s.partial = s.partial[i+1:]
	}
	if len(s.partial) > 4096 { // a line with no end: show it in pieces
		lines = append(lines, string(s.partial))
		s.partial = nil
	}
	s.tail = append(s.tail, lines...)
	if n := len(s.tail); n > tailLines {
		s.tail = append([]string(nil), s.tail[n-tailLines:]...)
	}
	return lines
}

// title is a step's heading: "[builder 2/5] RUN make".
func (s Step) title() string {
	text, _, more := strings.Cut(s.Text, "\n")
	if more {
		text += " ..."
	}
	if s.Stage != "" {
		return fmt.Sprintf("[%s %d/%d] %s", s.Stage, s.Index, s.Total, text)
	}
	return fmt.Sprintf("[%d/%d] %s", s.Index, s.Total, text)
}

// quiet shows nothing.
type quiet struct{}

func (quiet) Start(Step)             {}
func (quiet) Output(int, []byte)     {}
func (quiet) Done(int, bool, error)  {}
func (quiet) Message(string, ...any) {}
func (quiet) Close() error           { return nil }

// plain writes one line per event, as Docker's plain progress does.
type plain struct {
	mu     sync.Mutex
	w      io.Writer
	steps  map[int]*stepState
	closed bool
}

func (p *plain) printf(format string, args ...any) {
	if !p.closed {
		fmt.Fprintf(p.w, format, args...)
	}
}

func (p *plain) Start(s Step) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.steps[s.ID] = &stepState{step: s, start: time.Now()}
	p.printf("#%d %s\n", s.ID, s.title())
}

func (p *plain) Output(id int, b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st, ok := p.steps[id]
	if !ok {
		return
	}
	for _, l := range st.feed(b) {
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
	if len(st.partial) > 0 {
		p.printf("#%d %s\n", id, st.partial)
		st.partial = nil
	}
	switch {
	case err != nil:
		p.printf("#%d ERROR: %v\n", id, err)
	case cached:
		p.printf("#%d CACHED\n", id)
	default:
		p.printf("#%d DONE %.1fs\n", id, time.Since(st.start).Seconds())
	}
	delete(p.steps, id)
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
	return nil
}
