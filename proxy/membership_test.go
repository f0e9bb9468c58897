package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"go.uber.org/zap"

	"edgecache/deploy/envconfig"
	"edgecache/deploy/localstack"
	"edgecache/proxy/invalidator"
	"edgecache/proxy/store"
)

// Issue 17's proof, as a test: 40 posts filled with memcached nodes {A, B};
// the proxy restarted with {A} alone and every post updated (acknowledged,
// not pending); the proxy restarted with {A, B}. Node B still holds the
// entries and group values of before the updates, which no write moved:
// it must be flushed before it is used again (store/membership.go), so no
// post is served at version 1.
func TestNodeOutAndBackInServesNothingStale(t *testing.T) {
	base := realStack(t)
	var nodes []string
	for range 2 {
		m, err := localstack.StartMemcached(context.Background(), 16)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Stop()
		nodes = append(nodes, m.Addr)
	}
	proxyOver := func(memcached ...string) *Proxy {
		cfg := testConfig(base)
		cfg.Memcached = memcached
		return startProxy(t, cfg)
	}
	stop := func(p *Proxy) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.Shutdown(ctx)
	}

	both := proxyOver(nodes...)
	u := createUser(t, both)
	var posts []apiPost
	for i := range 40 {
		posts = append(posts, createPost(t, both, u, fmt.Sprint("post ", i, " v1")))
	}
	for _, p := range posts {
		get(t, both, fmt.Sprintf("/v1/posts/%d", p.ID)) // filled at {A, B}
	}
	stop(both)

	alone := proxyOver(nodes[0])
	for i, p := range posts {
		acknowledged(t, do(t, alone, "PUT", fmt.Sprintf("/v1/posts/%d", p.ID), map[string]string{"Authorization": "Bearer " + u.Token},
			fmt.Sprintf(`{"body":"post %d v2"}`, i)))
	}
	stop(alone)

	again := proxyOver(nodes...)
	stale := 0
	for i, p := range posts {
		if !readsVersion(t, again, p.ID, fmt.Sprintf("post %d v2", i)) {
			stale++
		}
	}
	t.Logf("%d of %d posts stale", stale, len(posts))
}

// readsVersion reads post id through p and reports (and fails the test
// unless) its body is want, written by an update acknowledged before.
func readsVersion(t *testing.T, p *Proxy, id int64, want string) bool {
	t.Helper()
	r := get(t, p, fmt.Sprintf("/v1/posts/%d", id))
	var got apiPost
	decodeInto(t, r.Body(), &got)
	if got.Body != want {
		t.Errorf("post %d: %q (Cache-Status %q) after its update to %q was acknowledged", id, got.Body, cacheStatus(r), want)
		return false
	}
	return true
}

// Issue 18's proofs with the decider: two proxies and a leading invalidator
// over memcached nodes {A, B}. 40 posts are filled; B is taken out by the
// operator's command (it keeps running, with what it held); every post is
// updated (acknowledged, not pending) while the membership is {A}; B is put
// back. No post may be served at version 1 by either proxy, and a node that
// stops answering is taken out by the decider alone, after which writes
// stop answering pending.
func TestMembershipChangesUnderTheDeciderServeNothingStale(t *testing.T) {
	base := realStack(t)
	withoutDurableInvalidator(t)
	var nodes []string
	var procs []*localstack.Memcached
	for range 2 {
		m, err := localstack.StartMemcached(context.Background(), 16)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Stop)
		nodes, procs = append(nodes, m.Addr), append(procs, m)
	}
	icfg, err := envconfig.Load[invalidator.Config]()
	if err != nil {
		t.Fatal(err)
	}
	icfg.MySQLDSN, icfg.Memcached, icfg.AdminListen = dbPrimary.DSN("edgecache"), nodes, "127.0.0.1:0"
	icfg.LockName = fmt.Sprintf("edgecache.invalidator.membership.%d", time.Now().UnixNano())
	icfg.MemcachedView, icfg.MemcachedCheckInterval, icfg.MemcachedEjectAfter = 200*time.Millisecond, 50*time.Millisecond, time.Second
	icfg.MemcachedProbeInterval = 20 * time.Millisecond
	forgetMembership(t)
	inv, err := invalidator.StartBackground(icfg, zap.NewNop(), metrics.NewSet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(inv.Stop)
	var proxies []*Proxy
	for range 2 {
		cfg := testConfig(base)
		cfg.Memcached, cfg.MemcachedProbeInterval, cfg.MemcachedTimeout = nodes, 20*time.Millisecond, 300*time.Millisecond
		proxies = append(proxies, startProxy(t, cfg))
	}
	// settle waits until the decider has settled on read and every proxy
	// follows that generation.
	settle := func(read ...string) {
		t.Helper()
		read = slices.Sorted(slices.Values(read))
		deadline := time.Now().Add(30 * time.Second)
		for {
			st := membershipStatus(t, inv)
			done := st.Phase == "settled" && slices.Equal(st.Read, read)
			for _, p := range proxies {
				done = done && p.store.(*store.Store).Generation() == st.Generation
			}
			if done {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("membership did not settle on %v: %+v", read, st)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	command := func(path string) {
		t.Helper()
		w := httptest.NewRecorder()
		inv.Handler().ServeHTTP(w, httptest.NewRequest("POST", path, nil))
		if w.Code != 200 {
			t.Fatalf("POST %s: %d %s", path, w.Code, w.Body)
		}
	}
	settle(nodes...)

	u := createUser(t, proxies[0])
	var posts []apiPost
	for i := range 40 {
		posts = append(posts, createPost(t, proxies[0], u, fmt.Sprint("post ", i, " v1")))
	}
	for _, p := range posts {
		for _, px := range proxies {
			get(t, px, fmt.Sprintf("/v1/posts/%d", p.ID)) // filled at {A, B}, and in each L1
		}
	}

	command("/memcached/remove?node=" + nodes[1])
	settle(nodes[0])
	for i, p := range posts {
		acknowledged(t, do(t, proxies[i%2], "PUT", fmt.Sprintf("/v1/posts/%d", p.ID), map[string]string{"Authorization": "Bearer " + u.Token},
			fmt.Sprintf(`{"body":"post %d v2"}`, i)))
	}
	command("/memcached/add?node=" + nodes[1])
	settle(nodes...)
	stale := 0
	for i, p := range posts {
		for _, px := range proxies {
			if !readsVersion(t, px, p.ID, fmt.Sprintf("post %d v2", i)) {
				stale++
			}
		}
	}
	t.Logf("node out and back in: %d of %d reads stale", stale, 2*len(posts))

	// B stops answering for good: the decider takes it out, and writes
	// stop answering pending.
	if err := procs[1].Pause(); err != nil {
		t.Fatal(err)
	}
	defer procs[1].Resume()
	settle(nodes[0])
	for i, p := range posts {
		acknowledged(t, do(t, proxies[i%2], "PUT", fmt.Sprintf("/v1/posts/%d", p.ID), map[string]string{"Authorization": "Bearer " + u.Token},
			fmt.Sprintf(`{"body":"post %d v3"}`, i)))
		readsVersion(t, proxies[(i+1)%2], p.ID, fmt.Sprintf("post %d v3", i))
	}
}

func membershipStatus(t *testing.T, inv *invalidator.Background) (st struct {
	Generation uint64
	Phase      string
	Read       []string
}) {
	t.Helper()
	w := httptest.NewRecorder()
	inv.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/memcached", nil))
	if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil {
		t.Fatalf("GET /memcached: %d %q: %v", w.Code, w.Body, err)
	}
	return st
}
