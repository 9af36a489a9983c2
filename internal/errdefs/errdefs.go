// Package errdefs holds the classes of errors berth's packages return, so
// callers test them with errors.Is and the API layers map each to a status
// code in one place.
package errdefs

import (
	"errors"
	"fmt"
)

// Error classes, matched with errors.Is.
var (
	ErrNotFound           = errors.New("not found")
	ErrAlreadyExists      = errors.New("already exists")
	ErrInvalidArgument    = errors.New("invalid argument")
	ErrFailedPrecondition = errors.New("failed precondition")
)

// classified carries a class without adding its name to the message, so
// users read "container x does not exist", not "...: not found".
type classified struct {
	err   error
	class error
}

func (c classified) Error() string        { return c.err.Error() }
func (c classified) Unwrap() []error      { return []error{c.err, c.class} }
func (c classified) Is(target error) bool { return target == c.class }

// New formats an error of the given class.
func New(class error, format string, args ...any) error {
	return classified{err: fmt.Errorf(format, args...), class: class}
}

// NotFound formats an ErrNotFound error.
func NotFound(format string, args ...any) error { return New(ErrNotFound, format, args...) }

// AlreadyExists formats an ErrAlreadyExists error.
func AlreadyExists(format string, args ...any) error { return New(ErrAlreadyExists, format, args...) }

// Invalid formats an ErrInvalidArgument error.
func Invalid(format string, args ...any) error { return New(ErrInvalidArgument, format, args...) }

// Precondition formats an ErrFailedPrecondition error.
func Precondition(format string, args ...any) error {
	return New(ErrFailedPrecondition, format, args...)
}
