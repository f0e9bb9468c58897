package cachepolicy

// Request is what the caching rules need from a client request.
type Request struct {
	Method        []byte     // "GET", "HEAD", ...
	CacheControl  Directives // ParseCacheControl of the request's Cache-Control
	PragmaNoCache bool       // Pragma: no-cache, with no Cache-Control (RFC 9111 §5.4)
	Authorization bool       // the request carries Authorization
}

// NewRequest builds a Request from the method and the raw Cache-Control,
// Pragma field values (nil when absent). It does not allocate.
//
// A proxy that does not want clients to force revalidation can leave
// CacheControl and PragmaNoCache zero; the rules then use the response's
// directives only.
func NewRequest(method, cacheControl, pragma []byte, authorization bool) Request {
	r := Request{Method: method, Authorization: authorization}
	if len(trimSpace(cacheControl)) > 0 {
		r.CacheControl = ParseCacheControl(cacheControl)
	} else if len(pragma) > 0 {
		r.PragmaNoCache = ListHas(pragma, "no-cache")
	}
	return r
}

// Response is what the caching rules need from an origin response. The byte
// fields are raw field values, nil (or empty) when absent; duplicate field
// lines joined with ", ".
type Response struct {
	Status       int
	CacheControl Directives // ResponseDirectives(targeted, CDN-Cache-Control, Cache-Control)
	Expires      []byte
	Date         []byte
	LastModified []byte
	Age          []byte
	ETag         []byte
	Vary         []byte
	SetCookie    bool // the response has a Set-Cookie field
}

// Reasons a response is not stored, returned by Storable. They are tokens,
// usable as a Cache-Status detail.
const (
	ReasonMethod         = "method"          // not GET
	ReasonStatus         = "status"          // not a final status, 206 or 304, or no freshness and not heuristically cacheable
	ReasonNoStore        = "no-store"        // response or request no-store
	ReasonPrivate        = "private"         // unqualified private
	ReasonAuthorization  = "authorization"   // request had Authorization; response lacks public, s-maxage, must-revalidate
	ReasonVaryStar       = "vary-star"       // Vary: *
	ReasonSetCookie      = "set-cookie"      // Set-Cookie without explicit freshness
	ReasonMustUnderstand = "must-understand" // must-understand with a status this cache does not understand
)

// Storable reports whether a shared cache may store resp, the answer to req
// (RFC 9111 §3, §3.5, §5.2.2.3). When it may not, reason says why. It does
// not allocate.
//
// Rules where the RFCs leave room:
//   - Only responses to GET are stored. The cache key is method-independent,
//     so a stored HEAD response would answer a later GET without a body; a
//     HEAD response only refreshes a stored GET response (Meta.SelectsHead).
//   - Any final status (200–599) is stored when the response has explicit
//     freshness (max-age, s-maxage, Expires) or public (§3: 400, 500, 503,
//     299 and 599 alike); without it, only the heuristically cacheable ones
//     (RFC 9110 §15.1: 200, 203, 204, 300, 301, 308, 404, 405, 410, 414,
//     451, 501). 206 is never stored: ranges are served from a stored
//     complete response (ParseRange), and a partial one is not combined
//     (§3.3 allows, never requires it). 304 and 1xx are never stored.
//   - must-understand: the status codes whose semantics this cache
//     implements are 200, 203, 204, 300, 301, 302, 303, 307, 308, 404, 405,
//     410, 414, 451, 501; with any other, must-understand forbids storing
//     (§5.2.2.3).
//   - Set-Cookie does not inhibit storing (§7.3): the field is stored and
//     replayed like any other (§3.1), unless FieldRules.StripSetCookie.
//     Only the origin's explicit word counts, though: a response with
//     Set-Cookie and no explicit freshness or public is not stored on
//     heuristic freshness (a page that sets a session cookie and says
//     nothing about caching is not a page to share).
//   - A qualified private="f" is stored with the listed fields removed.
func Storable(req *Request, resp *Response) (ok bool, reason string) {
	cc := &resp.CacheControl
	if string(req.Method) != "GET" {
		return false, ReasonMethod
	}
	if cc.Has(MustUnderstand) {
		// §5.2.2.3: a cache that understands the status code ignores
		// no-store; one that does not, must not store.
		if !understoodStatus(resp.Status) {
			return false, ReasonMustUnderstand
		}
	} else if cc.Has(NoStore) {
		return false, ReasonNoStore
	}
	if req.CacheControl.Has(NoStore) {
		return false, ReasonNoStore
	}
	if !storableStatus(resp.Status) {
		return false, ReasonStatus
	}
	if cc.Has(Private) {
		return false, ReasonPrivate
	}
	if req.Authorization && cc.Flags&(Public|HasSMaxAge|MustRevalidate) == 0 {
		return false, ReasonAuthorization
	}
	if varyStar(resp.Vary) {
		return false, ReasonVaryStar
	}
	explicit := cc.Flags&(HasMaxAge|HasSMaxAge|Public) != 0 ||
		(len(resp.Expires) > 0 && !cc.Has(Targeted))
	switch {
	case explicit:
	case resp.SetCookie:
		return false, ReasonSetCookie
	case !heuristicStatus(resp.Status):
		return false, ReasonStatus
	}
	return true, ""
}

// storableStatus reports whether a status may be stored at all: final
// (RFC 9110 §15: 200–599), not 206 (partial) and not 304.
func storableStatus(s int) bool {
	return s >= 200 && s <= 599 && s != 206 && s != 304
}

// understoodStatus lists the final status codes whose caching semantics this
// cache implements (for must-understand).
func understoodStatus(s int) bool {
	switch s {
	case 200, 203, 204, 300, 301, 302, 303, 307, 308, 404, 405, 410, 414, 451, 501:
		return true
	}
	return false
}

// heuristicStatus lists the status codes that are heuristically cacheable
// (RFC 9110 §15.1; 451 by RFC 7725).
func heuristicStatus(s int) bool {
	switch s {
	case 200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 451, 501:
		return true
	}
	return false
}

// varyStar reports whether a Vary value contains the member "*".
func varyStar(v []byte) bool { return ListHas(v, "*") }
