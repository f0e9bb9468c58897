package proxy

import (
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"edgecache/cachepolicy"
	"edgecache/proxy/lru"
)

func cacheable(body string) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Cache-Control", "public, max-age=0, s-maxage=60, stale-while-revalidate=30, stale-if-error=300")
		ctx.Response.Header.Set("ETag", `"v1"`)
		ctx.Response.Header.Set("Content-Type", "application/json")
		ctx.SetBodyString(body)
	}
}

func TestRepeatedGetIsAHit(t *testing.T) {
	o := newScripted(t)
	o.handle("/hit/a", cacheable(`{"a":1}`))
	p := startProxy(t, testConfig(o.url()))

	r1 := get(t, p, "/hit/a")
	if r1.StatusCode() != 200 || string(r1.Body()) != `{"a":1}` {
		t.Fatalf("first GET: %d %q", r1.StatusCode(), r1.Body())
	}
	if cs := cacheStatus(r1); !strings.Contains(cs, "fwd=uri-miss") || !strings.Contains(cs, "stored") {
		t.Fatalf("first GET Cache-Status %q, want fwd=uri-miss and stored", cs)
	}
	r2 := get(t, p, "/hit/a")
	if string(r2.Body()) != `{"a":1}` || !strings.Contains(cacheStatus(r2), "hit") {
		t.Fatalf("second GET: %q, Cache-Status %q", r2.Body(), cacheStatus(r2))
	}
	if len(r2.Header.Peek("Age")) == 0 || string(r2.Header.Peek("Via")) == "" || len(r2.Header.Peek("Date")) == 0 {
		t.Fatalf("hit lacks Age, Via or Date: %s", r2.Header.String())
	}
	if n := o.hits("/hit/a"); n != 1 {
		t.Fatalf("origin saw %d requests, want 1", n)
	}
	// A second proxy instance shares memcached: its first GET is a hit.
	p2 := startProxy(t, testConfig(o.url()))
	if r := get(t, p2, "/hit/a"); !strings.Contains(cacheStatus(r), "hit") {
		t.Fatalf("other instance: Cache-Status %q, want hit", cacheStatus(r))
	}
	if n := o.hits("/hit/a"); n != 1 {
		t.Fatalf("origin saw %d requests, want 1", n)
	}
}

// TestL1CopyIsCheckedAgainstOtherInstancesWrites: a proxy answers a hot key
// from its in-process copy, yet a write through another instance (whose
// answer has reached its client) is seen by the very next read, for the
// item and for a resource that shares its group.
func TestL1CopyIsCheckedAgainstOtherInstancesWrites(t *testing.T) {
	o := newScripted(t)
	var v atomic.Int64
	v.Store(1)
	o.handle("/l1/item", versionedItem("item", &v, "l1group"))
	o.handle("/l1/list", versioned("list", &v, "l1group"))
	p1 := startProxy(t, testConfig(o.url()))
	p2 := startProxy(t, testConfig(o.url()))

	for _, path := range []string{"/l1/item", "/l1/list"} {
		get(t, p1, path) // miss: stored, and copied to L1
		before := p1.m.l1Hits.Get()
		if r := get(t, p1, path); !strings.Contains(cacheStatus(r), "hit") || p1.m.l1Hits.Get() != before+1 {
			t.Fatalf("%s: second GET %q, L1 hits %d -> %d; want an L1 hit", path, cacheStatus(r), before, p1.m.l1Hits.Get())
		}
	}
	if w := do(t, p2, "PUT", "/l1/item", nil, "{}"); w.StatusCode() != 200 {
		t.Fatalf("PUT through the other instance: %d", w.StatusCode())
	}
	for _, path := range []string{"/l1/item", "/l1/list"} {
		before := p1.m.l1Hits.Get()
		r := get(t, p1, path)
		if !strings.HasSuffix(string(r.Body()), " v2") {
			t.Fatalf("%s after the write: %q (Cache-Status %q), want v2", path, r.Body(), cacheStatus(r))
		}
		if p1.m.l1Hits.Get() != before {
			t.Fatalf("%s: the invalidated copy counted as an L1 hit", path)
		}
	}
}

// TestRepeatedL1HitsAnswerAlike: an L1 hit copies the header its copy's
// first whole delivery built (l1Entry.header) instead of building it
// again. What the client gets must not change: the origin's Date, every
// stored field in order, Set-Cookie; and conditional, range and HEAD
// requests still get their own answers, without disturbing the copy.
func TestRepeatedL1HitsAnswerAlike(t *testing.T) {
	o := newScripted(t)
	date := fasthttp.AppendHTTPDate(nil, time.Now().Add(-5*time.Second))
	body := `{"alike":1}`
	o.handle("/l1/alike", func(ctx *fasthttp.RequestCtx) {
		startResponse(&ctx.Response.Header, date)
		cacheable(body)(ctx)
		ctx.Response.Header.Set("X-Served-By", "origin-1")
		ctx.Response.Header.Add("Set-Cookie", "seen=1")
	})
	p := startProxy(t, testConfig(o.url()))
	fields := func(r *fasthttp.Response) string {
		var b strings.Builder
		for k, v := range r.Header.All() {
			if name := string(k); name != "Age" && name != "Cache-Status" {
				b.WriteString(name + ": " + string(v) + "\n")
			}
		}
		return b.String()
	}
	get(t, p, "/l1/alike") // miss: stored, and copied to L1
	before := p.m.l1Hits.Get()
	first, second := get(t, p, "/l1/alike"), get(t, p, "/l1/alike")
	if n := p.m.l1Hits.Get() - before; n != 2 {
		t.Fatalf("%d L1 hits, want 2", n)
	}
	for _, r := range []*fasthttp.Response{first, second} {
		if r.StatusCode() != 200 || string(r.Body()) != body || string(r.Header.Peek("Date")) != string(date) ||
			string(r.Header.Peek("X-Served-By")) != "origin-1" || !strings.Contains(fields(r), "Set-Cookie: seen=1") ||
			!strings.Contains(cacheStatus(r), "hit") {
			t.Fatalf("L1 hit: %d %q\n%s", r.StatusCode(), r.Body(), r.Header.String())
		}
	}
	if fields(first) != fields(second) {
		t.Fatalf("the second L1 hit answers otherwise than the first:\n%s\nvs\n%s", fields(first), fields(second))
	}
	if r := get(t, p, "/l1/alike", "If-None-Match", `"v1"`); r.StatusCode() != 304 || len(r.Body()) != 0 ||
		string(r.Header.Peek("Date")) != string(date) {
		t.Fatalf("conditional L1 hit: %d %q\n%s", r.StatusCode(), r.Body(), r.Header.String())
	}
	if r := get(t, p, "/l1/alike", "Range", "bytes=0-1"); r.StatusCode() != 206 || string(r.Body()) != body[:2] ||
		string(r.Header.Peek("Content-Range")) != "bytes 0-1/"+strconv.Itoa(len(body)) {
		t.Fatalf("range L1 hit: %d %q\n%s", r.StatusCode(), r.Body(), r.Header.String())
	}
	if r := do(t, p, "HEAD", "/l1/alike", nil, ""); r.StatusCode() != 200 || len(r.Body()) != 0 ||
		r.Header.ContentLength() != len(body) || fields(r) != fields(first) {
		t.Fatalf("HEAD L1 hit: %d %q\n%s", r.StatusCode(), r.Body(), r.Header.String())
	}
	if r := get(t, p, "/l1/alike"); fields(r) != fields(first) || string(r.Body()) != body {
		t.Fatalf("plain L1 hit after the others: %q\n%s", r.Body(), r.Header.String())
	}
}

// TestClientsInternalFieldsNeverReachTheOrigin: a client's Edgecache-Fresh
// would send reads to the primary, its Edgecache-Groups would be taken for
// the origin's; neither crosses the proxy, on a fill, a pass or a write.
func TestClientsInternalFieldsNeverReachTheOrigin(t *testing.T) {
	o := newScripted(t)
	var saw atomic.Value
	o.handle("/internal/x", func(ctx *fasthttp.RequestCtx) {
		saw.Store(string(ctx.Request.Header.Header()))
		cacheable("x")(ctx)
	})
	p := startProxy(t, testConfig(o.url()))
	for _, tc := range []struct {
		name, method, auth string
	}{{"fill", "GET", ""}, {"pass", "GET", "Bearer t"}, {"write", "PUT", ""}} {
		hdr := map[string]string{"Edgecache-Fresh": "client", "Edgecache-Groups": "evil=1"}
		if tc.auth != "" {
			hdr["Authorization"] = tc.auth
		}
		saw.Store("")
		if r := do(t, p, tc.method, "/internal/x", hdr, ""); r.StatusCode() != 200 {
			t.Fatalf("%s: %d", tc.name, r.StatusCode())
		}
		got := saw.Load().(string)
		if got == "" || strings.Contains(got, "client") || strings.Contains(got, "evil") {
			t.Errorf("%s: the origin saw\n%s", tc.name, got)
		}
	}
}

// TestWholeAnswerHeaderFollowsAgeAndStatus: the header kept with an L1
// copy is sent as it is only for the same Age and Cache-Status; a new
// second or another status (a stale hit) has them set anew over the copy,
// and the stored fields and the origin's Date stay as they were.
func TestWholeAnswerHeaderFollowsAgeAndStatus(t *testing.T) {
	p := &Proxy{via: []byte("1.1 edgecache"), l1: lru.New[*l1Entry](1 << 20)}
	date := []byte("Tue, 01 Dec 2026 10:00:00 GMT")
	e := &entry{Headers: []field{{Name: []byte("Date"), Value: date}, {Name: []byte("Etag"), Value: []byte(`"7"`)}},
		Body: []byte("body")}
	e.Meta.Status = 200
	c := &l1Entry{ent: *e}
	answer := func(age int64, cs cachepolicy.CacheStatus) *fasthttp.ResponseHeader {
		var req fasthttp.Request
		req.SetRequestURI("/x")
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, nil, nil)
		p.deliver(&ctx, e, c, age, &cs)
		return &ctx.Response.Header
	}
	fresh := func(ttl int64) cachepolicy.CacheStatus {
		return cachepolicy.CacheStatus{Cache: "edgecache", Hit: true, TTL: ttl, HasTTL: true}
	}
	for _, tc := range []struct {
		age           int64
		cs            cachepolicy.CacheStatus
		status, delta string
	}{
		{5, fresh(55), "edgecache; hit; ttl=55", "first"},
		{5, fresh(55), "edgecache; hit; ttl=55", "same second"},
		{6, fresh(54), "edgecache; hit; ttl=54", "next second"},
		{6, fresh(-1), "edgecache; hit; ttl=-1", "stale in the same second"},
		{6, fresh(54), "edgecache; hit; ttl=54", "fresh again"},
		{7, fresh(54), "edgecache; hit; ttl=54", "another age, the same status"},
	} {
		h := answer(tc.age, tc.cs)
		if got := string(h.Peek("Age")); got != strconv.FormatInt(tc.age, 10) {
			t.Errorf("%s: Age %s, want %d", tc.delta, got, tc.age)
		}
		if got := string(h.Peek("Cache-Status")); got != tc.status {
			t.Errorf("%s: Cache-Status %q, want %q", tc.delta, got, tc.status)
		}
		// (Peek: a RequestCtx of its own writes its clock's Date, where the
		// server's keep the origin's; TestRepeatedL1HitsAnswerAlike sees that.)
		if string(h.Peek("Date")) != string(date) || string(h.Peek("Etag")) != `"7"` ||
			string(h.Peek("Via")) != "1.1 edgecache" {
			t.Errorf("%s: stored fields lost:\n%s", tc.delta, h.String())
		}
	}
}
