package registry

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// ErrorCode is one of the distribution spec's error codes.
type ErrorCode string

// The distribution spec's error codes.
const (
	CodeBlobUnknown         ErrorCode = "BLOB_UNKNOWN"
	CodeBlobUploadInvalid   ErrorCode = "BLOB_UPLOAD_INVALID"
	CodeBlobUploadUnknown   ErrorCode = "BLOB_UPLOAD_UNKNOWN"
	CodeDigestInvalid       ErrorCode = "DIGEST_INVALID"
	CodeManifestBlobUnknown ErrorCode = "MANIFEST_BLOB_UNKNOWN"
	CodeManifestInvalid     ErrorCode = "MANIFEST_INVALID"
	CodeManifestUnknown     ErrorCode = "MANIFEST_UNKNOWN"
	CodeNameInvalid         ErrorCode = "NAME_INVALID"
	CodeNameUnknown         ErrorCode = "NAME_UNKNOWN"
	CodeSizeInvalid         ErrorCode = "SIZE_INVALID"
	CodeUnauthorized        ErrorCode = "UNAUTHORIZED"
	CodeDenied              ErrorCode = "DENIED"
	CodeUnsupported         ErrorCode = "UNSUPPORTED"
	CodeTooManyRequests     ErrorCode = "TOOMANYREQUESTS"
)

// Status is the HTTP status the code is answered with, unless an Error
// says otherwise.
func (c ErrorCode) Status() int {
	switch c {
	case CodeBlobUnknown, CodeBlobUploadUnknown, CodeManifestUnknown,
		CodeNameUnknown, CodeManifestBlobUnknown:
		return http.StatusNotFound
	case CodeUnauthorized:
		return http.StatusUnauthorized
	case CodeDenied:
		return http.StatusForbidden
	case CodeUnsupported:
		return http.StatusMethodNotAllowed
	case CodeTooManyRequests:
		return http.StatusTooManyRequests
	}
	return http.StatusBadRequest
}

// Message is the spec's description of the code, the default message.
func (c ErrorCode) Message() string {
	switch c {
	case CodeBlobUnknown:
		return "blob unknown to registry"
	case CodeBlobUploadInvalid:
		return "blob upload invalid"
	case CodeBlobUploadUnknown:
		return "blob upload unknown to registry"
	case CodeDigestInvalid:
		return "provided digest did not match uploaded content"
	case CodeManifestBlobUnknown:
		return "manifest references a manifest or blob unknown to registry"
	case CodeManifestInvalid:
		return "manifest invalid"
	case CodeManifestUnknown:
		return "manifest unknown to registry"
	case CodeNameInvalid:
		return "invalid repository name"
	case CodeNameUnknown:
		return "repository name not known to registry"
	case CodeSizeInvalid:
		return "provided length did not match content length"
	case CodeUnauthorized:
		return "authentication required"
	case CodeDenied:
		return "requested access to the resource is denied"
	case CodeUnsupported:
		return "the operation is unsupported"
	case CodeTooManyRequests:
		return "too many requests"
	}
	return string(c)
}

// Error is one entry of the spec's error body. A handler returns it to
// answer the client; any other error is a 500 that tells the client
// nothing.
type Error struct {
	Code    ErrorCode `json:"code"`
	Message string    `json:"message,omitempty"`
	Detail  any       `json:"detail,omitempty"`
	// Status overrides Code.Status() when not zero (413 for a manifest
	// over the size limit, for one).
	Status int `json:"-"`
}

// NewError makes an Error with the code's default message and detail.
func NewError(code ErrorCode, detail any) *Error {
	return &Error{Code: code, Message: code.Message(), Detail: detail}
}

func (e *Error) Error() string {
	if e.Message != "" {
		return string(e.Code) + ": " + e.Message
	}
	return string(e.Code)
}

func (e *Error) status() int {
	if e.Status != 0 {
		return e.Status
	}
	return e.Code.Status()
}

// Errors is several Errors answered together, as a manifest with several
// unknown blobs is refused. The first one's status is the response's.
type Errors []*Error

func (es Errors) Error() string {
	if len(es) == 0 {
		return "no errors"
	}
	s := es[0].Error()
	if len(es) > 1 {
		s += " (and " + strconv.Itoa(len(es)-1) + " more)"
	}
	return s
}

// WriteError answers a request with the spec's JSON error body. Wrappers
// of the Registry (authentication, rate limits) use it to answer
// UNAUTHORIZED, DENIED or TOOMANYREQUESTS the way the registry does.
func WriteError(w http.ResponseWriter, errs ...*Error) {
	status := http.StatusInternalServerError
	if len(errs) > 0 {
		status = errs[0].status()
	}
	body, err := json.Marshal(struct {
		Errors []*Error `json:"errors"`
	}{errs})
	if err != nil {
		http.Error(w, "internal server error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
