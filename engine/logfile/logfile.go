// Package logfile reads and writes container logs in Docker's json-file
// format: one JSON object per line,
//
//	{"log":"hello\n","stream":"stdout","time":"2026-11-23T13:00:00.123456789Z"}
//
// in a file <path> that the writer rotates to <path>.1, <path>.2, ...
// (higher is older), keeping a bounded number of files.
package logfile

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Entry is one log line.
type Entry struct {
	Stream string // "stdout" or "stderr"
	Time   time.Time
	// Line is the text as the program wrote it, with its trailing newline
	// when it had one (a line longer than the writer's buffer comes in
	// pieces, only the last of which ends in a newline).
	Line []byte
}

// record is one line of the file. Docker also writes an "attrs" object
// when log labels are configured; it is ignored.
type record struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// Write writes e as one line of the file, in a single Write call so lines
// appended by several writers to an O_APPEND file do not interleave.
// Escaping is encoding/json's; invalid UTF-8 becomes U+FFFD, as in Docker.
func Write(w io.Writer, e Entry) error {
	b, err := json.Marshal(record{Log: string(e.Line), Stream: e.Stream, Time: e.Time.UTC()})
	if err != nil {
		return fmt.Errorf("encode log entry: %w", err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write log entry: %w", err)
	}
	return nil
}

// decode parses one line of the file, without its newline.
func decode(line []byte) (Entry, error) {
	var r record
	if err := json.Unmarshal(line, &r); err != nil {
		return Entry{}, err
	}
	if r.Stream == "" || r.Time.IsZero() {
		return Entry{}, fmt.Errorf("not a log entry: stream or time missing")
	}
	return Entry{Stream: r.Stream, Time: r.Time, Line: []byte(r.Log)}, nil
}

// Files lists the log files of path oldest first: the rotated ones from
// the highest number down, then path itself. Files that do not exist are
// left out, so a container that never logged has none.
func Files(path string) ([]string, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list log files of %s: %w", path, err)
	}
	rotated := rotations(base, entries)
	out := make([]string, 0, len(rotated)+1)
	for _, n := range rotated {
		out = append(out, path+"."+strconv.Itoa(n))
	}
	if _, err := os.Lstat(path); err == nil {
		out = append(out, path)
	} else if !os.IsNotExist(err) {
		return nil, fmt.Errorf("list log files of %s: %w", path, err)
	}
	return out, nil
}

// rotations returns the numbers N of the files named base.N, highest
// (oldest) first.
func rotations(base string, entries []os.DirEntry) []int {
	var ns []int
	for _, e := range entries {
		suffix, ok := strings.CutPrefix(e.Name(), base+".")
		if !ok || e.IsDir() {
			continue
		}
		// Only plain decimal numbers: not "1.gz", "+1" or "01".
		n, err := strconv.Atoi(suffix)
		if err != nil || n < 1 || strconv.Itoa(n) != suffix {
			continue
		}
		ns = append(ns, n)
	}
	slices.Sort(ns)
	slices.Reverse(ns)
	return ns
}
