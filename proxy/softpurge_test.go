package proxy

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// softItem is an origin resource in group: GET answers "v<version>",
// cacheable for a minute; any other method moves the version and names
// the group at it, as the origin's writes do. While gated, a GET tells
// entered and waits for release.
type softItem struct {
	group   string
	v       atomic.Int64
	gated   atomic.Bool
	entered chan struct{}
	release chan struct{}
	gets    atomic.Int64
	opened  sync.Once
}

// open lets gated GETs through, now and from then on.
func (s *softItem) open() { s.opened.Do(func() { close(s.release) }) }

func newSoftItem(group string) *softItem {
	s := &softItem{group: group, entered: make(chan struct{}, 64), release: make(chan struct{})}
	s.v.Store(1)
	return s
}

func (s *softItem) serve(ctx *fasthttp.RequestCtx) {
	if !ctx.IsGet() {
		ctx.Response.Header.Set("Edgecache-Groups", s.group+"="+strconv.FormatInt(s.v.Add(1), 10))
		ctx.SetBodyString("ok")
		return
	}
	s.gets.Add(1)
	if s.gated.Load() {
		s.entered <- struct{}{}
		<-s.release
	}
	v := s.v.Load()
	ctx.Response.Header.Set("Cache-Control", "max-age=60")
	ctx.Response.Header.Set("Edgecache-Groups", s.group+"="+strconv.FormatInt(v, 10))
	ctx.SetBodyString("v" + strconv.FormatInt(v, 10))
}

// A soft purge of a group leaves its entries served, stale, while one
// refresh per key runs: 20 reads during the refresh cost the origin one
// request, and once it is stored the new version is served.
func TestSoftPurgeServesStaleWhileOneRefreshRuns(t *testing.T) {
	run := runID()
	item := newSoftItem("soft/" + run)
	o := newScripted(t)
	path := "/soft/" + run
	o.handle(path, item.serve)
	cfg := testConfig(o.url())
	cfg.AdminToken = "s3cret"
	p := startProxy(t, cfg)
	t.Cleanup(item.open) // before the proxy's shutdown: a failed test leaves no fill waiting
	if r := get(t, p, path); string(r.Body()) != "v1" {
		t.Fatalf("fill: %d %s", r.StatusCode(), r.Body())
	}
	filled := item.gets.Load() // a key never filled: a replica read, then the primary's
	if r := adminDo(t, p, "POST", "/purge?group="+item.group+"&soft=maybe", "s3cret"); r.StatusCode() != 400 {
		t.Fatalf("soft=maybe: %d %s, want 400", r.StatusCode(), r.Body())
	}
	item.v.Store(2)
	item.gated.Store(true)
	if r := adminDo(t, p, "POST", "/purge?group="+item.group+"&soft=1", "s3cret"); r.StatusCode() != 200 ||
		!strings.Contains(string(r.Body()), `"soft":true`) {
		t.Fatalf("soft purge: %d %s", r.StatusCode(), r.Body())
	}
	for i := range 20 {
		r := get(t, p, path)
		if string(r.Body()) != "v1" || !strings.Contains(cacheStatus(r), "hit") || !strings.Contains(cacheStatus(r), "detail=soft-purged") {
			t.Fatalf("read %d after the soft purge: %d %s %q, want the stale v1 at once", i, r.StatusCode(), r.Body(), cacheStatus(r))
		}
	}
	<-item.entered // the refresh reached the origin
	if n := item.gets.Load() - filled; n != 1 {
		t.Fatalf("origin got %d GETs after the soft purge, want 1 (one refresh)", n)
	}
	item.open()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := get(t, p, path)
		if string(r.Body()) == "v2" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the refresh was never stored: %s %q", r.Body(), cacheStatus(r))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := item.gets.Load() - filled; n != 1 {
		t.Fatalf("origin got %d GETs after the soft purge, want 1 (one refresh)", n)
	}
}

// The write path's guarantee holds over a soft purge: a write after it
// moves the group hard, and the soft-purged entry is never served again.
func TestWriteAfterSoftPurgeIsNotServedStale(t *testing.T) {
	run := runID()
	item := newSoftItem("soft/" + run)
	o := newScripted(t)
	path := "/soft/" + run
	o.handle(path, item.serve)
	cfg := testConfig(o.url())
	cfg.AdminToken = "s3cret"
	p := startProxy(t, cfg)
	p2 := startProxy(t, cfg)
	for _, q := range []*Proxy{p, p2} {
		if r := get(t, q, path); string(r.Body()) != "v1" {
			t.Fatalf("fill: %d %s", r.StatusCode(), r.Body())
		}
	}
	if r := adminDo(t, p, "POST", "/purge?group="+item.group+"&soft=1", "s3cret"); r.StatusCode() != 200 {
		t.Fatalf("soft purge: %d %s", r.StatusCode(), r.Body())
	}
	if r := do(t, p, "PUT", path, nil, `{"a":1}`); r.StatusCode() != 200 || len(r.Header.Peek(hdrInvalidation)) > 0 {
		t.Fatalf("write: %d %q", r.StatusCode(), r.Header.Peek(hdrInvalidation))
	}
	for _, q := range []*Proxy{p, p2} {
		if r := get(t, q, path); string(r.Body()) != "v2" {
			t.Fatalf("read after the write: %s %q, want v2", r.Body(), cacheStatus(r))
		}
	}
}

// A soft purge through one proxy reaches another's L1 copy served under
// its invalidation lease: that proxy serves it stale and refreshes it,
// never as fresh.
func TestSoftPurgeReachesLeaseHolders(t *testing.T) {
	run := runID()
	item := newSoftItem("soft/" + run)
	o := newScripted(t)
	path := "/soft/" + run
	o.handle(path, item.serve)
	node := leaseNode(t)
	cfg := leaseConfig(node, o.url())
	cfg.AdminToken = "s3cret"
	purger, holder := startProxy(t, cfg), startProxy(t, cfg)
	warmL1(t, holder, path)
	if r := adminDo(t, purger, "POST", "/purge?group="+item.group+"&soft=1", "s3cret"); r.StatusCode() != 200 {
		t.Fatalf("soft purge: %d %s", r.StatusCode(), r.Body())
	}
	if r := get(t, holder, path); string(r.Body()) != "v1" || !strings.Contains(cacheStatus(r), "detail=soft-purged") {
		t.Fatalf("the lease holder after the soft purge: %s %q, want the stale v1 marked soft-purged", r.Body(), cacheStatus(r))
	}
}
