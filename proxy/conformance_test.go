package proxy

import (
	"bytes"
	"fmt"
	"mime"
	"mime/multipart"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestHTTPCachingConformance is the rest of RFC 9111 (and RFC 9110's
// ranges, RFC 9213, RFC 9112's chunked coding) end to end through the
// proxy, each row citing the section it shows. Rows with raw are answered
// byte for byte (Date, 1xx and chunked framing cannot be sent through a
// fasthttp handler).
func TestHTTPCachingConformance(t *testing.T) {
	const cc = "Cache-Control"
	httpDate := func(d time.Duration) string { return time.Now().Add(d).UTC().Format(http1123) }
	hourAgo := httpDate(-time.Hour)
	var rows []rfcRow

	// RFC 9111 §3: any final status with explicit freshness is stored and
	// reused, not only the heuristically cacheable ones.
	for _, s := range []int{400, 499, 500, 502, 503, 504, 299, 599} {
		rows = append(rows, rfcRow{fmt.Sprintf("§3: %d with max-age is stored and reused", s),
			originSpec{status: s, headers: []string{cc, "max-age=60"}, body: "s" + strconv.Itoa(s)}, []step{
				{cs: []string{"fwd=uri-miss", "fwd-status=" + strconv.Itoa(s), "stored"}, origins: 1},
				{cs: []string{"hit"}, body: "s" + strconv.Itoa(s), origins: 1},
			}})
	}
	rows = append(rows, []rfcRow{
		{"§4.2.2: public gives a 500 heuristic freshness", originSpec{status: 500, headers: []string{cc, "public", "Last-Modified", httpDate(-100 * time.Hour)}, body: "e"}, []step{
			{cs: []string{"stored"}, origins: 1}, {cs: []string{"hit"}, origins: 1},
		}},
		{"§4.3: a stale stored 503 is revalidated; the 304 keeps it", originSpec{status: 503, headers: []string{cc, "max-age=0"}, body: "down", etag: `"d"`}, []step{
			{cs: []string{"stored"}, origins: 1},
			{cs: []string{"fwd=stale", "fwd-status=304"}, body: "down", origins: 2, check: sawHeader("If-None-Match", `"d"`)},
		}},
		{"§5.2.2.4: a stored 500 with no-cache is validated before reuse", originSpec{status: 500, headers: []string{cc, "no-cache, max-age=60"}, body: "e", etag: `"n5"`}, []step{
			{origins: 1}, {cs: []string{"fwd=stale", "fwd-status=304"}, body: "e", origins: 2},
		}},

		// RFC 9112 §7.1: the proxy reads the chunked coding and answers
		// with a length; the stored response has no Transfer-Encoding
		// (a hop-by-hop field, RFC 9110 §7.6.1) and no trailer.
		{"RFC 9112 §7.1: a chunked 200 is answered de-chunked and stored without Transfer-Encoding", originSpec{raw: "HTTP/1.1 200 OK\r\n" +
			"Cache-Control: max-age=60\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\nConnection: close\r\n\r\n" +
			"3;ext=1\r\nhel\r\n2\r\nlo\r\n0\r\nX-Sum: 5\r\n\r\n"}, []step{
			{cs: []string{"stored"}, body: "hello", origins: 1, check: dechunked},
			{cs: []string{"hit"}, body: "hello", origins: 1, check: dechunked},
		}},

		// RFC 9110 §6.6.1: a cache passes the origin's Date on; Age is
		// the time since (RFC 9111 §4.2.3, §5.1).
		{"RFC 9110 §6.6.1: a stored response keeps the origin's Date; Age counts from it", originSpec{raw: "HTTP/1.1 200 OK\r\n" +
			"Date: " + hourAgo + "\r\nCache-Control: max-age=7200\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx"}, []step{
			{cs: []string{"stored"}, origins: 1, check: all(dateAndAge(hourAgo, 3600), keepAlive)},
			{cs: []string{"hit"}, origins: 1, check: all(dateAndAge(hourAgo, 3600), keepAlive)},
			{hdr: []string{"If-Modified-Since", httpDate(time.Hour)}, status: 304, cs: []string{"hit"}, body: "-", origins: 1,
				check: all(dateAndAge(hourAgo, 3600), keepAlive, func(t *testing.T, r *fasthttp.Response, _ string) {
					if v := r.Header.Peek("Content-Length"); len(v) > 0 && string(v) != "1" {
						t.Errorf("304 with Content-Length %s, not the stored response's", v)
					}
				})},
		}},
		{"RFC 9110 §6.6.1: a response passed on uncached keeps the origin's Date", originSpec{raw: "HTTP/1.1 200 OK\r\n" +
			"Date: " + hourAgo + "\r\nCache-Control: no-store\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx"}, []step{
			{cs: []string{"detail=no-store"}, origins: 1, check: all(dateAndAge(hourAgo, -1), noHeader("Content-Type"))},
		}},
		sameDateRow(),

		// Several field lines of one list field are one list (RFC 9110
		// §5.3).
		{"§5.2.2.10: s-maxage on one line beats a longer max-age on another", originSpec{headers: []string{cc, "max-age=600", cc, "s-maxage=0"}, body: "x", etag: `"l"`}, []step{
			{origins: 1},
			{cs: []string{"fwd=stale", "fwd-status=304"}, origins: 2, check: sawHeader("If-None-Match", `"l"`)},
		}},
		{"§5.1: Age: 0, old uses the first value", originSpec{headers: []string{cc, "max-age=60", "Age", "0, old"}, body: "x"}, []step{
			{origins: 1}, {cs: []string{"hit"}, origins: 1, check: ageBelow(60)},
		}},
		{"§5.1: Age: 5, 100 uses the first value", originSpec{headers: []string{cc, "max-age=60", "Age", "5, 100"}, body: "x"}, []step{
			{origins: 1}, {cs: []string{"hit"}, origins: 1, check: ageBelow(60)},
		}},
		{"§4.1: Vary over two lines, one of them *: never reused", originSpec{headers: []string{cc, "max-age=60", "Vary", "Accept-Encoding", "Vary", "*"}, body: "x"}, []step{
			{cs: []string{"detail=vary-star"}, origins: 1}, {notCS: []string{"hit"}, origins: 2},
		}},
		{"§4.1: Vary over two lines: both fields select", originSpec{headers: []string{cc, "max-age=60", "Vary", "Accept-Encoding", "Vary", "Accept-Language"}, body: "x"}, []step{
			{hdr: []string{"Accept-Encoding", "gzip", "Accept-Language", "en"}, origins: 1},
			{hdr: []string{"Accept-Encoding", "gzip", "Accept-Language", "en"}, cs: []string{"hit"}, origins: 1},
			{hdr: []string{"Accept-Encoding", "gzip", "Accept-Language", "fr"}, cs: []string{"fwd=vary-miss"}, origins: 2},
		}},
		{"RFC 9213 §2.1: an invalid CDN-Cache-Control is ignored entirely", originSpec{headers: []string{cc, "public, max-age=60", "CDN-Cache-Control", "no-store, max-age=60 private"}, body: "x"}, []step{
			{cs: []string{"stored"}, origins: 1}, {cs: []string{"hit"}, origins: 1},
		}},
		{"RFC 9213 §2.1: an invalid CDN-Cache-Control does not override Cache-Control", originSpec{headers: []string{cc, "no-store", "CDN-Cache-Control", "max-age=60,"}, body: "x"}, []step{
			{cs: []string{"detail=no-store"}, origins: 1}, {notCS: []string{"hit"}, origins: 2},
		}},
		{"RFC 9213 §2.1: CDN-Cache-Control over two lines is one Dictionary, last key wins", originSpec{headers: []string{cc, "no-store", "CDN-Cache-Control", "no-store", "CDN-Cache-Control", "no-store=?0, max-age=60"}, body: "x"}, []step{
			{cs: []string{"stored"}, origins: 1}, {cs: []string{"hit"}, origins: 1},
		}},
		{"§5.3: Expires with the wrong case in weekday, month and zone", originSpec{headers: []string{"Expires", strings.ToLower(httpDate(time.Hour))}, body: "x"}, []step{
			{cs: []string{"stored"}, origins: 1}, {cs: []string{"hit"}, origins: 1},
		}},
		{"§5.3: Expires in upper case", originSpec{headers: []string{"Expires", strings.ToUpper(httpDate(time.Hour))}, body: "x"}, []step{
			{origins: 1}, {cs: []string{"hit"}, origins: 1},
		}},

		// RFC 9110 §14, RFC 9111 §3.3–3.4: ranges are cut from the stored
		// complete response; a fill never asks the origin for one.
		{"RFC 9110 §14.2: ranges are served from the stored whole", originSpec{headers: []string{cc, "max-age=60", "Content-Type", "text/plain"}, body: "0123456789", etag: `"r"`}, []step{
			{hdr: []string{"Range", "bytes=2-4"}, status: 206, cs: []string{"fwd=uri-miss", "stored"}, body: "234", origins: 1,
				check: all(contentRange("bytes 2-4/10"), notSaw("Range:"))},
			{hdr: []string{"Range", "bytes=7-"}, status: 206, cs: []string{"hit"}, body: "789", origins: 1, check: contentRange("bytes 7-9/10")},
			{hdr: []string{"Range", "bytes=-3"}, status: 206, body: "789", origins: 1, check: contentRange("bytes 7-9/10")},
			{hdr: []string{"Range", "bytes=5-99"}, status: 206, body: "56789", origins: 1, check: contentRange("bytes 5-9/10")},
			{hdr: []string{"Range", "bytes=0-4,3-6"}, status: 206, body: "0123456", origins: 1, check: contentRange("bytes 0-6/10")},
			{hdr: []string{"Range", "bytes=8-9,0-1"}, status: 206, origins: 1, check: multipartRanges("text/plain", "0123456789", "0-1", "8-9")},
			{hdr: []string{"Range", "bytes=20-"}, status: 416, cs: []string{"hit"}, origins: 1, check: contentRange("bytes */10")},
			{hdr: []string{"Range", "bytes=5-1"}, body: "0123456789", origins: 1},
			{hdr: []string{"Range", "items=0-1"}, body: "0123456789", origins: 1},
			{hdr: []string{"Range", "bytes=0-1", "If-Range", `"r"`}, status: 206, body: "01", origins: 1},
			{hdr: []string{"Range", "bytes=0-1", "If-Range", `"other"`}, body: "0123456789", origins: 1},
			{hdr: []string{"Range", "bytes=0-1", "If-Range", `W/"r"`}, body: "0123456789", origins: 1},
			{hdr: []string{"Range", "bytes=0-1", "If-None-Match", `"r"`}, status: 304, body: "-", origins: 1},
			{method: "HEAD", hdr: []string{"Range", "bytes=0-1"}, body: "-", origins: 1},
		}},
		{"RFC 9110 §14.2: Range is ignored on a stored 404", originSpec{status: 404, headers: []string{cc, "max-age=60"}, body: "not found"}, []step{
			{origins: 1}, {hdr: []string{"Range", "bytes=0-1"}, cs: []string{"hit"}, body: "not found", origins: 1},
		}},
		{"§3.3: a 206 from the origin is neither stored nor served as a full response", originSpec{status: 206, headers: []string{cc, "max-age=60", "Content-Range", "bytes 0-1/10"}, body: "01"}, []step{
			{status: 206, notCS: []string{"stored"}, body: "01", origins: 1, check: contentRange("bytes 0-1/10")},
			{status: 206, notCS: []string{"hit"}, body: "01", origins: 2},
		}},

		// RFC 9111 §4.3.5: HEAD.
		{"§4.3.5: a HEAD revalidates a stale entry with a conditional HEAD; the 304 freshens it", originSpec{headers: []string{cc, "max-age=0"}, body: "hello", etag: `"h1"`}, []step{
			{origins: 1},
			{method: "HEAD", cs: []string{"fwd=stale", "fwd-status=304"}, body: "-", origins: 2, check: all(sawMethod("HEAD"), sawHeader("If-None-Match", `"h1"`), contentLength(5))},
			{cs: []string{"fwd=stale"}, body: "hello", origins: 3},
		}},
		{"§4.3.5: a HEAD 200 that matches the entry updates its fields", originSpec{fn: headUpdates(`"h2"`, `"h2"`)}, []step{
			{cs: []string{"stored"}, origins: 1},
			{method: "HEAD", cs: []string{"fwd=stale", "fwd-status=200"}, body: "-", origins: 2, check: all(sawMethod("HEAD"), hasHeader("X-Version", "2"), contentLength(5))},
			{cs: []string{"hit"}, body: "hello", origins: 2, check: hasHeader("X-Version", "2")},
		}},
		{"§4.3.5: a HEAD 200 that contradicts the entry invalidates it", originSpec{fn: headUpdates(`"h3"`, `"h4"`)}, []step{
			{origins: 1},
			{method: "HEAD", cs: []string{"fwd-status=200", "detail=outdated"}, body: "-", origins: 2, check: hasHeader("X-Version", "2")},
			{cs: []string{"fwd=uri-miss"}, body: "hello", origins: 3},
		}},
		{"§4.3.5: a HEAD miss fills with GET; a HEAD with request no-store goes on as HEAD", originSpec{headers: []string{cc, "max-age=60"}, body: "hello"}, []step{
			{method: "HEAD", hdr: []string{cc, "no-store"}, body: "-", origins: 1, check: all(sawMethod("HEAD"), contentLength(5))},
			{cs: []string{"fwd=uri-miss"}, body: "hello", origins: 2},
		}},

		// RFC 9110 §15.2: interim responses. fasthttp's client reads and
		// drops them (http.go, Response.ReadLimitBody) before the proxy
		// sees the response, so they cannot be forwarded; they are never
		// stored and their fields never reach the final answer.
		{"RFC 9110 §15.2: a 103 before the 200 is not stored; the 200 is", originSpec{raw: "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n" +
			"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"}, []step{
			{cs: []string{"stored"}, body: "ok", origins: 1, check: all(noHeader("Link"), noHeader("Content-Type"))},
			{cs: []string{"hit"}, body: "ok", origins: 1, check: all(noHeader("Link"), noHeader("Content-Type"))},
		}},
		{"RFC 9110 §15.2: a 100 before the 200 is not stored; the 200 is", originSpec{raw: "HTTP/1.1 100 Continue\r\n\r\n" +
			"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"}, []step{
			{cs: []string{"stored"}, body: "ok", origins: 1}, {cs: []string{"hit"}, body: "ok", origins: 1},
		}},

		// RFC 9111 §4.3.1: the stored entity-tag is sent as it is.
		{"§4.3.1: If-None-Match carries a weak ETag unchanged", originSpec{headers: []string{cc, "max-age=0"}, body: "x", etag: `W/"w-1"`}, []step{
			{origins: 1}, {cs: []string{"fwd-status=304"}, origins: 2, check: sawHeader("If-None-Match", `W/"w-1"`)},
		}},
		{"§4.3.1: If-None-Match carries an ETag with a comma unchanged", originSpec{headers: []string{cc, "max-age=0"}, body: "x", etag: `"a,b"`}, []step{
			{origins: 1}, {cs: []string{"fwd-status=304"}, origins: 2, check: sawHeader("If-None-Match", `"a,b"`)},
		}},
		{"§4.3.1: the client's own If-None-Match is not what revalidates", originSpec{headers: []string{cc, "max-age=0"}, body: "x", etag: `"e1"`}, []step{
			{origins: 1},
			{hdr: []string{"If-None-Match", `"zzz"`}, cs: []string{"fwd-status=304"}, body: "x", origins: 2, check: all(sawHeader("If-None-Match", `"e1"`), notSaw(`"zzz"`))},
		}},
	}...)
	o := newScripted(t)
	runRows(t, o, startProxy(t, testConfig(o.url())), rows)
}

// sameDateRow: a response without Date gets the time it was received
// (RFC 9110 §6.6.1), and every answer from the entry carries that Date.
func sameDateRow() rfcRow {
	var first string
	return rfcRow{"RFC 9110 §6.6.1: a response without Date is stored with the time it was received",
		originSpec{raw: "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx"}, []step{
			{cs: []string{"stored"}, origins: 1, check: func(t *testing.T, r *fasthttp.Response, _ string) {
				first = string(r.Header.Peek("Date"))
				if _, err := time.Parse(http1123, first); err != nil {
					t.Errorf("Date %q: %v", first, err)
				}
			}},
			{cs: []string{"hit"}, origins: 1, check: func(t *testing.T, r *fasthttp.Response, _ string) {
				if d := string(r.Header.Peek("Date")); d != first {
					t.Errorf("hit Date %q, miss Date %q", d, first)
				}
			}},
		}}
}

// headUpdates answers GET with ETag get, max-age=0 and X-Version: 1, and
// HEAD with a 200 (whatever its conditions) carrying ETag head, max-age=60
// and X-Version: 2.
func headUpdates(get, head string) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		if ctx.IsHead() {
			ctx.Response.Header.Set("ETag", head)
			ctx.Response.Header.Set("Cache-Control", "max-age=60")
			ctx.Response.Header.Set("X-Version", "2")
			ctx.Response.Header.SetContentLength(5)
			return
		}
		ctx.Response.Header.Set("ETag", get)
		ctx.Response.Header.Set("Cache-Control", "max-age=0")
		ctx.Response.Header.Set("X-Version", "1")
		ctx.SetBodyString("hello")
	}
}

type check = func(*testing.T, *fasthttp.Response, string)

func all(cs ...check) check {
	return func(t *testing.T, r *fasthttp.Response, saw string) {
		for _, c := range cs {
			c(t, r, saw)
		}
	}
}

// keepAlive: the answer does not close the client's connection.
func keepAlive(t *testing.T, r *fasthttp.Response, _ string) {
	if r.ConnectionClose() {
		t.Errorf("answer closes the connection:\n%s", r.Header.String())
	}
}

func dechunked(t *testing.T, r *fasthttp.Response, _ string) {
	if r.Header.ContentLength() != 5 || len(r.Header.Peek("Transfer-Encoding")) > 0 || len(r.Header.Peek("Trailer")) > 0 || len(r.Header.Peek("X-Sum")) > 0 {
		t.Errorf("answer not de-chunked, or trailer kept:\n%s", r.Header.String())
	}
}

func dateAndAge(date string, minAge int) check {
	return func(t *testing.T, r *fasthttp.Response, _ string) {
		if d := string(r.Header.Peek("Date")); d != date {
			t.Errorf("Date %q, want the origin's %q", d, date)
		}
		if minAge < 0 {
			return
		}
		if age, err := strconv.Atoi(string(r.Header.Peek("Age"))); err != nil || age < minAge {
			t.Errorf("Age %q, want at least %d", r.Header.Peek("Age"), minAge)
		}
	}
}

func ageBelow(n int) check {
	return func(t *testing.T, r *fasthttp.Response, _ string) {
		if age, err := strconv.Atoi(string(r.Header.Peek("Age"))); err != nil || age >= n {
			t.Errorf("Age %q, want below %d", r.Header.Peek("Age"), n)
		}
	}
}

func contentRange(want string) check {
	return func(t *testing.T, r *fasthttp.Response, _ string) {
		if got := string(r.Header.Peek("Content-Range")); got != want {
			t.Errorf("Content-Range %q, want %q", got, want)
		}
	}
}

func contentLength(n int) check {
	return func(t *testing.T, r *fasthttp.Response, _ string) {
		if got := r.Header.ContentLength(); got != n {
			t.Errorf("Content-Length %d, want %d", got, n)
		}
	}
}

func hasHeader(name, value string) check {
	return func(t *testing.T, r *fasthttp.Response, _ string) {
		if got := string(r.Header.Peek(name)); got != value {
			t.Errorf("%s %q, want %q", name, got, value)
		}
	}
}

func noHeader(name string) check {
	return func(t *testing.T, r *fasthttp.Response, _ string) {
		r.Header.SetNoDefaultContentType(true) // what was sent, not fasthttp's default
		if v := r.Header.Peek(name); len(v) > 0 {
			t.Errorf("%s: %s reached the client", name, v)
		}
	}
}

func notSaw(s string) check {
	return func(t *testing.T, _ *fasthttp.Response, saw string) {
		if strings.Contains(saw, s) {
			t.Errorf("origin saw %q in\n%s", s, saw)
		}
	}
}

func sawMethod(m string) check {
	return func(t *testing.T, _ *fasthttp.Response, saw string) {
		if !strings.HasPrefix(saw, m+" ") {
			t.Errorf("origin saw %q, want %s", strings.SplitN(saw, "\r\n", 2)[0], m)
		}
	}
}

// multipartRanges checks a multipart/byteranges answer (RFC 9110 §14.6):
// one part per range ("first-last"), each with the representation's
// Content-Type and its Content-Range.
func multipartRanges(ct, whole string, ranges ...string) check {
	return func(t *testing.T, r *fasthttp.Response, _ string) {
		mt, params, err := mime.ParseMediaType(string(r.Header.ContentType()))
		if err != nil || mt != "multipart/byteranges" {
			t.Fatalf("Content-Type %q: %v", r.Header.ContentType(), err)
		}
		mr := multipart.NewReader(bytes.NewReader(r.Body()), params["boundary"])
		for i, rg := range ranges {
			part, err := mr.NextPart()
			if err != nil {
				t.Fatalf("part %d: %v", i, err)
			}
			var a, b int
			fmt.Sscanf(rg, "%d-%d", &a, &b)
			var body bytes.Buffer
			body.ReadFrom(part)
			if body.String() != whole[a:b+1] || part.Header.Get("Content-Type") != ct ||
				part.Header.Get("Content-Range") != fmt.Sprintf("bytes %d-%d/%d", a, b, len(whole)) {
				t.Errorf("part %d: %q %v", i, body.String(), part.Header)
			}
		}
		if _, err := mr.NextPart(); err == nil {
			t.Error("more parts than ranges")
		}
	}
}

// TestStaleServedWhenTheOriginCannotBeReached: RFC 9111 §4.2.4 lets a cache
// that is disconnected from the origin serve a stale response; must-
// revalidate and s-maxage (§5.2.2.2, §5.2.2.10) forbid it. An origin that
// answers 503 is not disconnected: without stale-if-error its answer is
// passed on. The entries are stored through a proxy in front of a working
// origin (already stale on arrival: Age beyond max-age) and read through
// another one, sharing memcached, whose origin refuses connections, or
// reads the request and closes without answering.
func TestStaleServedWhenTheOriginCannotBeReached(t *testing.T) {
	o := newScripted(t)
	run := runID()
	stale := func(cc string) fasthttp.RequestHandler {
		return func(ctx *fasthttp.RequestCtx) {
			if string(ctx.Request.Header.Peek("X-Fail")) == "503" {
				ctx.SetStatusCode(503)
				return
			}
			ctx.Response.Header.Set("Cache-Control", cc)
			ctx.Response.Header.Set("Age", "100")
			ctx.Response.Header.Set("ETag", `"1"`)
			ctx.SetBodyString("stale")
		}
	}
	paths := map[string]string{"plain": "max-age=10", "must-revalidate": "max-age=10, must-revalidate", "s-maxage": "s-maxage=10"}
	filler := startProxy(t, testConfig(o.url()))
	for name, cc := range paths {
		for _, how := range []string{"refused", "closed", "503"} {
			path := "/disc/" + run + "/" + name + "/" + how
			o.handle(path, stale(cc))
			if r := get(t, filler, path); !strings.Contains(cacheStatus(r), "stored") {
				t.Fatalf("%s: %q, want stored", path, cacheStatus(r))
			}
		}
	}

	refused, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedAddr := refused.Addr().String()
	refused.Close()
	closer, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	go func() {
		for {
			c, err := closer.Accept()
			if err != nil {
				return
			}
			go func() { c.Read(make([]byte, 4096)); c.Close() }()
		}
	}()
	proxies := map[string]*Proxy{
		"refused": startProxy(t, testConfig("http://"+refusedAddr)),
		"closed":  startProxy(t, testConfig("http://"+closer.Addr().String())),
		"503":     filler,
	}
	for name := range paths {
		for how, p := range proxies {
			path := "/disc/" + run + "/" + name + "/" + how
			r := get(t, p, path, "X-Fail", "503")
			cs := cacheStatus(r)
			switch {
			case how == "503":
				if r.StatusCode() != 503 || string(r.Body()) == "stale" {
					t.Errorf("%s: %d %q, want the origin's 503", path, r.StatusCode(), cs)
				}
			case name == "plain":
				if r.StatusCode() != 200 || string(r.Body()) != "stale" || !strings.Contains(cs, "detail=disconnected") {
					t.Errorf("%s: %d %q %q, want the stale entry", path, r.StatusCode(), r.Body(), cs)
				}
			default:
				if r.StatusCode() < 502 || r.StatusCode() > 504 || string(r.Body()) == "stale" {
					t.Errorf("%s: %d %q %q, want an error: %s forbids stale", path, r.StatusCode(), r.Body(), cs, name)
				}
			}
		}
	}
}

// TestStripSetCookie: with PROXY_STRIP_SET_COOKIE the stored response has
// no Set-Cookie, while the client whose request filled it still gets its
// own (RFC 9111 §7.3 leaves the choice to the cache).
func TestStripSetCookie(t *testing.T) {
	o := newScripted(t)
	path := "/strip/" + runID()
	o.handle(path, func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Cache-Control", "max-age=60")
		ctx.Response.Header.Add("Set-Cookie", "s=1")
		ctx.SetBodyString("x")
	})
	cfg := testConfig(o.url())
	cfg.StripSetCookie = true
	p := startProxy(t, cfg)
	r := get(t, p, path)
	if !strings.Contains(cacheStatus(r), "stored") || len(r.Header.PeekCookie("s")) == 0 {
		t.Fatalf("filling request: %q, Set-Cookie %q; want stored, with the cookie", cacheStatus(r), r.Header.PeekCookie("s"))
	}
	r = get(t, p, path)
	if !strings.Contains(cacheStatus(r), "hit") || len(r.Header.PeekCookie("s")) > 0 {
		t.Fatalf("hit: %q, Set-Cookie %q; want no cookie", cacheStatus(r), r.Header.PeekCookie("s"))
	}
}
