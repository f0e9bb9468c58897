package proxy

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
)

// Query parameters in cache keys (PROXY_QUERY_ALLOW). A parameter the
// origin does not read still made a key of its own: every random query
// string on a post was a miss, a fill, an origin request. Each rule names
// the parameters the origin reads under a path; the others are dropped
// from a read's cache key and from the request forwarded for it, so that
// ?x=1 and ?x=2 share the entry of the bare path. Dropping is always safe:
// the origin gets exactly the request the key names.

// queryRule lets names into the keys of the paths it matches.
type queryRule struct {
	pattern []string // path segments; "*" matches any one segment
	prefix  bool     // the pattern ended with "/": it matches the paths under it
	names   [][]byte
	weight  int // the pattern's length: the longest matching pattern wins
}

// queryRules is PROXY_QUERY_ALLOW parsed, longest pattern first. A path
// that no rule matches keeps every parameter.
type queryRules []queryRule

// parseQueryAllow parses "pattern=name,name;pattern=;…", where a pattern
// is a path starting with "/", its segments literal or "*", and ending
// with "/" for a prefix.
func parseQueryAllow(s string) (queryRules, error) {
	var rules queryRules
	for part := range strings.SplitSeq(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		path, names, ok := strings.Cut(part, "=")
		if !ok || !strings.HasPrefix(path, "/") {
			return nil, fmt.Errorf("want path=name,name (the path starting with /), got %q", part)
		}
		r := queryRule{weight: len(path), prefix: strings.HasSuffix(path, "/")}
		r.pattern = strings.Split(strings.Trim(path, "/"), "/")
		if r.pattern[0] == "" {
			r.pattern = nil // "/": every path
		}
		for n := range strings.SplitSeq(names, ",") {
			if n = strings.TrimSpace(n); n == "" {
				continue
			}
			if strings.ContainsAny(n, "&=;/ ") {
				return nil, fmt.Errorf("bad parameter name %q in %q", n, part)
			}
			r.names = append(r.names, []byte(n))
		}
		rules = append(rules, r)
	}
	slices.SortStableFunc(rules, func(a, b queryRule) int { return b.weight - a.weight })
	return rules, nil
}

// match reports whether the rule applies to path (percent-decoded, as the
// origin routes it).
func (r *queryRule) match(path []byte) bool {
	path = bytes.TrimPrefix(path, []byte("/"))
	for _, seg := range r.pattern {
		if len(path) == 0 {
			return false
		}
		i := bytes.IndexByte(path, '/')
		if i < 0 {
			i = len(path)
		}
		if seg != "*" && seg != string(path[:i]) {
			return false
		}
		path = path[i:]
		path = bytes.TrimPrefix(path, []byte("/"))
	}
	return r.prefix || len(path) == 0
}

// keep returns the parameters of the raw query that the rule for path lets
// in, in their order, appended to dst; the query itself when no rule
// matches. Names are compared as sent: an encoded name ("lim%69t") is
// dropped, never guessed.
func (rs queryRules) keep(dst, path, query []byte) []byte {
	if len(query) == 0 {
		return query
	}
	var rule *queryRule
	for i := range rs {
		if rs[i].match(path) {
			rule = &rs[i]
			break
		}
	}
	if rule == nil {
		return query
	}
	start := len(dst)
	for len(query) > 0 {
		param := query
		if i := bytes.IndexByte(query, '&'); i >= 0 {
			param, query = query[:i], query[i+1:]
		} else {
			query = nil
		}
		name := param
		if i := bytes.IndexByte(param, '='); i >= 0 {
			name = param[:i]
		}
		if len(name) > 0 && slices.ContainsFunc(rule.names, func(n []byte) bool { return bytes.Equal(n, name) }) {
			if len(dst) > start {
				dst = append(dst, '&')
			}
			dst = append(dst, param...)
		}
	}
	return dst
}
