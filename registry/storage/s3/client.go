package s3

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/berth-containers/berth/internal/errdefs"
)

// client speaks the few S3 REST calls the driver needs, signed with
// Signature Version 4. It is written here rather than taken from an SDK
// because the SDKs compile regular expressions and probe the CPU when a
// program starts, a cost every berth process would pay.
type client struct {
	http      *http.Client
	scheme    string
	host      string // endpoint host[:port]
	basePath  string // endpoint path, "" or "/sub"
	region    string
	bucket    string
	pathStyle bool
	accessKey string
	secretKey string
	token     string
	// signPayload hashes bodies into the signature; over TLS the
	// transport already protects them, and hashing costs CPU.
	signPayload bool
}

// emptySHA256 is the SHA-256 of an empty body.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// maxAttempts bounds the tries of one request on errors worth retrying.
const maxAttempts = 3

// request is one S3 call.
type request struct {
	method string
	key    string // object key; "" for the bucket itself
	query  url.Values
	header http.Header
	body   []byte
}

// apiError is an error response of the S3 service.
type apiError struct {
	Status  int    `xml:"-"`
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

func (e *apiError) Error() string {
	if e.Message != "" {
		return fmt.Sprintf("s3: %s (%d): %s", e.Code, e.Status, e.Message)
	}
	return fmt.Sprintf("s3: %s (%d)", e.Code, e.Status)
}

// Is makes missing keys, uploads and buckets errdefs.ErrNotFound errors.
func (e *apiError) Is(target error) bool {
	if target != errdefs.ErrNotFound {
		return false
	}
	switch e.Code {
	case "NoSuchKey", "NoSuchUpload", "NoSuchBucket", "NotFound":
		return true
	}
	return e.Status == http.StatusNotFound
}

// errorCode is the S3 error code of err, "" when it is not an S3 error.
func errorCode(err error) string {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

// do sends r and returns the response of a 2xx status; any other
// status is an *apiError. The caller closes the body.
func (c *client) do(ctx context.Context, r request) (*http.Response, error) {
	var lastErr error
	for attempt := range maxAttempts {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Duration(attempt*attempt) * 100 * time.Millisecond):
			}
		}
		resp, err := c.send(ctx, r)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			lastErr = err
			continue
		}
		if resp.StatusCode/100 == 2 {
			return resp, nil
		}
		apiErr := readError(resp)
		if !retryable(resp.StatusCode) {
			return nil, apiErr
		}
		lastErr = apiErr
	}
	return nil, lastErr
}

// retryable reports whether a status is a passing failure of the service.
func retryable(status int) bool {
	switch status {
	case http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// readError turns a failed response into an *apiError and closes it.
func readError(resp *http.Response) error {
	defer resp.Body.Close()
	e := &apiError{Status: resp.StatusCode}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if len(b) > 0 {
		_ = xml.Unmarshal(b, e)
	}
	if e.Code == "" {
		e.Code = http.StatusText(resp.StatusCode)
		if resp.StatusCode == http.StatusNotFound {
			e.Code = "NotFound"
		}
	}
	return e
}

// send signs and sends r once.
func (c *client) send(ctx context.Context, r request) (*http.Response, error) {
	host := c.host
	path := c.basePath + "/"
	if c.pathStyle {
		path += c.bucket + "/"
	} else {
		host = c.bucket + "." + c.host
	}
	if r.key != "" {
		path += r.key
	} else if c.pathStyle {
		path = strings.TrimSuffix(path, "/")
	}
	escaped := escapePath(path)
	rawQuery := canonicalQuery(r.query)
	u := &url.URL{Scheme: c.scheme, Host: host, Path: path, RawPath: escaped, RawQuery: rawQuery}

	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("s3: %s %s: %w", r.method, r.key, err)
	}
	// u.String keeps RawPath; parse again to be sure the path is sent
	// exactly as it is signed.
	req.URL.RawPath = escaped
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	req.ContentLength = int64(len(r.body))
	c.sign(req, host, escaped, rawQuery, r.body, time.Now().UTC())
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("s3: %s %s: %w", r.method, r.key, err)
	}
	return resp, nil
}

// sign adds the Signature Version 4 headers to req.
func (c *client) sign(req *http.Request, host, escapedPath, rawQuery string, body []byte, now time.Time) {
	amzDate := now.Format("20060102T150405Z")
	date := amzDate[:8]
	payload := "UNSIGNED-PAYLOAD"
	if c.signPayload {
		if len(body) == 0 {
			payload = emptySHA256
		} else {
			sum := sha256.Sum256(body)
			payload = hex.EncodeToString(sum[:])
		}
	}
	req.Host = host
	req.Header.Set("X-Amz-Date", amzDate)
	req.Header.Set("X-Amz-Content-Sha256", payload)
	if c.token != "" {
		req.Header.Set("X-Amz-Security-Token", c.token)
	}
	if c.accessKey == "" {
		return
	}

	names := []string{"host"}
	values := map[string]string{"host": host}
	for k, vs := range req.Header {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "x-amz-") || lk == "content-md5" || lk == "content-type" || lk == "range" {
			names = append(names, lk)
			values[lk] = strings.TrimSpace(strings.Join(vs, ","))
		}
	}
	sort.Strings(names)
	var canonHeaders strings.Builder
	for _, n := range names {
		canonHeaders.WriteString(n + ":" + values[n] + "\n")
	}
	signed := strings.Join(names, ";")
	canonical := strings.Join([]string{req.Method, escapedPath, rawQuery, canonHeaders.String(), signed, payload}, "\n")
	scope := date + "/" + c.region + "/s3/aws4_request"
	hash := sha256.Sum256([]byte(canonical))
	toSign := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(hash[:])

	key := hmacSHA256([]byte("AWS4"+c.secretKey), date)
	key = hmacSHA256(key, c.region)
	key = hmacSHA256(key, "s3")
	key = hmacSHA256(key, "aws4_request")
	sig := hex.EncodeToString(hmacSHA256(key, toSign))
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+c.accessKey+"/"+scope+
		", SignedHeaders="+signed+", Signature="+sig)
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

// escapePath encodes a request path as Signature Version 4 wants it:
// every byte but the unreserved ones and "/" percent-encoded.
func escapePath(p string) string {
	return escape(p, true)
}

// escape percent-encodes s the S3 way; keepSlash leaves "/" as it is.
func escape(s string, keepSlash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case 'A' <= ch && ch <= 'Z', 'a' <= ch && ch <= 'z', '0' <= ch && ch <= '9',
			ch == '-', ch == '_', ch == '.', ch == '~', ch == '/' && keepSlash:
			b.WriteByte(ch)
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[ch>>4])
			b.WriteByte(hexDigits[ch&15])
		}
	}
	return b.String()
}

// canonicalQuery encodes q sorted by name, as the signature and the
// request both use it.
func canonicalQuery(q url.Values) string {
	if len(q) == 0 {
		return ""
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		vs := append([]string(nil), q[k]...)
		sort.Strings(vs)
		for _, v := range vs {
			parts = append(parts, escape(k, false)+"="+escape(v, false))
		}
	}
	return strings.Join(parts, "&")
}

// decodeXML reads an XML response body into v and closes it. Some calls
// answer 200 with an error document; that comes back as an *apiError.
func decodeXML(resp *http.Response, v any) error {
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("s3: read response: %w", err)
	}
	if bytes.Contains(b[:min(len(b), 256)], []byte("<Error>")) {
		e := &apiError{Status: resp.StatusCode}
		if xml.Unmarshal(b, e) == nil && e.Code != "" {
			return e
		}
	}
	if v == nil {
		return nil
	}
	if err := xml.Unmarshal(b, v); err != nil {
		return fmt.Errorf("s3: decode response: %w", err)
	}
	return nil
}

// objectMeta is what HEAD tells of an object.
type objectMeta struct {
	size    int64
	modTime time.Time
}

// head describes the object at key.
func (c *client) head(ctx context.Context, key string) (objectMeta, error) {
	resp, err := c.do(ctx, request{method: http.MethodHead, key: key})
	if err != nil {
		return objectMeta{}, err
	}
	resp.Body.Close()
	mod, _ := http.ParseTime(resp.Header.Get("Last-Modified"))
	return objectMeta{size: resp.ContentLength, modTime: mod}, nil
}

// get reads the object at key from offset on; the caller closes the body.
func (c *client) get(ctx context.Context, key string, offset int64) (io.ReadCloser, error) {
	h := http.Header{}
	if offset > 0 {
		h.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
	}
	resp, err := c.do(ctx, request{method: http.MethodGet, key: key, header: h})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// put writes body as the object at key.
func (c *client) put(ctx context.Context, key string, body []byte) error {
	resp, err := c.do(ctx, request{method: http.MethodPut, key: key, body: nonNil(body)})
	if err != nil {
		return err
	}
	return drain(resp)
}

// remove deletes the object at key; a missing key is no error in S3.
func (c *client) remove(ctx context.Context, key string) error {
	resp, err := c.do(ctx, request{method: http.MethodDelete, key: key})
	if err != nil {
		return err
	}
	return drain(resp)
}

// maxDeleteKeys is how many keys one DeleteObjects call takes.
const maxDeleteKeys = 1000

// removeKeys deletes keys in batches.
func (c *client) removeKeys(ctx context.Context, keys []string) error {
	for len(keys) > 0 {
		n := min(len(keys), maxDeleteKeys)
		if err := c.removeBatch(ctx, keys[:n]); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}

type deleteObject struct {
	Key string `xml:"Key"`
}

type deleteRequest struct {
	XMLName xml.Name       `xml:"Delete"`
	Quiet   bool           `xml:"Quiet"`
	Objects []deleteObject `xml:"Object"`
}

type deleteResult struct {
	Errors []struct {
		Key     string `xml:"Key"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	} `xml:"Error"`
}

func (c *client) removeBatch(ctx context.Context, keys []string) error {
	dr := deleteRequest{Quiet: true}
	for _, k := range keys {
		dr.Objects = append(dr.Objects, deleteObject{Key: k})
	}
	body, err := xml.Marshal(dr)
	if err != nil {
		return fmt.Errorf("s3: encode delete: %w", err)
	}
	sum := md5.Sum(body)
	h := http.Header{}
	h.Set("Content-Md5", base64.StdEncoding.EncodeToString(sum[:]))
	h.Set("Content-Type", "application/xml")
	resp, err := c.do(ctx, request{method: http.MethodPost, query: url.Values{"delete": {""}}, header: h, body: body})
	if err != nil {
		return err
	}
	var res deleteResult
	if err := decodeXML(resp, &res); err != nil {
		return err
	}
	for _, e := range res.Errors {
		if e.Code != "NoSuchKey" {
			return fmt.Errorf("s3: delete %s: %s: %s", e.Key, e.Code, e.Message)
		}
	}
	return nil
}

// listEntry is an object a listing returns.
type listEntry struct {
	Key          string    `xml:"Key"`
	LastModified time.Time `xml:"LastModified"`
	Size         int64     `xml:"Size"`
}

type listResult struct {
	IsTruncated           bool        `xml:"IsTruncated"`
	NextContinuationToken string      `xml:"NextContinuationToken"`
	Contents              []listEntry `xml:"Contents"`
	CommonPrefixes        []struct {
		Prefix string `xml:"Prefix"`
	} `xml:"CommonPrefixes"`
}

// list calls fn for each page of keys under prefix, split at delimiter
// when one is given, at most maxKeys a page (0 for the service's
// default), until fn returns false or the listing ends.
func (c *client) list(ctx context.Context, prefix, delimiter string, maxKeys int, fn func(*listResult) (bool, error)) error {
	token := ""
	for {
		q := url.Values{"list-type": {"2"}, "prefix": {prefix}}
		if delimiter != "" {
			q.Set("delimiter", delimiter)
		}
		if maxKeys > 0 {
			q.Set("max-keys", strconv.Itoa(maxKeys))
		}
		if token != "" {
			q.Set("continuation-token", token)
		}
		resp, err := c.do(ctx, request{method: http.MethodGet, query: q})
		if err != nil {
			return err
		}
		var res listResult
		if err := decodeXML(resp, &res); err != nil {
			return err
		}
		more, err := fn(&res)
		if err != nil || !more || !res.IsTruncated || res.NextContinuationToken == "" {
			return err
		}
		token = res.NextContinuationToken
	}
}

// createUpload starts a multipart upload at key.
func (c *client) createUpload(ctx context.Context, key string) (string, error) {
	resp, err := c.do(ctx, request{method: http.MethodPost, key: key, query: url.Values{"uploads": {""}}})
	if err != nil {
		return "", err
	}
	var res struct {
		UploadID string `xml:"UploadId"`
	}
	if err := decodeXML(resp, &res); err != nil {
		return "", err
	}
	if res.UploadID == "" {
		return "", fmt.Errorf("s3: create upload %s: no upload id", key)
	}
	return res.UploadID, nil
}

// part is one part of a multipart upload.
type part struct {
	Number int    `xml:"PartNumber"`
	ETag   string `xml:"ETag"`
	Size   int64  `xml:"Size"`
}

// uploadPart stores body as part number n of the upload.
func (c *client) uploadPart(ctx context.Context, key, uploadID string, n int, body []byte) (part, error) {
	q := url.Values{"partNumber": {strconv.Itoa(n)}, "uploadId": {uploadID}}
	resp, err := c.do(ctx, request{method: http.MethodPut, key: key, query: q, body: nonNil(body)})
	if err != nil {
		return part{}, err
	}
	etag := resp.Header.Get("ETag")
	if err := drain(resp); err != nil {
		return part{}, err
	}
	return part{Number: n, ETag: etag, Size: int64(len(body))}, nil
}

// copyPart copies bytes first..last of the object at src as part n.
func (c *client) copyPart(ctx context.Context, key, uploadID string, n int, src string, first, last int64) (part, error) {
	q := url.Values{"partNumber": {strconv.Itoa(n)}, "uploadId": {uploadID}}
	h := http.Header{}
	h.Set("X-Amz-Copy-Source", c.copySource(src))
	h.Set("X-Amz-Copy-Source-Range", fmt.Sprintf("bytes=%d-%d", first, last))
	resp, err := c.do(ctx, request{method: http.MethodPut, key: key, query: q, header: h})
	if err != nil {
		return part{}, err
	}
	var res struct {
		ETag string `xml:"ETag"`
	}
	if err := decodeXML(resp, &res); err != nil {
		return part{}, err
	}
	return part{Number: n, ETag: res.ETag, Size: last - first + 1}, nil
}

// listParts returns every part of the upload, in order.
func (c *client) listParts(ctx context.Context, key, uploadID string) ([]part, error) {
	var parts []part
	marker := ""
	for {
		q := url.Values{"uploadId": {uploadID}}
		if marker != "" {
			q.Set("part-number-marker", marker)
		}
		resp, err := c.do(ctx, request{method: http.MethodGet, key: key, query: q})
		if err != nil {
			return nil, err
		}
		var res struct {
			IsTruncated          bool   `xml:"IsTruncated"`
			NextPartNumberMarker string `xml:"NextPartNumberMarker"`
			Parts                []part `xml:"Part"`
		}
		if err := decodeXML(resp, &res); err != nil {
			return nil, err
		}
		parts = append(parts, res.Parts...)
		if !res.IsTruncated || res.NextPartNumberMarker == "" || res.NextPartNumberMarker == marker {
			sort.Slice(parts, func(i, j int) bool { return parts[i].Number < parts[j].Number })
			return parts, nil
		}
		marker = res.NextPartNumberMarker
	}
}

type completeRequest struct {
	XMLName xml.Name `xml:"CompleteMultipartUpload"`
	Parts   []struct {
		Number int    `xml:"PartNumber"`
		ETag   string `xml:"ETag"`
	} `xml:"Part"`
}

// completeUpload joins the parts into the object at key.
func (c *client) completeUpload(ctx context.Context, key, uploadID string, parts []part) error {
	var cr completeRequest
	for _, p := range parts {
		cr.Parts = append(cr.Parts, struct {
			Number int    `xml:"PartNumber"`
			ETag   string `xml:"ETag"`
		}{p.Number, p.ETag})
	}
	body, err := xml.Marshal(cr)
	if err != nil {
		return fmt.Errorf("s3: encode complete: %w", err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/xml")
	resp, err := c.do(ctx, request{method: http.MethodPost, key: key, query: url.Values{"uploadId": {uploadID}}, header: h, body: body})
	if err != nil {
		return err
	}
	return decodeXML(resp, nil)
}

// abortUpload drops the upload and its parts.
func (c *client) abortUpload(ctx context.Context, key, uploadID string) error {
	resp, err := c.do(ctx, request{method: http.MethodDelete, key: key, query: url.Values{"uploadId": {uploadID}}})
	if err != nil {
		return err
	}
	return drain(resp)
}

// pendingUpload is a multipart upload in progress.
type pendingUpload struct {
	Key      string `xml:"Key"`
	UploadID string `xml:"UploadId"`
}

// maxListPages bounds the pages of one ListMultipartUploads walk, so a
// service that keeps answering "truncated" cannot hold a call forever.
const maxListPages = 10000

// listUploads returns the multipart uploads in progress whose key
// begins with prefix.
func (c *client) listUploads(ctx context.Context, prefix string) ([]pendingUpload, error) {
	var out []pendingUpload
	keyMarker, idMarker := "", ""
	for range maxListPages {
		q := url.Values{"uploads": {""}, "prefix": {prefix}}
		if keyMarker != "" {
			q.Set("key-marker", keyMarker)
			q.Set("upload-id-marker", idMarker)
		}
		resp, err := c.do(ctx, request{method: http.MethodGet, query: q})
		if err != nil {
			return nil, err
		}
		var res struct {
			IsTruncated        bool            `xml:"IsTruncated"`
			NextKeyMarker      string          `xml:"NextKeyMarker"`
			NextUploadIDMarker string          `xml:"NextUploadIdMarker"`
			Uploads            []pendingUpload `xml:"Upload"`
		}
		if err := decodeXML(resp, &res); err != nil {
			return nil, err
		}
		out = append(out, res.Uploads...)
		if !res.IsTruncated || res.NextKeyMarker == "" {
			return out, nil
		}
		keyMarker, idMarker = res.NextKeyMarker, res.NextUploadIDMarker
	}
	return nil, fmt.Errorf("s3: list uploads under %q: too many pages", prefix)
}

// copyObject copies the object at src to dst in one call (up to 5 GiB).
func (c *client) copyObject(ctx context.Context, src, dst string) error {
	h := http.Header{}
	h.Set("X-Amz-Copy-Source", c.copySource(src))
	resp, err := c.do(ctx, request{method: http.MethodPut, key: dst, header: h})
	if err != nil {
		return err
	}
	return decodeXML(resp, nil)
}

// copySource names an object of the bucket in a copy header.
func (c *client) copySource(key string) string {
	return escape(c.bucket+"/"+key, true)
}

// headBucket checks that the bucket exists and the credentials reach it.
func (c *client) headBucket(ctx context.Context) error {
	resp, err := c.do(ctx, request{method: http.MethodHead})
	if err != nil {
		return err
	}
	return drain(resp)
}

// drain reads and closes a response body so its connection is reused.
func drain(resp *http.Response) error {
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)); err != nil {
		return fmt.Errorf("s3: read response: %w", err)
	}
	return nil
}

// nonNil makes an empty body explicit, so a zero-length PUT still sends
// Content-Length: 0.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
