package remote

import (
	"context"
	"net/url"
	"reflect"
	"slices"
	"testing"
)

func TestParseChallenges(t *testing.T) {
	for _, tt := range []struct {
		name   string
		values []string
		want   []challenge
	}{
		{"bearer", []string{`Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"`},
			[]challenge{{"bearer", map[string]string{"realm": "https://auth.example/token", "service": "registry.example", "scope": "repository:a/b:pull"}}}},
		{"basic", []string{`Basic realm="Registry Realm"`},
			[]challenge{{"basic", map[string]string{"realm": "Registry Realm"}}}},
		{"case and spaces", []string{`BEARER  Realm = "r" ,  Service=svc`},
			[]challenge{{"bearer", map[string]string{"realm": "r", "service": "svc"}}}},
		{"escapes", []string{`Bearer realm="a\"b\\c",scope="repository:x:pull repository:y:pull"`},
			[]challenge{{"bearer", map[string]string{"realm": `a"b\c`, "scope": "repository:x:pull repository:y:pull"}}}},
		{"several in one value", []string{`Bearer realm="https://t/token",service="s", Basic realm="b"`},
			[]challenge{
				{"bearer", map[string]string{"realm": "https://t/token", "service": "s"}},
				{"basic", map[string]string{"realm": "b"}},
			}},
		{"several values", []string{`Basic realm="b"`, `Bearer realm="https://t/token"`},
			[]challenge{
				{"basic", map[string]string{"realm": "b"}},
				{"bearer", map[string]string{"realm": "https://t/token"}},
			}},
		{"bare scheme then another", []string{`Negotiate, Basic realm="b"`},
			[]challenge{{"negotiate", map[string]string{}}, {"basic", map[string]string{"realm": "b"}}}},
		{"unterminated quote keeps earlier params", []string{`Bearer realm="r",service="oops`},
			[]challenge{{"bearer", map[string]string{"realm": "r"}}}},
		{"empty", []string{""}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := parseChallenges(tt.values)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("parseChallenges(%q) = %v, want %v", tt.values, got, tt.want)
			}
		})
	}
}

func TestPickChallenge(t *testing.T) {
	chs := parseChallenges([]string{`Basic realm="b"`, `Bearer realm="https://t"`})
	if ch, ok := pickChallenge(chs); !ok || ch.scheme != schemeBearer {
		t.Fatalf("pickChallenge = %v, %v; want bearer", ch, ok)
	}
	if ch, ok := pickChallenge(parseChallenges([]string{`Negotiate, Basic realm="b"`})); !ok || ch.scheme != schemeBasic {
		t.Fatalf("pickChallenge = %v, %v; want basic", ch, ok)
	}
	if _, ok := pickChallenge(parseChallenges([]string{`Negotiate`})); ok {
		t.Fatal("picked an unknown scheme")
	}
}

func TestScopes(t *testing.T) {
	if got := repositoryScope("a/b", "push", "pull", "push"); got != "repository:a/b:pull,push" {
		t.Errorf("repositoryScope = %q", got)
	}
	got := mergeScopes([]string{"repository:b:pull", "repository:a:push", "repository:a:pull", "repository:b:pull",
		"registry:catalog:*", "repository:c:", "repository:d:pull,*", "odd"})
	want := []string{"odd", "registry:catalog:*", "repository:a:pull,push", "repository:b:pull", "repository:d:*"}
	if !slices.Equal(got, want) {
		t.Errorf("mergeScopes = %q, want %q", got, want)
	}
	ctx := withScopes(context.Background(), "h:1", repositoryScope("x", actionPull))
	ctx = withScopes(ctx, "h:1", repositoryScope("x", actionPush), repositoryScope("y", actionPull))
	ctx = withScopes(ctx, "other", repositoryScope("z", actionPull))
	if got := scopesFor(ctx, "h:1"); !slices.Equal(got, []string{"repository:x:pull,push", "repository:y:pull"}) {
		t.Errorf("scopesFor(h:1) = %q", got)
	}
	if got := scopesFor(context.Background(), "h:1"); got != nil {
		t.Errorf("scopesFor(empty ctx) = %q", got)
	}
}

func TestCheckRealm(t *testing.T) {
	for _, tt := range []struct {
		realm, registry string
		ok              bool
	}{
		{"https://auth.example/token", "https://registry.example", true},
		{"http://auth.example/token", "http://registry.example", true},
		{"http://auth.example/token", "https://registry.example", false},
		{"ftp://auth.example/token", "https://registry.example", false},
		{"https://169.254.169.254/token", "https://registry.example", false},
		{"https://127.0.0.1:9/token", "https://registry.example", false},
		{"https://[::1]/token", "https://registry.example", false},
		{"https://10.0.0.5/token", "https://registry.example", true},
		{"http://127.0.0.1:5001/token", "http://localhost:5000", true},
		{"https://127.0.0.1:5001/token", "https://127.0.0.1:5000", true},
	} {
		realm, _ := url.Parse(tt.realm)
		reg, _ := url.Parse(tt.registry)
		if err := checkRealm(realm, reg); (err == nil) != tt.ok {
			t.Errorf("checkRealm(%s, %s) = %v, want ok=%v", tt.realm, tt.registry, err, tt.ok)
		}
	}
}
