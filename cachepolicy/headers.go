package cachepolicy

import "strings"

// hopByHop are the fields that describe one connection, not the message
// (RFC 9110 §7.6.1), plus the non-standard ones proxies still see and the
// proxy-authentication fields (RFC 9111 §3.1 lets a cache drop them).
var hopByHop = [...]string{
	"connection", "keep-alive", "proxy-connection", "te", "transfer-encoding",
	"upgrade", "proxy-authenticate", "proxy-authorization", "proxy-authentication-info", "trailer",
}

// IsHopByHop reports whether name (any case) is a hop-by-hop field that a
// proxy never forwards or stores: Connection, Keep-Alive, Proxy-Connection,
// TE, Transfer-Encoding, Upgrade, Proxy-Authenticate, Proxy-Authorization,
// Proxy-Authentication-Info, Trailer. Fields named in Connection are hop-by-hop too: see FieldRules.
func IsHopByHop(name []byte) bool {
	for _, h := range hopByHop {
		if EqualFold(name, h) {
			return true
		}
	}
	return false
}

// ListHas reports whether the comma-separated list v (e.g. Connection,
// Pragma, Vary, a no-cache field list) has a member equal to the lowercase
// token, ignoring case and whitespace around members.
func ListHas(v []byte, token string) bool {
	for len(v) > 0 && token != "" {
		i := 0
		for i < len(v) && v[i] != ',' {
			i++
		}
		if EqualFold(trimSpace(v[:i]), token) {
			return true
		}
		if i == len(v) {
			break
		}
		v = v[i+1:]
	}
	return false
}

// listHasName is ListHas for a name of any case.
func listHasName(v, name []byte) bool {
	for len(v) > 0 && len(name) > 0 {
		i := 0
		for i < len(v) && v[i] != ',' {
			i++
		}
		m := trimSpace(v[:i])
		if len(m) == len(name) {
			same := true
			for j := range m {
				if lower(m[j]) != lower(name[j]) {
					same = false
					break
				}
			}
			if same {
				return true
			}
		}
		if i == len(v) {
			break
		}
		v = v[i+1:]
	}
	return false
}

// FieldRules says which header fields cross the proxy and which are stored:
// the fixed hop-by-hop list, the fields a message's Connection names, and
// the proxy's own internal fields. Safe for concurrent use.
type FieldRules struct {
	internal []string // lowercase

	// StripSetCookie drops Set-Cookie from stored responses (Store), so
	// that a stored response never hands one client's cookie to another.
	// The default (false) stores and replays it, as RFC 9111 §3.1 (a cache
	// stores every received field) and §7.3 (Set-Cookie does not inhibit
	// caching) say; Storable already refuses a response with Set-Cookie
	// that the origin did not explicitly mark cacheable. Set it before
	// the rules are used.
	StripSetCookie bool
}

// NewFieldRules returns the rules for a proxy whose internal fields (never
// forwarded to or from clients, never stored as headers) are internal, e.g.
// "Edgecache-Groups", "Edgecache-Fresh".
func NewFieldRules(internal ...string) *FieldRules {
	r := &FieldRules{}
	for _, f := range internal {
		r.internal = append(r.internal, strings.ToLower(f))
	}
	return r
}

// Forward reports whether a field is passed on when the proxy forwards a
// message, in either direction: not hop-by-hop, not named in the message's
// Connection value, not internal. It does not allocate.
func (r *FieldRules) Forward(name, connection []byte) bool {
	if IsHopByHop(name) || listHasName(connection, name) {
		return false
	}
	for _, f := range r.internal {
		if EqualFold(name, f) {
			return false
		}
	}
	return true
}

// Store reports whether a field of a response being stored is kept with the
// stored response (RFC 9111 §3.1: every field, with these exceptions).
// Besides what Forward drops, the stored copy loses Age (it is recomputed
// on every answer), Set-Cookie when StripSetCookie is set, and the fields
// that cc's qualified private (RFC 9111 §5.2.2.7: a shared cache MUST NOT
// store them) and qualified no-cache (§5.2.2.4: they may not be reused
// without revalidation, so the stored copy goes without them) list. cc may
// be nil.
func (r *FieldRules) Store(name, connection []byte, cc *Directives) bool {
	if !r.Forward(name, connection) || EqualFold(name, "age") || (r.StripSetCookie && EqualFold(name, "set-cookie")) {
		return false
	}
	if cc != nil && (listHasName(cc.PrivateFields, name) || listHasName(cc.NoCacheFields, name)) {
		return false
	}
	return true
}

// Update reports whether a field of a 304 (RFC 9111 §4.3.4) or HEAD
// (§4.3.5) response replaces the stored fields of the same name when the
// two are merged: every field Store keeps except Content-Length, which
// describes the 304 or HEAD response, not the stored body (§3.2), and
// Set-Cookie (the cookie a revalidation gets is the cache's, sent with
// whichever client's request started it; the stored response keeps the
// cookies the origin gave it); and Age, so that NewMeta over the merged
// fields sees the 304's Age (Store then leaves it out of what is kept).
func (r *FieldRules) Update(name, connection []byte, cc *Directives) bool {
	if EqualFold(name, "age") {
		return r.Forward(name, connection)
	}
	return r.Store(name, connection, cc) && !EqualFold(name, "content-length") && !EqualFold(name, "set-cookie")
}
