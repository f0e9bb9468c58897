package proxy

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"edgecache/deploy/localstack"
	"edgecache/proxy/store"
)

// A memcached node that stops answering (SIGSTOP, like an unreachable host)
// is marked down; requests are still answered from the origin; a write made
// meanwhile is applied to the node when it comes back, so the entry stored
// before the write is not served afterwards.
func TestMemcachedNodeDownRequestsStillAnswered(t *testing.T) {
	// Two nodes of its own: a list with the shared node and another would
	// be a new membership of the shared node (store/membership.go), and
	// every other process on the shared node would stop using it.
	mc1, err := localstack.StartMemcached(context.Background(), 16)
	if err != nil {
		t.Fatal(err)
	}
	defer mc1.Stop()
	mc2, err := localstack.StartMemcached(context.Background(), 16)
	if err != nil {
		t.Fatal(err)
	}
	defer mc2.Stop()
	var v atomic.Int64
	v.Store(1)
	o := newScripted(t)
	o.handle("/mcdown/a", func(ctx *fasthttp.RequestCtx) {
		if ctx.IsPut() {
			v.Add(1)
			return
		}
		versioned("a", &v, "")(ctx)
	})
	cfg := testConfig(o.url())
	cfg.Memcached = []string{mc1.Addr, mc2.Addr}
	cfg.MemcachedTimeout = 200 * time.Millisecond
	cfg.MemcachedProbeInterval = 50 * time.Millisecond
	p := startProxy(t, cfg)
	// Find the path's node; the test needs it to be mc2 for the entry and
	// the URL group, so pick a query string that lands there.
	path := ""
	for i := 0; i < 1000 && path == ""; i++ {
		cand := "/mcdown/a?n=" + string(rune('a'+i%26)) + strings.Repeat("x", i/26)
		pk := "http://edge.test" + cand
		if memcachedOf(p).NodeOf(store.EntryKey(pk)) == 1 && memcachedOf(p).NodeOf(store.GroupKey(store.URLGroup(pk))) == 1 {
			path = cand
		}
	}
	if path == "" {
		t.Fatal("no path maps to the second node")
	}
	get(t, p, path)
	if r := get(t, p, path); !strings.Contains(cacheStatus(r), "hit") {
		t.Fatalf("warm-up: %q", cacheStatus(r))
	}

	if err := mc2.Pause(); err != nil {
		t.Fatal(err)
	}
	paused := true
	defer func() {
		if paused {
			mc2.Resume()
		}
	}()
	for i := 0; i < 3; i++ {
		r := get(t, p, path)
		if r.StatusCode() != 200 || string(r.Body()) != "a v1" {
			t.Fatalf("with the node down: %d %q", r.StatusCode(), r.Body())
		}
	}
	if p.store.NodeUp(1) {
		t.Fatal("the paused node is not marked down")
	}
	// One node down is the fleet's problem: this instance stays in the load
	// balancer, and says what is degraded.
	if r := adminDo(t, p, "GET", "/readyz", ""); r.StatusCode() != 200 ||
		!strings.Contains(string(r.Body()), `{"dependency":"memcached","address":"`+mc2.Addr+`","state":"down"}`) {
		t.Fatalf("/readyz with one node down: %d %q", r.StatusCode(), r.Body())
	}
	w := do(t, p, "PUT", path, nil, "{}")
	if w.StatusCode() != 200 || string(w.Header.Peek("Edgecache-Invalidation")) != "pending" {
		t.Fatalf("write with the node down: %d, Edgecache-Invalidation %q", w.StatusCode(), w.Header.Peek("Edgecache-Invalidation"))
	}
	if r := get(t, p, path); string(r.Body()) != "a v2" {
		t.Fatalf("read after the write, node down: %q", r.Body())
	}
	// What the operator's dashboard and alerts (deploy/monitoring) read.
	metricsText := string(adminDo(t, p, "GET", "/metrics", "").Body())
	for _, line := range []string{
		`edgecache_proxy_memcached_up{node="` + mc2.Addr + `"} 0`,
		`edgecache_proxy_memcached_up{node="` + mc1.Addr + `"} 1`,
		`edgecache_proxy_writes_pending_total{reason="memcached"} 1`,
		"edgecache_proxy_ready 1",
	} {
		if !strings.Contains(metricsText, line+"\n") {
			t.Errorf("/metrics with one node down lacks %q", line)
		}
	}

	mc2.Resume()
	paused = false
	deadline := time.Now().Add(30 * time.Second)
	for !p.store.NodeUp(1) {
		if time.Now().After(deadline) {
			t.Fatal("the node was not marked up again")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The node still holds the entry stored before the write ("a v1"); the
	// write's group move was replayed on recovery, so it is not served.
	for i := 0; i < 2; i++ {
		if r := get(t, p, path); string(r.Body()) != "a v2" {
			t.Fatalf("after recovery: %q (Cache-Status %q), want a v2", r.Body(), cacheStatus(r))
		}
	}
	if r := get(t, p, path); !strings.Contains(cacheStatus(r), "hit") {
		t.Fatalf("after recovery the key is cached again: %q", cacheStatus(r))
	}
}

// Issue 8: a memcached node that dies costs one refill per key, not the
// hit ratio: group values are read from their replicas and entries stored
// at their second place, so the origin sees at most one fetch per key
// afterwards, and a write made while the node is gone is seen at once.
func TestDeadMemcachedNodeCostsOneRefillPerKey(t *testing.T) {
	a, err := localstack.StartMemcached(context.Background(), 16)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	b, err := localstack.StartMemcached(context.Background(), 16)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	o := newScripted(t)
	versions := make([]atomic.Int64, 20)
	for i := range versions {
		versions[i].Store(1)
		o.handle(fmt.Sprintf("/dead/%d", i), versionedItem(fmt.Sprint("item", i), &versions[i], fmt.Sprintf("dead/%d", i)))
	}
	cfg := testConfig(o.url())
	cfg.Memcached = []string{a.Addr, b.Addr}
	cfg.MemcachedTimeout = 200 * time.Millisecond
	cfg.L1Bytes = 0 // every hit validated in memcached
	p := startProxy(t, cfg)
	for i := range versions {
		get(t, p, fmt.Sprintf("/dead/%d", i))
	}
	a.Stop()
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; p.store.NodeUp(0); i++ { // three failures mark it down
		if time.Now().After(deadline) {
			t.Fatal("the dead node was never marked down")
		}
		get(t, p, fmt.Sprintf("/dead/%d", i%len(versions)))
	}
	before := originHits(o, len(versions))
	for range 3 {
		for i := range versions {
			if r := get(t, p, fmt.Sprintf("/dead/%d", i)); r.StatusCode() != 200 {
				t.Fatalf("/dead/%d with a node dead: %d", i, r.StatusCode())
			}
		}
	}
	if n := originHits(o, len(versions)) - before; n > int64(len(versions)) {
		t.Fatalf("%d origin fetches for %d keys over 3 rounds with one node dead: want at most one refill per key", n, len(versions))
	}
	w := do(t, p, "PUT", "/dead/7", nil, "{}")
	if string(w.Header.Peek(hdrInvalidation)) != "pending" {
		t.Fatalf("a write whose group's first place is down must say pending, got %q", w.Header.Peek(hdrInvalidation))
	}
	if r := get(t, p, "/dead/7"); string(r.Body()) != "item7 v2" {
		t.Fatalf("STALE with a node dead: %q after v2 was acknowledged", r.Body())
	}
}

func originHits(o *scripted, n int) (total int64) {
	for i := range n {
		total += o.hits(fmt.Sprintf("/dead/%d", i))
	}
	return total
}
