package origin

import (
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// A handler answers one route. id is the path's {id}, already checked by
// parseID (0 on routes without one): every route with an {id} refused a bad
// one with 400 invalid_id before doing anything else.
type handler func(s *Server, ctx *fasthttp.RequestCtx, id int64)

// route is one method of a resource.
type route struct {
	pattern string // "GET /v1/posts/{id}": its name in the metrics and the access log
	handle  handler
}

// resource is one path and its routes by method. GET also answers HEAD,
// and a method it lacks gets 405 with Allow.
type resource struct {
	path   []string // segments; idSegment takes a row id
	routes map[string]route
	allow  string // the Allow field of its 405: the methods, sorted, and HEAD with GET
}

const idSegment = "{id}"

var resources = newResources(map[string]handler{
	"POST /v1/users":            (*Server).createUser,
	"GET /v1/users/{id}":        (*Server).getUser,
	"POST /v1/users/{id}/posts": (*Server).createPost,
	"GET /v1/users/{id}/posts":  (*Server).listPosts,
	"GET /v1/posts/{id}":        (*Server).getPost,
	"PUT /v1/posts/{id}":        (*Server).updatePost,
	"DELETE /v1/posts/{id}":     (*Server).deletePost,
	"GET /healthz":              (*Server).healthz,
	"GET /readyz":               (*Server).readyz,
	"GET /metrics":              (*Server).serveMetrics,
})

// newResources groups the routes, named "METHOD /path", by path.
func newResources(routes map[string]handler) []resource {
	var rs []resource
	for pattern, h := range routes {
		method, path, _ := strings.Cut(pattern, " ")
		segments := strings.Split(path[1:], "/")
		i := slices.IndexFunc(rs, func(r resource) bool { return slices.Equal(r.path, segments) })
		if i < 0 {
			rs = append(rs, resource{path: segments, routes: map[string]route{}})
			i = len(rs) - 1
		}
		rs[i].routes[method] = route{pattern, h}
	}
	for i := range rs {
		var methods []string
		for m := range rs[i].routes {
			methods = append(methods, m)
			if m == "GET" {
				methods = append(methods, "HEAD")
			}
		}
		slices.Sort(methods)
		rs[i].allow = strings.Join(methods, ", ")
	}
	return rs
}

var errMalformedPath = badRequest("bad_request", "the request path has a malformed percent escape")

// maxSegments is the most path segments a route has.
const maxSegments = 4

// find returns the resource whose path the segments match, and the {id}
// segment's text.
func find(segments []string) (*resource, string) {
	for i := range resources {
		r := &resources[i]
		if len(r.path) != len(segments) {
			continue
		}
		id, match := "", true
		for j, want := range r.path {
			switch {
			case want == idSegment:
				id = segments[j]
			case want != segments[j]:
				match = false
			}
		}
		if match {
			return r, id
		}
	}
	return nil, ""
}

// serve routes a request and records it: one access log line, the request
// metrics, and a 500 instead of a dropped connection on a panic.
//
// Handlers pass context.Background() to the database: fasthttp has no
// per-request cancellation, so a client that hangs up no longer cancels
// its query, as net/http's request context did. ORIGIN_QUERY_TIMEOUT
// bounds every query and transaction all the same (database.readFrom,
// writeOnce), and a read the client left costs no more than one it waited
// for.
func (s *Server) serve(ctx *fasthttp.RequestCtx) {
	began := time.Now()
	pattern := "unmatched"
	var path string // decoded, for the access log
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic serving request", zap.Any("panic", p), zap.String("path", path), zap.Stack("stack"))
			ctx.Response.Reset()
			writeError(ctx, &apiError{fasthttp.StatusInternalServerError, "internal", "internal error"})
		}
		end := time.Now()
		status := ctx.Response.StatusCode()
		s.metrics.request(pattern, status, end.Sub(began))
		s.logRequest(ctx, pattern, path, status, began, end)
	}()
	if s.draining.Load() {
		ctx.SetConnectionClose() // clients reconnect, to another instance
	}
	raw := ctx.URI().PathOriginal()
	var ok bool
	if path, ok = decodePath(raw); !ok {
		writeError(ctx, errMalformedPath) // net/http refused it before routing, in plain text
		return
	}
	if !cleanPath(path) {
		// A path not in its one clean form (no "//", "." or ".." segment,
		// no trailing "/") gets a 404, not a redirect to the clean path: a
		// proxy invalidates a write's Location, so PUT /v1//posts/1 would
		// let anyone purge /v1/posts/1. GET and HEAD get the same 404,
		// which keeps one URL, and one cache key, per resource.
		writeError(ctx, errNotFound)
		return
	}
	// Segments are cut from the raw path and decoded one by one, as
	// net/http's ServeMux did: "%2F" is a slash inside a segment.
	var segments [maxSegments]string
	n, ok := splitPath(raw, segments[:])
	if !ok {
		writeError(ctx, errNotFound)
		return
	}
	r, idText := find(segments[:n])
	if r == nil {
		writeError(ctx, errNotFound)
		return
	}
	method := unsafeString(ctx.Method())
	rt, ok := r.routes[method]
	if !ok && method == "HEAD" {
		rt, ok = r.routes["GET"]
	}
	if !ok {
		ctx.Response.Header.Set("Allow", r.allow)
		writeError(ctx, &apiError{fasthttp.StatusMethodNotAllowed, "method_not_allowed", "allowed: " + r.allow})
		return
	}
	pattern = rt.pattern
	var id int64
	if slices.Contains(r.path, idSegment) {
		var err error
		if id, err = parseID(idText); err != nil {
			writeError(ctx, errInvalidID)
			return
		}
	}
	rt.handle(s, ctx, id)
}

// decodePath decodes a raw request path (percent escapes; "+" stays "+").
// Without escapes it is the raw bytes, not copied: the access log reads it
// before the request ends.
func decodePath(raw []byte) (string, bool) {
	if !slices.Contains(raw, '%') {
		return unsafeString(raw), true
	}
	p, err := url.PathUnescape(string(raw))
	return p, err == nil
}

// cleanPath reports whether p is in the form path.Clean gives it, which
// net/http's mux required: rooted, no empty, "." or ".." segment, no
// trailing "/" but the root's.
func cleanPath(p string) bool {
	if p == "/" {
		return true
	}
	if p == "" || p[0] != '/' || p[len(p)-1] == '/' {
		return false
	}
	for seg := range strings.SplitSeq(p[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// splitPath cuts a raw, clean path into decoded segments, at most
// len(segments); false when it has more or a segment does not decode.
func splitPath(raw []byte, segments []string) (int, bool) {
	if len(raw) == 0 || raw[0] != '/' {
		return 0, false
	}
	n := 0
	for seg := range strings.SplitSeq(unsafeString(raw[1:]), "/") {
		if n == len(segments) {
			return 0, false
		}
		if strings.IndexByte(seg, '%') >= 0 {
			var err error
			if seg, err = url.PathUnescape(seg); err != nil {
				return 0, false
			}
		}
		segments[n] = seg
		n++
	}
	return n, true
}

// unsafeString is b as a string without a copy, for reading during the
// request that owns b: fasthttp reuses its buffers for the next one.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// malformed answers a request fasthttp could not read: its head did not
// parse, was over maxHeaderBytes, or did not arrive within readTimeout.
// No handler ran, so there is no access log line (net/http wrote none
// either), only a log line here.
func (s *Server) malformed(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	var timeout interface{ Timeout() bool }
	switch {
	case errors.As(err, &small):
		writeError(ctx, &apiError{fasthttp.StatusRequestHeaderFieldsTooLarge, "headers_too_large",
			"the request head exceeds " + strconv.Itoa(maxHeaderBytes) + " bytes"})
	case errors.As(err, &timeout) && timeout.Timeout():
		writeError(ctx, &apiError{fasthttp.StatusRequestTimeout, "request_timeout", "the request did not arrive in time"})
	default:
		writeError(ctx, badRequest("bad_request", "the request is malformed"))
	}
	s.log.Info("malformed request", zap.Error(err), zap.String("remote", ctx.RemoteAddr().String()))
}
