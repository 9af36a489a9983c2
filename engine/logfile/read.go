package logfile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// ReadOptions says which entries Read gives and whether it waits for more.
type ReadOptions struct {
	// Tail is how many lines to give from the end, counted across the
	// files before Since and Until filter them (as Docker counts); -1
	// gives all, 0 none of the existing ones.
	Tail int
	// Since and Until keep entries with Since <= Time <= Until; zero
	// times do not filter. The first entry after Until ends the read.
	Since, Until time.Time
	// Follow keeps reading what is written after the existing lines,
	// across rotations, until ctx is done, Until has passed, or Running
	// reports false and everything written was read.
	Follow bool
	// Running reports whether a writer may still add lines; nil means
	// one may for as long as ctx lasts.
	Running func() bool
	// PollInterval is the longest wait between checks for new data when
	// following; 0 means 100ms. Checks start faster after new data.
	PollInterval time.Duration
}

// CorruptError is what Read returns, once it has read everything else,
// when it skipped lines that were not json-file entries (or were cut off
// by a rotation). The entries around them were given; a caller that only
// wants to warn checks for it with errors.As.
type CorruptError struct {
	Lines int   // how many lines were skipped
	First error // why the first one was
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("skipped %d corrupt log lines (first: %v)", e.Lines, e.First)
}

func (e *CorruptError) Unwrap() error { return e.First }

// errUntil ends a read at the first entry after Until.
var errUntil = errors.New("past until")

const defaultPoll = 100 * time.Millisecond

// Read calls fn with the entries of the log at path, oldest first: the
// rotated files, then path. fn may keep Entry.Line. Read returns fn's
// error as is; ctx's error when ctx ends a follow; a *CorruptError when
// it skipped lines and nothing else failed; nil otherwise.
func Read(ctx context.Context, path string, o ReadOptions, fn func(Entry) error) error {
	if o.PollInterval <= 0 {
		o.PollInterval = defaultPoll
	}
	if o.Tail == 0 && !o.Follow {
		return nil
	}
	files, err := openSnapshot(path)
	if err != nil {
		return err
	}
	defer func() {
		for _, f := range files {
			_ = f.f.Close()
		}
	}()
	r := &reader{ctx: ctx, o: o, fn: fn, path: path}
	segs, err := plan(files, o.Tail)
	if err != nil {
		return fmt.Errorf("read log %s: %w", path, err)
	}
	lr := newLineReader(nil)
	for i, s := range segs {
		if i > 0 {
			r.endOfFile(lr)
		}
		err := r.readSegment(lr, s)
		if errors.Is(err, errUntil) {
			return r.result()
		}
		if err != nil {
			return err
		}
	}
	if !o.Follow {
		return r.result()
	}
	var cur *logFile
	if n := len(files); n > 0 {
		cur = &files[n-1]
		files = files[:n-1] // cur is closed by follow
		if len(segs) == 0 || segs[len(segs)-1].file != cur {
			lr.Drop()
		}
	}
	err = r.follow(cur, lr)
	if errors.Is(err, errUntil) {
		return r.result()
	}
	return err
}

// logFile is one open log file and its size when it was opened.
type logFile struct {
	f    *os.File
	info os.FileInfo
	size int64
}

// segment is a part of a file to read: from start to the file's size at
// opening. A later segment's file is newer.
type segment struct {
	file  *logFile
	start int64
}

// plan chooses what to read for tail: every file whole (tail < 0), or the
// last tail complete lines scanned backwards across files, newest first.
// With tail 0 nothing is read, and a follow starts after the last
// complete line of the newest file.
func plan(files []logFile, tail int) ([]segment, error) {
	if tail < 0 {
		segs := make([]segment, len(files))
		for i := range files {
			segs[i] = segment{file: &files[i]}
		}
		return segs, nil
	}
	var segs []segment
	need := tail
	for i := len(files) - 1; i >= 0; i-- {
		f := &files[i]
		start, found, err := tailStart(f.f, f.size, need, tailBlock)
		if err != nil {
			return nil, err
		}
		segs = append([]segment{{file: f, start: start}}, segs...)
		need -= found
		if need == 0 {
			break
		}
	}
	return segs, nil
}

// openSnapshot opens the log files, newest first so a rotation while
// opening cannot make Read miss the newest lines: a file opened twice
// under two names is kept once. If path changed meanwhile it starts over,
// a few times at most.
func openSnapshot(path string) ([]logFile, error) {
	for attempt := 0; ; attempt++ {
		files, stable, err := tryOpenSnapshot(path)
		if err != nil || stable || attempt == 3 {
			return files, err
		}
		for _, f := range files {
			_ = f.f.Close()
		}
	}
}

func tryOpenSnapshot(path string) ([]logFile, bool, error) {
	names, err := Files(path)
	if err != nil {
		return nil, false, err
	}
	var files []logFile // newest first while opening
	for i := len(names) - 1; i >= 0; i-- {
		f, err := openLog(names[i])
		if errors.Is(err, os.ErrNotExist) {
			continue // rotated away meanwhile
		}
		if err != nil {
			for _, f := range files {
				_ = f.f.Close()
			}
			return nil, false, err
		}
		if dup := containsFile(files, f.info); dup {
			_ = f.f.Close()
			continue
		}
		files = append(files, f)
	}
	stable := true
	if len(files) > 0 {
		st, err := os.Stat(path)
		stable = err == nil && os.SameFile(st, files[0].info)
	}
	for i, j := 0, len(files)-1; i < j; i, j = i+1, j-1 {
		files[i], files[j] = files[j], files[i]
	}
	return files, stable, nil
}

func openLog(name string) (logFile, error) {
	f, err := os.Open(name)
	if err != nil {
		return logFile{}, fmt.Errorf("open log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return logFile{}, fmt.Errorf("open log: %w", err)
	}
	return logFile{f: f, info: st, size: st.Size()}, nil
}

func containsFile(files []logFile, info os.FileInfo) bool {
	for _, f := range files {
		if os.SameFile(f.info, info) {
			return true
		}
	}
	return false
}

// reader carries one Read's options and counts.
type reader struct {
	ctx     context.Context
	o       ReadOptions
	fn      func(Entry) error
	path    string
	corrupt int
	first   error
	lines   int // for checking ctx now and then
}

// readSegment reads s up to its file's size at opening; a line in
// progress there stays pending in lr.
func (r *reader) readSegment(lr *lineReader, s segment) error {
	lr.Reset(io.NewSectionReader(s.file.f, s.start, s.file.size-s.start))
	if err := r.drain(lr); err != nil {
		return err
	}
	// Follow goes on from here: where the section ended.
	if _, err := s.file.f.Seek(s.file.size, io.SeekStart); err != nil {
		return fmt.Errorf("read log %s: %w", r.path, err)
	}
	return nil
}

// drain gives every complete line lr has until its reader's end.
func (r *reader) drain(lr *lineReader) error {
	for {
		line, err := lr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if errors.Is(err, errLineTooLong) {
			r.skip(err)
			continue
		}
		if err != nil {
			return fmt.Errorf("read log %s: %w", r.path, err)
		}
		if err := r.emit(line); err != nil {
			return err
		}
	}
}

// emit decodes, filters and hands on one line.
func (r *reader) emit(line []byte) error {
	if r.lines++; r.lines%1024 == 0 {
		if err := r.ctx.Err(); err != nil {
			return err
		}
	}
	e, err := decode(line)
	if err != nil {
		r.skip(err)
		return nil
	}
	if !r.o.Since.IsZero() && e.Time.Before(r.o.Since) {
		return nil
	}
	if !r.o.Until.IsZero() && e.Time.After(r.o.Until) {
		return errUntil
	}
	return r.fn(e)
}

func (r *reader) skip(err error) {
	if r.corrupt == 0 {
		r.first = err
	}
	r.corrupt++
}

// endOfFile closes a file's reading: a partial line left at its end will
// never be completed.
func (r *reader) endOfFile(lr *lineReader) {
	if lr.Partial() {
		r.skip(errors.New("line cut off at the end of a rotated file"))
	}
	lr.Drop()
}

func (r *reader) result() error {
	if r.corrupt > 0 {
		return &CorruptError{Lines: r.corrupt, First: r.first}
	}
	return nil
}

// follow reads what is written to cur (nil: no file yet) and to the files
// that replace it, until ctx ends, Until passes or the writer stops.
func (r *reader) follow(cur *logFile, lr *lineReader) error {
	defer func() {
		if cur != nil {
			_ = cur.f.Close()
		}
	}()
	wait := time.Duration(0)
	for {
		grew, err := r.catchUp(&cur, lr)
		if err != nil {
			return err
		}
		running := r.o.Running == nil || r.o.Running()
		if !running {
			// The writer has stopped: what it wrote before is there now.
			if _, err := r.catchUp(&cur, lr); err != nil {
				return err
			}
			return r.result()
		}
		if !r.o.Until.IsZero() && time.Now().After(r.o.Until) {
			return r.result()
		}
		wait = nextWait(wait, grew, r.o.PollInterval)
		t := time.NewTimer(wait)
		select {
		case <-r.ctx.Done():
			t.Stop()
			return r.ctx.Err()
		case <-t.C:
		}
	}
}

// nextWait polls quickly after new data and backs off to limit when quiet.
func nextWait(prev time.Duration, grew bool, limit time.Duration) time.Duration {
	const first = 5 * time.Millisecond
	if grew || prev == 0 {
		return min(first, limit)
	}
	return min(prev*2, limit)
}

// catchUp reads *cur to its end, moving on to newer files while the log
// has been rotated, and reports whether it read anything.
func (r *reader) catchUp(cur **logFile, lr *lineReader) (bool, error) {
	grew := false
	for range 64 { // more rotations than any writer keeps files
		if *cur != nil {
			n, err := r.readOn(*cur, lr)
			if err != nil {
				return grew, err
			}
			grew = grew || n > 0
		}
		next, err := r.newer(*cur)
		if err != nil || next == nil {
			return grew, err
		}
		if *cur != nil {
			// Whatever the writer added before it rotated is there now.
			if _, err := r.readOn(*cur, lr); err != nil {
				_ = next.f.Close()
				return grew, err
			}
			r.endOfFile(lr)
			_ = (*cur).f.Close()
		}
		*cur = next
		lr.Reset(next.f)
		grew = true
	}
	return grew, nil
}

// readOn reads f from where the last read stopped to its current end.
func (r *reader) readOn(f *logFile, lr *lineReader) (int64, error) {
	before, err := f.f.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, fmt.Errorf("read log %s: %w", r.path, err)
	}
	lr.Reset(f.f)
	if err := r.drain(lr); err != nil {
		return 0, err
	}
	after, err := f.f.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, fmt.Errorf("read log %s: %w", r.path, err)
	}
	return after - before, nil
}

// newer opens the file written after cur (the first file when cur is
// nil), or returns nil when cur is still the newest or none exists yet.
// The files are matched by identity, not name, so several rotations
// between two polls are followed file by file.
func (r *reader) newer(cur *logFile) (*logFile, error) {
	st, err := os.Stat(r.path)
	if err != nil || (cur != nil && os.SameFile(st, cur.info)) {
		// Missing: between a rotation's rename and the new file, or not
		// written yet.
		return nil, nil
	}
	names, err := Files(r.path)
	if err != nil {
		return nil, err
	}
	next := 0 // cur rotated out of the set: every file left is newer
	for i, name := range names {
		if cur == nil {
			break
		}
		if st, err := os.Stat(name); err == nil && os.SameFile(st, cur.info) {
			next = i + 1
			break
		}
	}
	if cur == nil {
		next = len(names) - 1 // start with the log itself
	}
	if next < 0 || next >= len(names) {
		return nil, nil
	}
	f, err := openLog(names[next])
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // rotating right now: try again at the next poll
	}
	if err != nil {
		return nil, err
	}
	return &f, nil
}
