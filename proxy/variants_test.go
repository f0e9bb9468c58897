package proxy

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"edgecache/proxy/store"
)

// A variant is reached only through the list of the URL's entry: once that
// entry is deleted (as after a write whose invalidation failed), a fill of
// another variant starts a new list, and the old variants are not served
// even though their own copies are still in memcached.
func TestVariantsUnreachableOnceTheURLEntryIsDeleted(t *testing.T) {
	o := newScripted(t)
	path := "/variants/" + strconv.FormatInt(time.Now().UnixNano(), 36) // memcached outlives one run
	o.handle(path, func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Cache-Control", "max-age=5000")
		ctx.Response.Header.Set("Vary", "Foo")
		ctx.SetBodyString("foo_" + string(ctx.Request.Header.Peek("Foo")))
	})
	p := startProxy(t, testConfig(o.url()))
	foo := func(v string) *fasthttp.Response {
		r := do(t, p, "GET", path, map[string]string{"Foo": v}, "")
		if string(r.Body()) != "foo_"+v {
			t.Fatalf("Foo: %s: body %q", v, r.Body())
		}
		return r
	}
	foo("1")
	foo("2")
	if r := foo("1"); !strings.Contains(cacheStatus(r), "hit") {
		t.Fatalf("Foo: 1 after Foo: 2: %q, want a hit", cacheStatus(r))
	}
	primary := "http://edge.test" + path
	if err := memcachedOf(p).Delete(store.EntryKey(primary)); err != nil {
		t.Fatal(err)
	}
	p.l1.Remove(primary)
	foo("3")
	if r := foo("1"); strings.Contains(cacheStatus(r), "hit") || o.hits(path) != 4 {
		t.Fatalf("Foo: 1 after the URL's entry was deleted: %q, origin requests %d, want a miss", cacheStatus(r), o.hits(path))
	}
}
