package progress

import (
	"bytes"
	"strings"
)

// maxLine bounds an unfinished output line: a program that never writes a
// newline (a progress bar, a binary dump) is shown in pieces of this size
// rather than kept whole.
const maxLine = 4096

// splitter cuts a step's output into lines across writes that may split
// them anywhere.
type splitter struct {
	partial []byte
}

// feed adds p and returns the lines it completed. A carriage return
// inside a line is a terminal overwriting it (curl, apt progress): only
// what follows the last one is kept.
func (s *splitter) feed(p []byte) []string {
	var lines []string
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.partial = append(s.partial, p...)
			break
		}
		s.partial = append(s.partial, p[:i]...)
		lines = append(lines, lastOverwrite(s.partial))
		s.partial = s.partial[:0]
		p = p[i+1:]
	}
	for len(s.partial) > maxLine {
		lines = append(lines, string(s.partial[:maxLine]))
		s.partial = append(s.partial[:0], s.partial[maxLine:]...)
	}
	return lines
}

// flush returns the unfinished line, if any, and forgets it.
func (s *splitter) flush() (string, bool) {
	if len(s.partial) == 0 {
		return "", false
	}
	l := lastOverwrite(s.partial)
	s.partial = s.partial[:0]
	return l, true
}

// pending is the unfinished line as a terminal would show it now.
func (s *splitter) pending() string {
	return lastOverwrite(s.partial)
}

// lastOverwrite keeps what follows a line's last carriage return that is
// not at its end ("10%\r50%\r" shows "50%").
func lastOverwrite(b []byte) string {
	b = bytes.TrimRight(b, "\r")
	if i := bytes.LastIndexByte(b, '\r'); i >= 0 {
		b = b[i+1:]
	}
	return string(b)
}

// ring keeps the last lines of a step's output, never more than its size.
type ring struct {
	lines []string
	next  int // where the next line goes once lines is full
}

func newRing(size int) *ring { return &ring{lines: make([]string, 0, size)} }

func (r *ring) add(l string) {
	if len(r.lines) < cap(r.lines) {
		r.lines = append(r.lines, l)
		return
	}
	r.lines[r.next] = l
	r.next = (r.next + 1) % len(r.lines)
}

// last returns up to n of the newest lines, oldest first.
func (r *ring) last(n int) []string {
	all := make([]string, 0, len(r.lines))
	all = append(all, r.lines[r.next:]...)
	all = append(all, r.lines[:r.next]...)
	if len(all) > n {
		all = all[len(all)-n:]
	}
	return all
}

// sanitize makes an output line safe to draw inside the live block: escape
// sequences and control characters from the program would move the cursor
// under the display's feet, so they are dropped (colours with them), and
// tabs become spaces.
func sanitize(l string) string {
	var b strings.Builder
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case c == 0x1b:
			i = skipEscape(l, i)
		case c == '\t':
			b.WriteByte(' ')
		case c < 0x20 || c == 0x7f:
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// skipEscape returns the index of the last byte of the escape sequence
// starting at l[i]: a CSI ("ESC [" parameters, final byte 0x40-0x7e) or a
// two-byte escape.
func skipEscape(l string, i int) int {
	if i+1 >= len(l) {
		return i
	}
	if l[i+1] != '[' {
		return i + 1
	}
	for j := i + 2; j < len(l); j++ {
		if l[j] >= 0x40 && l[j] <= 0x7e {
			return j
		}
	}
	return len(l) - 1
}

// fit shortens s to at most width runes, marking the cut with "...".
func fit(s string, width int) string {
	if width <= 0 {
		return ""
	}
	r := []rune(s)
	if len(r) <= width {
		return s
	}
	if width <= 3 {
		return string(r[:width])
	}
	return string(r[:width-3]) + "..."
}
