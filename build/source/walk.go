package source

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"github.com/moby/patternmatcher"
)

// walkFunc is called for each entry a walk yields: rel is its path
// relative to the match ("." for the match itself), abs its host path and
// info its lstat.
type walkFunc func(rel, abs string, info fs.FileInfo) error

// walker holds one Walk's state.
type walker struct {
	c  *Context
	fn walkFunc
	// pending are ignored directories entered because an exception rule
	// may bring back something inside; they are yielded, outermost first,
	// just before the first entry inside them that is kept.
	pending []entry
}

type entry struct {
	rel, abs string
	info     fs.FileInfo
}

// Walk calls fn for m and, if m is a directory, every entry below it in
// lexical order, skipping ignored paths (an ignored directory is entered
// when an exception rule may re-include something in it, and yielded only
// if something is), never following nested symlinks.
func (c *Context) Walk(m Match, fn func(rel, abs string, info fs.FileInfo) error) error {
	if err := fn(".", m.Abs, m.Info); err != nil {
		return err
	}
	if !m.Info.IsDir() {
		return nil
	}
	base := cleanRel(m.Rel)
	_, mi := c.ignored(base, patternmatcher.MatchInfo{})
	w := &walker{c: c, fn: fn}
	return w.dir("", m.Abs, base, mi, patternmatcher.MatchInfo{})
}

// dir walks the entries of the directory at abs; rel is its path relative
// to the match, ctxRel relative to the root, mi its ignore-match state and
// xi its --exclude-match state.
func (w *walker) dir(rel, abs, ctxRel string, mi, xi patternmatcher.MatchInfo) error {
	entries, err := os.ReadDir(abs) // sorted by name
	if err != nil {
		return fmt.Errorf("read directory %s: %w", abs, err)
	}
	for _, de := range entries {
		e := entry{rel: path.Join(rel, de.Name()), abs: filepath.Join(abs, de.Name())}
		if e.info, err = os.Lstat(e.abs); err != nil {
			return fmt.Errorf("stat %s: %w", e.abs, err)
		}
		childCtx := path.Join(ctxRel, de.Name())
		excluded, cxi := w.c.excluded(e.rel, xi)
		if excluded {
			continue
		}
		ignored, cmi := w.c.ignored(childCtx, mi)
		if !ignored {
			if err := w.yield(e); err != nil {
				return err
			}
			if e.info.IsDir() {
				if err := w.dir(e.rel, e.abs, childCtx, cmi, cxi); err != nil {
					return err
				}
			}
			continue
		}
		if !e.info.IsDir() || !w.c.mayReinclude(childCtx) {
			continue
		}
		n := len(w.pending)
		w.pending = append(w.pending, e)
		if err := w.dir(e.rel, e.abs, childCtx, cmi, cxi); err != nil {
			return err
		}
		// Still pending: nothing inside was kept, so neither is it.
		if len(w.pending) > n {
			w.pending = w.pending[:n]
		}
	}
	return nil
}

// yield calls fn for e, after the ignored directories it lies in.
func (w *walker) yield(e entry) error {
	for _, p := range w.pending {
		if err := w.fn(p.rel, p.abs, p.info); err != nil {
			return err
		}
	}
	w.pending = w.pending[:0]
	return w.fn(e.rel, e.abs, e.info)
}
