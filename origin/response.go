package origin

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// apiError is an error a client sees: a status and a JSON body
// {"error":{"code":..., "message":...}}. Codes are stable identifiers;
// messages are for people.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func badRequest(code, message string) *apiError {
	return &apiError{fasthttp.StatusBadRequest, code, message}
}

var (
	errInvalidID          = badRequest("invalid_id", "id must be a positive integer without leading zeros, at most 9223372036854775807")
	errNotFound           = &apiError{fasthttp.StatusNotFound, "not_found", "no such resource"}
	errForbidden          = &apiError{fasthttp.StatusForbidden, "forbidden", "the resource belongs to another user"}
	errPreconditionFailed = &apiError{fasthttp.StatusPreconditionFailed, "precondition_failed", "If-Match does not match the current version"}
)

// writeError answers with e. Errors are never cached (no-store), and the
// code and message go to the access log line of the request.
func writeError(ctx *fasthttp.RequestCtx, e *apiError) {
	ctx.SetUserValue(errorKey, e)
	h := &ctx.Response.Header
	h.Del("ETag")
	h.Del("Last-Modified")
	h.Del(groupsHeader)
	h.Set("Cache-Control", "no-store")
	if e.status == fasthttp.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="edgecache"`)
	}
	if e.status == fasthttp.StatusServiceUnavailable {
		h.Set("Retry-After", "1")
	}
	writeJSON(ctx, e.status, &errorBody{e.code, e.message})
}

// writeAbsent answers a GET of a single resource that does not exist: the
// JSON 404, which a shared cache may keep for ORIGIN_NOT_FOUND_CACHE_SECONDS
// (max-age=0: a browser cannot be told when the resource is created),
// naming at version 0 the group that the resource's creation moves (the
// INSERT triggers log it). Version 0 says "no row": the proxy does not
// compare it with the group's version, and the answer comes from the
// primary (database.read re-reads a replica's "no row" there).
func (s *Server) writeAbsent(ctx *fasthttp.RequestCtx, group string) {
	if s.cfg.NotFoundCacheSeconds == 0 {
		writeError(ctx, errNotFound)
		return
	}
	ctx.SetUserValue(errorKey, errNotFound)
	h := &ctx.Response.Header
	h.Set("Cache-Control", "public, max-age=0, s-maxage="+strconv.Itoa(s.cfg.NotFoundCacheSeconds))
	h.Set(groupsHeader, group)
	writeJSON(ctx, fasthttp.StatusNotFound, &errorBody{errNotFound.code, errNotFound.message})
}

// databaseFailed answers a request whose database work failed with err:
// 503 when the database could not answer (the client may retry), 500 when
// it refused a query (a bug).
func (s *Server) databaseFailed(ctx *fasthttp.RequestCtx, err error) {
	if unavailable(err) {
		s.log.Warn("database unavailable", zap.ByteString("method", ctx.Method()), zap.ByteString("path", ctx.Path()), zap.Error(err))
		writeError(ctx, &apiError{fasthttp.StatusServiceUnavailable, "database_unavailable", "the database is unavailable; retry shortly"})
		return
	}
	s.log.Error("database error", zap.ByteString("method", ctx.Method()), zap.ByteString("path", ctx.Path()), zap.Error(err))
	writeError(ctx, &apiError{fasthttp.StatusInternalServerError, "internal", "internal error"})
}

// writeJSON answers with v's JSON, encoded in a pooled buffer.
func writeJSON(ctx *fasthttp.RequestCtx, status int, v jsonBody) {
	bp := bodyBuffers.Get().(*[]byte)
	body := v.appendJSON((*bp)[:0])
	writeBody(ctx, status, body)
	if cap(body) <= maxPooledBody {
		*bp = body
		bodyBuffers.Put(bp)
	}
}

// writeBody answers with a JSON body, which it copies; fasthttp adds the
// Content-Length (and sends it, without the body, to a HEAD).
func writeBody(ctx *fasthttp.RequestCtx, status int, body []byte) {
	ctx.SetStatusCode(status)
	ctx.Response.Header.SetContentType("application/json")
	ctx.SetBody(body)
}

// groupsHeader names the row-groups a response was built from (GET) or
// changed (writes), as space-separated "group=version" tokens. See the
// contract in proxy/README.md, "Internal headers"; the proxy strips it before
// answering clients.
const groupsHeader = "Edgecache-Groups"

// freshHeader, set to "1" by the proxy, asks for a read from the primary.
const freshHeader = "Edgecache-Fresh"

// edgecacheCacheControlHeader is the proxy's RFC 9213 targeted field
// (PROXY_TARGETED_CACHE_CONTROL): its directives replace Cache-Control's
// for edgecache alone.
const edgecacheCacheControlHeader = "Edgecache-Cache-Control"

func postGroup(id, version int64) string      { return group("post/", id, "", version) }
func userGroup(id, version int64) string      { return group("user/", id, "", version) }
func userPostsGroup(id, version int64) string { return group("user/", id, "/posts", version) }

// group is prefix, id, suffix, "=", version.
func group(prefix string, id int64, suffix string, version int64) string {
	var buf [64]byte
	b := append(buf[:0], prefix...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, suffix...)
	b = append(b, '=')
	return string(strconv.AppendInt(b, version, 10))
}

// wantsFresh reports whether the request must be read from the primary.
func wantsFresh(ctx *fasthttp.RequestCtx) bool {
	return string(ctx.Request.Header.Peek(freshHeader)) == "1"
}

// writeChange answers a successful write. Write responses are never
// cached; groups are the row-groups the write changed, at their new
// versions.
func writeChange(ctx *fasthttp.RequestCtx, status int, location string, groups []string, v any) {
	h := &ctx.Response.Header
	h.Set("Cache-Control", "no-store")
	h.Set(groupsHeader, strings.Join(groups, " "))
	if location != "" {
		h.Set("Location", location)
	}
	if v == nil {
		ctx.SetStatusCode(status)
		return
	}
	body, _ := json.Marshal(v)
	writeBody(ctx, status, body)
}

// representation is a cacheable GET answer and what validates it.
type representation struct {
	value        jsonBody
	version      int64     // the ETag is the version, quoted: "7"
	lastModified time.Time // updated_at of the newest row it was built from
	group        string    // the one row-group it was built from, at the version read
}

// etag is the strong entity tag of a representation at version v. Each
// resource's representation changes exactly when its version moves, and an
// ETag only has to be unique per URL, so the quoted version is enough.
func etag(version int64) string {
	var buf [24]byte
	return string(appendETag(buf[:0], version))
}

func appendETag(b []byte, version int64) []byte {
	b = append(b, '"')
	b = strconv.AppendInt(b, version, 10)
	return append(b, '"')
}

// writeCacheable answers a GET (or HEAD) with rep, or with 304 Not Modified
// when the request's validators still match. Both carry the caching headers,
// so that a cache revalidating with a 304 refreshes them. Last-Modified is
// sent only once it is strong (see lastModifiedStrong).
func (s *Server) writeCacheable(ctx *fasthttp.RequestCtx, rep representation) {
	h := &ctx.Response.Header
	var buf [64]byte // the ETag, then the Last-Modified
	tag := appendETag(buf[:0], rep.version)
	strong := s.lastModifiedStrong(rep.lastModified, time.Now())
	h.Set("Cache-Control", s.cacheControl)
	if s.edgecacheCacheControl != "" {
		h.Set(edgecacheCacheControlHeader, s.edgecacheCacheControl)
	}
	h.SetBytesV("Etag", tag)
	if strong {
		h.SetBytesV("Last-Modified", fasthttp.AppendHTTPDate(buf[len(tag):len(tag)], rep.lastModified))
	}
	h.Set(groupsHeader, rep.group)
	if notModified(&ctx.Request.Header, tag, rep.lastModified, strong) {
		ctx.SetStatusCode(fasthttp.StatusNotModified)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, rep.value)
}

// lastModifiedStrong reports whether, at now, the Last-Modified of a
// representation last changed at lastModified (an updated_at, to the
// microsecond) is strong in the sense of RFC 9110 §8.8.2.2: no other
// version of it can have the same Last-Modified, whose resolution is one
// second. That holds once that second has ended and every write stamped
// within it has committed or failed; ORIGIN_QUERY_TIMEOUT bounds the
// origin's write transactions (not ones typed by hand that stay open).
//
// Until then the origin neither sends Last-Modified nor answers
// If-Modified-Since with 304: a client holding the first of two versions
// made within one second would otherwise be told, then or later, that its
// copy is current. The ETag has no such blind spot and is always sent.
func (s *Server) lastModifiedStrong(lastModified, now time.Time) bool {
	return !now.Before(lastModified.Truncate(time.Second).Add(time.Second + s.cfg.QueryTimeout))
}

// notModified evaluates If-None-Match (weak comparison) or, only when that is
// absent, If-Modified-Since (RFC 9110 §13.2.2), the latter only when the
// Last-Modified is strong.
func notModified(h *fasthttp.RequestHeader, tag []byte, lastModified time.Time, strong bool) bool {
	if inm := h.PeekAll("If-None-Match"); len(inm) > 0 {
		for _, field := range inm {
			for t := range bytes.SplitSeq(field, []byte(",")) {
				t = bytes.TrimPrefix(bytes.TrimSpace(t), []byte("W/"))
				if string(t) == "*" || bytes.Equal(t, tag) {
					return true
				}
			}
		}
		return false
	}
	if ims := h.Peek("If-Modified-Since"); len(ims) > 0 && strong {
		t, err := fasthttp.ParseHTTPDate(ims)
		return err == nil && !lastModified.Truncate(time.Second).After(t)
	}
	return false
}

// precondition is a parsed If-Match header: absent, "*", or a list of
// entity tags that must include the current one (strong comparison).
type precondition struct {
	present bool
	any     bool
	tags    []string
}

func parseIfMatch(h *fasthttp.RequestHeader) precondition {
	values := h.PeekAll("If-Match")
	if len(values) == 0 {
		return precondition{}
	}
	p := precondition{present: true}
	for _, field := range values {
		for t := range strings.SplitSeq(string(field), ",") {
			t = strings.TrimSpace(t)
			if t == "*" {
				p.any = true
			}
			p.tags = append(p.tags, t) // a weak W/"..." tag never equals a strong one
		}
	}
	return p
}

// allows reports whether a resource at version may be changed.
func (p precondition) allows(version int64) bool {
	if !p.present || p.any {
		return true
	}
	tag := etag(version)
	for _, t := range p.tags {
		if t == tag {
			return true
		}
	}
	return false
}
