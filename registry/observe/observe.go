// Package observe makes the registry visible: an access log line per
// request (structured, through log/slog) and Prometheus metrics served in
// the text exposition format. The metrics are hand-kept counters and
// histograms, cheap to update and to import.
package observe

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// durationBuckets are the request-duration histogram's upper bounds, in
// seconds.
var durationBuckets = [...]float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// key identifies one counter: the endpoint kind, method and status.
type key struct {
	route  string
	method string
	status int
}

// histogram counts observations per bucket, plus their sum.
type histogram struct {
	buckets [len(durationBuckets) + 1]uint64 // the last is +Inf
	sum     float64
	count   uint64
}

// Metrics are the registry's request metrics.
type Metrics struct {
	mu        sync.Mutex
	requests  map[key]uint64
	durations map[string]*histogram // by route
	bytesIn   atomic.Uint64
	bytesOut  atomic.Uint64
	inFlight  atomic.Int64
	extra     []func(io.Writer)
}

// NewMetrics returns empty metrics.
func NewMetrics() *Metrics {
	return &Metrics{requests: map[key]uint64{}, durations: map[string]*histogram{}}
}

// AddGauge adds a gauge read when the metrics are scraped (for example
// the garbage collector's last run).
func (m *Metrics) AddGauge(name, help string, read func() float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.extra = append(m.extra, func(w io.Writer) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %s\n", name, help, name, name, formatFloat(read()))
	})
}

func (m *Metrics) observe(k key, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[k]++
	h := m.durations[k.route]
	if h == nil {
		h = &histogram{}
		m.durations[k.route] = h
	}
	s := d.Seconds()
	i, _ := slices.BinarySearch(durationBuckets[:], s)
	h.buckets[i]++
	h.sum += s
	h.count++
}

// ServeHTTP writes the metrics in Prometheus' text format.
func (m *Metrics) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	m.Write(w)
}

// Write writes the metrics in Prometheus' text format.
func (m *Metrics) Write(w io.Writer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fmt.Fprint(w, "# HELP berth_registry_requests_total Requests served, by endpoint, method and status.\n# TYPE berth_registry_requests_total counter\n")
	keys := make([]key, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int {
		return strings.Compare(fmt.Sprint(a.route, a.method, a.status), fmt.Sprint(b.route, b.method, b.status))
	})
	for _, k := range keys {
		fmt.Fprintf(w, "berth_registry_requests_total{route=%q,method=%q,code=\"%d\"} %d\n", k.route, k.method, k.status, m.requests[k])
	}
	fmt.Fprint(w, "# HELP berth_registry_request_duration_seconds Time to serve a request, by endpoint.\n# TYPE berth_registry_request_duration_seconds histogram\n")
	routes := make([]string, 0, len(m.durations))
	for r := range m.durations {
		routes = append(routes, r)
	}
	slices.Sort(routes)
	for _, r := range routes {
		h := m.durations[r]
		var cum uint64
		for i, le := range durationBuckets {
			cum += h.buckets[i]
			fmt.Fprintf(w, "berth_registry_request_duration_seconds_bucket{route=%q,le=%q} %d\n", r, formatFloat(le), cum)
		}
		fmt.Fprintf(w, "berth_registry_request_duration_seconds_bucket{route=%q,le=\"+Inf\"} %d\n", r, h.count)
		fmt.Fprintf(w, "berth_registry_request_duration_seconds_sum{route=%q} %s\n", r, formatFloat(h.sum))
		fmt.Fprintf(w, "berth_registry_request_duration_seconds_count{route=%q} %d\n", r, h.count)
	}
	fmt.Fprintf(w, "# HELP berth_registry_received_bytes_total Request body bytes read.\n# TYPE berth_registry_received_bytes_total counter\nberth_registry_received_bytes_total %d\n", m.bytesIn.Load())
	fmt.Fprintf(w, "# HELP berth_registry_sent_bytes_total Response body bytes written.\n# TYPE berth_registry_sent_bytes_total counter\nberth_registry_sent_bytes_total %d\n", m.bytesOut.Load())
	fmt.Fprintf(w, "# HELP berth_registry_requests_in_flight Requests being served.\n# TYPE berth_registry_requests_in_flight gauge\nberth_registry_requests_in_flight %d\n", m.inFlight.Load())
	for _, f := range m.extra {
		f(w)
	}
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// Route names the endpoint kind of a request path, the metrics' and the
// logs' route label: base, catalog, manifests, blobs, uploads, tags,
// referrers, token, metrics or other.
func Route(path string) string {
	p, ok := strings.CutPrefix(path, "/v2/")
	switch {
	case path == "/v2" || path == "/v2/":
		return "base"
	case path == "/token":
		return "token"
	case path == "/metrics":
		return "metrics"
	case !ok:
		return "other"
	case p == "_catalog":
		return "catalog"
	case strings.Contains(p, "/blobs/uploads"):
		return "uploads"
	}
	for _, r := range []string{"manifests", "blobs", "tags", "referrers"} {
		if strings.Contains(p, "/"+r+"/") {
			return r
		}
	}
	return "other"
}

// Middleware counts, times and logs every request. log may be nil (no
// access log).
func Middleware(next http.Handler, m *Metrics, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		m.inFlight.Add(1)
		defer m.inFlight.Add(-1)
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		body := &countingReader{ReadCloser: r.Body}
		if r.Body != nil {
			r.Body = body
		}
		next.ServeHTTP(rec, r)
		d := time.Since(start)
		route := Route(r.URL.Path)
		m.observe(key{route: route, method: r.Method, status: rec.status}, d)
		m.bytesIn.Add(uint64(body.n))
		m.bytesOut.Add(uint64(rec.n))
		if log != nil {
			log.LogAttrs(r.Context(), slog.LevelInfo, "request",
				slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("route", route),
				slog.Int("status", rec.status), slog.Int64("bytes_in", body.n), slog.Int64("bytes_out", rec.n),
				slog.Float64("duration_ms", float64(d.Microseconds())/1000), slog.String("remote", r.RemoteAddr),
				slog.String("user_agent", r.UserAgent()))
		}
	})
}

// recorder remembers the status and counts the body written.
type recorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
	n           int64
}

func (r *recorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wroteHeader = true
	n, err := r.ResponseWriter.Write(b)
	r.n += int64(n)
	return n, err
}

// Flush lets streaming handlers flush through the recorder.
func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// countingReader counts the request body read.
type countingReader struct {
	io.ReadCloser
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n += int64(n)
	return n, err
}
