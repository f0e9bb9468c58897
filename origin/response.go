package origin

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

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
	return &apiError{http.StatusBadRequest, code, message}
}

var (
	errNotFound           = &apiError{http.StatusNotFound, "not_found", "no such resource"}
	errForbidden          = &apiError{http.StatusForbidden, "forbidden", "the resource belongs to another user"}
	errPreconditionFailed = &apiError{http.StatusPreconditionFailed, "precondition_failed", "If-Match does not match the current version"}
)

// writeError answers with e. Errors are never cached (no-store), and the
// code and message go to the access log line of the request.
func writeError(w http.ResponseWriter, e *apiError) {
	if rl, ok := w.(*responseLog); ok {
		rl.errCode, rl.errMessage = e.code, e.message
	}
	h := w.Header()
	h.Del("ETag")
	h.Del("Last-Modified")
	h.Del(groupsHeader)
	h.Set("Cache-Control", "no-store")
	if e.status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="edgecache"`)
	}
	if e.status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "1")
	}
	writeJSON(w, e.status, &errorBody{e.code, e.message})
}

// writeAbsent answers a GET of a single resource that does not exist: the
// JSON 404, which a shared cache may keep for ORIGIN_NOT_FOUND_CACHE_SECONDS
// (max-age=0: a browser cannot be told when the resource is created),
// naming at version 0 the group that the resource's creation moves (the
// INSERT triggers log it). Version 0 says "no row": the proxy does not
// compare it with the group's version, and the answer comes from the
// primary (database.read re-reads a replica's "no row" there).
func (s *Server) writeAbsent(w http.ResponseWriter, group string) {
	if s.cfg.NotFoundCacheSeconds == 0 {
		writeError(w, errNotFound)
		return
	}
	if rl, ok := w.(*responseLog); ok {
		rl.errCode, rl.errMessage = errNotFound.code, errNotFound.message
	}
	h := w.Header()
	h.Set("Cache-Control", "public, max-age=0, s-maxage="+strconv.Itoa(s.cfg.NotFoundCacheSeconds))
	h.Set(groupsHeader, group)
	writeJSON(w, http.StatusNotFound, &errorBody{errNotFound.code, errNotFound.message})
}

// databaseFailed answers a request whose database work failed with err:
// 503 when the database could not answer (the client may retry), 500 when
// it refused a query (a bug).
func (s *Server) databaseFailed(w http.ResponseWriter, r *http.Request, err error) {
	if unavailable(err) {
		s.log.Warn("database unavailable", zap.String("route", r.Pattern), zap.Error(err))
		writeError(w, &apiError{http.StatusServiceUnavailable, "database_unavailable", "the database is unavailable; retry shortly"})
		return
	}
	s.log.Error("database error", zap.String("route", r.Pattern), zap.Error(err))
	writeError(w, &apiError{http.StatusInternalServerError, "internal", "internal error"})
}

// writeJSON answers with v's JSON, encoded in a pooled buffer.
func writeJSON(w http.ResponseWriter, status int, v jsonBody) {
	bp := bodyBuffers.Get().(*[]byte)
	body := v.appendJSON((*bp)[:0])
	writeBody(w, status, body)
	if cap(body) <= maxPooledBody {
		*bp = body
		bodyBuffers.Put(bp)
	}
}

func writeBody(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
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
func wantsFresh(r *http.Request) bool { return r.Header.Get(freshHeader) == "1" }

// writeChange answers a successful write. Write responses are never
// cached; groups are the row-groups the write changed, at their new
// versions.
func writeChange(w http.ResponseWriter, status int, location string, groups []string, v any) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set(groupsHeader, strings.Join(groups, " "))
	if location != "" {
		h.Set("Location", location)
	}
	if v == nil {
		w.WriteHeader(status)
		return
	}
	body, _ := json.Marshal(v)
	writeBody(w, status, body)
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
	b := append(buf[:0], '"')
	b = strconv.AppendInt(b, version, 10)
	return string(append(b, '"'))
}

// writeCacheable answers a GET (or HEAD) with rep, or with 304 Not Modified
// when the request's validators still match. Both carry the caching headers,
// so that a cache revalidating with a 304 refreshes them. Last-Modified is
// sent only once it is strong (see lastModifiedStrong).
//
// The header values are set straight into the map, under their canonical
// names, sharing one allocation: Header.Set allocates a slice per value.
func (s *Server) writeCacheable(w http.ResponseWriter, r *http.Request, rep representation) {
	h := w.Header()
	tag := etag(rep.version)
	strong := s.lastModifiedStrong(rep.lastModified, time.Now())
	values := make([]string, 5)
	set := func(name, value string) {
		values[0] = value
		h[name] = values[:1:1]
		values = values[1:]
	}
	set("Cache-Control", s.cacheControl)
	if s.edgecacheCacheControl != "" {
		set(edgecacheCacheControlHeader, s.edgecacheCacheControl)
	}
	set("Etag", tag)
	if strong {
		set("Last-Modified", rep.lastModified.UTC().Format(http.TimeFormat))
	}
	set(groupsHeader, rep.group)
	if notModified(r, tag, rep.lastModified, strong) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	writeJSON(w, http.StatusOK, rep.value)
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
func notModified(r *http.Request, tag string, lastModified time.Time, strong bool) bool {
	if inm := r.Header.Values("If-None-Match"); len(inm) > 0 {
		for _, t := range strings.Split(strings.Join(inm, ","), ",") {
			t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
			if t == "*" || t == tag {
				return true
			}
		}
		return false
	}
	if ims := r.Header.Get("If-Modified-Since"); ims != "" && strong {
		t, err := http.ParseTime(ims)
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

func parseIfMatch(r *http.Request) precondition {
	values := r.Header.Values("If-Match")
	if len(values) == 0 {
		return precondition{}
	}
	p := precondition{present: true}
	for _, t := range strings.Split(strings.Join(values, ","), ",") {
		t = strings.TrimSpace(t)
		if t == "*" {
			p.any = true
		}
		p.tags = append(p.tags, t) // a weak W/"..." tag never equals a strong one
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
