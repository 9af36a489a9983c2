package remote

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"syscall"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-containers/berth/image/mediatype"
	"github.com/berth-containers/berth/internal/errdefs"
)

func TestPlanChunks(t *testing.T) {
	tests := []struct {
		size, chunk int64
		want        []Chunk
	}{
		{0, 10, nil},
		{5, 10, []Chunk{{0, 5}}},
		{10, 10, []Chunk{{0, 10}}},
		{25, 10, []Chunk{{0, 10}, {10, 10}, {20, 5}}},
		{3, 1, []Chunk{{0, 1}, {1, 1}, {2, 1}}},
		{10, 0, nil},
	}
	for _, tt := range tests {
		if got := PlanChunks(tt.size, tt.chunk); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("PlanChunks(%d, %d) = %v, want %v", tt.size, tt.chunk, got, tt.want)
		}
	}
	if got := (Chunk{Offset: 10, Length: 10}).ContentRange(); got != "10-19" {
		t.Errorf("ContentRange = %q", got)
	}
}

func TestRetryDelay(t *testing.T) {
	p := RetryPolicy{InitialDelay: 100 * time.Millisecond, MaxDelay: time.Second}.withDefaults()
	for attempt, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 30: time.Second} {
		for i := 0; i < 20; i++ {
			got := p.Delay(attempt, "")
			if got > want || got < want*3/4 {
				t.Fatalf("Delay(%d) = %v, want within [%v, %v]", attempt, got, want*3/4, want)
			}
		}
	}
	if got := p.Delay(1, "0"); got != 0 {
		t.Errorf("Delay with Retry-After 0 = %v", got)
	}
	if got := p.Delay(1, "3600"); got != time.Second {
		t.Errorf("Delay with Retry-After 3600 = %v, want the 1s cap", got)
	}
	now := time.Now()
	if d, ok := parseRetryAfter(now.Add(30*time.Second).UTC().Format(http.TimeFormat), now); !ok || d < 28*time.Second || d > 30*time.Second {
		t.Errorf("parseRetryAfter(date) = %v, %v", d, ok)
	}
	if _, ok := parseRetryAfter("soon", now); ok {
		t.Error("parseRetryAfter accepted garbage")
	}
}

func TestRetryable(t *testing.T) {
	for code, want := range map[int]bool{200: false, 400: false, 401: false, 404: false, 408: true, 429: true, 500: true, 501: false, 502: true, 503: true, 504: true} {
		if got := retryableStatus(code); got != want {
			t.Errorf("retryableStatus(%d) = %v", code, got)
		}
	}
	errs := map[error]bool{
		syscall.ECONNREFUSED:                                                     true,
		fmt.Errorf("dial: %w", syscall.ECONNRESET):                               true,
		&url.Error{Op: "Get", URL: "x", Err: errors.New("tls: bad certificate")}: false,
		errors.New("something else"):                                             false,
	}
	for err, want := range errs {
		if got := retryableError(err); got != want {
			t.Errorf("retryableError(%v) = %v", err, got)
		}
	}
	get, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
	post, _ := http.NewRequest(http.MethodPost, "http://x/", nil)
	if !idempotent(get) || idempotent(post) {
		t.Error("idempotent: GET must be, POST must not")
	}
}

func TestInsecure(t *testing.T) {
	list := []string{"reg.example.com:5000", "plain.example.com", "10.1.0.0/16", "[fd00::1]:443"}
	tests := map[string]bool{
		"localhost":            true,
		"localhost:5000":       true,
		"127.0.0.1:5000":       true,
		"127.1.2.3":            true,
		"[::1]:5000":           true,
		"reg.example.com:5000": true,
		"reg.example.com":      false,
		"reg.example.com:5001": false,
		"plain.example.com":    true,
		"plain.example.com:99": true,
		"10.1.2.3:5000":        true,
		"10.2.0.1":             false,
		"[fd00::1]:443":        true,
		"registry-1.docker.io": false,
	}
	for host, want := range tests {
		if got := isInsecure(host, list); got != want {
			t.Errorf("isInsecure(%q) = %v, want %v", host, got, want)
		}
	}
	if err := validateInsecure([]string{"https://x"}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("validateInsecure accepted a URL: %v", err)
	}
}

func TestNormalizeRegistry(t *testing.T) {
	tests := map[string]string{
		"":                            "docker.io",
		"docker.io":                   "docker.io",
		"index.docker.io":             "docker.io",
		"https://index.docker.io/v1/": "docker.io",
		"registry-1.docker.io":        "docker.io",
		"localhost:5000":              "localhost:5000",
		"http://127.0.0.1:5000/v2/":   "127.0.0.1:5000",
		"reg.example.com/some/path":   "reg.example.com",
	}
	for in, want := range tests {
		if got, err := NormalizeRegistry(in); err != nil || got != want {
			t.Errorf("NormalizeRegistry(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"bad host", "-x.com", "https://"} {
		if got, err := NormalizeRegistry(in); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("NormalizeRegistry(%q) = %q, %v; want invalid", in, got, err)
		}
	}
	if endpointHost("docker.io") != "registry-1.docker.io" || endpointHost("h:1") != "h:1" {
		t.Error("endpointHost")
	}
}

func TestManifestMediaType(t *testing.T) {
	tests := []struct {
		ct, body, want string
	}{
		{ocispec.MediaTypeImageManifest + "; charset=utf-8", `{}`, ocispec.MediaTypeImageManifest},
		{"application/json", `{"mediaType":"` + mediatype.DockerManifestList + `"}`, mediatype.DockerManifestList},
		{"text/plain", `{"schemaVersion":2,"manifests":[]}`, ocispec.MediaTypeImageIndex},
		{"", `{"schemaVersion":2,"config":{}}`, ocispec.MediaTypeImageManifest},
		{"application/json", `not json`, "application/json"},
	}
	for _, tt := range tests {
		if got := manifestMediaType(tt.ct, []byte(tt.body)); got != tt.want {
			t.Errorf("manifestMediaType(%q, %s) = %q, want %q", tt.ct, tt.body, got, tt.want)
		}
	}
}

func TestHeaderParsing(t *testing.T) {
	req, _ := http.NewRequest(http.MethodGet, "https://r.example/v2/a/tags/list", nil)
	resp := &http.Response{Request: req, Header: http.Header{"Link": {`</v2/a/tags/list?last=x&n=2>; rel="next"`}}}
	if got, err := nextLink(resp); err != nil || got != "https://r.example/v2/a/tags/list?last=x&n=2" {
		t.Errorf("nextLink = %q, %v", got, err)
	}
	resp.Header = http.Header{"Link": {`<https://o.example/x>; rel="prev"`}}
	if got, _ := nextLink(resp); got != "" {
		t.Errorf("nextLink(prev) = %q", got)
	}
	if n, ok := rangeStart("bytes 100-199/200"); !ok || n != 100 {
		t.Errorf("rangeStart = %d, %v", n, ok)
	}
	if _, ok := rangeStart("100-199"); ok {
		t.Error("rangeStart accepted a range without unit")
	}
	for in, want := range map[string]int64{"0-1023": 1023, "bytes=0-9": 9} {
		if n, ok := rangeEnd(in); !ok || n != want {
			t.Errorf("rangeEnd(%q) = %d, %v", in, n, ok)
		}
	}
	if got := cleanURL("https://u:p@h/v2/a/blobs/uploads/x?_state=secret"); got != "https://h/v2/a/blobs/uploads/x" {
		t.Errorf("cleanURL = %q", got)
	}
}

func TestResponseErrorClasses(t *testing.T) {
	for code, class := range map[int]error{404: errdefs.ErrNotFound, 401: ErrUnauthorized, 403: ErrUnauthorized, 400: errdefs.ErrInvalidArgument} {
		err := fmt.Errorf("wrapped: %w", &ResponseError{StatusCode: code})
		if !errors.Is(err, class) {
			t.Errorf("status %d is not %v", code, class)
		}
	}
	e := &ResponseError{Method: "GET", URL: "https://h/v2/a/manifests/x", StatusCode: 404,
		Errors: []ErrorDetail{{Code: "MANIFEST_UNKNOWN", Message: "manifest unknown"}}}
	if got := e.Error(); got != "GET https://h/v2/a/manifests/x: 404 Not Found: manifest unknown" {
		t.Errorf("Error() = %q", got)
	}
	if !e.HasCode("MANIFEST_UNKNOWN") || errors.Is(e, ErrUnauthorized) {
		t.Error("HasCode / Is")
	}
}
