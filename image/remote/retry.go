package remote

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"
)

// RetryPolicy bounds the retries of idempotent requests (GET, HEAD, and
// PUT or DELETE whose body can be replayed) after a connection error or a
// 429 or 5xx answer: at most MaxAttempts tries, waits growing from
// InitialDelay and doubling up to MaxDelay (a Retry-After header is
// honoured up to MaxDelay), and no retry that would end after MaxElapsed.
type RetryPolicy struct {
	MaxAttempts  int           // tries in all, the first included; zero means 5, one disables retries
	InitialDelay time.Duration // zero means 200ms
	MaxDelay     time.Duration // zero means 5s
	MaxElapsed   time.Duration // zero means 1 minute
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 5
	}
	if p.InitialDelay <= 0 {
		p.InitialDelay = 200 * time.Millisecond
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = 5 * time.Second
	}
	if p.MaxElapsed <= 0 {
		p.MaxElapsed = time.Minute
	}
	return p
}

// Delay is the wait before try number attempt+1 after attempt tries
// failed: InitialDelay doubled per earlier failure, capped at MaxDelay,
// with up to a quarter taken off at random so that clients spread out.
// retryAfter, the server's Retry-After header, wins when it is valid.
func (p RetryPolicy) Delay(attempt int, retryAfter string) time.Duration {
	if d, ok := parseRetryAfter(retryAfter, time.Now()); ok {
		return min(d, p.MaxDelay)
	}
	d := p.InitialDelay
	for i := 1; i < attempt && d < p.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, p.MaxDelay)
	return d - time.Duration(rand.Int64N(int64(d)/4+1))
}

// parseRetryAfter reads seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// retryableStatus: throttling and server-side failures that may pass.
func retryableStatus(code int) bool {
	switch code {
	case http.StatusTooManyRequests, http.StatusRequestTimeout,
		http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// retryableError: connections refused, reset or cut short, and timeouts.
// TLS and certificate failures will not heal by trying again.
func retryableError(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var recErr tls.RecordHeaderError
	var certErr *tls.CertificateVerificationError
	var authErr x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	if errors.As(err, &recErr) || errors.As(err, &certErr) || errors.As(err, &authErr) || errors.As(err, &hostErr) {
		return false
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// idempotent reports whether req may be sent again: a safe or idempotent
// method with no body or a body that can be produced again.
func idempotent(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodOptions:
	default:
		return false
	}
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// retryTransport retries idempotent requests under a RetryPolicy.
type retryTransport struct {
	next   http.RoundTripper
	policy RetryPolicy
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !idempotent(req) || t.policy.MaxAttempts <= 1 {
		return t.next.RoundTrip(req)
	}
	start := time.Now()
	try := req
	for attempt := 1; ; attempt++ {
		resp, err := t.next.RoundTrip(try)
		again := (err == nil && retryableStatus(resp.StatusCode)) || (err != nil && retryableError(err))
		if !again || attempt >= t.policy.MaxAttempts {
			return resp, err
		}
		retryAfter := ""
		if resp != nil {
			retryAfter = resp.Header.Get("Retry-After")
		}
		delay := t.policy.Delay(attempt, retryAfter)
		if time.Since(start)+delay > t.policy.MaxElapsed {
			return resp, err
		}
		next, rerr := replay(req)
		if rerr != nil {
			return resp, err
		}
		if resp != nil {
			drainClose(resp.Body)
		}
		if err := sleep(req.Context(), delay); err != nil {
			return nil, err
		}
		try = next
	}
}

// replay copies req with a fresh body for another try.
func replay(req *http.Request) (*http.Request, error) {
	next := req.Clone(req.Context())
	if req.Body != nil && req.Body != http.NoBody {
		body, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		next.Body = body
	}
	return next, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// drainClose reads a little of a body before closing it, so that its
// connection can be reused.
func drainClose(rc io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, rc, 64<<10)
	_ = rc.Close()
}
