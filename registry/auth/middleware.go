package auth

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// TokenPath is where the registry serves its token issuer.
const TokenPath = "/token"

// Config is how Middleware guards the registry.
type Config struct {
	// Users checks credentials; nil: nobody can authenticate, and only
	// rules for Anonymous grant anything.
	Users Users
	// Policy grants actions.
	Policy Policy
	// Token selects the token scheme and signs its tokens; nil: basic.
	Token *Signer
	// Realm is the basic scheme's realm, or the token issuer's absolute
	// URL ("" derives it from the request: scheme://host/token).
	Realm string
}

// Middleware serves the token issuer at TokenPath (token scheme) and lets
// through to next only the requests the requester may make. Paths outside
// the distribution API pass through unchecked.
func Middleware(next http.Handler, cfg Config) http.Handler {
	return &guard{next: next, cfg: cfg}
}

type guard struct {
	next http.Handler
	cfg  Config
}

func (g *guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if g.cfg.Token != nil && r.URL.Path == TokenPath {
		g.serveToken(w, r)
		return
	}
	need, known := Required(r)
	if !known {
		g.next.ServeHTTP(w, r)
		return
	}
	user, granted, ok := g.identify(r, need)
	if !ok {
		g.refuse(w, r, need, false)
		return
	}
	if len(need) == 0 && user == Anonymous {
		// /v2/ always asks an anonymous client to authenticate, even when
		// anonymous pulls are allowed: docker and skopeo send credentials
		// (and docker login checks them) only to a registry whose /v2/
		// asks. Anonymous pulls still go through on their own endpoints.
		g.refuse(w, r, need, false)
		return
	}
	for _, n := range need {
		if !covers(granted, n) {
			// A known user without the right is denied; anyone else is
			// told how to authenticate (or get a token with that scope).
			g.refuse(w, r, need, user != Anonymous && g.cfg.Token == nil)
			return
		}
	}
	g.next.ServeHTTP(w, r)
}

// identify finds the requester and what it may do of need; ok is false
// for credentials or a token that do not check out.
func (g *guard) identify(r *http.Request, need []Access) (string, []Access, bool) {
	h := r.Header.Get("Authorization")
	if g.cfg.Token != nil {
		if tok, isBearer := strings.CutPrefix(h, "Bearer "); isBearer {
			user, access, err := g.cfg.Token.Verify(tok)
			return user, access, err == nil
		}
		if h != "" {
			return "", nil, false
		}
		return Anonymous, g.grantAll(Anonymous, need), true
	}
	user := Anonymous
	if u, p, isBasic := r.BasicAuth(); isBasic && u == "" && p == "" {
		h = "" // what skopeo sends, answering a challenge without credentials
	}
	if h != "" {
		u, p, isBasic := r.BasicAuth()
		if !isBasic || g.cfg.Users == nil || !g.cfg.Users.Check(u, p) {
			return "", nil, false
		}
		user = u
	}
	return user, g.grantAll(user, need), true
}

func (g *guard) grantAll(user string, want []Access) []Access {
	var out []Access
	for _, a := range want {
		if got := g.cfg.Policy.Grant(user, a); len(got.Actions) > 0 {
			out = append(out, got)
		}
	}
	return out
}

// refuse answers 403 DENIED, or 401 UNAUTHORIZED with the challenge.
func (g *guard) refuse(w http.ResponseWriter, r *http.Request, need []Access, denied bool) {
	code, status, msg := "UNAUTHORIZED", http.StatusUnauthorized, "authentication required"
	if denied {
		code, status, msg = "DENIED", http.StatusForbidden, "requested access to the resource is denied"
	} else {
		w.Header().Set("WWW-Authenticate", g.challenge(r, need))
	}
	writeError(w, status, code, msg, need)
}

func (g *guard) challenge(r *http.Request, need []Access) string {
	if g.cfg.Token == nil {
		realm := g.cfg.Realm
		if realm == "" {
			realm = "berth registry"
		}
		return "Basic realm=" + strconv.Quote(realm)
	}
	realm := g.cfg.Realm
	if realm == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		realm = scheme + "://" + r.Host + TokenPath
	}
	c := "Bearer realm=" + strconv.Quote(realm) + ",service=" + strconv.Quote(g.cfg.Token.Service)
	if len(need) > 0 {
		scopes := make([]string, len(need))
		for i, a := range need {
			scopes[i] = a.String()
		}
		c += ",scope=" + strconv.Quote(strings.Join(scopes, " "))
	}
	return c
}

// serveToken is the issuer: GET (or POST, form-encoded, as containerd
// sends) with service and scope parameters and optional credentials.
func (g *guard) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "use GET or POST", nil)
		return
	}
	_ = r.ParseForm()
	if svc := r.Form.Get("service"); svc != "" && svc != g.cfg.Token.Service {
		writeError(w, http.StatusBadRequest, "UNSUPPORTED", "unknown service "+svc, nil)
		return
	}
	user := Anonymous
	u, p, hasBasic := r.BasicAuth()
	if !hasBasic && r.Form.Get("grant_type") == "password" {
		u, p, hasBasic = r.Form.Get("username"), r.Form.Get("password"), true
	}
	if hasBasic {
		if g.cfg.Users == nil || !g.cfg.Users.Check(u, p) {
			w.Header().Set("WWW-Authenticate", `Basic realm="berth registry token"`)
			writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "wrong user name or password", nil)
			return
		}
		user = u
	}
	var want []Access
	for _, s := range r.Form["scope"] {
		for _, one := range strings.Fields(s) {
			if a, ok := ParseScope(one); ok {
				want = append(want, a)
			}
		}
	}
	tok, exp, err := g.cfg.Token.Issue(user, g.grantAll(user, want))
	if err != nil {
		writeError(w, http.StatusInternalServerError, "UNKNOWN", err.Error(), nil)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"token": tok, "access_token": tok, "expires_in": int(TokenTTL / time.Second),
		"issued_at": exp.Add(-TokenTTL).UTC().Format(time.RFC3339),
	})
}

// writeError writes the distribution spec's error body.
func writeError(w http.ResponseWriter, status int, code, msg string, detail any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]any{{"code": code, "message": msg, "detail": detail}}})
}
