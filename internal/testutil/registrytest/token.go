package registrytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The token service's names, which the registry checks in every token.
const (
	tokenService = "berth-test-registry"
	tokenIssuer  = "berth-test-token-issuer"
	tokenTTL     = 5 * time.Minute
)

// tokenServer implements the distribution token protocol: GET /token with
// service, scope and optional basic credentials answers a JWT signed with
// an ECDSA key whose self-signed certificate travels in the x5c header;
// the registry trusts that certificate through rootcertbundle.
type tokenServer struct {
	key       *ecdsa.PrivateKey
	certDER   []byte
	certPath  string
	realm     string
	users     map[string]string
	anonymous bool

	mu    sync.Mutex
	count int
}

func startTokenServer(t testing.TB, dir string, users map[string]string, anonymousPull bool) (*tokenServer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate token key: %w", err)
	}
	der, err := selfSignedCert(key)
	if err != nil {
		return nil, err
	}
	ts := &tokenServer{key: key, certDER: der, users: users, anonymous: anonymousPull,
		certPath: filepath.Join(dir, "token-root.pem")}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(ts.certPath, pemBytes, 0o600); err != nil {
		return nil, fmt.Errorf("write token root certificate: %w", err)
	}
	srv := httptest.NewServer(http.HandlerFunc(ts.serveToken))
	t.Cleanup(srv.Close)
	ts.realm = srv.URL + "/token"
	return ts, nil
}

func selfSignedCert(key *ecdsa.PrivateKey) ([]byte, error) {
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(now.UnixNano()),
		Subject:               pkix.Name{CommonName: "berth test token signer"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create token certificate: %w", err)
	}
	return der, nil
}

func (ts *tokenServer) issued() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.count
}

// access is one granted resource in a token's "access" claim.
type access struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

func (ts *tokenServer) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet || r.URL.Path != "/token" {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	q := r.URL.Query()
	if q.Get("service") != tokenService {
		writeTokenError(w, http.StatusBadRequest, "UNSUPPORTED", "unknown service")
		return
	}
	user, pass, hasAuth := r.BasicAuth()
	if hasAuth {
		if want, ok := ts.users[user]; !ok || want != pass {
			writeTokenError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication failed")
			return
		}
	}
	grants := grant(q["scope"], hasAuth, ts.anonymous)
	tok, err := ts.sign(user, grants)
	if err != nil {
		writeTokenError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
		return
	}
	ts.mu.Lock()
	ts.count++
	ts.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"token":        tok,
		"access_token": tok,
		"expires_in":   int(tokenTTL.Seconds()),
		"issued_at":    time.Now().UTC().Format(time.RFC3339),
	})
}

// grant decides what each requested scope gets: an authenticated user gets
// every action asked for; an anonymous client gets pull when allowed, and
// nothing else.
func grant(scopes []string, authenticated, anonymousPull bool) []access {
	out := []access{}
	for _, field := range scopes {
		for _, scope := range strings.Fields(field) {
			a, ok := parseScope(scope)
			if !ok {
				continue
			}
			if !authenticated {
				if !anonymousPull || !slices.Contains(a.Actions, "pull") {
					continue
				}
				a.Actions = []string{"pull"}
			}
			out = append(out, a)
		}
	}
	return out
}

// parseScope splits "type:name:actions"; the name may hold colons.
func parseScope(s string) (access, bool) {
	first := strings.Index(s, ":")
	last := strings.LastIndex(s, ":")
	if first < 0 || first == last {
		return access{}, false
	}
	actions := strings.Split(s[last+1:], ",")
	return access{Type: s[:first], Name: s[first+1 : last], Actions: actions}, true
}

// sign makes an ES256 JWT the registry accepts: issuer, audience and time
// claims it checks, and the signer's certificate in x5c.
func (ts *tokenServer) sign(subject string, grants []access) (string, error) {
	now := time.Now()
	header := map[string]any{
		"typ": "JWT",
		"alg": "ES256",
		"x5c": []string{base64.StdEncoding.EncodeToString(ts.certDER)},
	}
	claims := map[string]any{
		"iss":    tokenIssuer,
		"sub":    subject,
		"aud":    tokenService,
		"exp":    now.Add(tokenTTL).Unix(),
		"nbf":    now.Add(-10 * time.Second).Unix(),
		"iat":    now.Unix(),
		"jti":    randomHex(16),
		"access": grants,
	}
	h, err := json.Marshal(header)
	if err != nil {
		return "", fmt.Errorf("encode token header: %w", err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("encode token claims: %w", err)
	}
	enc := base64.RawURLEncoding
	signingInput := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	sum := sha256.Sum256([]byte(signingInput))
	r, s, err := ecdsa.Sign(rand.Reader, ts.key, sum[:])
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	// JWS wants the two 32-byte integers side by side, not ASN.1.
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signingInput + "." + enc.EncodeToString(sig), nil
}

func writeTokenError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"errors": []map[string]string{{"code": code, "message": msg}},
	})
}
