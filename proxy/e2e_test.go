package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"edgecache/deploy/envconfig"
	"edgecache/deploy/localstack"
	"edgecache/origin"
)

// The real stack for end-to-end tests: a MariaDB primary, a replica of it,
// and the real origin reading from the replica (and from the primary when
// the proxy sends Edgecache-Fresh). Started once, on first use.
var (
	stackOnce       sync.Once
	stackErr        error
	dbPrimary       *localstack.MariaDB
	dbReplica       *localstack.MariaDB
	realOrigin      *origin.Server
	realOriginURL   string
	userSeq         atomic.Int64
	e2eUniqueSuffix = time.Now().UnixNano()
)

func realStack(t *testing.T) string {
	t.Helper()
	stackOnce.Do(func() {
		ctx := context.Background()
		add := func(f func()) { stackMu.Lock(); stackStops = append(stackStops, f); stackMu.Unlock() }
		if dbPrimary, stackErr = localstack.StartMariaDB(ctx, localstack.MariaDBOptions{ServerID: 1}); stackErr != nil {
			return
		}
		add(dbPrimary.Stop)
		if dbReplica, stackErr = localstack.StartMariaDB(ctx, localstack.MariaDBOptions{ServerID: 2}); stackErr != nil {
			return
		}
		add(dbReplica.Stop)
		if stackErr = dbReplica.ReplicateFrom(ctx, dbPrimary); stackErr != nil {
			return
		}
		cfg, err := envconfig.Load[origin.Config]()
		if err != nil {
			stackErr = err
			return
		}
		cfg.Listen = "127.0.0.1:0"
		cfg.MySQLDSN = dbPrimary.DSN("edgecache")
		cfg.ReplicaDSNs = []string{dbReplica.DSN("edgecache")}
		cfg.DrainDelay = 0
		cfg.AccessLog = "off"
		if realOrigin, stackErr = origin.Start(cfg, zap.NewNop()); stackErr != nil {
			return
		}
		add(func() { realOrigin.Shutdown(context.Background()) })
		realOriginURL = "http://" + realOrigin.Addr()
	})
	if stackErr != nil {
		t.Fatal("real stack:", stackErr)
	}
	return realOriginURL
}

type apiUser struct {
	ID        int64  `json:"id"`
	Token     string `json:"token"`
	PostCount int64  `json:"post_count"`
}

type apiPost struct {
	ID      int64  `json:"id"`
	UserID  int64  `json:"user_id"`
	Body    string `json:"body"`
	Version int64  `json:"version"`
}

type apiList struct {
	Posts []apiPost `json:"posts"`
}

func decodeInto(t testing.TB, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
}

func createUser(t testing.TB, p *Proxy) apiUser {
	t.Helper()
	n := userSeq.Add(1)
	r := do(t, p, "POST", "/v1/users", nil, fmt.Sprintf(`{"name":"proxy user %d","email":"proxy%d-%d@example.com"}`, n, e2eUniqueSuffix, n))
	if r.StatusCode() != 201 {
		t.Fatalf("create user: %d %s", r.StatusCode(), r.Body())
	}
	var u apiUser
	decodeInto(t, r.Body(), &u)
	return u
}

func createPost(t testing.TB, p *Proxy, u apiUser, body string) apiPost {
	t.Helper()
	r := do(t, p, "POST", fmt.Sprintf("/v1/users/%d/posts", u.ID), map[string]string{"Authorization": "Bearer " + u.Token},
		fmt.Sprintf(`{"body":%q}`, body))
	if r.StatusCode() != 201 {
		t.Fatalf("create post: %d %s", r.StatusCode(), r.Body())
	}
	var pp apiPost
	decodeInto(t, r.Body(), &pp)
	return pp
}

func updatePost(t testing.TB, p *Proxy, u apiUser, id int64, body string) apiPost {
	t.Helper()
	r := do(t, p, "PUT", fmt.Sprintf("/v1/posts/%d", id), map[string]string{"Authorization": "Bearer " + u.Token},
		fmt.Sprintf(`{"body":%q}`, body))
	if r.StatusCode() != 200 {
		t.Fatalf("update post: %d %s", r.StatusCode(), r.Body())
	}
	var pp apiPost
	decodeInto(t, r.Body(), &pp)
	return pp
}

// view is what a reader must at least see, once the writes it reflects
// were acknowledged.
type view struct {
	version   int64   // of the watched post
	postCount int64   // of its user
	newest    int64   // id of the newest post created
	ids       []int64 // every post created (newest last)
}

// checkReads reads the post, its user and the user's list through p and
// fails if any shows less than want.
func checkReads(t testing.TB, p *Proxy, u apiUser, postID int64, want view) {
	t.Helper()
	var pp apiPost
	r := get(t, p, fmt.Sprintf("/v1/posts/%d", postID))
	decodeInto(t, r.Body(), &pp)
	if pp.Version < want.version {
		t.Errorf("STALE post: version %d after version %d was acknowledged (Cache-Status %q)", pp.Version, want.version, cacheStatus(r))
	}
	var uu apiUser
	r = get(t, p, fmt.Sprintf("/v1/users/%d", u.ID))
	decodeInto(t, r.Body(), &uu)
	if uu.PostCount < want.postCount {
		t.Errorf("STALE user: post_count %d after %d was acknowledged (Cache-Status %q)", uu.PostCount, want.postCount, cacheStatus(r))
	}
	var l apiList
	r = get(t, p, fmt.Sprintf("/v1/users/%d/posts", u.ID))
	decodeInto(t, r.Body(), &l)
	found := false
	for _, x := range l.Posts {
		// Newest first, one page: the newest acknowledged post is there,
		// or posts created after it pushed it to a later page.
		if x.ID >= want.newest {
			found = true
		}
		if x.ID == postID && x.Version < want.version {
			t.Errorf("STALE list: post %d at version %d after version %d was acknowledged (Cache-Status %q)", postID, x.Version, want.version, cacheStatus(r))
		}
	}
	if want.newest != 0 && !found {
		ids := []int64{}
		for _, x := range l.Posts {
			ids = append(ids, x.ID)
		}
		t.Errorf("STALE list: newest post %d missing (Cache-Status %q, ETag %s, ids %v)", want.newest, cacheStatus(r), r.Header.Peek("ETag"), ids)
	}
}

// A fill that read the old post, then stalls before storing while a write
// is acknowledged through another proxy, must not make anyone read the old
// post afterwards.
func TestSlowFillRacingAWriteIsNeverServed(t *testing.T) {
	base := realStack(t)
	p1 := startProxy(t, testConfig(base))
	p2 := startProxy(t, testConfig(base))
	u := createUser(t, p1)
	post := createPost(t, p1, u, "first")
	postPath := fmt.Sprintf("/v1/posts/%d", post.ID)
	checkReads(t, p1, u, post.ID, view{version: post.Version, postCount: 1, newest: post.ID})

	// p1's next fill for the post fetches the current version, then waits.
	fetched, proceed := make(chan struct{}), make(chan struct{})
	var armed atomic.Bool
	armed.Store(true)
	p1.hooks.Store(&testHooks{beforeStore: func(path string) {
		if path == postPath && armed.CompareAndSwap(true, false) {
			close(fetched)
			<-proceed
		}
	}})
	// Make p1's entry invalid so that its next read fills: a purge-like
	// write through p2 that the slow fill will have read before.
	v2 := updatePost(t, p2, u, post.ID, "second")
	slowDone := make(chan apiPost)
	go func() {
		var pp apiPost
		r := get(t, p1, postPath)
		json.Unmarshal(r.Body(), &pp)
		slowDone <- pp
	}()
	select { // the slow fill has the "second" version in hand
	case <-fetched:
	case pp := <-slowDone:
		t.Fatalf("the read after a write did not fill from the origin (got version %d)", pp.Version)
	}
	v3 := updatePost(t, p2, u, post.ID, "third")
	// The write is acknowledged; now let the slow fill store what it read.
	close(proceed)
	if pp := <-slowDone; pp.Version < v2.Version {
		t.Fatalf("the slow reader got version %d, older than %d acknowledged before it asked", pp.Version, v2.Version)
	}
	for _, p := range []*Proxy{p1, p2, p1} {
		checkReads(t, p, u, post.ID, view{version: v3.Version, postCount: 1, newest: post.ID})
	}
}

// A replica that stops applying changes: reads through the proxy after a
// write still see the write (the origin version in the group tells the
// proxy that the replica's answer is old; it asks the primary).
func TestLaggingReplicaReadsStillSeeTheWrite(t *testing.T) {
	base := realStack(t)
	p1 := startProxy(t, testConfig(base))
	p2 := startProxy(t, testConfig(base))
	u := createUser(t, p1)
	post := createPost(t, p1, u, "before lag")
	checkReads(t, p1, u, post.ID, view{version: post.Version, postCount: 1, newest: post.ID})
	checkReads(t, p2, u, post.ID, view{version: post.Version, postCount: 1, newest: post.ID})

	ctx := context.Background()
	if err := dbReplica.Exec(ctx, "STOP SLAVE SQL_THREAD"); err != nil {
		t.Fatal(err)
	}
	defer dbReplica.Exec(ctx, "START SLAVE SQL_THREAD")
	v2 := updatePost(t, p1, u, post.ID, "during lag")
	second := createPost(t, p2, u, "another during lag")
	want := view{version: v2.Version, postCount: 2, newest: second.ID}
	for _, p := range []*Proxy{p1, p2, p2, p1} {
		checkReads(t, p, u, post.ID, want)
	}
	if lag := p1.m.lagRefetch.Get() + p2.m.lagRefetch.Get(); lag == 0 {
		t.Error("no replica-lag refetch counted: the test did not exercise the lagging replica")
	}
}

// Concurrent writers and readers on two proxies: every read sent after a
// write's acknowledgement shows that write (post version, the user's
// post_count, the user's list), including reads whose fills were slowed to
// race the writes.
func TestZeroStaleReadsUnderConcurrency(t *testing.T) {
	base := realStack(t)
	zeroStaleReads(t, []*Proxy{startProxy(t, testConfig(base)), startProxy(t, testConfig(base))})
}

// zeroStaleReads runs writers and readers on proxies (see
// TestZeroStaleReadsUnderConcurrency); the first proxy's fills are slowed.
func zeroStaleReads(t *testing.T, proxies []*Proxy) {
	u := createUser(t, proxies[0])
	first := createPost(t, proxies[0], u, "p0")
	postPath := fmt.Sprintf("/v1/posts/%d", first.ID)
	// Slow some fills of the post and the list on the first proxy, so that
	// writes land between their fetch and their store.
	var slowed atomic.Int64
	proxies[0].hooks.Store(&testHooks{beforeStore: func(path string) {
		if (path == postPath || strings.HasSuffix(path, "/posts")) && rand.IntN(3) == 0 {
			slowed.Add(1)
			time.Sleep(time.Duration(5+rand.IntN(20)) * time.Millisecond)
		}
	}})

	var mu sync.Mutex
	acked := view{version: first.Version, postCount: 1, newest: first.ID}
	snapshot := func() view { mu.Lock(); defer mu.Unlock(); return acked }
	deadline := time.Now().Add(4 * time.Second)
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				p := proxies[(w+i)%len(proxies)]
				if i%3 == 2 {
					np := createPost(t, p, u, fmt.Sprintf("w%d-%d", w, i))
					mu.Lock()
					acked.postCount++
					acked.newest = max(acked.newest, np.ID)
					mu.Unlock()
					continue
				}
				up := updatePost(t, p, u, first.ID, fmt.Sprintf("w%d-%d", w, i))
				mu.Lock()
				acked.version = max(acked.version, up.Version)
				mu.Unlock()
			}
		}()
	}
	var reads atomic.Int64
	for r := 0; r < 6; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				want := snapshot() // taken before the reads are sent
				checkReads(t, proxies[(r+i)%len(proxies)], u, first.ID, want)
				reads.Add(3)
			}
		}()
	}
	wg.Wait()
	final := snapshot()
	for _, p := range proxies {
		checkReads(t, p, u, first.ID, final)
	}
	var hits, free []uint64
	for _, p := range proxies {
		f, _ := p.lease.Hits()
		hits, free = append(hits, p.m.requests[outcomeHit].Get()), append(free, f)
	}
	t.Logf("%d reads, %d slowed fills, final version %d, post_count %d; hits per proxy %v, of which L1 under a lease %v",
		reads.Load(), slowed.Load(), final.version, final.postCount, hits, free)
	if reads.Load() == 0 || final.version <= first.Version {
		t.Fatal("the test did not exercise reads and writes")
	}
}
