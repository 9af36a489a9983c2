package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/berth-containers/berth/image"
)

// Off a terminal, each blob gets one line per status, not per byte count.
func TestProgressPlainLines(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf, false)
	require.False(t, p.tty)
	p.Event(image.Event{ID: "abc", Status: "Waiting"})
	p.Event(image.Event{ID: "abc", Status: "Downloading", Current: 1, Total: 10})
	p.Event(image.Event{ID: "abc", Status: "Downloading", Current: 5, Total: 10})
	p.Event(image.Event{ID: "def", Status: "Already exists"})
	p.Event(image.Event{ID: "abc", Status: "Pull complete"})
	require.Equal(t, "abc: Waiting\nabc: Downloading\ndef: Already exists\nabc: Pull complete\n", buf.String())
}

// On a terminal the block is redrawn in place with a bar per blob.
func TestProgressRedraw(t *testing.T) {
	var buf bytes.Buffer
	p := &progress{w: &buf, tty: true, lines: map[string]image.Event{}}
	p.Event(image.Event{ID: "abc", Status: "Downloading", Current: 500_000, Total: 1_000_000})
	p.Event(image.Event{ID: "def", Status: "Waiting"})
	out := buf.String()
	require.Contains(t, out, "abc: Downloading [====================>")
	require.Contains(t, out, "500kB/1MB")
	require.Contains(t, out, "\x1b[1A", "the second draw moves up over the first")
	require.Equal(t, 3, strings.Count(out, "\x1b[2K"), "one line, then two")
}
