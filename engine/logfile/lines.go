package logfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// Sizes of the buffers: tailBlock is read at a time when scanning a file
// backwards; maxLine bounds a line (Docker splits messages at 16 KiB, so
// a real line, escaped, stays far below it) so that a file without
// newlines cannot make a reader hold all of it.
const (
	tailBlock  = 64 << 10
	readBuffer = 64 << 10
	maxLine    = 4 << 20
)

// tailStart returns the offset in the first size bytes of r at which its
// last n complete lines begin, and how many complete lines it found there
// (n, or fewer when the data has fewer). A line is complete when it ends
// in a newline: the bytes after the last newline, a write in progress, are
// not counted. It reads backwards in blocks of blockSize bytes, so the
// cost follows the length of the tail, not of the file.
func tailStart(r io.ReaderAt, size int64, n int, blockSize int) (int64, int, error) {
	buf := make([]byte, blockSize)
	newlines := 0
	for pos := size; pos > 0; {
		chunk := int64(blockSize)
		if chunk > pos {
			chunk = pos
		}
		pos -= chunk
		b := buf[:chunk]
		if _, err := r.ReadAt(b, pos); err != nil && !errors.Is(err, io.EOF) {
			return 0, 0, fmt.Errorf("read backwards: %w", err)
		}
		for i := len(b) - 1; i >= 0; i-- {
			if b[i] != '\n' {
				continue
			}
			// The first newline from the end closes the last complete
			// line; the (n+1)th closes the line before the tail.
			newlines++
			if newlines == n+1 {
				return pos + int64(i) + 1, n, nil
			}
		}
	}
	return 0, newlines, nil
}

// errLineTooLong is the error for a line longer than maxLine.
var errLineTooLong = fmt.Errorf("line longer than %d bytes", maxLine)

// lineReader splits a growing file into complete lines. A partial last
// line stays pending until the rest of it is written; the reader under it
// can be swapped (Reset) without losing it.
type lineReader struct {
	br       *bufio.Reader
	pending  []byte // the start of a line whose newline has not come yet
	skipping bool   // inside a line longer than maxLine, until its newline
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, readBuffer)}
}

// Reset reads on from r, keeping a pending partial line.
func (l *lineReader) Reset(r io.Reader) { l.br.Reset(r) }

// Partial reports whether part of a line is pending.
func (l *lineReader) Partial() bool { return len(l.pending) > 0 || l.skipping }

// Drop forgets a pending partial line.
func (l *lineReader) Drop() { l.pending, l.skipping = l.pending[:0], false }

// Next returns the next complete line without its newline, valid until
// the next call. At the end of the data it returns io.EOF (and keeps any
// partial line); a line over maxLine is skipped and reported as
// errLineTooLong once its newline comes.
func (l *lineReader) Next() ([]byte, error) {
	for {
		chunk, err := l.br.ReadSlice('\n')
		switch {
		case err == nil && (l.skipping || len(l.pending)+len(chunk)-1 > maxLine):
			l.Drop()
			return nil, errLineTooLong
		case err == nil && len(l.pending) == 0:
			return chunk[:len(chunk)-1], nil
		case err == nil:
			line := append(l.pending, chunk[:len(chunk)-1]...)
			l.pending = line[:0]
			return line, nil
		}
		if !l.skipping {
			l.pending = append(l.pending, chunk...)
			if len(l.pending) > maxLine {
				l.pending, l.skipping = l.pending[:0], true
			}
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
	}
}
