package auth

import (
	"net/http"
	"strings"
)

// Actions on a repository, as the token protocol names them.
const (
	Pull   = "pull"
	Push   = "push"
	Delete = "delete"
)

// Access is a scope: actions on a resource. Type is "repository" (Name a
// repository) or "registry" (Name "catalog", Actions ["*"]).
type Access struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// String renders the scope as the token protocol writes it:
// "repository:library/busybox:pull,push".
func (a Access) String() string {
	return a.Type + ":" + a.Name + ":" + strings.Join(a.Actions, ",")
}

// ParseScope reads one scope parameter; the name may hold colons (a
// registry host with a port), so the type is the first field and the
// actions the last.
func ParseScope(s string) (Access, bool) {
	typ, rest, ok := strings.Cut(s, ":")
	i := strings.LastIndexByte(rest, ':')
	if !ok || i <= 0 || typ == "" {
		return Access{}, false
	}
	a := Access{Type: typ, Name: rest[:i]}
	for _, act := range strings.Split(rest[i+1:], ",") {
		if act != "" {
			a.Actions = append(a.Actions, act)
		}
	}
	return a, len(a.Actions) > 0
}

// Required works out what a request to the distribution API needs: none
// for the base endpoint /v2/ (which only needs the requester known, if
// anonymous access is off), the catalog for /v2/_catalog, and for a
// repository's endpoints pull (GET, HEAD), push (POST, PUT, PATCH; and
// pull on the source repository of a cross-repository mount) or delete.
// known is false for paths outside /v2/.
func Required(r *http.Request) (need []Access, known bool) {
	p, ok := strings.CutPrefix(r.URL.Path, "/v2/")
	if !ok {
		return nil, r.URL.Path == "/v2"
	}
	if p == "" {
		return nil, true
	}
	if p == "_catalog" {
		return []Access{{Type: "registry", Name: "catalog", Actions: []string{"*"}}}, true
	}
	name, ok := repositoryOf(p)
	if !ok {
		return nil, true // the registry answers NAME_INVALID or 404 itself
	}
	var action string
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		action = Pull
	case http.MethodDelete:
		action = Delete
	default:
		action = Push
	}
	need = []Access{{Type: "repository", Name: name, Actions: []string{action}}}
	if from := r.URL.Query().Get("from"); from != "" && r.Method == http.MethodPost && from != name {
		need = append(need, Access{Type: "repository", Name: from, Actions: []string{Pull}})
	}
	return need, true
}

// repositoryOf cuts the repository name from a path after /v2/: it is
// everything before the last of the API's own path elements.
func repositoryOf(p string) (string, bool) {
	best := -1
	for _, kw := range []string{"/manifests/", "/blobs/", "/tags/", "/referrers/"} {
		if i := strings.LastIndex(p, kw); i > best {
			best = i
		}
	}
	if best <= 0 {
		return "", false
	}
	return p[:best], true
}
