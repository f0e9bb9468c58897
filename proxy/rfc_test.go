package proxy

import (
	"math"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// originSpec is what the scripted origin answers for one table row. When
// the request's If-None-Match equals ETag, it answers 304. raw, when set,
// is written to the connection as it is instead (a whole response, ending
// the connection); fn, when set, answers instead.
type originSpec struct {
	status  int
	headers []string // name, value pairs
	body    string
	etag    string
	raw     string
	fn      fasthttp.RequestHandler
}

func (s originSpec) handler(seen *atomic.Value) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		seen.Store(ctx.Request.Header.String())
		if s.fn != nil {
			s.fn(ctx)
			return
		}
		if s.raw != "" {
			ctx.HijackSetNoResponse(true)
			ctx.Hijack(func(c net.Conn) { c.Write([]byte(s.raw)) })
			return
		}
		if s.etag != "" && string(ctx.Request.Header.Peek("If-None-Match")) == s.etag {
			ctx.SetStatusCode(304)
			ctx.Response.Header.Set("ETag", s.etag)
			for i := 0; i+1 < len(s.headers); i += 2 {
				if strings.EqualFold(s.headers[i], "Cache-Control") {
					ctx.Response.Header.Set(s.headers[i], s.headers[i+1])
				}
			}
			return
		}
		if s.status != 0 {
			ctx.SetStatusCode(s.status)
		}
		for i := 0; i+1 < len(s.headers); i += 2 {
			ctx.Response.Header.Add(s.headers[i], s.headers[i+1])
		}
		if s.etag != "" {
			ctx.Response.Header.Set("ETag", s.etag)
		}
		ctx.SetBodyString(s.body)
	}
}

// step is one request of a row and what must hold for its answer.
type step struct {
	method  string
	hdr     []string
	status  int
	cs      []string // substrings Cache-Status must contain
	notCS   []string // substrings it must not contain
	body    string   // expected body ("" = not checked; "-" = must be empty)
	origins int64    // origin requests so far, after this step
	check   func(t *testing.T, r *fasthttp.Response, originSaw string)
}

func TestRFC9111Table(t *testing.T) {
	const cc = "Cache-Control"
	httpDate := func(d time.Duration) string { return time.Now().Add(d).UTC().Format(http1123) }
	rows := []rfcRow{
		{"s-maxage fresh: stored, then hit", originSpec{headers: []string{cc, "public, s-maxage=60"}, body: "x"}, []step{
			{cs: []string{"fwd=uri-miss", "fwd-status=200", "stored"}, body: "x", origins: 1},
			{cs: []string{"hit", "ttl="}, body: "x", origins: 1},
		}},
		{"max-age alone gives freshness", originSpec{headers: []string{cc, "max-age=60"}, body: "x"}, []step{
			{origins: 1}, {cs: []string{"hit"}, origins: 1},
		}},
		{"s-maxage beats max-age", originSpec{headers: []string{cc, "max-age=60, s-maxage=0"}, body: "x", etag: `"e"`}, []step{
			{origins: 1},
			{cs: []string{"fwd=stale", "fwd-status=304"}, body: "x", origins: 2, check: sawHeader("If-None-Match", `"e"`)},
		}},
		{"Expires minus Date", originSpec{headers: []string{"Date", httpDate(0), "Expires", httpDate(time.Hour)}, body: "x"}, []step{
			{origins: 1}, {cs: []string{"hit"}, origins: 1},
		}},
		{"Expires in the past", originSpec{headers: []string{"Date", httpDate(0), "Expires", httpDate(-time.Hour)}, body: "x"}, []step{
			{origins: 1}, {notCS: []string{"hit"}, origins: 2},
		}},
		{"heuristic freshness from Last-Modified", originSpec{headers: []string{"Date", httpDate(0), "Last-Modified", httpDate(-100 * time.Hour)}, body: "x"}, []step{
			{origins: 1}, {cs: []string{"hit"}, origins: 1},
		}},
		{"no freshness, no validator: not kept", originSpec{body: "x"}, []step{
			{origins: 1}, {notCS: []string{"hit"}, origins: 2},
		}},
		{"no-store", originSpec{headers: []string{cc, "no-store, s-maxage=60"}, body: "x"}, []step{
			{cs: []string{"detail=no-store"}, notCS: []string{"stored"}, origins: 1},
			{notCS: []string{"hit"}, origins: 2},
		}},
		{"private", originSpec{headers: []string{cc, "private, max-age=60"}, body: "x"}, []step{
			{cs: []string{"detail=private"}, origins: 1}, {notCS: []string{"hit"}, origins: 2},
		}},
		{"no-cache validates every reuse", originSpec{headers: []string{cc, "no-cache, max-age=60"}, body: "x", etag: `"n"`}, []step{
			{origins: 1},
			{cs: []string{"fwd=stale", "fwd-status=304"}, body: "x", origins: 2, check: sawHeader("If-None-Match", `"n"`)},
		}},
		{"must-revalidate once stale", originSpec{headers: []string{cc, "max-age=0, must-revalidate"}, body: "x", etag: `"m"`}, []step{
			{origins: 1}, {cs: []string{"fwd=stale", "fwd-status=304"}, origins: 2},
		}},
		{"proxy-revalidate: no stale serving, not even within stale-while-revalidate", originSpec{headers: []string{cc, "max-age=0, proxy-revalidate, stale-while-revalidate=60"}, body: "x", etag: `"p"`}, []step{
			{origins: 1}, {cs: []string{"fwd=stale", "fwd-status=304"}, notCS: []string{"hit"}, body: "x", origins: 2},
		}},
		// A stale entry served for max-stale is refreshed behind, as for
		// stale-while-revalidate: the origin count after it is not fixed.
		{"request max-stale=N: a stale entry is served", originSpec{headers: []string{cc, "max-age=0"}, body: "x", etag: `"s"`}, []step{
			{origins: 1}, {hdr: []string{cc, "max-stale=60"}, cs: []string{"hit", "ttl=0"}, body: "x"},
		}},
		{"request max-stale without a value: any staleness", originSpec{headers: []string{cc, "max-age=0", "Age", "100"}, body: "x", etag: `"t"`}, []step{
			{origins: 1}, {hdr: []string{cc, "max-stale"}, cs: []string{"hit", "ttl=-"}, body: "x"},
		}},
		{"Vary: stored per variant", originSpec{headers: []string{cc, "s-maxage=60", "Vary", "Accept-Language"}, body: "x"}, []step{
			{hdr: []string{"Accept-Language", "en"}, origins: 1},
			{hdr: []string{"Accept-Language", "EN "}, cs: []string{"hit"}, origins: 1},
			{hdr: []string{"Accept-Language", "fr"}, cs: []string{"fwd=vary-miss"}, origins: 2},
		}},
		// RFC 9111 §4.1: a second variant does not replace the first
		// (cache-tests vary-invalidate); §4.4: a write invalidates both.
		{"§4.1: two variants stored side by side; a write invalidates both", originSpec{fn: func(ctx *fasthttp.RequestCtx) {
			if !ctx.IsGet() {
				return
			}
			ctx.Response.Header.Set(cc, "max-age=5000")
			ctx.Response.Header.Set("Vary", "Foo")
			ctx.SetBodyString("foo_" + string(ctx.Request.Header.Peek("Foo")))
		}}, []step{
			{hdr: []string{"Foo", "1"}, body: "foo_1", origins: 1},
			{hdr: []string{"Foo", "2"}, cs: []string{"fwd=vary-miss", "stored"}, body: "foo_2", origins: 2},
			{hdr: []string{"Foo", "1"}, cs: []string{"hit"}, body: "foo_1", origins: 2},
			{hdr: []string{"Foo", "2"}, cs: []string{"hit"}, body: "foo_2", origins: 2},
			{hdr: []string{"Foo", "3"}, cs: []string{"fwd=vary-miss"}, body: "foo_3", origins: 3},
			{hdr: []string{"Foo", "1"}, cs: []string{"hit"}, body: "foo_1", origins: 3},
			{method: "PUT", origins: 4},
			{hdr: []string{"Foo", "1"}, notCS: []string{"hit"}, body: "foo_1", origins: 5},
			{hdr: []string{"Foo", "2"}, notCS: []string{"hit"}, body: "foo_2", origins: 6},
		}},
		{"Vary: * is never stored", originSpec{headers: []string{cc, "s-maxage=60", "Vary", "*"}, body: "x"}, []step{
			{cs: []string{"detail=vary-star"}, origins: 1}, {notCS: []string{"hit"}, origins: 2},
		}},
		// RFC 9111 §7.3: Set-Cookie does not inhibit caching; §3.1: the
		// stored response keeps every field (PROXY_STRIP_SET_COOKIE
		// aside: TestStripSetCookie).
		{"Set-Cookie with max-age: stored and replayed (RFC 9111 §7.3, §3.1)", originSpec{headers: []string{cc, "max-age=60", "Set-Cookie", "a=b", "Set-Cookie", "c=d"}, body: "x"}, []step{
			{cs: []string{"stored"}, origins: 1, check: hasCookies("a", "c")},
			{cs: []string{"hit"}, origins: 1, check: hasCookies("a", "c")},
		}},
		{"Set-Cookie with public: replayed", originSpec{headers: []string{cc, "public, max-age=60", "Set-Cookie", "a=b"}, body: "x"}, []step{
			{origins: 1}, {cs: []string{"hit"}, origins: 1, check: hasCookies("a")},
		}},
		{"Set-Cookie on heuristic freshness only: not stored (RFC 9111 §4.2.2 is a MAY)", originSpec{headers: []string{"Last-Modified", httpDate(-100 * time.Hour), "Set-Cookie", "a=b"}, body: "x"}, []step{
			{cs: []string{"detail=set-cookie"}, origins: 1, check: hasCookies("a")},
			{notCS: []string{"hit"}, origins: 2},
		}},
		{"Authorization: passed, never served from cache", originSpec{headers: []string{cc, "public, s-maxage=60"}, body: "x"}, []step{
			{origins: 1},
			{hdr: []string{"Authorization", "Bearer t"}, cs: []string{"fwd=bypass"}, origins: 2},
			{cs: []string{"hit"}, origins: 2},
		}},
		// RFC 9111 §3.5: a response to a request with Authorization is
		// stored for later requests only with public, must-revalidate or
		// s-maxage (cache-tests other-authorization-public,
		// -must-revalidate, -smaxage); a request with Authorization is
		// never answered from the cache (another user's Authorization
		// goes to the origin).
		{"§3.5: Authorization, public: stored, reused for others, never for a request with Authorization", originSpec{headers: []string{cc, "max-age=3600, public", "Date", httpDate(0)}, body: "x"}, []step{
			{hdr: []string{"Authorization", "FOO"}, cs: []string{"fwd=bypass", "stored"}, origins: 1, check: sawHeader("Authorization", "FOO")},
			{cs: []string{"hit"}, body: "x", origins: 1},
			{hdr: []string{"Authorization", "BAR"}, cs: []string{"fwd=bypass"}, notCS: []string{"hit"}, origins: 2, check: sawHeader("Authorization", "BAR")},
		}},
		{"§3.5: Authorization, must-revalidate: stored and reused", originSpec{headers: []string{cc, "max-age=3600, must-revalidate", "Date", httpDate(0)}, body: "x"}, []step{
			{hdr: []string{"Authorization", "FOO"}, cs: []string{"stored"}, origins: 1},
			{cs: []string{"hit"}, body: "x", origins: 1},
		}},
		{"§3.5: Authorization, s-maxage: stored and reused", originSpec{headers: []string{cc, "s-maxage=3600", "Date", httpDate(0)}, body: "x"}, []step{
			{hdr: []string{"Authorization", "FOO"}, cs: []string{"stored"}, origins: 1},
			{cs: []string{"hit"}, body: "x", origins: 1},
		}},
		{"§3.5: Authorization, max-age alone: not stored, not reused for anyone (other-authorization)", originSpec{headers: []string{cc, "max-age=3600", "Date", httpDate(0)}, body: "x"}, []step{
			{hdr: []string{"Authorization", "FOO"}, cs: []string{"fwd=bypass", "detail=authorization"}, notCS: []string{"stored"}, origins: 1},
			{notCS: []string{"hit"}, origins: 2},
			{hdr: []string{"Authorization", "BAR"}, notCS: []string{"hit"}, origins: 3},
		}},
		// RFC 9213 §2.1: max-age is an Integer; a String is not consumed
		// (cache-tests cdn-cc-invalid-sh-type-wrong).
		{"RFC 9213 §2.1: CDN-Cache-Control max-age of the wrong type is not consumed", originSpec{headers: []string{cc, "no-store", "CDN-Cache-Control", `max-age="10000"`}, body: "x"}, []step{
			{origins: 1}, {notCS: []string{"hit"}, origins: 2},
		}},
		// RFC 8246 §2: a fresh immutable response is reused even by a
		// request with no-cache (cache-tests cc-resp-immutable-fresh).
		{"RFC 8246: immutable and fresh: reused without validation", originSpec{headers: []string{cc, "max-age=10000, immutable"}, body: "x", etag: `"abcd"`}, []step{
			{origins: 1}, {hdr: []string{cc, "no-cache"}, cs: []string{"hit"}, body: "x", origins: 1},
		}},
		// RFC 9111 §4.3.2 and RFC 9110 §13.1.3: without Last-Modified the
		// stored Date stands in; a client's copy from before it may be
		// older than the entry, so it gets the entry, not a 304
		// (cache-tests conditional-lm-fresh-no-lm expects a 304: see
		// cachepolicy/CONFORMANCE.md).
		{"§4.3.2: If-Modified-Since before the Date of an entry without Last-Modified: 200", originSpec{headers: []string{cc, "max-age=100000", "Date", httpDate(0)}, body: "x"}, []step{
			{origins: 1},
			{hdr: []string{"If-Modified-Since", httpDate(-3000 * time.Second)}, status: 200, cs: []string{"hit"}, body: "x", origins: 1},
			{hdr: []string{"If-Modified-Since", httpDate(time.Hour)}, status: 304, cs: []string{"hit"}, origins: 1},
		}},
		// RFC 9112 §6.1, §6.3: a transfer coding other than chunked cannot
		// be decoded; fasthttp's client refuses the response (cache-tests
		// headers-store-Transfer-Encoding: see cachepolicy/CONFORMANCE.md).
		{"RFC 9112 §6.1: a transfer coding other than chunked: 502, nothing stored", originSpec{raw: "HTTP/1.1 200 OK\r\nCache-Control: max-age=3600\r\nTransfer-Encoding: x-unknown\r\nConnection: close\r\n\r\nbody"}, []step{
			{status: 502, notCS: []string{"stored"}, origins: 2, check: proxyError}, // a failed read is tried once more
			{status: 502, notCS: []string{"hit"}, origins: 4, check: proxyError},
		}},
		// RFC 9111 §4.4 invalidates after a non-error answer only; a 5xx
		// to a write may still have committed, so edgecache invalidates
		// the target all the same (cache-tests invalidate-*-failed, by
		// choice: see cachepolicy/CONFORMANCE.md).
		{"§4.4: a 500 to a write invalidates the target too (it may have committed)", originSpec{fn: func(ctx *fasthttp.RequestCtx) {
			if !ctx.IsGet() {
				ctx.SetStatusCode(500)
				return
			}
			ctx.Response.Header.Set(cc, "max-age=3600")
			ctx.SetBodyString("x")
		}}, []step{
			{origins: 1},
			{cs: []string{"hit"}, origins: 1},
			{method: "PUT", status: 500, origins: 2, check: func(t *testing.T, r *fasthttp.Response, _ string) {
				if string(r.Header.Peek(hdrInvalidation)) != "pending" {
					t.Errorf("%s %q, want pending", hdrInvalidation, r.Header.Peek(hdrInvalidation))
				}
			}},
			{notCS: []string{"hit"}, origins: 3},
		}},
		{"404 with explicit freshness is stored", originSpec{status: 404, headers: []string{cc, "s-maxage=60"}, body: "nf"}, []step{
			{status: 404, origins: 1}, {status: 404, cs: []string{"hit"}, origins: 1},
		}},
		{"301 with explicit freshness is stored", originSpec{status: 301, headers: []string{cc, "s-maxage=60", "Location", "/elsewhere"}}, []step{
			{status: 301, origins: 1}, {status: 301, cs: []string{"hit"}, origins: 1},
		}},
		{"500 with s-maxage is stored (RFC 9111 §3)", originSpec{status: 500, headers: []string{cc, "s-maxage=60"}, body: "e"}, []step{
			{status: 500, cs: []string{"stored"}, origins: 1}, {status: 500, cs: []string{"hit"}, body: "e", origins: 1},
		}},
		{"500 without freshness is not stored", originSpec{status: 500, body: "e"}, []step{
			{status: 500, notCS: []string{"stored"}, origins: 1}, {status: 500, origins: 2},
		}},
		{"206 is not stored", originSpec{status: 206, headers: []string{cc, "s-maxage=60"}, body: "p"}, []step{
			{status: 206, origins: 1}, {status: 206, origins: 2},
		}},
		{"request no-cache validates a fresh entry", originSpec{headers: []string{cc, "s-maxage=60"}, body: "x", etag: `"r"`}, []step{
			{origins: 1},
			{hdr: []string{cc, "no-cache"}, cs: []string{"fwd=request", "fwd-status=304"}, origins: 2},
		}},
		{"request max-age=0 validates", originSpec{headers: []string{cc, "s-maxage=60"}, body: "x", etag: `"r"`}, []step{
			{origins: 1}, {hdr: []string{cc, "max-age=0"}, cs: []string{"fwd=request"}, origins: 2},
		}},
		{"Pragma: no-cache validates", originSpec{headers: []string{cc, "s-maxage=60"}, body: "x", etag: `"r"`}, []step{
			{origins: 1}, {hdr: []string{"Pragma", "no-cache"}, cs: []string{"fwd=request"}, origins: 2},
		}},
		{"request min-fresh beyond the ttl validates", originSpec{headers: []string{cc, "s-maxage=60"}, body: "x", etag: `"r"`}, []step{
			{origins: 1}, {hdr: []string{cc, "min-fresh=120"}, cs: []string{"fwd=request"}, origins: 2},
		}},
		{"request no-store: not stored", originSpec{headers: []string{cc, "s-maxage=60"}, body: "x"}, []step{
			{hdr: []string{cc, "no-store"}, notCS: []string{"stored"}, origins: 1},
			{notCS: []string{"hit"}, origins: 2},
		}},
		{"only-if-cached: 504 when not stored, hit when stored", originSpec{headers: []string{cc, "s-maxage=60"}, body: "x"}, []step{
			{hdr: []string{cc, "only-if-cached"}, status: 504, origins: 0},
			{origins: 1},
			{hdr: []string{cc, "only-if-cached"}, cs: []string{"hit"}, origins: 1},
		}},
		{"Age from upstream counts", originSpec{headers: []string{cc, "s-maxage=600", "Age", "100"}, body: "x"}, []step{
			{origins: 1},
			{cs: []string{"hit"}, origins: 1, check: func(t *testing.T, r *fasthttp.Response, _ string) {
				if age, _ := strconv.Atoi(string(r.Header.Peek("Age"))); age < 100 {
					t.Errorf("Age %q, want >= 100", r.Header.Peek("Age"))
				}
			}},
		}},
		{"stale-while-revalidate: stale served, refreshed behind", originSpec{headers: []string{cc, "s-maxage=10, stale-while-revalidate=1000", "Age", "50"}, body: "x", etag: `"s"`}, []step{
			{origins: 1},
			{cs: []string{"hit", "ttl=-"}, body: "x"},
		}},
		{"targeted field overrides Cache-Control", originSpec{headers: []string{cc, "no-store", "Edgecache-Cache-Control", "max-age=60"}, body: "x"}, []step{
			{origins: 1}, {cs: []string{"hit"}, origins: 1},
		}},
		{"CDN-Cache-Control overrides Cache-Control", originSpec{headers: []string{cc, "private", "CDN-Cache-Control", "max-age=60"}, body: "x"}, []step{
			{origins: 1}, {cs: []string{"hit"}, origins: 1},
		}},
		{"client If-None-Match: 304 from the cache", originSpec{headers: []string{cc, "s-maxage=60"}, body: "x", etag: `"c"`}, []step{
			{origins: 1},
			{hdr: []string{"If-None-Match", `"c"`}, status: 304, cs: []string{"hit"}, body: "-", origins: 1},
			{hdr: []string{"If-None-Match", `"other"`}, status: 200, body: "x", origins: 1},
		}},
		{"client If-Modified-Since: 304 from the cache", originSpec{headers: []string{cc, "s-maxage=60", "Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT"}, body: "x"}, []step{
			{origins: 1},
			{hdr: []string{"If-Modified-Since", "Mon, 07 Nov 1994 08:49:37 GMT"}, status: 304, origins: 1},
			{hdr: []string{"If-Modified-Since", "Sat, 05 Nov 1994 08:49:37 GMT"}, status: 200, origins: 1},
		}},
		{"HEAD miss fills with GET; GET then hits", originSpec{headers: []string{cc, "s-maxage=60"}, body: "hello"}, []step{
			{method: "HEAD", body: "-", origins: 1, check: func(t *testing.T, r *fasthttp.Response, saw string) {
				if !strings.HasPrefix(saw, "GET ") {
					t.Errorf("origin saw %q, want a GET", strings.SplitN(saw, "\r\n", 2)[0])
				}
				if r.Header.ContentLength() != 5 {
					t.Errorf("HEAD Content-Length %d, want 5", r.Header.ContentLength())
				}
			}},
			{cs: []string{"hit"}, body: "hello", origins: 1},
			{method: "HEAD", cs: []string{"hit"}, body: "-", origins: 1},
		}},
		// A group never seen: the cold fill reads a replica, cannot check
		// the answer against an unknown version, and asks the primary.
		{"internal fields never cross", originSpec{headers: []string{cc, "s-maxage=60", "Edgecache-Groups", "post/rfc-" + runID() + "=1"}, body: "x"}, []step{
			{hdr: []string{"Edgecache-Groups", "evil=1", "Edgecache-Fresh", "0"}, origins: 2, check: func(t *testing.T, r *fasthttp.Response, saw string) {
				if len(r.Header.Peek("Edgecache-Groups")) > 0 {
					t.Error("Edgecache-Groups reached the client")
				}
				if strings.Contains(saw, "evil") || strings.Contains(saw, "Edgecache-Fresh: 0") {
					t.Errorf("client's internal fields reached the origin:\n%s", saw)
				}
			}},
		}},
		{"hop-by-hop fields are not forwarded", originSpec{headers: []string{cc, "s-maxage=60", "Connection", "X-Hop", "X-Hop", "1", "Keep-Alive", "timeout=5"}, body: "x"}, []step{
			{hdr: []string{"Connection", "X-Client-Hop", "X-Client-Hop", "1", "TE", "trailers"}, origins: 1, check: func(t *testing.T, r *fasthttp.Response, saw string) {
				if len(r.Header.Peek("X-Hop")) > 0 || len(r.Header.Peek("Keep-Alive")) > 0 {
					t.Errorf("hop-by-hop response fields reached the client: %s", r.Header.String())
				}
				if strings.Contains(saw, "X-Client-Hop") || strings.Contains(saw, "Te: trailers") {
					t.Errorf("hop-by-hop request fields reached the origin:\n%s", saw)
				}
				if !strings.Contains(saw, "Via: 1.1 edgecache") || !strings.Contains(saw, "X-Forwarded-For: 127.0.0.1") {
					t.Errorf("origin request lacks Via or X-Forwarded-For:\n%s", saw)
				}
			}},
			{cs: []string{"hit"}, origins: 1, check: func(t *testing.T, r *fasthttp.Response, _ string) {
				if len(r.Header.Peek("X-Hop")) > 0 {
					t.Error("a hop-by-hop field was stored")
				}
			}},
		}},
	}
	o := newScripted(t)
	cfg := testConfig(o.url())
	// The rows share one origin, and none is about ejecting it: a row whose
	// answers fail (the transfer coding's 502s) must not leave it ejected
	// for the rows after it, whose writes would then be refused at once.
	cfg.OriginEjectAfter = math.MaxInt32
	runRows(t, o, startProxy(t, cfg), rows)
}

// rfcRow is one scenario of a table: what the origin answers, and the
// requests sent through the proxy in order.
type rfcRow struct {
	name   string
	origin originSpec
	steps  []step
}

// runRows runs each row on a path of its own, behind p, in front of o.
func runRows(t *testing.T, o *scripted, p *Proxy, rows []rfcRow) {
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	for i, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			// memcached outlives one run of the test (-count): a path per run.
			path := "/rfc/" + run + "/" + strconv.Itoa(i)
			var seen atomic.Value
			seen.Store("")
			o.handle(path, row.origin.handler(&seen))
			for j, s := range row.steps {
				method := s.method
				if method == "" {
					method = "GET"
				}
				hdr := map[string]string{}
				for k := 0; k+1 < len(s.hdr); k += 2 {
					hdr[s.hdr[k]] = s.hdr[k+1]
				}
				r := do(t, p, method, path, hdr, "")
				want := s.status
				if want == 0 {
					want = 200
					if row.origin.status != 0 {
						want = row.origin.status
					}
				}
				cs := cacheStatus(r)
				if r.StatusCode() != want {
					t.Errorf("step %d: status %d, want %d (Cache-Status %q)", j, r.StatusCode(), want, cs)
				}
				for _, c := range s.cs {
					if !strings.Contains(cs, c) {
						t.Errorf("step %d: Cache-Status %q lacks %q", j, cs, c)
					}
				}
				for _, c := range s.notCS {
					if strings.Contains(cs, c) {
						t.Errorf("step %d: Cache-Status %q has %q", j, cs, c)
					}
				}
				switch {
				case s.body == "-" && len(r.Body()) > 0:
					t.Errorf("step %d: body %q, want none", j, r.Body())
				case s.body != "" && s.body != "-" && string(r.Body()) != s.body:
					t.Errorf("step %d: body %q, want %q", j, r.Body(), s.body)
				}
				if s.origins != 0 || j == 0 {
					if n := o.hits(path); n != s.origins {
						t.Errorf("step %d: origin saw %d requests, want %d", j, n, s.origins)
					}
				}
				if s.check != nil {
					s.check(t, r, seen.Load().(string))
				}
			}
		})
	}
}

// proxyError checks that the answer is the proxy's JSON error, not the
// origin's body.
func proxyError(t *testing.T, r *fasthttp.Response, _ string) {
	if !strings.HasPrefix(string(r.Body()), `{"error":`) {
		t.Errorf("body %q, want the proxy's JSON error", r.Body())
	}
}

// hasCookies checks that the answer sets these cookies.
func hasCookies(names ...string) func(*testing.T, *fasthttp.Response, string) {
	return func(t *testing.T, r *fasthttp.Response, _ string) {
		for _, n := range names {
			if len(r.Header.PeekCookie(n)) == 0 {
				t.Errorf("no Set-Cookie %s in %s", n, r.Header.String())
			}
		}
	}
}

const http1123 = "Mon, 02 Jan 2006 15:04:05 GMT"

func sawHeader(name, value string) func(*testing.T, *fasthttp.Response, string) {
	return func(t *testing.T, _ *fasthttp.Response, saw string) {
		if !strings.Contains(saw, name+": "+value) {
			t.Errorf("origin did not see %s: %s in\n%s", name, value, saw)
		}
	}
}
