package proxy

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// A client past its miss budget gets 429 with Retry-After, counted;
// its hits, and other clients' misses, go on.
func TestClientMissBudget(t *testing.T) {
	o := newScripted(t)
	run := runID()
	for i := range 4 {
		o.handle("/budget/"+run+"/"+strconv.Itoa(i), cacheable(`{"id":1}`))
	}
	cfg := testConfig(o.url())
	cfg.ClientMissRate, cfg.ClientMissBurst = 0.001, 3 // a token every 1,000 s: none comes back during the test
	cfg.TrustedProxies = []string{"127.0.0.0/8"}
	p := startProxy(t, cfg)
	path := func(i int) string { return "/budget/" + run + "/" + strconv.Itoa(i) }
	for i := range 3 {
		if r := get(t, p, path(i), "X-Forwarded-For", "203.0.113.1"); r.StatusCode() != 200 {
			t.Fatalf("miss %d: %d %s", i, r.StatusCode(), r.Body())
		}
	}
	r := get(t, p, path(3), "X-Forwarded-For", "203.0.113.1")
	if r.StatusCode() != fasthttp.StatusTooManyRequests || !strings.Contains(string(r.Body()), `"too_many_requests"`) ||
		string(r.Header.Peek("Retry-After")) != "1000" {
		t.Fatalf("fourth miss: %d Retry-After %q %s, want 429 too_many_requests, Retry-After 1000",
			r.StatusCode(), r.Header.Peek("Retry-After"), r.Body())
	}
	if n := o.hits(path(3)); n != 0 {
		t.Fatalf("the refused miss reached the origin %d times", n)
	}
	if r := get(t, p, path(0), "X-Forwarded-For", "203.0.113.1"); r.StatusCode() != 200 || !strings.Contains(cacheStatus(r), "hit") {
		t.Fatalf("a hit past the budget: %d %q", r.StatusCode(), cacheStatus(r))
	}
	if r := get(t, p, path(3), "X-Forwarded-For", "203.0.113.2"); r.StatusCode() != 200 {
		t.Fatalf("another client's miss: %d %s", r.StatusCode(), r.Body())
	}
	if n := p.m.clientLimited[budgetMiss].Get(); n != 1 {
		t.Fatalf("edgecache_proxy_client_limited_total{kind=\"miss\"} = %d, want 1", n)
	}
}

// A client past its write budget gets 429 before anything is sent.
func TestClientWriteBudget(t *testing.T) {
	o := newScripted(t)
	run := runID()
	o.handle("/budget/"+run+"/w", func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(204) })
	cfg := testConfig(o.url())
	cfg.ClientWriteRate, cfg.ClientWriteBurst = 0.001, 2
	p := startProxy(t, cfg)
	for i := range 3 {
		r := do(t, p, "POST", "/budget/"+run+"/w", nil, `{"a":1}`)
		want := 204
		if i == 2 {
			want = fasthttp.StatusTooManyRequests
		}
		if r.StatusCode() != want {
			t.Fatalf("write %d: %d %s, want %d", i, r.StatusCode(), r.Body(), want)
		}
	}
	if n := o.hits("/budget/" + run + "/w"); n != 2 {
		t.Fatalf("origin got %d writes, want 2", n)
	}
	if n := p.m.clientLimited[budgetWrite].Get(); n != 1 {
		t.Fatalf("edgecache_proxy_client_limited_total{kind=\"write\"} = %d, want 1", n)
	}
}

// The buckets stay within budgetClients, forgetting full (idle) ones
// first: a client in the middle of its budget keeps it.
func TestClientBudgetIsBounded(t *testing.T) {
	b := newClientBudget(1, 2)
	now := time.Unix(1_000_000, 0)
	busy := netip.MustParseAddr("198.51.100.7")
	b.take(busy, now)
	b.take(busy, now)
	for i := range 4 * budgetClients {
		b.take(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), now.Add(time.Duration(i)*time.Microsecond))
	}
	n := 0
	for i := range b.shards {
		n += len(b.shards[i].buckets)
	}
	if n > budgetClients {
		t.Fatalf("%d buckets, over %d", n, budgetClients)
	}
	if ok, wait := b.take(busy, now.Add(100*time.Millisecond)); ok || wait <= 0 {
		t.Fatalf("the busy client's bucket was forgotten: ok %v, wait %s", ok, wait)
	}
}

// An IPv6 client is its /64: picking other addresses in it spends the
// same budget.
func TestClientBudgetOfIPv6IsPerSlash64(t *testing.T) {
	b := newClientBudget(0.001, 2)
	now := time.Unix(1_000_000, 0)
	for i, a := range []string{"2001:db8:1:2::1", "2001:db8:1:2:ffff::7", "2001:db8:1:2::99"} {
		ok, _ := b.take(netip.MustParseAddr(a), now)
		if want := i < 2; ok != want {
			t.Fatalf("%s: ok %v, want %v", a, ok, want)
		}
	}
	if ok, _ := b.take(netip.MustParseAddr("2001:db8:1:3::1"), now); !ok {
		t.Fatal("another /64 shares the budget")
	}
}
