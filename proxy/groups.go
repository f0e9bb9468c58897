package proxy

import (
	"errors"
	"strconv"

	"edgecache/proxy/store"
)

// A group is a named set of rows whose version moves in the same transaction
// as the data (the origin's row-groups such as post/7, user/42/posts), or the
// primary cache key of a URL (its "URL group", moved by RFC 9111 §4.4
// invalidation). The origin names groups in the Edgecache-Groups response
// header: space-separated name=version tokens.
type group struct {
	name    string
	version uint64 // the origin's version; 0 for URL groups, and for a row that does not exist (a 404)
}

// maxGroupName bounds a group name; names are hashed before they reach
// memcached, the bound only keeps entries small.
const maxGroupName = 200

// maxGroups bounds the groups one response may name: an entry keeps them
// and its URL group.
const maxGroups = store.MaxEntryGroups - 1

var errBadGroups = errors.New("malformed Edgecache-Groups")

// parseGroups parses an Edgecache-Groups value. A malformed value is an
// error as a whole: a response whose groups cannot all be read must not be
// stored, and a write whose groups cannot all be read is logged (the groups
// that could be parsed are still moved: see invalidate.go).
func parseGroups(v []byte) ([]group, error) {
	var gs []group
	var bad bool
	for i := 0; i < len(v); {
		for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
			i++
		}
		start := i
		for i < len(v) && v[i] != ' ' && v[i] != '\t' {
			i++
		}
		if start == i {
			break
		}
		g, ok := parseGroupToken(v[start:i])
		if !ok || len(gs) == maxGroups {
			bad = true
			continue
		}
		gs = append(gs, g)
	}
	if bad {
		return gs, errBadGroups
	}
	return gs, nil
}

func parseGroupToken(t []byte) (group, bool) {
	eq := -1
	for i, c := range t {
		if c == '=' {
			eq = i
			break
		}
	}
	if eq <= 0 || eq > maxGroupName || eq == len(t)-1 {
		return group{}, false
	}
	for _, c := range t[:eq] {
		if c <= ' ' || c >= 0x7f || c == '"' || c == ',' || c == ';' {
			return group{}, false
		}
	}
	for _, c := range t[eq+1:] {
		if c < '0' || c > '9' {
			return group{}, false
		}
	}
	v, err := strconv.ParseUint(string(t[eq+1:]), 10, 63)
	if err != nil {
		return group{}, false
	}
	return group{name: string(t[:eq]), version: v}, true
}
