// Package cachepolicy owns the HTTP caching rules of the edgecache proxy,
// for a shared cache: RFC 9111 (storing, freshness, age, validation,
// invalidation), RFC 5861 (stale-while-revalidate, stale-if-error), RFC 9213
// (CDN-Cache-Control and the proxy's own targeted field), RFC 9211
// (Cache-Status), and cache keys. It is pure logic: no I/O, no HTTP library,
// no clock (callers pass "now"), so any server can use it and every rule is
// table-tested and fuzzed.
//
// Header values come in as []byte (duplicate field lines joined with ", ":
// Cache-Control, a targeted field, Vary or Age over several lines is one
// list), nil when absent. The hot-path functions do not allocate.
//
// # On a miss: store or not
//
//	req  := cachepolicy.NewRequest(method, reqCacheControl, pragma, hasAuthorization)
//	resp := cachepolicy.Response{Status: 200,
//		CacheControl: cachepolicy.ResponseDirectives(edgecacheCC, cdnCC, cacheControl),
//		Expires: ..., Date: ..., LastModified: ..., Age: ..., ETag: ..., Vary: ..., SetCookie: ...}
//	ok, reason := cachepolicy.Storable(&req, &resp)   // reason: a Cache-Status detail token
//	meta := cachepolicy.NewMeta(&resp, requestSentAt, responseReceivedAt)
//	b, _ := meta.AppendBinary(b)                      // store b + headers + body
//	rules.Store(name, connection, &resp.CacheControl) // per response field: keep it in the entry?
//
// # On a hit: what to do
//
//	meta, n, err := cachepolicy.ReadMeta(stored)      // aliases stored; ErrCorruptMeta → treat as miss
//	d := cachepolicy.Decide(&req, &meta, now)
//	switch d.Action {
//	case Serve, ServeStale:   // answer with Age: d.Age; ServeStale also refreshes in the background
//	case Validate:            // inm, ims := meta.Conditional(); send a conditional request
//	case Fetch:               // plain request
//	case GatewayTimeout:      // only-if-cached: 504
//	}
//	// origin answered ErrorStatus(status): serve the entry if d.StaleIfError, or
//	// meta.ServeOnError(&req, now, cachepolicy.ErrorResponse) later; no answer at
//	// all (refused, reset, closed, timed out): meta.ServeOnError(&req, now, cachepolicy.Disconnected).
//	meta.NotModified(ifNoneMatch, ifModifiedSince)   // answer the client 304 from the entry
//
// # Ranges, from a stored complete response
//
//	if method == "GET" && meta.Status == 200 && meta.IfRange(ifRange) {
//		ranges, a := cachepolicy.ParseRange(rangeField, int64(len(body)), buf[:0])
//		// RangeFull: 200, the whole. RangeUnsatisfiable: 416, Content-Range:
//		// AppendUnsatisfiedRange. RangePartial: 206, one part with
//		// AppendContentRange, or AppendMultipartByteranges with AppendBoundary.
//	}
//
// After a 304: if meta.Selects304(etag, lastModified), replace each stored
// field for which rules.Update(name, connection, &cc) holds with the 304's,
// then NewMeta again over the merged fields (stored Status, new times) and
// keep the merged fields that rules.Store allows. After a HEAD: the same
// with meta.SelectsHead; false means the entry is outdated.
//
// # Keys
//
//	k := cachepolicy.AppendKey(buf[:0], scheme, host, rawPath, rawQuery)  // primary key text
//	k = cachepolicy.AppendVaryKey(k, meta.Vary, func(name []byte) []byte { return reqHeader(name) })
//	mk := cachepolicy.AppendMemcacheKey(mkbuf[:0], "ec:", k)               // safe for memcached
//	canon, star := cachepolicy.AppendVary(nil, resp.Vary)                  // canonical Vary names
//
// Writes: if Invalidates(method, status), invalidate AppendKey of the target
// and, for Location and Content-Location, AppendLocationKey (same origin
// only).
//
// # Headers
//
// NewFieldRules(internal...) gives Forward (either direction: hop-by-hop,
// Connection-named and internal fields dropped), Store (also Age, fields
// named by qualified private / no-cache, and Set-Cookie only if
// StripSetCookie) and Update (304/HEAD: also not Content-Length nor
// Set-Cookie). IsHopByHop and ListHas are the building blocks.
//
// # Cache-Status
//
//	s := cachepolicy.CacheStatus{Cache: "edgecache", Fwd: d.Fwd, FwdStatus: 200, Stored: true}
//	field = s.Append(field[:0])  // "edgecache; fwd=miss; fwd-status=200; stored"
//
// The rules chosen where the RFCs leave room are documented on Directives,
// ParseTargeted, ParseHTTPDate, Storable, NewMeta, Decide, Meta.ServeOnError,
// Meta.SelectsHead, ParseRange and FieldRules.
package cachepolicy
