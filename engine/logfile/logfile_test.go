package logfile

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 11, 23, 13, 0, 0, 123456789, time.UTC)

// logWriter plays the monitor: appends entries to path and rotates it the
// way the monitor does (path.N -> path.N+1, path -> path.1, new path).
type logWriter struct {
	t    *testing.T
	path string
	f    *os.File
	n    int // entries written, for their times
}

func newLogWriter(t *testing.T, path string) *logWriter {
	w := &logWriter{t: t, path: path}
	w.open()
	t.Cleanup(func() { _ = w.f.Close() })
	return w
}

func (w *logWriter) open() {
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	require.NoError(w.t, err)
	w.f = f
}

// lines writes one entry per text, one second apart.
func (w *logWriter) lines(texts ...string) {
	for _, s := range texts {
		stream := "stdout"
		if w.n%3 == 2 {
			stream = "stderr"
		}
		require.NoError(w.t, Write(w.f, Entry{Stream: stream, Time: t0.Add(time.Duration(w.n) * time.Second), Line: []byte(s + "\n")}))
		w.n++
	}
}

func (w *logWriter) raw(s string) {
	_, err := w.f.WriteString(s)
	require.NoError(w.t, err)
}

// rotate keeps at most keep rotated files.
func (w *logWriter) rotate(keep int) {
	require.NoError(w.t, w.f.Close())
	_ = os.Remove(fmt.Sprintf("%s.%d", w.path, keep))
	for n := keep - 1; n >= 1; n-- {
		err := os.Rename(fmt.Sprintf("%s.%d", w.path, n), fmt.Sprintf("%s.%d", w.path, n+1))
		if !errors.Is(err, os.ErrNotExist) {
			require.NoError(w.t, err)
		}
	}
	require.NoError(w.t, os.Rename(w.path, w.path+".1"))
	w.open()
}

func texts(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("line %d", i))
	}
	return out
}

// readAll runs Read and returns the lines' texts without newlines.
func readAll(t *testing.T, path string, o ReadOptions) ([]string, error) {
	t.Helper()
	var got []string
	err := Read(context.Background(), path, o, func(e Entry) error {
		got = append(got, strings.TrimSuffix(string(e.Line), "\n"))
		return nil
	})
	return got, err
}

func TestWriteFormat(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, Write(&buf, Entry{Stream: "stdout", Time: t0, Line: []byte("hello\n")}))
	assert.Equal(t, `{"log":"hello\n","stream":"stdout","time":"2026-11-23T13:00:00.123456789Z"}`+"\n", buf.String())

	for _, s := range []string{"<a & \"b\">\t\\\x01é\r\n", "no newline", ""} {
		buf.Reset()
		require.NoError(t, Write(&buf, Entry{Stream: "stderr", Time: t0.In(time.FixedZone("x", 3600)), Line: []byte(s)}))
		e, err := decode(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
		require.NoError(t, err)
		assert.Equal(t, s, string(e.Line))
		assert.Equal(t, "stderr", e.Stream)
		assert.True(t, t0.Equal(e.Time))
	}
	buf.Reset()
	require.NoError(t, Write(&buf, Entry{Stream: "stdout", Time: t0, Line: []byte("a\xffb")}))
	e, err := decode(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	require.NoError(t, err)
	assert.Equal(t, "a\uFFFDb", string(e.Line))
}

func TestFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c-json.log")
	got, err := Files(path)
	require.NoError(t, err)
	assert.Empty(t, got)
	got, err = Files(filepath.Join(dir, "missing", "x.log"))
	require.NoError(t, err)
	assert.Empty(t, got)

	for _, name := range []string{"c-json.log", "c-json.log.1", "c-json.log.2", "c-json.log.10",
		"c-json.log.gz", "c-json.log.1.gz", "c-json.log.01", "c-json.log.0", "other.log.1", "c-json.log.x"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), nil, 0o600))
	}
	got, err = Files(path)
	require.NoError(t, err)
	assert.Equal(t, []string{path + ".10", path + ".2", path + ".1", path}, got)

	require.NoError(t, os.Remove(path))
	got, err = Files(path)
	require.NoError(t, err)
	assert.Equal(t, []string{path + ".10", path + ".2", path + ".1"}, got)
}

func TestTailStart(t *testing.T) {
	data := "a\nbb\nccc\npartial"
	cases := []struct {
		n     int
		start int64
		found int
	}{
		{0, 9, 0},  // after the last complete line
		{1, 5, 1},  // "ccc"
		{2, 2, 2},  // "bb", "ccc"
		{3, 0, 3},  // all three
		{10, 0, 3}, // fewer than asked
	}
	for _, block := range []int{1, 2, 3, 7, 64} {
		for _, tc := range cases {
			start, found, err := tailStart(strings.NewReader(data), int64(len(data)), tc.n, block)
			require.NoError(t, err)
			assert.Equal(t, tc.start, start, "n=%d block=%d", tc.n, block)
			assert.Equal(t, tc.found, found, "n=%d block=%d", tc.n, block)
		}
	}
	start, found, err := tailStart(strings.NewReader("x\n"), 2, 1, 64)
	require.NoError(t, err)
	assert.Equal(t, int64(0), start)
	assert.Equal(t, 1, found)
	start, found, err = tailStart(strings.NewReader(""), 0, 5, 64)
	require.NoError(t, err)
	assert.Equal(t, int64(0), start)
	assert.Equal(t, 0, found)
}

// rotatedLog makes a log of 16 entries in four files: .3 has 0-9, .2 is
// empty, .1 has 10-11, the log 12-15.
func rotatedLog(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w := newLogWriter(t, path)
	w.lines(texts(0, 10)...)
	w.rotate(5)
	w.rotate(5)
	w.lines(texts(10, 12)...)
	w.rotate(5)
	w.lines(texts(12, 16)...)
	return path
}

func TestReadAllAcrossRotations(t *testing.T) {
	path := rotatedLog(t)
	got, err := readAll(t, path, ReadOptions{Tail: -1})
	require.NoError(t, err)
	assert.Equal(t, texts(0, 16), got)

	var entries []Entry
	require.NoError(t, Read(context.Background(), path, ReadOptions{Tail: -1}, func(e Entry) error {
		entries = append(entries, e)
		return nil
	}))
	assert.Equal(t, "stderr", entries[2].Stream)
	assert.True(t, t0.Add(15*time.Second).Equal(entries[15].Time))
	assert.Equal(t, "line 15\n", string(entries[15].Line))
}

func TestTailAcrossRotations(t *testing.T) {
	path := rotatedLog(t)
	for _, tc := range []struct {
		tail int
		want []string
	}{
		{1, texts(15, 16)},
		{4, texts(12, 16)},
		{5, texts(11, 16)},
		{7, texts(9, 16)},
		{16, texts(0, 16)},
		{1000, texts(0, 16)},
		{0, nil},
	} {
		got, err := readAll(t, path, ReadOptions{Tail: tc.tail})
		require.NoError(t, err)
		assert.Equal(t, tc.want, got, "tail %d", tc.tail)
	}
}

func TestSinceUntil(t *testing.T) {
	path := rotatedLog(t)
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
	got, err := readAll(t, path, ReadOptions{Tail: -1, Since: at(8), Until: at(12)})
	require.NoError(t, err)
	assert.Equal(t, texts(8, 13), got)
	got, err = readAll(t, path, ReadOptions{Tail: -1, Since: at(14).Add(time.Nanosecond)})
	require.NoError(t, err)
	assert.Equal(t, texts(15, 16), got)
	got, err = readAll(t, path, ReadOptions{Tail: -1, Until: at(0).Add(-time.Nanosecond)})
	require.NoError(t, err)
	assert.Empty(t, got)
	// Tail counts lines before Since filters them, as Docker does.
	got, err = readAll(t, path, ReadOptions{Tail: 5, Since: at(13)})
	require.NoError(t, err)
	assert.Equal(t, texts(13, 16), got)
	// Until ends a follow at the first later entry.
	got, err = readAll(t, path, ReadOptions{Tail: -1, Until: at(3), Follow: true})
	require.NoError(t, err)
	assert.Equal(t, texts(0, 4), got)
}

func TestPartialLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w := newLogWriter(t, path)
	w.lines("one", "two")
	var buf bytes.Buffer
	require.NoError(t, Write(&buf, Entry{Stream: "stdout", Time: t0, Line: []byte("three\n")}))
	whole := buf.String()
	w.raw(whole[:20])

	for tail, want := range map[int][]string{-1: {"one", "two"}, 1: {"two"}, 2: {"one", "two"}} {
		got, err := readAll(t, path, ReadOptions{Tail: tail})
		require.NoError(t, err, "a write in progress is not corrupt")
		assert.Equal(t, want, got, "tail %d", tail)
	}

	// Following: the line comes out once it is complete.
	lines := make(chan string, 10)
	var running atomic.Bool
	running.Store(true)
	done := make(chan error, 1)
	go func() {
		done <- Read(context.Background(), path, ReadOptions{Tail: 0, Follow: true, Running: running.Load, PollInterval: 10 * time.Millisecond},
			func(e Entry) error { lines <- string(e.Line); return nil })
	}()
	time.Sleep(50 * time.Millisecond)
	w.raw(whole[20:])
	select {
	case l := <-lines:
		assert.Equal(t, "three\n", l)
	case <-time.After(10 * time.Second):
		t.Fatal("completed line not read")
	}
	w.raw(whole[:10]) // left partial when the writer stops: not emitted
	running.Store(false)
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("follow did not stop")
	}
	assert.Empty(t, lines)
}

func TestCorruptLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w := newLogWriter(t, path)
	w.lines("a")
	w.raw("not json\n")
	w.lines("b")
	w.raw("\n{}\n")
	w.raw(`{"log":"x","stream":"stdout","time":"yesterday"}` + "\n")
	w.raw(strings.Repeat("z", maxLine+10) + "\n") // over-long
	w.lines("c")

	got, err := readAll(t, path, ReadOptions{Tail: -1})
	assert.Equal(t, []string{"a", "b", "c"}, got)
	var ce *CorruptError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, 5, ce.Lines)
	assert.ErrorContains(t, err, "skipped 5 corrupt log lines")

	got, err = readAll(t, path, ReadOptions{Tail: 2})
	assert.Equal(t, []string{"c"}, got)
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, 1, ce.Lines)
	assert.ErrorIs(t, err, errLineTooLong)

	// fn's own error stops the read and comes back as is.
	stop := errors.New("stop")
	err = Read(context.Background(), path, ReadOptions{Tail: -1}, func(Entry) error { return stop })
	assert.Equal(t, stop, err)
}

func TestFollowAcrossRotations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w := newLogWriter(t, path)
	w.lines(texts(0, 5)...)

	var mu sync.Mutex
	var got []string
	seen := make(chan int, 100)
	var running atomic.Bool
	running.Store(true)
	done := make(chan error, 1)
	go func() {
		done <- Read(context.Background(), path, ReadOptions{Tail: 2, Follow: true, Running: running.Load, PollInterval: 50 * time.Millisecond},
			func(e Entry) error {
				mu.Lock()
				got = append(got, strings.TrimSuffix(string(e.Line), "\n"))
				n := len(got)
				mu.Unlock()
				seen <- n
				return nil
			})
	}()
	waitFor := func(n int) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case k := <-seen:
				if k >= n {
					return
				}
			case <-deadline:
				t.Fatalf("follow did not reach %d lines", n)
			}
		}
	}
	waitFor(2) // lines 3 and 4
	w.lines(texts(5, 10)...)
	waitFor(7)
	w.rotate(5) // while following
	w.lines(texts(10, 15)...)
	waitFor(12)
	// Several rotations between two polls, one of them mid-line.
	w.lines(texts(15, 18)...)
	w.raw(`{"log":"cut`)
	w.rotate(5)
	w.lines(texts(18, 20)...)
	w.rotate(5)
	w.rotate(5)
	w.lines(texts(20, 25)...)
	running.Store(false)
	select {
	case err := <-done:
		var ce *CorruptError
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, 1, ce.Lines, "the cut-off line")
	case <-time.After(10 * time.Second):
		t.Fatal("follow did not stop when the writer did")
	}
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, texts(3, 25), got)
}

func TestFollowWaitsForFileAndStopsOnCancel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lines := make(chan string, 10)
	done := make(chan error, 1)
	go func() {
		done <- Read(ctx, path, ReadOptions{Tail: -1, Follow: true, PollInterval: 10 * time.Millisecond},
			func(e Entry) error { lines <- string(e.Line); return nil })
	}()
	time.Sleep(30 * time.Millisecond)
	w := newLogWriter(t, path)
	w.lines("first")
	select {
	case l := <-lines:
		assert.Equal(t, "first\n", l)
	case <-time.After(10 * time.Second):
		t.Fatal("line in a file created after the read began was not read")
	}
	cancel()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("follow did not stop on cancel")
	}
}

func TestFollowNoFileWriterGone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	got, err := readAll(t, path, ReadOptions{Tail: -1, Follow: true, Running: func() bool { return false }})
	require.NoError(t, err)
	assert.Empty(t, got)
}

// TestTailBigFile checks that a tail of a ~100 MB log reads only its end:
// fast, and with allocations in kilobytes, not the file's size.
func TestTailBigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	f, err := os.Create(path)
	require.NoError(t, err)
	bw := bufio.NewWriterSize(f, 1<<20)
	line := []byte(strings.Repeat("x", 60) + "\n")
	n := 0
	for size := 0; size < 100<<20; n++ {
		e := Entry{Stream: "stdout", Time: t0.Add(time.Duration(n) * time.Millisecond), Line: line}
		before := bw.Buffered()
		require.NoError(t, Write(bw, e))
		size += bw.Buffered() - before
		if bw.Available() < 4096 {
			require.NoError(t, bw.Flush())
		}
	}
	require.NoError(t, bw.Flush())
	require.NoError(t, f.Close())
	st, err := os.Stat(path)
	require.NoError(t, err)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	count := 0
	var last Entry
	err = Read(context.Background(), path, ReadOptions{Tail: 100}, func(e Entry) error {
		count++
		last = e
		return nil
	})
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	require.NoError(t, err)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("tail 100 of %d MB (%d lines): %v, %d KiB allocated", st.Size()>>20, n, elapsed, alloc>>10)
	assert.Equal(t, 100, count)
	assert.True(t, t0.Add(time.Duration(n-1)*time.Millisecond).Equal(last.Time))
	assert.Less(t, alloc, uint64(1<<20))
	assert.Less(t, elapsed, time.Second)
}

func TestLineReaderLimits(t *testing.T) {
	exact := strings.Repeat("a", maxLine)
	over := strings.Repeat("b", maxLine+1)
	for _, prefix := range []string{"", "x\n", strings.Repeat("p", 1000) + "\n"} {
		lr := newLineReader(iotest.HalfReader(strings.NewReader(prefix + exact + "\n" + over + "\nend\npart")))
		var lines []int
		var errs int
		for range 10 {
			line, err := lr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if errors.Is(err, errLineTooLong) {
				errs++
				continue
			}
			require.NoError(t, err)
			lines = append(lines, len(line))
		}
		want := []int{maxLine, 3}
		if prefix != "" {
			want = append([]int{len(prefix) - 1}, want...)
		}
		assert.Equal(t, want, lines)
		assert.Equal(t, 1, errs)
		assert.True(t, lr.Partial())
		// The rest of the pending line arrives from another reader.
		lr.Reset(strings.NewReader("ial\n"))
		line, err := lr.Next()
		require.NoError(t, err)
		assert.Equal(t, "partial", string(line))
		assert.False(t, lr.Partial())
	}
}
