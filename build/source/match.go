package source

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/moby/patternmatcher"

	"github.com/berth-containers/berth/internal/errdefs"
)

// Match is one file or directory a COPY/ADD source names.
type Match struct {
	Source string // the source as written
	// Rel is the matched path relative to the root, slash-separated and
	// cleaned ("." for the root). For a symlink that was followed it is
	// still the link's name.
	Rel string
	// Abs is the host path to read, after following a top-level
	// symlink inside the root.
	Abs string
	// Info describes Abs (not followed further).
	Info fs.FileInfo
	// Wildcard says Source held a glob.
	Wildcard bool
}

// errStop ends a walk early without failing it.
var errStop = errors.New("stop walking")

// Ignored reports whether a context-relative path is excluded by the
// ignore rules.
func (c *Context) Ignored(rel string) bool {
	ignored, _ := c.ignored(cleanRel(rel), patternmatcher.MatchInfo{})
	return ignored
}

// cleanRel cleans a path relative to the root, "" for the root.
func cleanRel(rel string) string {
	p := path.Clean(strings.TrimLeft(filepath.ToSlash(rel), "/"))
	if p == "." {
		return ""
	}
	return p
}

// ignored matches rel against the ignore rules, reusing what its parent's
// match found (the zero MatchInfo makes the matcher check parents itself).
func (c *Context) ignored(rel string, parent patternmatcher.MatchInfo) (bool, patternmatcher.MatchInfo) {
	return c.matchRules(c.pm, rel, parent)
}

// excluded matches rel against the --exclude patterns of a view.
func (c *Context) excluded(rel string, parent patternmatcher.MatchInfo) (bool, patternmatcher.MatchInfo) {
	return c.matchRules(c.excl, rel, parent)
}

// matchRules matches rel against pm (nil: no rules) under c's lock.
func (c *Context) matchRules(pm *patternmatcher.PatternMatcher, rel string, parent patternmatcher.MatchInfo) (bool, patternmatcher.MatchInfo) {
	if pm == nil || rel == "" {
		return false, patternmatcher.MatchInfo{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	m, info, err := pm.MatchesUsingParentResults(rel, parent)
	if err != nil {
		// Patterns were checked when the rules were read; a path the
		// matcher cannot handle is kept rather than silently dropped.
		return false, patternmatcher.MatchInfo{}
	}
	return m, info
}

// excludedMatch says whether --exclude leaves out a whole match: by its
// path from the root, or by its name.
func (c *Context) excludedMatch(name string) bool {
	rel := cleanRel(name)
	if rel == "" {
		return false
	}
	if ex, _ := c.excluded(rel, patternmatcher.MatchInfo{}); ex {
		return true
	}
	ex, _ := c.excluded(path.Base(rel), patternmatcher.MatchInfo{})
	return ex
}

// mayReinclude reports whether an ignored directory can hold entries an
// exception rule (`!pattern`) brings back, so a walk must look inside.
func (c *Context) mayReinclude(dir string) bool {
	if c.pm == nil || !c.pm.Exclusions() {
		return false
	}
	dirs := strings.Split(dir, "/")
	for _, p := range c.pm.Patterns() {
		if p.Exclusion() && patternBelow(strings.Split(filepath.ToSlash(p.String()), "/"), dirs) {
			return true
		}
	}
	return false
}

// patternBelow reports whether a pattern's leading components can match
// the components of dir, leaving more to match below it.
func patternBelow(pat, dir []string) bool {
	for i, d := range dir {
		if i >= len(pat) {
			return false
		}
		if strings.Contains(pat[i], "**") {
			return true
		}
		if ok, err := path.Match(pat[i], d); err != nil || !ok {
			return false
		}
	}
	return len(pat) > len(dir)
}

// hasMeta reports whether a path component is a glob.
func hasMeta(s string) bool { return strings.ContainsAny(s, `*?[\`) }

// Match resolves COPY/ADD sources to the files they name, each once, with
// ignored paths left out. A source naming nothing is errdefs.NotFound; one
// leaving the context, or a symlink leading out of a build context, is
// errdefs.Invalid. A matched symlink is followed inside the root.
func (c *Context) Match(sources []string) ([]Match, error) {
	var out []Match
	seen := map[string]bool{}
	for _, src := range sources {
		ms, err := c.matchOne(src)
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			if !seen[m.Rel] {
				seen[m.Rel] = true
				out = append(out, m)
			}
		}
	}
	return out, nil
}

// matchOne resolves one source.
func (c *Context) matchOne(src string) ([]Match, error) {
	rel, err := c.clean(src)
	if err != nil {
		return nil, err
	}
	wildcard := hasMeta(rel)
	names, err := c.glob(src, rel)
	if err != nil {
		return nil, err
	}
	var out []Match
	excluded := false
	for _, name := range names {
		if c.excludedMatch(name) {
			excluded = true
			continue
		}
		m, ok, err := c.matchName(src, name, wildcard)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, m)
		}
	}
	if len(out) == 0 && !excluded {
		return nil, c.notFound(src)
	}
	return out, nil
}

// glob expands the wildcard components of rel into the paths they name,
// in lexical order. Literal components are kept as written; whether they
// exist is checked later.
func (c *Context) glob(src, rel string) ([]string, error) {
	names := []string{"."}
	for _, comp := range splitPath(rel) {
		var next []string
		for _, pre := range names {
			if !hasMeta(comp) {
				next = append(next, path.Join(pre, comp))
				continue
			}
			found, err := c.globDir(src, pre, comp)
			if err != nil {
				return nil, err
			}
			next = append(next, found...)
		}
		names = next
	}
	return names, nil
}

// globDir lists the entries of directory pre that match pattern.
func (c *Context) globDir(src, pre, pattern string) ([]string, error) {
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, errdefs.Invalid("source %s: bad pattern %q", src, pattern)
	}
	dir, err := c.resolve(pre, true)
	if err != nil {
		// A prefix that does not exist, is no directory or leads out
		// through a symlink holds no matches.
		return nil, nil //nolint:nilerr // matching nothing is the answer
	}
	entries, err := os.ReadDir(c.host(dir))
	if err != nil {
		return nil, nil //nolint:nilerr // not a directory: matches nothing
	}
	var out []string
	for _, e := range entries {
		if ok, _ := path.Match(pattern, e.Name()); ok {
			out = append(out, path.Join(pre, e.Name()))
		}
	}
	return out, nil
}

// matchName turns one named path into a Match, following a symlink there.
// ok is false when the path is ignored, or does not exist and came from a
// glob.
func (c *Context) matchName(src, name string, wildcard bool) (Match, bool, error) {
	res, err := c.resolve(name, true)
	if err != nil {
		// A glob's candidate that names nothing is no match; one that is
		// itself a symlink leading out is refused, as a literal source is.
		var esc *escapeError
		if wildcard && (!errors.As(err, &esc) || esc.link != name) {
			return Match{}, false, nil
		}
		return Match{}, false, c.resolveError(src, err)
	}
	abs := c.host(res)
	info, err := os.Lstat(abs)
	if err != nil {
		return Match{}, false, c.resolveError(src, err)
	}
	m := Match{Source: src, Rel: name, Abs: abs, Info: info, Wildcard: wildcard}
	if rel := cleanRel(name); rel != "" {
		if ignored, _ := c.ignored(rel, patternmatcher.MatchInfo{}); ignored {
			if !info.IsDir() || !c.mayReinclude(rel) {
				return Match{}, false, nil
			}
			// An ignored directory still counts when an exception rule
			// brings back something inside it.
			found, err := c.hasEntries(m)
			if err != nil || !found {
				return Match{}, false, err
			}
		}
	}
	return m, true, nil
}

// hasEntries reports whether a walk of m yields anything below m.
func (c *Context) hasEntries(m Match) (bool, error) {
	found := false
	err := c.Walk(m, func(rel, _ string, _ fs.FileInfo) error {
		if rel == "." {
			return nil
		}
		found = true
		return errStop
	})
	if err != nil && !errors.Is(err, errStop) {
		return false, fmt.Errorf("source %s: %w", m.Source, err)
	}
	return found, nil
}
