package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"golang.org/x/term"

	"github.com/berth-containers/berth/image"
)

// progress renders pull and push events: one live line per blob on a
// terminal, a plain line per status change otherwise (logs, CI).
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	order []string
	lines map[string]image.Event
	drawn int
}

func newProgress(w io.Writer, quiet bool) *progress {
	if quiet {
		w = io.Discard
	}
	f, ok := w.(*os.File)
	return &progress{w: w, tty: ok && term.IsTerminal(int(f.Fd())), lines: map[string]image.Event{}}
}

// Event is an image.ProgressFunc.
func (p *progress) Event(e image.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	prev, seen := p.lines[e.ID]
	if !seen {
		p.order = append(p.order, e.ID)
	}
	p.lines[e.ID] = e
	if p.tty {
		p.redraw()
		return
	}
	if !seen || prev.Status != e.Status {
		fmt.Fprintf(p.w, "%s: %s\n", e.ID, e.Status)
	}
}

// redraw moves the cursor up over the block it drew and writes it again.
func (p *progress) redraw() {
	if p.drawn > 0 {
		fmt.Fprintf(p.w, "\x1b[%dA", p.drawn)
	}
	for _, id := range p.order {
		fmt.Fprintf(p.w, "\x1b[2K%s\n", renderLine(p.lines[id]))
	}
	p.drawn = len(p.order)
}

func renderLine(e image.Event) string {
	line := fmt.Sprintf("%s: %s", e.ID, e.Status)
	if e.Total <= 0 || e.Current >= e.Total || (e.Status != "Downloading" && e.Status != "Pushing") {
		return line
	}
	const width = 40
	done := int(float64(width) * float64(e.Current) / float64(e.Total))
	bar := strings.Repeat("=", done) + ">" + strings.Repeat(" ", width-done)
	return fmt.Sprintf("%s [%s] %s/%s", line, bar[:width], humanSize(e.Current), humanSize(e.Total))
}
