package remote

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/berth-containers/berth/internal/errdefs"
)

// ErrUnauthorized is the class of errors for missing, wrong or
// insufficient credentials (HTTP 401 and 403, refused token requests).
var ErrUnauthorized = errors.New("unauthorized")

// ErrorDetail is one entry of a registry's error body.
type ErrorDetail struct {
	Code    string          `json:"code"`
	Message string          `json:"message"`
	Detail  json.RawMessage `json:"detail,omitempty"`
}

// ResponseError is an answer from a registry (or its token server) that
// was not the expected one. errors.Is matches it against
// errdefs.ErrNotFound (404), ErrUnauthorized (401, 403) and
// errdefs.ErrInvalidArgument (400).
type ResponseError struct {
	Method     string
	URL        string // without credentials or query
	StatusCode int
	Errors     []ErrorDetail
}

func (e *ResponseError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %d %s", e.Method, e.URL, e.StatusCode, http.StatusText(e.StatusCode))
	for _, d := range e.Errors {
		b.WriteString(": ")
		if d.Code != "" {
			b.WriteString(strings.ToLower(strings.ReplaceAll(d.Code, "_", " ")))
			if d.Message != "" && !strings.EqualFold(d.Message, strings.ReplaceAll(d.Code, "_", " ")) {
				b.WriteString(": " + d.Message)
			}
		} else {
			b.WriteString(d.Message)
		}
	}
	return b.String()
}

// Is maps the status to berth's error classes.
func (e *ResponseError) Is(target error) bool {
	switch target {
	case errdefs.ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden
	case errdefs.ErrInvalidArgument:
		return e.StatusCode == http.StatusBadRequest
	}
	return false
}

// HasCode reports whether the registry named code (e.g. "BLOB_UNKNOWN").
func (e *ResponseError) HasCode(code string) bool {
	for _, d := range e.Errors {
		if d.Code == code {
			return true
		}
	}
	return false
}

// responseError reads the error body of resp (bounded) and closes it.
func responseError(resp *http.Response) error {
	defer resp.Body.Close()
	e := &ResponseError{StatusCode: resp.StatusCode}
	if req := resp.Request; req != nil {
		e.Method = req.Method
		e.URL = cleanURL(req.URL.String())
	}
	if req := resp.Request; req == nil || req.Method != http.MethodHead {
		var body struct {
			Errors []ErrorDetail `json:"errors"`
		}
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(data, &body) == nil {
			e.Errors = body.Errors
		} else if s := strings.TrimSpace(string(data)); s != "" && len(s) < 512 {
			e.Errors = []ErrorDetail{{Message: s}}
		}
	}
	return e
}

// cleanURL drops the query (upload state, signatures) and user info.
func cleanURL(s string) string {
	s, _, _ = strings.Cut(s, "?")
	if i := strings.Index(s, "://"); i >= 0 {
		if at := strings.Index(s[i+3:], "@"); at >= 0 && !strings.Contains(s[i+3:i+3+at], "/") {
			s = s[:i+3] + s[i+3+at+1:]
		}
	}
	return s
}
