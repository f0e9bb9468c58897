package proxy

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"edgecache/proxy/store"
	"edgecache/proxy/store/memstore"
)

// The tests in this file run the proxy over memstore, without memcached:
// the store's hook lands a write at an exact point of a fill, and its nodes
// go down on demand. Proxies over one memstore share it as instances share
// memcached.

var _ storage = (*memstore.Store)(nil)

func memProxy(t *testing.T, st *memstore.Store, origin string) *Proxy {
	t.Helper()
	return startProxyOver(t, memConfig(origin), st)
}

// mustWrite sends a write that must be acknowledged without "pending".
func mustWrite(t *testing.T, p *Proxy, path string) {
	acknowledged(t, do(t, p, "PUT", path, nil, "{}"))
}

func acknowledged(t *testing.T, r *fasthttp.Response) {
	t.Helper()
	if r.StatusCode() != 200 || len(r.Header.Peek(hdrInvalidation)) > 0 {
		t.Fatalf("write: %d, %s %q", r.StatusCode(), hdrInvalidation, r.Header.Peek(hdrInvalidation))
	}
}

// wantBody reads path and fails the test unless the body is want.
func wantBody(t *testing.T, p *Proxy, path, want, why string) {
	t.Helper()
	if r := get(t, p, path); string(r.Body()) != want {
		t.Fatalf("%s: %q, want %q (Cache-Status %q)", why, r.Body(), want, cacheStatus(r))
	}
}

// beforeOnce makes f run the first time op meets key in st.
func beforeOnce(st *memstore.Store, op, key string, f func()) {
	var once sync.Once
	st.Before(func(o, k string) {
		if o == op && k == key {
			once.Do(f)
		}
	})
}

// A write acknowledged after a fill's snapshot and before its fetch, with
// the fetch answered by a replica that has not seen the write yet: the
// fill's entry holds the old body, recorded against group values the write
// has moved since, so it must never validate, in L1 or memcached.
func TestMemstoreWriteBetweenSnapshotAndFetchIsNeverServed(t *testing.T) {
	var primary, replica atomic.Int64
	primary.Store(1)
	replica.Store(1)
	const group = "post/1"
	o := newScripted(t)
	o.handle("/a/item", func(ctx *fasthttp.RequestCtx) {
		if !ctx.IsGet() {
			ctx.Response.Header.Set(hdrGroups, group+"="+strconv.FormatInt(primary.Add(1), 10))
			return
		}
		v := &replica
		if string(ctx.Request.Header.Peek(hdrFresh)) == "1" {
			v = &primary
		}
		versioned("item", v, group)(ctx)
	})
	st := memstore.New(1)
	p := memProxy(t, st, o.url())
	const path, pk = "/a/item", "http://edge.test/a/item"
	wantBody(t, p, path, "item v1", "fill")
	// The entry goes (evicted) and so does this process's copy; the
	// group stays remembered, so the next fill's snapshot is its lookup.
	st.Delete(store.EntryKey(pk))
	p.l1.Remove(pk)

	var w *fasthttp.Response
	beforeOnce(st, "Add", store.LeaseKey(pk), func() { w = do(t, p, "PUT", path, nil, "{}") })
	get(t, p, path) // the fill the write raced: the old body answers it, rightly
	acknowledged(t, w)
	wantBody(t, p, path, "item v2", "STALE after the write was acknowledged")
	wantBody(t, p, path, "item v2", "STALE after the write was acknowledged")
}

// A write acknowledged after a fill's origin fetch and before its entry is
// stored: the entry must never validate, not even as the L1 copy under
// an invalidation lease.
func TestMemstoreWriteBetweenFetchAndSaveIsNeverServed(t *testing.T) {
	var v atomic.Int64
	v.Store(1)
	o := newScripted(t)
	o.handle("/b/item", versionedItem("item", &v, "post/2"))
	st := memstore.New(1)
	cfg := memConfig(o.url())
	cfg.PeerSecret, cfg.LeaseDuration = testPeerSecret, 5*time.Second
	p := startProxyOver(t, cfg, st)
	waitLease(t, p)
	const path, pk = "/b/item", "http://edge.test/b/item"

	var w *fasthttp.Response
	beforeOnce(st, "Set", store.EntryKey(pk), func() { w = do(t, p, "PUT", path, nil, "{}") })
	get(t, p, path)
	acknowledged(t, w)
	for range 2 { // the L1 copy, then memcached's
		wantBody(t, p, path, "item v2", "STALE after the write was acknowledged")
	}
}

// A coalesced waiter that arrived after a write was acknowledged must not
// take the result of a flight whose snapshot predates the write (the
// leader's lookup): here the leader's fetch read the old version before
// the write, and its answer comes after.
func TestMemstoreCoalescedWaiterAfterAWriteGetsTheWrite(t *testing.T) {
	var v atomic.Int64
	v.Store(1)
	var block atomic.Bool
	fetching, release := make(chan struct{}), make(chan struct{})
	o := newScripted(t)
	item := versionedItem("item", &v, "post/3")
	o.handle("/c/item", func(ctx *fasthttp.RequestCtx) {
		item(ctx)
		if ctx.IsGet() && block.CompareAndSwap(true, false) {
			close(fetching) // the answer is read: the write comes after it
			<-release
		}
	})
	st := memstore.New(1)
	reader, writer := memProxy(t, st, o.url()), memProxy(t, st, o.url())
	const path, pk = "/c/item", "http://edge.test/c/item"
	wantBody(t, reader, path, "item v1", "fill")
	st.Delete(store.EntryKey(pk))
	reader.l1.Remove(pk)

	joined := make(chan struct{}, 2)
	reader.hooks.Store(&testHooks{onWait: func(scope string) {
		if scope != "process" {
			return
		}
		select {
		case joined <- struct{}{}:
		default: // the waiter's own fill, once it found the result unusable
		}
	}})
	block.Store(true)
	leader := make(chan *fasthttp.Response, 1)
	go func() { leader <- get(t, reader, path) }()
	<-fetching
	<-joined
	mustWrite(t, writer, path)
	waiter := make(chan *fasthttp.Response, 1)
	go func() { waiter <- get(t, reader, path) }()
	<-joined // the waiter is in the leader's flight
	close(release)
	<-leader
	if r := <-waiter; string(r.Body()) != "item v2" {
		t.Fatalf("STALE: the waiter got %q after the write was acknowledged (Cache-Status %q)", r.Body(), cacheStatus(r))
	}
}

// Group keys lost (and created again by another proxy's fill) after a
// write: the entry filled before the write, still in the first proxy's L1,
// must never validate against the new values, whatever their epochs.
func TestMemstoreLostGroupKeysNeverRevalidateAnOlderEntry(t *testing.T) {
	var v atomic.Int64
	v.Store(1)
	const group = "post/4"
	o := newScripted(t)
	o.handle("/d/item", versionedItem("item", &v, group))
	st := memstore.New(2)
	a, b := memProxy(t, st, o.url()), memProxy(t, st, o.url())
	const path, pk = "/d/item", "http://edge.test/d/item"
	wantBody(t, a, path, "item v1", "fill")
	mustWrite(t, b, path)
	for _, k := range []string{store.GroupKey(store.URLGroup(pk)), store.GroupKey(group)} {
		st.Delete(k)
	}
	for _, p := range []*Proxy{b, a, a, b} {
		wantBody(t, p, path, "item v2", "STALE after the write was acknowledged")
	}
}

// A write whose group's node is down: the move is queued and the answer
// says "pending"; reads meanwhile do not trust what they cannot check, and
// once the node is back (with the move replayed) the old entry is dead.
func TestMemstoreFailedMoveIsQueuedAndTheWritePending(t *testing.T) {
	var v atomic.Int64
	v.Store(1)
	st := memstore.New(4)
	const path, pk, writePath = "/e/item", "http://edge.test/e/item", "/e/other"
	// The list's group on a node of its own: only its move can fail.
	busy := map[int]bool{}
	for _, k := range []string{store.EntryKey(pk), store.GroupKey(store.URLGroup(pk)), store.GroupKey(store.URLGroup("http://edge.test" + writePath))} {
		busy[st.NodeOf(k)] = true
	}
	group := "user/5/posts"
	for i := 0; busy[st.NodeOf(store.GroupKey(group))]; i++ {
		group = "user/5/posts/" + strconv.Itoa(i)
	}
	down := st.NodeOf(store.GroupKey(group))
	o := newScripted(t)
	o.handle(path, versionedItem("item", &v, group))
	o.handle(writePath, versionedItem("other", &v, group)) // a write elsewhere that changes the list
	p := memProxy(t, st, o.url())
	wantBody(t, p, path, "item v1", "fill")

	st.SetDown(down, true)
	if r := do(t, p, "PUT", writePath, nil, "{}"); string(r.Header.Peek(hdrInvalidation)) != "pending" {
		t.Fatalf("write whose move failed: %d, %s %q, want pending", r.StatusCode(), hdrInvalidation, r.Header.Peek(hdrInvalidation))
	}
	wantBody(t, p, path, "item v2", "STALE while the group's node is down")
	st.SetDown(down, false)
	wantBody(t, p, path, "item v2", "STALE after the node came back")
}

// A fill that goes to the primary (a group it remembered for the key was
// lost) reads the groups its answer names but it did not remember after
// its fetch. If, in between, a write moved one of them and the value was
// then lost and created again without a version (a purge, another fill's
// snapshot), the value read has no version to show that the answer is
// older than the write: the entry must not be stored.
func TestMemstoreVersionlessGroupReadAfterTheFetchIsNotTrusted(t *testing.T) {
	var v atomic.Int64
	v.Store(1)
	o := newScripted(t)
	o.handle("/c/item", func(ctx *fasthttp.RequestCtx) {
		n := strconv.FormatInt(v.Load(), 10)
		if !ctx.IsGet() {
			n = strconv.FormatInt(v.Add(1), 10)
		} else {
			ctx.Response.Header.Set("Cache-Control", "public, s-maxage=600")
			ctx.SetBodyString("item v" + n)
		}
		ctx.Response.Header.Set(hdrGroups, "post/a="+n+" post/b="+n)
	})
	o.handle("/c/other", func(ctx *fasthttp.RequestCtx) { // a write elsewhere that changes post/b
		ctx.Response.Header.Set(hdrGroups, "post/b="+strconv.FormatInt(v.Add(1), 10))
	})
	st := memstore.New(1)
	p1, p2 := memProxy(t, st, o.url()), memProxy(t, st, o.url())
	const path, pk = "/c/item", "http://edge.test/c/item"
	// p1 remembers only post/a for the key (the origin's groups for a URL
	// change), and post/a is unknown: its fill goes to the primary.
	p1.groupsOf.set(pk, []string{store.GroupKey(store.URLGroup(pk)), store.GroupKey("post/a")})
	gb := store.GroupKey("post/b")
	var w *fasthttp.Response
	beforeOnce(st, "GetMulti", gb, func() {
		w = do(t, p2, "PUT", "/c/other", nil, "{}")            // moves post/b to version 2
		st.Delete(gb)                                          // lost
		if err := p2.purgeGroup("post/b", false); err != nil { // created again, version unknown
			t.Fatal(err)
		}
	})
	wantBody(t, p1, path, "item v1", "the fill the write raced") // its answer, rightly
	acknowledged(t, w)
	wantBody(t, p1, path, "item v2", "STALE after the write was acknowledged")
	wantBody(t, p2, path, "item v2", "STALE after the write was acknowledged")
}
