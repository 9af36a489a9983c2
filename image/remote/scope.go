package remote

import (
	"context"
	"slices"
	"strings"
)

// Token scopes travel in the request's context, per endpoint host, so
// that one operation (a push with a mount, say) asks the token server for
// everything it needs in one token, before the registry challenges each
// request in turn.

type scopesKey struct{ host string }

// repositoryScope is the scope for actions on one repository:
// "repository:<path>:<actions>".
func repositoryScope(path string, actions ...string) string {
	actions = slices.Clone(actions)
	slices.Sort(actions)
	return "repository:" + path + ":" + strings.Join(slices.Compact(actions), ",")
}

// withScopes adds scopes for host to ctx.
func withScopes(ctx context.Context, host string, scopes ...string) context.Context {
	if len(scopes) == 0 {
		return ctx
	}
	all := append(scopesFor(ctx, host), scopes...)
	return context.WithValue(ctx, scopesKey{host}, mergeScopes(all))
}

// scopesFor returns the scopes ctx carries for host, merged and sorted.
func scopesFor(ctx context.Context, host string) []string {
	s, _ := ctx.Value(scopesKey{host}).([]string)
	return slices.Clone(s)
}

// mergeScopes joins the actions of scopes on the same resource
// ("repository:a:pull" and "repository:a:push" become
// "repository:a:pull,push"), drops duplicates and empty action lists, and
// sorts the result, so that equal needs give equal cache keys. A "*"
// action stands for all. Scopes that are not "type:name:actions" are kept
// as they are.
func mergeScopes(scopes []string) []string {
	actions := map[string]map[string]bool{} // "type:name" -> actions
	var out []string
	for _, s := range scopes {
		typ, rest, ok1 := strings.Cut(s, ":")
		i := strings.LastIndex(rest, ":")
		if !ok1 || i < 0 {
			out = append(out, s)
			continue
		}
		resource := typ + ":" + rest[:i]
		if actions[resource] == nil {
			actions[resource] = map[string]bool{}
		}
		for a := range strings.SplitSeq(rest[i+1:], ",") {
			if a != "" {
				actions[resource][a] = true
			}
		}
	}
	for resource, set := range actions {
		if len(set) == 0 {
			continue
		}
		list := []string{"*"}
		if !set["*"] {
			list = list[:0]
			for a := range set {
				list = append(list, a)
			}
			slices.Sort(list)
		}
		out = append(out, resource+":"+strings.Join(list, ","))
	}
	slices.Sort(out)
	return slices.Compact(out)
}
