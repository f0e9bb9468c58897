package cachepolicy

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"slices"
)

// AppendKey appends the primary cache key of a request to dst: the
// normalised text `scheme://host/path?query`. It is method-independent (GET
// and HEAD share entries). Normalisation, so that equivalent URIs share a
// key (RFC 3986 §6.2.2) and distinct ones never do:
//   - scheme and host are lowercased; the default port (80 for http, 443 for
//     https) is dropped; host bytes outside the URI host syntax, '%'
//     included, are percent-encoded (a hostile Host can neither imitate a
//     path nor, by encoding, another host);
//   - percent-encodings are uppercased, those of unreserved characters
//     decoded, bytes that may not appear raw are percent-encoded; dot
//     segments are kept (the origin decides what they mean); an empty path
//     is "/";
//   - the query's &-separated parameters are sorted by name (stable, so
//     repeated names keep their order), empty parameters are dropped, and an
//     empty query is no query; '+' stays '+' (only forms decode it as a
//     space).
//
// path and query are raw (not percent-decoded) as sent by the client. The
// result is printable ASCII; it may hold user input, so use it in
// memcached only through AppendMemcacheKey. It does not allocate when dst
// has room (and the query has at most 32 parameters).
func AppendKey(dst, scheme, host, path, query []byte) []byte {
	for _, c := range scheme {
		if c = lower(c); isAlpha(c) || isDigit(c) || c == '+' || c == '-' || c == '.' {
			dst = append(dst, c)
		} else {
			dst = appendPct(dst, c)
		}
	}
	dst = append(dst, "://"...)
	dst = appendHost(dst, scheme, host)
	if len(path) == 0 || path[0] != '/' {
		dst = append(dst, '/')
	}
	dst = appendEscaped(dst, path, pathChars)
	return appendQuery(dst, query)
}

// appendHost appends the lowercased host without the scheme's default port.
// The port is dropped only from a well-formed host:port (a name or IPv4
// address, or a bracketed IP literal, before the colon): a malformed Host
// must never share a key with a real one.
func appendHost(dst, scheme, host []byte) []byte {
	if i := bytes.LastIndexByte(host, ':'); i > 0 {
		name, port := host[:i], host[i+1:]
		wellFormed := bytes.IndexByte(name, ':') < 0 || (name[0] == '[' && name[len(name)-1] == ']')
		if wellFormed && (len(port) == 0 ||
			(EqualFold(scheme, "http") && string(port) == "80") ||
			(EqualFold(scheme, "https") && string(port) == "443")) {
			host = name
		}
	}
	for _, c := range host {
		if c = lower(c); hostChars[c] {
			dst = append(dst, c)
		} else {
			dst = appendPct(dst, c)
		}
	}
	return dst
}

// appendQuery appends "?" and the normalised, sorted parameters of query,
// or nothing when no parameter is left.
func appendQuery(dst, query []byte) []byte {
	start := len(dst)
	dst = append(dst, '?')
	var stack [32][2]int // spans of the normalised parameters in dst
	params := stack[:0]
	sorted := true
	for len(query) > 0 {
		i := bytes.IndexByte(query, '&')
		if i < 0 {
			i = len(query)
		}
		if i > 0 {
			if len(params) > 0 {
				dst = append(dst, '&')
			}
			p0 := len(dst)
			dst = appendEscaped(dst, query[:i], queryChars)
			params = append(params, [2]int{p0, len(dst)})
			if n := len(params); n > 1 && cmpParam(dst, params[n-2], params[n-1]) > 0 {
				sorted = false
			}
		}
		if i == len(query) {
			break
		}
		query = query[i+1:]
	}
	if len(params) == 0 {
		return dst[:start]
	}
	if sorted {
		return dst
	}
	// Sort a copy of the parameters and write them back in order.
	region := dst[start+1:]
	var buf [512]byte
	scratch := append(buf[:0], region...)
	base := start + 1
	slices.SortStableFunc(params, func(a, b [2]int) int { return cmpParam(dst, a, b) })
	out := dst[:base]
	for k, p := range params {
		if k > 0 {
			out = append(out, '&')
		}
		out = append(out, scratch[p[0]-base:p[1]-base]...)
	}
	return out
}

// cmpParam compares two parameters of dst by name (the bytes before '=').
func cmpParam(dst []byte, a, b [2]int) int {
	return bytes.Compare(paramName(dst[a[0]:a[1]]), paramName(dst[b[0]:b[1]]))
}

func paramName(p []byte) []byte {
	if i := bytes.IndexByte(p, '='); i >= 0 {
		return p[:i]
	}
	return p
}

// appendEscaped appends s with normalised percent-encoding: %XX of an
// unreserved character is decoded, other %XX uppercased, a '%' not followed
// by two hex digits and every byte that allowed does not list encoded.
func appendEscaped(dst, s []byte, allowed *[256]bool) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			if i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
				d := unhex(s[i+1])<<4 | unhex(s[i+2])
				if unreserved(d) {
					dst = append(dst, d)
				} else {
					dst = appendPct(dst, d)
				}
				i += 2
				continue
			}
			dst = appendPct(dst, c)
			continue
		}
		if allowed[c] {
			dst = append(dst, c)
		} else {
			dst = appendPct(dst, c)
		}
	}
	return dst
}

// Byte classes of appendEscaped, as tables: a per-byte function call costs
// more than the rest of the key.
var (
	pathChars  = byteTable(pathChar)
	queryChars = byteTable(queryChar)
	hostChars  = byteTable(hostChar)
)

func byteTable(allowed func(byte) bool) *[256]bool {
	var t [256]bool
	for c := range 256 {
		t[c] = allowed(byte(c))
	}
	return &t
}

const upperHex = "0123456789ABCDEF"

func appendPct(dst []byte, c byte) []byte {
	return append(dst, '%', upperHex[c>>4], upperHex[c&15])
}

func isHex(c byte) bool { return isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'f') }

func unhex(c byte) byte {
	if isDigit(c) {
		return c - '0'
	}
	return c | 0x20 - 'a' + 10
}

func unreserved(c byte) bool {
	return isAlpha(c) || isDigit(c) || c == '-' || c == '.' || c == '_' || c == '~'
}

func subDelim(c byte) bool {
	switch c {
	case '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=':
		return true
	}
	return false
}

// pathChar: pchar and "/" (RFC 3986 §3.3), without '%' (handled apart).
func pathChar(c byte) bool {
	return unreserved(c) || subDelim(c) || c == ':' || c == '@' || c == '/'
}

// queryChar: query characters (RFC 3986 §3.4) except '&', which separates
// parameters and so never appears raw inside one.
func queryChar(c byte) bool { return c != '&' && (pathChar(c) || c == '?') }

// hostChar: reg-name, IP literal and port characters, without pct-encoded
// (a Host is compared as sent, so "%41" and "a" are different hosts).
func hostChar(c byte) bool {
	return unreserved(c) || subDelim(c) || c == ':' || c == '[' || c == ']'
}

// AppendVary appends to dst the canonical form of a Vary field value: the
// field names lowercased, sorted, without duplicates, joined by ",". Members
// that are not valid field names are ignored. star reports a "*" member;
// nothing is appended then (such a response is never stored). It does not
// allocate when dst has room (and there are at most 16 names).
func AppendVary(dst, vary []byte) (out []byte, star bool) {
	var stack [16][]byte
	names := stack[:0]
	for len(vary) > 0 {
		i := bytes.IndexByte(vary, ',')
		if i < 0 {
			i = len(vary)
		}
		m := trimSpace(vary[:i])
		if string(m) == "*" {
			return dst, true
		}
		if len(m) > 0 && allTchar(m) {
			names = append(names, m)
		}
		if i == len(vary) {
			break
		}
		vary = vary[i+1:]
	}
	slices.SortFunc(names, cmpFold)
	for k, n := range names {
		if k > 0 && cmpFold(names[k-1], n) == 0 {
			continue
		}
		if k > 0 {
			dst = append(dst, ',')
		}
		for _, c := range n {
			dst = append(dst, lower(c))
		}
	}
	return dst, false
}

func allTchar(b []byte) bool {
	for _, c := range b {
		if !isTchar(c) {
			return false
		}
	}
	return true
}

// cmpFold compares ASCII strings ignoring case.
func cmpFold(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if x, y := lower(a[i]), lower(b[i]); x != y {
			return int(x) - int(y)
		}
	}
	return len(a) - len(b)
}

// canonicalVary reports whether v is what AppendVary produces.
func canonicalVary(v []byte) bool {
	var prev []byte
	for len(v) > 0 {
		i := bytes.IndexByte(v, ',')
		if i < 0 {
			i = len(v)
		}
		n := v[:i]
		if len(n) == 0 || !allTchar(n) || (prev != nil && bytes.Compare(prev, n) >= 0) {
			return false
		}
		for _, c := range n {
			if c != lower(c) {
				return false
			}
		}
		prev = n
		if i == len(v) {
			break
		}
		v = v[i+1:]
		if len(v) == 0 {
			return false // trailing comma
		}
	}
	return true
}

// AppendVaryKey appends to a primary key the secondary key of a request for
// a response that varies on vary (canonical, from AppendVary or
// Meta.Vary): for each field, its name and the request's normalised value,
// as value(name) returns it (nil when absent; absent and empty are the
// same). Values are normalised so that equivalent requests share a variant:
// whitespace trimmed and runs collapsed to one space, no whitespace around
// commas, and lowercased for fields whose values are case-insensitive
// (Accept, Accept-Charset, Accept-Encoding, Accept-Language). Each value is
// length-prefixed, so no choice of values can imitate another.
func AppendVaryKey(dst, vary []byte, value func(name []byte) []byte) []byte {
	for len(vary) > 0 {
		i := bytes.IndexByte(vary, ',')
		if i < 0 {
			i = len(vary)
		}
		name := vary[:i]
		dst = append(dst, 0)
		dst = append(dst, name...)
		dst = append(dst, 0, 0, 0, 0, 0) // name terminator, then value length
		lenAt := len(dst) - 4
		dst = appendFieldValue(dst, value(name), foldedField(name))
		binary.BigEndian.PutUint32(dst[lenAt:], uint32(len(dst)-lenAt-4))
		if i == len(vary) {
			break
		}
		vary = vary[i+1:]
	}
	return dst
}

func foldedField(name []byte) bool {
	return EqualFold(name, "accept") || EqualFold(name, "accept-encoding") ||
		EqualFold(name, "accept-language") || EqualFold(name, "accept-charset")
}

// appendFieldValue appends v with whitespace normalised (see AppendVaryKey).
func appendFieldValue(dst, v []byte, fold bool) []byte {
	v = trimSpace(v)
	space := false
	for _, c := range v {
		if isSpace(c) {
			space = true
			continue
		}
		if space && c != ',' && (len(dst) == 0 || dst[len(dst)-1] != ',') {
			dst = append(dst, ' ')
		}
		space = false
		if fold {
			c = lower(c)
		}
		dst = append(dst, c)
	}
	return dst
}

// MemcacheKeyLen is the length of the hash part of a memcached key.
const MemcacheKeyLen = 22

// AppendMemcacheKey appends prefix and a fixed-length hash of key (SHA-256
// truncated to 128 bits, base64url, MemcacheKeyLen characters) to dst. The
// result is always a valid memcached key when prefix passes
// CheckKeyPrefix: no user input reaches the memcached protocol raw.
func AppendMemcacheKey(dst []byte, prefix string, key []byte) []byte {
	sum := sha256.Sum256(key)
	dst = append(dst, prefix...)
	return base64.RawURLEncoding.AppendEncode(dst, sum[:16])
}

// CheckKeyPrefix reports whether prefix keeps AppendMemcacheKey's keys valid
// for memcached: at most 64 bytes, printable ASCII without spaces.
func CheckKeyPrefix(prefix string) error {
	if len(prefix) > 64 {
		return errors.New("cachepolicy: memcached key prefix longer than 64 bytes")
	}
	for i := range len(prefix) {
		if prefix[i] <= ' ' || prefix[i] >= 0x7f {
			return errors.New("cachepolicy: memcached key prefix has a space or control byte")
		}
	}
	return nil
}
