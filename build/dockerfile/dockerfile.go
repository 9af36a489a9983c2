// Package dockerfile reads a Dockerfile into berth's build plan: the
// stages, what each one reads from the others, and which of them a target
// needs. Parsing is buildkit's (its parser and shell lexer, so berth reads
// exactly what Docker reads); what the instructions mean is the builder's.
package dockerfile

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"

	"github.com/berth-containers/berth/internal/errdefs"
)

// File is a parsed Dockerfile.
type File struct {
	// Stages are the FROM blocks in order.
	Stages []instructions.Stage
	// MetaArgs are the ARGs before the first FROM.
	MetaArgs []instructions.ArgCommand
	// Escape is the escape character (the `# escape=` directive).
	Escape rune
}

// Parse reads a Dockerfile. Errors name the line they are about.
func Parse(data []byte) (*File, error) {
	res, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, Located(errdefs.Invalid("%w", err), 0)
	}
	if err := fromFirst(res.AST); err != nil {
		return nil, err
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, Located(errdefs.Invalid("%w", err), 0)
	}
	if len(stages) == 0 {
		return nil, errdefs.Invalid("the Dockerfile has no FROM instruction")
	}
	return &File{Stages: stages, MetaArgs: metaArgs, Escape: res.EscapeToken}, nil
}

// fromFirst checks that the first instruction other than ARG is FROM:
// the parser's own complaint does not say so.
func fromFirst(ast *parser.Node) error {
	for _, n := range ast.Children {
		switch strings.ToLower(n.Value) {
		case "arg":
			continue
		case "from":
			return nil
		}
		return &LineError{Line: n.StartLine, Err: errdefs.Invalid("%s before the first FROM: a Dockerfile starts with FROM (ARGs may come before it)", strings.ToUpper(n.Value))}
	}
	return nil
}

// LineError is an error about one line of the Dockerfile.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string {
	if e.Line <= 0 {
		return "Dockerfile: " + e.Err.Error()
	}
	return fmt.Sprintf("Dockerfile:%d: %v", e.Line, e.Err)
}

func (e *LineError) Unwrap() error { return e.Err }

// Located wraps err with the line it is about: the location buildkit's
// parser attached to it, else line (0: none known). Errors the parser
// located are invalid input; others keep their class.
func Located(err error, line int) error {
	if err == nil {
		return nil
	}
	var le *LineError
	if errors.As(err, &le) {
		return err
	}
	var loc *parser.LocationError
	if errors.As(err, &loc) {
		if len(loc.Locations) > 0 && len(loc.Locations[0]) > 0 {
			line = loc.Locations[0][0].Start.Line
		}
		err = errdefs.Invalid("%s", loc.Unwrap().Error())
	}
	return &LineError{Line: line, Err: err}
}

// LineOf returns the first line of a command's location.
func LineOf(loc []parser.Range) int {
	if len(loc) == 0 {
		return 0
	}
	return loc[0].Start.Line
}
