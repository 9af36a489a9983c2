// Package progress shows a build's steps as they run: plain lines for
// logs and pipes, a live block redrawn in place on a terminal.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/berth-containers/berth/internal/errdefs"
)

// Step identifies one build step on the display.
type Step struct {
	// ID is unique within the build, in the order steps were announced.
	ID int
	// Stage names the stage ("builder", "1"); "" in a one-stage build.
	Stage string
	// Index and Total place the step within its stage: "[stage 2/5]".
	Index, Total int
	// Text is the instruction as written; the display shortens it.
	Text string
	// Line is its Dockerfile line.
	Line int
}

// Display shows a build's progress. It is safe for concurrent use:
// independent stages build in parallel. Events for a step that was never
// started are ignored.
type Display interface {
	// Start says a step began.
	Start(s Step)
	// Output passes on bytes a RUN step wrote (stdout and stderr
	// together); lines may be split anywhere.
	Output(id int, p []byte)
	// Done says a step ended: served by the cache, run, or failed.
	Done(id int, cached bool, err error)
	// Message prints a line of its own.
	Message(format string, args ...any)
	// Close flushes; nothing is printed after it.
	Close() error
}

// New returns the display for mode: "plain" (one line per event),
// "tty" (a live block redrawn in place), "quiet" (nothing), or "auto"
// (tty when w is a terminal, else plain).
func New(w io.Writer, mode string) (Display, error) {
	switch mode {
	case "plain":
		return newPlain(w), nil
	case "tty":
		return newTTY(w, redrawEvery), nil
	case "quiet":
		return quiet{}, nil
	case "auto", "":
		if isTerminal(w) {
			return newTTY(w, redrawEvery), nil
		}
		return newPlain(w), nil
	}
	return nil, errdefs.Invalid("unknown progress mode %q (auto, plain, tty or quiet)", mode)
}

// isTerminal reports whether w is a terminal that understands cursor
// movement: a dumb terminal gets plain lines, as with Docker.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return false
	}
	return os.Getenv("TERM") != "dumb"
}

// title is a step's heading: "[builder 2/5] RUN make". A heredoc's body
// is left out: only the instruction's first line is shown.
func (s Step) title() string {
	text, _, more := strings.Cut(s.Text, "\n")
	text = strings.TrimRight(text, "\r")
	if more {
		text += " ..."
	}
	if s.Stage != "" {
		return fmt.Sprintf("[%s %d/%d] %s", s.Stage, s.Index, s.Total, text)
	}
	return fmt.Sprintf("[%d/%d] %s", s.Index, s.Total, text)
}

// quiet shows nothing: with -q the caller prints the image id alone.
type quiet struct{}

func (quiet) Start(Step)             {}
func (quiet) Output(int, []byte)     {}
func (quiet) Done(int, bool, error)  {}
func (quiet) Message(string, ...any) {}
func (quiet) Close() error           { return nil }
