package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
	"time"
)

// TokenTTL is how long an issued token is valid.
const TokenTTL = 5 * time.Minute

// Signer issues and checks the registry's bearer tokens: JWTs signed with
// ES256. Replicas sharing the key file share the tokens.
type Signer struct {
	key     *ecdsa.PrivateKey
	kid     string
	Issuer  string // "iss" of issued tokens, checked on use
	Service string // "aud" of issued tokens, the challenge's service
	now     func() time.Time
}

// LoadSigner reads a PEM EC P-256 private key (SEC 1 or PKCS #8).
func LoadSigner(path, issuer, service string) (*Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read token key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("token key %s: no PEM block", path)
	}
	var key *ecdsa.PrivateKey
	if k, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
		key = k
	} else if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		key, _ = k.(*ecdsa.PrivateKey)
	}
	if key == nil || key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("token key %s: want an EC P-256 private key", path)
	}
	return NewSigner(key, issuer, service), nil
}

// GenerateSigner makes a signer with a fresh key, for one replica alone.
func GenerateSigner(issuer, service string) (*Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate token key: %w", err)
	}
	return NewSigner(key, issuer, service), nil
}

// NewSigner wraps a key.
func NewSigner(key *ecdsa.PrivateKey, issuer, service string) *Signer {
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	sum := sha256.Sum256(pub)
	return &Signer{key: key, kid: base64.RawURLEncoding.EncodeToString(sum[:12]), Issuer: issuer, Service: service, now: time.Now}
}

// claims are a token's payload.
type claims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  string   `json:"aud"`
	Expires   int64    `json:"exp"`
	NotBefore int64    `json:"nbf"`
	IssuedAt  int64    `json:"iat"`
	ID        string   `json:"jti"`
	Access    []Access `json:"access"`
}

// Issue signs a token for user holding access.
func (s *Signer) Issue(user string, access []Access) (string, time.Time, error) {
	now := s.now()
	var jti [12]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", time.Time{}, fmt.Errorf("token id: %w", err)
	}
	if access == nil {
		access = []Access{}
	}
	c := claims{Issuer: s.Issuer, Subject: user, Audience: s.Service, Expires: now.Add(TokenTTL).Unix(),
		NotBefore: now.Add(-time.Minute).Unix(), IssuedAt: now.Unix(),
		ID: base64.RawURLEncoding.EncodeToString(jti[:]), Access: access}
	header, _ := json.Marshal(map[string]string{"typ": "JWT", "alg": "ES256", "kid": s.kid})
	payload, err := json.Marshal(c)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("encode token: %w", err)
	}
	signing := b64(header) + "." + b64(payload)
	digest := sha256.Sum256([]byte(signing))
	r, sig, err := ecdsa.Sign(rand.Reader, s.key, digest[:])
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign token: %w", err)
	}
	raw := make([]byte, 64)
	r.FillBytes(raw[:32])
	sig.FillBytes(raw[32:])
	return signing + "." + b64(raw), now.Add(TokenTTL), nil
}

// errBadToken is every reason a token is refused; the client only needs
// to know to get another.
var errBadToken = errors.New("invalid or expired token")

// Verify checks a token's signature, issuer, audience and times and
// returns its subject and access.
func (s *Signer) Verify(token string) (string, []Access, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", nil, errBadToken
	}
	var header struct {
		Alg string `json:"alg"`
	}
	if err := decodePart(parts[0], &header); err != nil || header.Alg != "ES256" {
		return "", nil, errBadToken
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 64 {
		return "", nil, errBadToken
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	r, sig := new(big.Int).SetBytes(raw[:32]), new(big.Int).SetBytes(raw[32:])
	if !ecdsa.Verify(&s.key.PublicKey, digest[:], r, sig) {
		return "", nil, errBadToken
	}
	var c claims
	if err := decodePart(parts[1], &c); err != nil {
		return "", nil, errBadToken
	}
	now := s.now().Unix()
	if c.Issuer != s.Issuer || c.Audience != s.Service || now >= c.Expires || now < c.NotBefore {
		return "", nil, errBadToken
	}
	return c.Subject, c.Access, nil
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func decodePart(s string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
