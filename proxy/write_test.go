package proxy

import (
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/valyala/fasthttp"
)

// versioned serves a cacheable body "name vN" whose N moves on every write
// the test makes through the proxy; groups, if set, is sent as
// Edgecache-Groups with the current version.
func versioned(name string, v *atomic.Int64, group string) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		n := strconv.FormatInt(v.Load(), 10)
		ctx.Response.Header.Set("Cache-Control", "public, s-maxage=600")
		if group != "" {
			ctx.Response.Header.Set("Edgecache-Groups", group+"="+n)
		}
		ctx.SetBodyString(name + " v" + n)
	}
}

// versionedItem serves versioned(name, v, group) on GET and, on a write,
// moves v and names group at its new version, as the real origin does.
func versionedItem(name string, v *atomic.Int64, group string) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		if ctx.IsGet() || ctx.IsHead() {
			versioned(name, v, group)(ctx)
			return
		}
		ctx.Response.Header.Set("Edgecache-Groups", group+"="+strconv.FormatInt(v.Add(1), 10))
	}
}

func TestWriteInvalidatesTargetLocationContentLocationAndGroups(t *testing.T) {
	o := newScripted(t)
	p1 := startProxy(t, testConfig(o.url()))
	p2 := startProxy(t, testConfig(o.url()))
	var item, loc, cl, other, grp atomic.Int64
	for _, v := range []*atomic.Int64{&item, &loc, &cl, &other, &grp} {
		v.Store(1)
	}
	o.handle("/w/item", func(ctx *fasthttp.RequestCtx) {
		if ctx.IsPut() {
			item.Add(1)
			ctx.SetBodyString("ok")
			return
		}
		versioned("item", &item, "")(ctx)
	})
	o.handle("/w/loc", versioned("loc", &loc, ""))
	o.handle("/w/cl", versioned("cl", &cl, ""))
	o.handle("/w/other", versioned("other", &other, ""))
	o.handle("/w/grouped", versioned("grouped", &grp, "thing/1"))
	o.handle("/w/create", func(ctx *fasthttp.RequestCtx) {
		loc.Add(1)
		cl.Add(1)
		other.Add(1)
		ctx.SetStatusCode(201)
		ctx.Response.Header.Set("Location", "/w/loc")
		ctx.Response.Header.Set("Content-Location", "http://edge.test/w/cl")
		ctx.Response.Header.Add("Link", "x")
	})
	o.handle("/w/foreign", func(ctx *fasthttp.RequestCtx) {
		other.Add(1)
		ctx.SetStatusCode(201)
		ctx.Response.Header.Set("Location", "http://other.test/w/other")
	})
	o.handle("/w/touch-group", func(ctx *fasthttp.RequestCtx) {
		n := grp.Add(1)
		ctx.Response.Header.Set("Edgecache-Groups", "thing/1="+strconv.FormatInt(n, 10))
	})
	o.handle("/w/fails", func(ctx *fasthttp.RequestCtx) {
		item.Add(1) // pretend: a failed write must not invalidate (and the test checks that it did not)
		ctx.SetStatusCode(409)
	})

	warm := func(p *Proxy, path, want string, hdr ...string) {
		t.Helper()
		get(t, p, path, hdr...)
		if r := get(t, p, path, hdr...); !strings.Contains(cacheStatus(r), "hit") || string(r.Body()) != want {
			t.Fatalf("%s: %q %q, want a hit of %q", path, cacheStatus(r), r.Body(), want)
		}
	}
	expect := func(p *Proxy, path, want string, hdr ...string) {
		t.Helper()
		if r := get(t, p, path, hdr...); string(r.Body()) != want {
			t.Fatalf("%s: body %q (Cache-Status %q), want %q", path, r.Body(), cacheStatus(r), want)
		}
	}
	for _, p := range []*Proxy{p1, p2} {
		warm(p, "/w/item", "item v1")
		warm(p, "/w/loc", "loc v1")
		warm(p, "/w/cl", "cl v1")
		warm(p, "/w/grouped", "grouped v1")
		warm(p, "/w/other", "other v1", "Host", "other.test")
	}

	// A failed write invalidates nothing.
	if r := do(t, p1, "POST", "/w/fails", nil, "{}"); r.StatusCode() != 409 {
		t.Fatalf("failing write: %d", r.StatusCode())
	}
	expect(p2, "/w/item", "item v1")

	// The target URI.
	if r := do(t, p1, "PUT", "/w/item", nil, `{"body":"x"}`); r.StatusCode() != 200 {
		t.Fatalf("PUT: %d", r.StatusCode())
	}
	expect(p1, "/w/item", "item v3")
	expect(p2, "/w/item", "item v3")

	// Location and Content-Location of the same host.
	do(t, p2, "POST", "/w/create", nil, "{}")
	for _, p := range []*Proxy{p1, p2} {
		expect(p, "/w/loc", "loc v2")
		expect(p, "/w/cl", "cl v2")
		// other.test's entry was not named by a same-host field.
		expect(p, "/w/other", "other v1", "Host", "other.test")
	}
	// A Location on another host is not invalidated (RFC 9111 §4.4).
	do(t, p1, "POST", "/w/foreign", nil, "{}")
	expect(p2, "/w/other", "other v1", "Host", "other.test")

	// A group named by the write's Edgecache-Groups.
	do(t, p1, "POST", "/w/touch-group", nil, "{}")
	expect(p1, "/w/grouped", "grouped v2")
	expect(p2, "/w/grouped", "grouped v2")
}
