package auth

import (
	"fmt"
	"path"
	"slices"
)

// Anonymous is the user name of a requester without credentials, and
// Anyone in a rule matches every authenticated user.
const (
	Anonymous = "anonymous"
	Anyone    = "*"
)

// Rule grants Actions on the repositories matching one of Repositories
// (path.Match patterns: "team/*", "*" for one level, "**" for all) to
// the users named in Users (Anyone: every authenticated user; Anonymous:
// requesters without credentials).
type Rule struct {
	Users        []string `json:"users"`
	Repositories []string `json:"repositories"`
	Actions      []string `json:"actions"`
}

// Policy is every rule; a requester gets the union of what the rules that
// match grant. The catalog is granted with pull on "**".
type Policy struct {
	Rules []Rule `json:"rules"`
}

// DefaultPolicy lets authenticated users do everything, and anonymous
// requesters pull when anonymousPull is set.
func DefaultPolicy(anonymousPull bool) Policy {
	p := Policy{Rules: []Rule{{Users: []string{Anyone}, Repositories: []string{"**"}, Actions: []string{Pull, Push, Delete}}}}
	if anonymousPull {
		p.Rules = append(p.Rules, Rule{Users: []string{Anonymous}, Repositories: []string{"**"}, Actions: []string{Pull}})
	}
	return p
}

// Check refuses rules that can never match or grant.
func (p Policy) Check() error {
	for i, r := range p.Rules {
		if len(r.Users) == 0 || len(r.Repositories) == 0 || len(r.Actions) == 0 {
			return fmt.Errorf("auth rule %d: users, repositories and actions must not be empty", i+1)
		}
		for _, pat := range r.Repositories {
			if _, err := path.Match(pat, "x"); err != nil && pat != "**" {
				return fmt.Errorf("auth rule %d: bad repository pattern %q: %w", i+1, pat, err)
			}
		}
		for _, a := range r.Actions {
			if a != Pull && a != Push && a != Delete && a != "*" {
				return fmt.Errorf("auth rule %d: unknown action %q: use pull, push, delete or *", i+1, a)
			}
		}
	}
	return nil
}

// Grant returns the part of want that user may do.
func (p Policy) Grant(user string, want Access) Access {
	got := Access{Type: want.Type, Name: want.Name}
	for _, act := range want.Actions {
		if p.allows(user, want, act) {
			got.Actions = append(got.Actions, act)
		}
	}
	return got
}

func (p Policy) allows(user string, want Access, action string) bool {
	if want.Type == "registry" {
		// The catalog lists every repository: pull on all of them.
		return want.Name == "catalog" && p.allows(user, Access{Type: "repository", Name: "**"}, Pull)
	}
	if want.Type != "repository" {
		return false
	}
	for _, r := range p.Rules {
		if !matchUser(r.Users, user) || !slices.ContainsFunc(r.Actions, func(a string) bool { return a == action || a == "*" }) {
			continue
		}
		for _, pat := range r.Repositories {
			if pat == "**" {
				return true
			}
			if ok, _ := path.Match(pat, want.Name); ok {
				return true
			}
		}
	}
	return false
}

func matchUser(users []string, user string) bool {
	for _, u := range users {
		if u == user || (u == Anyone && user != Anonymous) {
			return true
		}
	}
	return false
}

// covers says whether granted holds every action need asks for.
func covers(granted []Access, need Access) bool {
	for _, act := range need.Actions {
		ok := false
		for _, g := range granted {
			if g.Type == need.Type && g.Name == need.Name &&
				slices.ContainsFunc(g.Actions, func(a string) bool { return a == act || a == "*" }) {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}
