package progress

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/internal/testutil"
)

// screen replays what a terminal would show for the sequences the tty
// display writes: text, "\r", "\n", cursor up, erase line, erase down.
func screen(t *testing.T, out string) []string {
	t.Helper()
	var lines [][]rune
	row, col := 0, 0
	put := func(r rune) {
		for len(lines) <= row {
			lines = append(lines, nil)
		}
		for len(lines[row]) < col {
			lines[row] = append(lines[row], ' ')
		}
		if col < len(lines[row]) {
			lines[row][col] = r
		} else {
			lines[row] = append(lines[row], r)
		}
		col++
	}
	rs := []rune(out)
	for i := 0; i < len(rs); i++ {
		switch r := rs[i]; r {
		case '\r':
			col = 0
		case '\n':
			row, col = row+1, 0
		case 0x1b:
			require.Less(t, i+1, len(rs))
			require.Equal(t, '[', rs[i+1], "only CSI sequences expected")
			j := i + 2
			for j < len(rs) && (rs[j] >= '0' && rs[j] <= '9') {
				j++
			}
			require.Less(t, j, len(rs))
			n := 1
			if j > i+2 {
				n, _ = strconv.Atoi(string(rs[i+2 : j]))
			}
			switch rs[j] {
			case 'A':
				row = max(0, row-n)
			case 'K':
				if row < len(lines) {
					lines[row] = nil
				}
			case 'J':
				if row < len(lines) {
					lines[row] = lines[row][:min(col, len(lines[row]))]
					lines = lines[:row+1]
				}
			default:
				t.Fatalf("unexpected sequence %q", string(rs[i:j+1]))
			}
			i = j
		default:
			put(r)
		}
	}
	shown := make([]string, 0, len(lines))
	for _, l := range lines {
		shown = append(shown, string(l))
	}
	for len(shown) > 0 && shown[len(shown)-1] == "" {
		shown = shown[:len(shown)-1]
	}
	return shown
}

// newTestTTY is a tty display on a fake clock whose ticker, in effect,
// never fires: the test calls redraw itself where it wants a tick.
func newTestTTY(w *testutil.SyncBuffer, c *clock, width int) *tty {
	d := newTTY(w, time.Hour)
	d.now = c.now
	d.width = func() int { return width }
	return d
}

func TestTTYScreens(t *testing.T) {
	tick := event{msg: "\x00tick"} // a redraw, as the ticker makes one
	for _, tc := range []struct {
		name   string
		width  int
		events []event
		// during is the screen after the tick event, if any; final is the
		// screen after Close.
		during, final []string
	}{
		{
			name:  "a running step with its output, then all done",
			width: 80,
			events: []event{
				startEv(step(1, "", 1, 3, "FROM alpine")),
				{id: 1, done: true, cached: true},
				startEv(step(2, "", 2, 3, "RUN make")),
				{id: 2, output: "cc -c a.c\ncc -c b.c\nlinking"},
				{wait: 1200 * time.Millisecond},
				tick,
				{wait: 300 * time.Millisecond, id: 2, done: true},
				{msg: "writing image sha256:abc"},
			},
			during: []string{
				"#1 [1/3] FROM alpine  CACHED",
				"#2 [2/3] RUN make  1.2s",
				"    cc -c a.c",
				"    cc -c b.c",
				"    linking",
			},
			final: []string{
				"#1 [1/3] FROM alpine  CACHED",
				"#2 [2/3] RUN make  DONE 1.5s",
				"writing image sha256:abc",
			},
		},
		{
			name:  "parallel stages, only the last lines shown, long lines cut",
			width: 40,
			events: []event{
				startEv(step(1, "a", 1, 1, "RUN seq 100")),
				startEv(step(2, "b", 1, 1, "RUN echo a very long instruction that will not fit")),
				{id: 1, output: seqLines(1, 100)},
				{id: 2, output: strings.Repeat("y", 100) + "\n"},
				tick,
				{wait: time.Second, id: 2, done: true},
				{id: 1, done: true},
			},
			during: []string{
				"#1 [a 1/1] RUN seq 100  0.0s",
				"    95", "    96", "    97", "    98", "    99", "    100",
				"#2 [b 1/1] RUN echo a very lon...  0.0s",
				"    " + strings.Repeat("y", 32) + "...",
			},
			final: []string{
				"#2 [b 1/1] RUN echo a ver...  DONE 1.0s",
				"#1 [a 1/1] RUN seq 100  DONE 1.0s",
			},
		},
		{
			name:  "a failure prints its output tail",
			width: 80,
			events: []event{
				startEv(step(1, "", 1, 1, "RUN ./configure")),
				{id: 1, output: seqLines(1, 50) + "\x1b[31mfatal\x1b[0m: no compiler"},
				tick,
				{id: 1, done: true, err: errors.New("exit 1")},
			},
			final: append(append([]string{
				"#1 [1/1] RUN ./configure  ERROR",
				"------",
				" > [1/1] RUN ./configure:",
			}, indent("   ", strings.Split(seqLines(12, 50), "\n")...)...),
				"   fatal: no compiler",
				"------"),
		},
		{
			name:  "a step still running at close stays on screen",
			width: 80,
			events: []event{
				startEv(step(1, "", 1, 2, "RUN sleep 9")),
				{id: 1, output: "zzz\n"},
				tick,
				{wait: 2 * time.Second, msg: "canceled"},
			},
			final: []string{
				"canceled",
				"#1 [1/2] RUN sleep 9  2.0s",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf testutil.SyncBuffer
			c := newClock()
			d := newTestTTY(&buf, c, tc.width)
			for _, e := range tc.events {
				if e.msg == tick.msg {
					d.mu.Lock()
					d.redraw(nil)
					d.mu.Unlock()
					if tc.during != nil {
						assert.Equal(t, tc.during, screen(t, buf.String()), "during")
					}
					continue
				}
				play(d, c, []event{e})
			}
			require.NoError(t, d.Close())
			out := buf.String()
			assert.Equal(t, tc.final, screen(t, out), "final")
			assert.Regexp(t, `\x1b\[\d+A`, out, "the block is redrawn in place")
			// Nothing after Close.
			n := len(out)
			play(d, c, []event{startEv(step(5, "", 1, 1, "RUN x")), {id: 5, done: true}, {msg: "late"}})
			assert.Len(t, buf.String(), n)
			require.NoError(t, d.Close())
		})
	}
}

func seqLines(from, to int) string {
	var s []string
	for i := from; i <= to; i++ {
		s = append(s, strconv.Itoa(i))
	}
	return strings.Join(s, "\n") + "\n"
}

func indent(p string, ls ...string) []string {
	var out []string
	for _, l := range ls {
		if l != "" {
			out = append(out, p+l)
		}
	}
	return out
}

// TestTTYTicker checks the redraw goroutine draws a running step's output
// without any other event, and ends on Close.
func TestTTYTicker(t *testing.T) {
	before := runtime.NumGoroutine()
	var buf testutil.SyncBuffer
	d := newTTY(&buf, 5*time.Millisecond)
	d.Start(step(1, "", 1, 1, "RUN make"))
	d.Output(1, []byte("compiling\n"))
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(buf.String(), "compiling") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	require.Contains(t, buf.String(), "    compiling", "the ticker drew the output")
	// A running step is redrawn on every tick, so its time moves.
	drawn := strings.Count(buf.String(), "#1 [1/1] RUN make")
	for strings.Count(buf.String(), "#1 [1/1] RUN make") == drawn && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	require.Greater(t, strings.Count(buf.String(), "#1 [1/1] RUN make"), drawn)

	require.NoError(t, d.Close())
	select {
	case <-d.stopped:
	case <-time.After(2 * time.Second):
		t.Fatal("the redraw goroutine did not end on Close")
	}
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	assert.LessOrEqual(t, runtime.NumGoroutine(), before)
	n := len(buf.String())
	time.Sleep(20 * time.Millisecond)
	assert.Len(t, buf.String(), n, "nothing drawn after Close")
}

// TestTTYBounded feeds far more output than is shown: the display keeps
// the last lines only.
func TestTTYBounded(t *testing.T) {
	var buf testutil.SyncBuffer
	c := newClock()
	d := newTestTTY(&buf, c, 80)
	d.Start(step(1, "", 1, 1, "RUN yes"))
	for i := range 5000 {
		d.Output(1, fmt.Appendf(nil, "line %d\n", i))
	}
	d.Output(1, bytes.Repeat([]byte("z"), 3*maxLine)) // no newline
	d.mu.Lock()
	st := d.running[1]
	assert.Len(t, st.tail.lines, errorLines)
	assert.LessOrEqual(t, len(st.lines.partial), maxLine)
	block := d.block(80)
	d.mu.Unlock()
	assert.Len(t, block, 1+liveLines)
	d.Done(1, false, errors.New("killed"))
	require.NoError(t, d.Close())
	final := screen(t, buf.String())
	// The step's line, the frame (3 lines) and the last 40 lines of
	// output: the endless line came in three pieces.
	require.Len(t, final, 1+3+errorLines)
	assert.Equal(t, " > [1/1] RUN yes:", final[2])
	assert.Equal(t, "   line 4963", final[3])
	assert.Equal(t, "   line 4999", final[len(final)-5])
	for i := 2; i <= 4; i++ {
		assert.Equal(t, "   "+strings.Repeat("z", maxLine), final[len(final)-i])
	}
}

// TestConcurrentUse drives both displays from many goroutines, as
// parallel stages do; run with -race it checks the locking.
func TestConcurrentUse(t *testing.T) {
	for _, mode := range []string{"plain", "tty"} {
		t.Run(mode, func(t *testing.T) {
			var buf testutil.SyncBuffer
			d, err := New(&buf, mode)
			require.NoError(t, err)
			var wg sync.WaitGroup
			for g := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 20 {
						id := g*100 + i
						d.Start(step(id, strconv.Itoa(g), i+1, 20, "RUN work"))
						d.Output(id, []byte("out\n"))
						d.Done(id, i%2 == 0, nil)
					}
					d.Message("stage %d done", g)
				}()
			}
			wg.Wait()
			require.NoError(t, d.Close())
			out := buf.String()
			for g := range 8 {
				assert.Contains(t, out, fmt.Sprintf("stage %d done", g))
			}
			assert.Equal(t, 8*10, strings.Count(out, "CACHED"))
		})
	}
}
