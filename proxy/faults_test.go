package proxy

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/valyala/fasthttp"

	"edgecache/cachepolicy"
	"edgecache/deploy/localstack"
	"edgecache/proxy/store"
)

// Issue 7, scenario 1: the origin commits a write but its answer is lost on
// the way to the proxy (which answers 502). The target URI is invalidated
// all the same and the answer says "pending": another proxy, which had
// the post cached, serves the new version at once; and once the durable
// invalidator has applied the database's log, the user's list too (the
// writer never learnt its group).
func TestLostWriteAnswerStillInvalidatesTheTarget(t *testing.T) {
	base := realStack(t)
	rl, err := localstack.StartRelay(strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer rl.Kill()
	writer := startProxy(t, testConfig("http://"+rl.Addr()))
	reader := startProxy(t, testConfig(base))
	u := createUser(t, reader)
	post := createPost(t, reader, u, "before the lost answer")
	inv := durableInvalidator(t)
	waitLogApplied(t, inv) // the creation's groups moved by the durable path too, before the entries are filled
	path := fmt.Sprintf("/v1/posts/%d", post.ID)
	checkReads(t, reader, u, post.ID, view{version: post.Version, postCount: 1, newest: post.ID})
	if r := get(t, reader, path); !strings.Contains(cacheStatus(r), "hit") {
		t.Fatalf("warm-up: %q", cacheStatus(r))
	}

	rl.DropAnswers(true)
	w := do(t, writer, "PUT", path, map[string]string{"Authorization": "Bearer " + u.Token}, `{"body":"answer lost"}`)
	rl.DropAnswers(false)
	if w.StatusCode() < 500 || string(w.Header.Peek(hdrInvalidation)) != "pending" {
		t.Fatalf("write with its answer dropped: %d, %s %q", w.StatusCode(), hdrInvalidation, w.Header.Peek(hdrInvalidation))
	}
	// The replica applies the write at its own pace, and within the
	// pending bound a fill may read it from there: what this test checks
	// is the invalidation of the target, so it reads once the replica has it.
	waitReplicaApplied(t)
	var pp apiPost
	r := get(t, reader, path)
	decodeInto(t, r.Body(), &pp)
	if pp.Body != "answer lost" || pp.Version <= post.Version {
		t.Fatalf("STALE after a committed write whose answer was lost: %q v%d (Cache-Status %q)", pp.Body, pp.Version, cacheStatus(r))
	}
	waitLogApplied(t, inv)
	checkReads(t, reader, u, post.ID, view{version: pp.Version, postCount: 1, newest: post.ID})
}

// Issue 7, scenario 4: a group key lost with its memcached node is
// re-created by a fill while the replica lags. The re-created value does
// not know the origin version of the last write (0): a later fill must not
// trust a replica's answer against it. Here the list, filled once from the
// primary after the loss and then evicted, is filled again by another
// proxy: it must still show the post created during the lag.
func TestRecreatedGroupIsNotTrustedWithALaggingReplica(t *testing.T) {
	base := realStack(t)
	node, err := localstack.StartMemcached(context.Background(), 16)
	if err != nil {
		t.Fatal(err)
	}
	defer node.Stop()
	cfg := testConfig(base)
	cfg.Memcached = []string{node.Addr}
	a, b := startProxy(t, cfg), startProxy(t, cfg)
	u := createUser(t, a)
	first := createPost(t, a, u, "before the lag")
	list := fmt.Sprintf("/v1/users/%d/posts", u.ID)
	for _, p := range []*Proxy{a, b} {
		checkReads(t, p, u, first.ID, view{version: first.Version, postCount: 1, newest: first.ID})
	}

	ctx := context.Background()
	if err := dbReplica.Exec(ctx, "STOP SLAVE SQL_THREAD"); err != nil {
		t.Fatal(err)
	}
	defer dbReplica.Exec(ctx, "START SLAVE SQL_THREAD")
	during := createPost(t, a, u, "during the lag")
	// The node restarts empty: every group value is lost.
	if err := memcache.New(node.Addr).FlushAll(); err != nil {
		t.Fatal(err)
	}
	checkReads(t, a, u, first.ID, view{version: first.Version, postCount: 2, newest: during.ID})
	// The list's entry is evicted; its groups stay.
	pk := string(cachepolicy.AppendKey(nil, []byte("http"), []byte("edge.test"), []byte(list), nil))
	if err := memcache.New(node.Addr).Delete(store.EntryKey(pk)); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*Proxy{b, a, b} {
		checkReads(t, p, u, first.ID, view{version: first.Version, postCount: 2, newest: during.ID})
	}
}

// Issue 7, scenario 6: an entry filled before a write never validates
// again once its group keys are lost and re-created, whatever epochs the
// re-creation starts from: re-created groups get a new random incarnation
// (epochs no longer come from a clock, so no clock can be skewed).
func TestLostGroupKeysNeverRevalidateAnOlderEntry(t *testing.T) {
	o := newScripted(t)
	var v atomic.Int64
	v.Store(1)
	group := "lost/" + t.Name()
	o.handle("/lost/item", versionedItem("item", &v, group))
	a, b := startProxy(t, testConfig(o.url())), startProxy(t, testConfig(o.url()))
	if r := get(t, a, "/lost/item"); string(r.Body()) != "item v1" {
		t.Fatalf("fill: %q", r.Body())
	}
	do(t, b, "PUT", "/lost/item", nil, "{}")
	// Both group keys are lost (node restart, eviction); the old entry,
	// and a's L1 copy of it, are still there.
	pk := "http://edge.test/lost/item"
	c := memcache.New(memcachedAddr())
	for _, k := range []string{store.GroupKey(store.URLGroup(pk)), store.GroupKey(group)} {
		if err := c.Delete(k); err != nil {
			t.Fatal(err)
		}
	}
	// b re-creates them with its fill; the old entry must not come back.
	for _, p := range []*Proxy{b, a, a, b} {
		if r := get(t, p, "/lost/item"); string(r.Body()) != "item v2" {
			t.Fatalf("STALE: %q after v2 was acknowledged (Cache-Status %q)", r.Body(), cacheStatus(r))
		}
	}
}

// Issue 7, scenario 7: a coalesced waiter checks the shared result against
// its own lookup, made after it arrived. A flight's snapshot can be older
// than the waiter (the leader's lookup): here the result was recorded
// before a write that the waiter's lookup saw, so it must not be used,
// however recently the flight began.
func TestCoalescedResultIsCheckedAgainstTheWaitersLookup(t *testing.T) {
	p := startProxy(t, testConfig("http://127.0.0.1:1"))
	name := "coalesce/" + t.Name()
	gk := store.GroupKey(name)
	g0, _, err := p.store.Ensure(gk, 1)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cresp := cachepolicy.Response{Status: 200, CacheControl: cachepolicy.ResponseDirectives(nil, nil, []byte("public, s-maxage=60"))}
	ent := &entry{Meta: cachepolicy.NewMeta(&cresp, now, now), Body: []byte("before"),
		Groups: []recorded{{Key: []byte(gk), Incarnation: g0.Incarnation, Epoch: g0.Epoch}}}

	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI("http://edge.test/coalesce")
	waiter := txn{ctx: &ctx, now: time.Now(), primary: []byte("http://edge.test/coalesce")}
	waiter.creq = cachepolicy.NewRequest([]byte("GET"), nil, nil, false)
	waiter.items, _ = p.store.Lookup([]string{gk})
	if !p.usable(&waiter, &fillResult{ent: ent, shareable: true}) {
		t.Fatal("a current result was not usable: the test would prove nothing")
	}
	if err := memcachedOf(p).Move(name, 2); err != nil { // a write, acknowledged
		t.Fatal(err)
	}
	waiter.now = time.Now()
	waiter.items, _ = p.store.Lookup([]string{gk})
	if p.usable(&waiter, &fillResult{ent: ent, shareable: true}) {
		t.Fatal("a result recorded before a write the waiter's lookup saw was used")
	}
}

// Issue 7, scenario 8: two versions within one second share a
// Last-Modified, so a client revalidating with If-Modified-Since the date
// of the first must get the second in full, not a 304.
func TestIfModifiedSinceWithinTheSameSecondGetsTheNewVersion(t *testing.T) {
	o := newScripted(t)
	var v atomic.Int64
	v.Store(1)
	lm := time.Now().UTC().Truncate(time.Second).Format(time.RFC1123)
	lm = strings.Replace(lm, "UTC", "GMT", 1)
	o.handle("/ims/item", func(ctx *fasthttp.RequestCtx) {
		if ctx.IsPut() {
			v.Add(1)
			return
		}
		versioned("item", &v, "")(ctx)
		ctx.Response.Header.Set("Last-Modified", lm)
		ctx.Response.Header.Set("Date", lm) // answered in the same second
	})
	p := startProxy(t, testConfig(o.url()))
	r := get(t, p, "/ims/item")
	if string(r.Body()) != "item v1" {
		t.Fatalf("first read: %q", r.Body())
	}
	do(t, p, "PUT", "/ims/item", nil, "{}")
	get(t, p, "/ims/item") // fill v2
	r = get(t, p, "/ims/item", "If-Modified-Since", lm)
	if r.StatusCode() != 200 || string(r.Body()) != "item v2" {
		t.Fatalf("If-Modified-Since %s against a version from the same second: %d %q", lm, r.StatusCode(), r.Body())
	}
}

// An absolute-form request line names another authority than Host: the
// origin gets origin-form and the Host the answer is cached under, so no
// client can fill the cache of one host with another's answers.
func TestAbsoluteFormIsForwardedUnderTheKeyedHost(t *testing.T) {
	o := newScripted(t)
	var host, uri atomic.Value
	o.handle("/abs/item", func(ctx *fasthttp.RequestCtx) {
		host.Store(string(ctx.Request.Header.Host()))
		uri.Store(string(ctx.Request.Header.RequestURI()))
		cacheable("abs")(ctx)
	})
	p := startProxy(t, testConfig(o.url()))
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET http://evil.example/abs/item?x=1 HTTP/1.1\r\nHost: edge.test\r\n\r\n")
	var resp fasthttp.Response
	if err := resp.Read(bufio.NewReader(c)); err != nil {
		t.Fatal(err)
	}
	if h, u := host.Load(), uri.Load(); h != "edge.test" || u != "/abs/item?x=1" {
		t.Fatalf("origin saw Host %q and request target %q, want edge.test and /abs/item?x=1", h, u)
	}
}

// A redirect's Location is anyone's to choose: only a 2xx answer to a
// write invalidates Location and Content-Location.
func TestRedirectAnswerDoesNotInvalidateItsLocation(t *testing.T) {
	o := newScripted(t)
	o.handle("/redir/victim", cacheable("victim"))
	o.handle("/redir/write", func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Location", "/redir/victim")
		ctx.SetStatusCode(fasthttp.StatusTemporaryRedirect)
	})
	p := startProxy(t, testConfig(o.url()))
	get(t, p, "/redir/victim")
	do(t, p, "PUT", "/redir/write", nil, "{}")
	if r := get(t, p, "/redir/victim"); !strings.Contains(cacheStatus(r), "hit") {
		t.Fatalf("a 307's Location was invalidated: %q", cacheStatus(r))
	}
}

// RFC 9110 §5.3, RFC 9111 §5.2: a request's Cache-Control over two lines
// is one list; "no-cache" on the second line makes the stored response be
// validated before it is reused.
func TestRequestCacheControlOverTwoLines(t *testing.T) {
	o := newScripted(t)
	o.handle("/cc2/item", cacheable("item"))
	p := startProxy(t, testConfig(o.url()))
	get(t, p, "/cc2/item")
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET /cc2/item HTTP/1.1\r\nHost: edge.test\r\nCache-Control: max-stale=5\r\nCache-Control: no-cache\r\n\r\n")
	var resp fasthttp.Response
	if err := resp.Read(bufio.NewReader(c)); err != nil {
		t.Fatal(err)
	}
	if cs := string(resp.Header.Peek("Cache-Status")); strings.Contains(cs, "; hit") || o.hits("/cc2/item") != 2 {
		t.Fatalf("no-cache on the second Cache-Control line was ignored: Cache-Status %q, %d origin requests", cs, o.hits("/cc2/item"))
	}
}

// waitReplicaApplied waits until the replica has applied every transaction
// the primary has committed so far (MASTER_GTID_WAIT: no polling).
func waitReplicaApplied(t *testing.T) {
	t.Helper()
	primary, err := sql.Open("mysql", dbPrimary.DSN("edgecache"))
	if err != nil {
		t.Fatal(err)
	}
	defer primary.Close()
	replica, err := sql.Open("mysql", dbReplica.DSN("edgecache"))
	if err != nil {
		t.Fatal(err)
	}
	defer replica.Close()
	var pos string
	if err := primary.QueryRow("SELECT @@gtid_binlog_pos").Scan(&pos); err != nil {
		t.Fatal(err)
	}
	var waited int
	if err := replica.QueryRow("SELECT MASTER_GTID_WAIT(?, 30)", pos).Scan(&waited); err != nil || waited != 0 {
		t.Fatalf("the replica did not reach the primary's position %q: %d, %v", pos, waited, err)
	}
}
