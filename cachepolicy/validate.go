package cachepolicy

import "strconv"

// Conditional returns the validator fields of a conditional request that
// revalidates the entry (RFC 9111 §4.3.1): If-None-Match from its ETag and
// If-Modified-Since from its Last-Modified, each nil when the entry lacks
// it. Both are sent when both exist; the origin ignores If-Modified-Since
// when it understands If-None-Match. A weak Last-Modified (see
// strongLastModified) is not sent: another version may carry the same date.
func (m *Meta) Conditional() (ifNoneMatch, ifModifiedSince []byte) {
	if _, ok := m.strongLastModified(); !ok {
		return m.ETag, nil
	}
	return m.ETag, m.LastModified
}

// strongLastModified returns the entry's Last-Modified if it is a strong
// validator (RFC 9110 §8.8.2.2): at least one second before the response's
// Date. Dates have one-second resolution, so a resource changed twice
// within a second shows one Last-Modified for both versions; a response
// generated in that same second may be the first of them.
func (m *Meta) strongLastModified() (int64, bool) {
	lm, ok := ParseHTTPDate(m.LastModified)
	return lm, ok && lm+1 <= m.Date
}

// Selects304 reports whether a 304 with these ETag and Last-Modified values
// (nil when absent) freshens this entry (RFC 9111 §4.3.4): a strong ETag
// must match the entry's strongly, a weak one weakly; without an ETag a
// Last-Modified must equal the entry's; a 304 with neither answers the
// conditional request built from this entry, so it selects it. When it
// returns false the proxy must not use the 304 to update the entry (fetch
// again without conditions).
func (m *Meta) Selects304(etag, lastModified []byte) bool {
	etag = trimSpace(etag)
	if len(etag) > 0 {
		if isWeak(etag) {
			return weakMatch(m.ETag, etag)
		}
		return strongMatch(m.ETag, etag)
	}
	if len(trimSpace(lastModified)) > 0 {
		return sameDate(m.LastModified, lastModified)
	}
	return true
}

// SelectsHead reports whether a HEAD response may freshen this entry (RFC
// 9111 §4.3.5): its ETag, Last-Modified and Content-Length (nil when
// absent) must not contradict the entry, whose body is storedLength bytes,
// and at least one of its validators must match the entry's (ETag weakly,
// Last-Modified by value). A HEAD response without a validator cannot show
// that it describes the stored response: it selects nothing (the
// restrictive reading of "matching values for any received validator
// fields"). When it returns false the stored response no longer describes
// the resource: the proxy treats it as stale (invalidates it).
func (m *Meta) SelectsHead(etag, lastModified, contentLength []byte, storedLength int64) bool {
	matched := false
	if etag = trimSpace(etag); len(etag) > 0 {
		if !weakMatch(m.ETag, etag) {
			return false
		}
		matched = true
	}
	if len(trimSpace(lastModified)) > 0 {
		if !sameDate(m.LastModified, lastModified) {
			return false
		}
		matched = true
	}
	if cl := trimSpace(contentLength); len(cl) > 0 {
		n, err := strconv.ParseInt(string(cl), 10, 64)
		if err != nil || n != storedLength {
			return false
		}
	}
	return matched
}

// NotModified reports whether a client's GET or HEAD with these
// If-None-Match and If-Modified-Since values (nil when absent) can be
// answered 304 from this entry (RFC 9110 §13.1.2, §13.1.3, §13.2.2).
// Only entries with a 2xx status qualify. If-None-Match, when present,
// decides alone: "*" matches any entry, otherwise a member must match the
// ETag weakly. Otherwise If-Modified-Since, when a valid date, matches when
// the entry's Last-Modified is strong and not later than it; an entry
// without Last-Modified matches a date strictly after its Date (RFC 9111
// §4.3.2), so that the client's copy is from a later second than the
// entry. A weak Last-Modified never matches: the client's copy may be an
// earlier version from the same second. It does not allocate.
func (m *Meta) NotModified(ifNoneMatch, ifModifiedSince []byte) bool {
	if m.Status < 200 || m.Status > 299 {
		return false
	}
	if inm := trimSpace(ifNoneMatch); len(inm) > 0 {
		if string(inm) == "*" {
			return true
		}
		return etagListMatch(inm, m.ETag)
	}
	ims, ok := ParseHTTPDate(ifModifiedSince)
	if !ok {
		return false
	}
	if len(trimSpace(m.LastModified)) == 0 {
		return m.Date < ims
	}
	lm, strong := m.strongLastModified()
	return strong && lm <= ims
}

// etagListMatch reports whether the If-None-Match list has a member that
// weakly matches etag. Parsing stops at the first malformed member.
func etagListMatch(list, etag []byte) bool {
	for i := 0; i < len(list); {
		for i < len(list) && (list[i] == ',' || isSpace(list[i])) {
			i++
		}
		start := i
		if i+1 < len(list) && list[i] == 'W' && list[i+1] == '/' {
			i += 2
		}
		if i >= len(list) || list[i] != '"' {
			return false
		}
		end := i + 1
		for end < len(list) && list[end] != '"' {
			end++
		}
		if end >= len(list) {
			return false
		}
		if weakMatch(etag, list[start:end+1]) {
			return true
		}
		i = end + 1
	}
	return false
}

func isWeak(etag []byte) bool { return len(etag) >= 2 && etag[0] == 'W' && etag[1] == '/' }

// opaque returns the quoted opaque-tag of an entity-tag, or nil when
// malformed.
func opaque(etag []byte) []byte {
	etag = trimSpace(etag)
	if isWeak(etag) {
		etag = etag[2:]
	}
	if len(etag) < 2 || etag[0] != '"' || etag[len(etag)-1] != '"' {
		return nil
	}
	return etag
}

// weakMatch is the weak comparison of RFC 9110 §8.8.3.2: the opaque-tags
// are equal, weak or not.
func weakMatch(a, b []byte) bool {
	oa, ob := opaque(a), opaque(b)
	return oa != nil && string(oa) == string(ob)
}

// strongMatch is the strong comparison: neither weak, opaque-tags equal.
func strongMatch(a, b []byte) bool {
	a, b = trimSpace(a), trimSpace(b)
	return !isWeak(a) && !isWeak(b) && weakMatch(a, b)
}

// sameDate compares two HTTP-dates by value, or bytewise when either is
// not a valid date.
func sameDate(a, b []byte) bool {
	ta, okA := ParseHTTPDate(a)
	tb, okB := ParseHTTPDate(b)
	if okA && okB {
		return ta == tb
	}
	return string(trimSpace(a)) == string(trimSpace(b))
}
