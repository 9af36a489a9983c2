package observe

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRoute(t *testing.T) {
	for path, want := range map[string]string{
		"/v2/": "base", "/v2/_catalog": "catalog", "/v2/a/b/manifests/v1": "manifests",
		"/v2/a/blobs/sha256:x": "blobs", "/v2/a/blobs/uploads/": "uploads", "/v2/a/blobs/uploads/u1": "uploads",
		"/v2/a/tags/list": "tags", "/v2/a/referrers/sha256:x": "referrers", "/token": "token",
		"/metrics": "metrics", "/favicon.ico": "other",
	} {
		assert.Equal(t, want, Route(path), path)
	}
}

func TestMiddlewareCountsAndLogs(t *testing.T) {
	m := NewMetrics()
	m.AddGauge("berth_registry_gc_last_run_seconds", "When garbage collection last ran.", func() float64 { return 42 })
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	h := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method == http.MethodPut {
			w.WriteHeader(http.StatusCreated)
			return
		}
		_, _ = w.Write(append([]byte("got:"), body...))
	}), m, log)

	for range 2 {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/v2/app/manifests/v1", nil))
		assert.Equal(t, "got:", w.Body.String())
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("PUT", "/v2/app/manifests/v1", strings.NewReader("12345")))
	assert.Equal(t, http.StatusCreated, w.Code)

	var out bytes.Buffer
	m.Write(&out)
	text := out.String()
	assert.Contains(t, text, `berth_registry_requests_total{route="manifests",method="GET",code="200"} 2`)
	assert.Contains(t, text, `berth_registry_requests_total{route="manifests",method="PUT",code="201"} 1`)
	assert.Contains(t, text, `berth_registry_request_duration_seconds_count{route="manifests"} 3`)
	assert.Contains(t, text, `berth_registry_request_duration_seconds_bucket{route="manifests",le="+Inf"} 3`)
	assert.Contains(t, text, "berth_registry_received_bytes_total 5\n")
	assert.Contains(t, text, "berth_registry_sent_bytes_total 8\n")
	assert.Contains(t, text, "berth_registry_gc_last_run_seconds 42\n")

	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	require.Len(t, lines, 3)
	var entry map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[2]), &entry))
	assert.Equal(t, "PUT", entry["method"])
	assert.Equal(t, "manifests", entry["route"])
	assert.EqualValues(t, 201, entry["status"])
	assert.EqualValues(t, 5, entry["bytes_in"])
}
