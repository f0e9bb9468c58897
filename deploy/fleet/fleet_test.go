package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"edgecache/deploy/envconfig"
	"edgecache/origin"
	"edgecache/proxy"

	"go.uber.org/zap"
)

// TestFleet runs the real thing: MariaDB primary and replica, three
// memcached nodes, two origins and three proxies in this process, HAProxy in
// front. Through HAProxy it writes and reads, checks read-after-write on
// every proxy, then runs the drills: a graceful stop of zone a's proxy under
// traffic, a frozen memcached node in zone b, the replica stopped, one and
// then both origins hung under load, zone c's proxy stopped, zone c killed,
// and zone b killed (no proxy left).
func TestFleet(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	pcfg, err := envconfig.Load[proxy.Config]()
	if err != nil {
		t.Fatal(err)
	}
	pcfg.AccessLog = "off"
	ocfg, err := envconfig.Load[origin.Config]()
	if err != nil {
		t.Fatal(err)
	}
	ocfg.AccessLog = "off"
	ocfg.DrainDelay = 100 * time.Millisecond // no load balancer in front of the origins
	logCfg := zap.NewDevelopmentConfig()
	logCfg.Level = zap.NewAtomicLevelAt(zap.WarnLevel)
	logCfg.DisableStacktrace = true
	log, err := logCfg.Build()
	if err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	f, err := Start(ctx, Options{Listen: "127.0.0.1:0", StatsListen: "127.0.0.1:0", MemcachedMB: 16,
		Proxy: &pcfg, Origin: &ocfg, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Stop)
	t.Logf("fleet up in %s: front %s, stats %s", time.Since(start).Round(time.Millisecond), f.FrontURL(), f.StatsURL())

	c := &client{t: t, http: &http.Client{Timeout: 10 * time.Second}, front: f.Front}

	// A user and a few posts, through HAProxy.
	var user struct {
		ID    int64  `json:"id"`
		Token string `json:"token"`
	}
	st, _, body := c.do("POST", f.FrontURL()+"/v1/users", "", `{"name":"ada","email":"ada@example.com"}`)
	if st != http.StatusCreated {
		t.Fatalf("create user: %d %s", st, body)
	}
	if err := json.Unmarshal(body, &user); err != nil {
		t.Fatal(err)
	}
	const nPosts = 6
	var posts []string // paths
	for i := range nPosts {
		st, h, body := c.do("POST", fmt.Sprintf("%s/v1/users/%d/posts", f.FrontURL(), user.ID), user.Token,
			fmt.Sprintf(`{"body":"post %d"}`, i))
		if st != http.StatusCreated {
			t.Fatalf("create post: %d %s", st, body)
		}
		posts = append(posts, h.Get("Location"))
	}
	post := posts[0]

	// Read twice: the second read is a hit, from the shared pool (HAProxy
	// sends it to another proxy: round robin).
	st, h, body := c.do("GET", f.FrontURL()+post, "", "")
	if st != http.StatusOK || !strings.Contains(string(body), `"post 0"`) {
		t.Fatalf("first read: %d %s", st, body)
	}
	t.Logf("first read:  Cache-Status: %s", h.Get("Cache-Status"))
	st, h, body = c.do("GET", f.FrontURL()+post, "", "")
	if st != http.StatusOK || !strings.Contains(h.Get("Cache-Status"), "; hit") {
		t.Fatalf("second read: %d, Cache-Status %q, %s", st, h.Get("Cache-Status"), body)
	}
	t.Logf("second read: Cache-Status: %s", h.Get("Cache-Status"))
	// Warm every proxy's copy too, so that read-after-write below has
	// something stale to not serve.
	for _, name := range Zones {
		c.do("GET", "http://"+f.Zone(name).ProxyAddr()+post, "", "")
	}

	// A write through HAProxy, then every proxy directly (with the Host
	// clients use, so the same cache key) answers the new body.
	st, _, body = c.do("PUT", f.FrontURL()+post, user.Token, `{"body":"edited"}`)
	if st != http.StatusOK {
		t.Fatalf("PUT: %d %s", st, body)
	}
	for _, name := range Zones {
		st, h, body := c.do("GET", "http://"+f.Zone(name).ProxyAddr()+post, "", "")
		if st != http.StatusOK || !strings.Contains(string(body), `"edited"`) {
			t.Fatalf("zone %s after PUT: %d, Cache-Status %q, %s", name, st, h.Get("Cache-Status"), body)
		}
		t.Logf("zone %s after PUT: Cache-Status: %s", name, h.Get("Cache-Status"))
	}

	// traffic is a mix through HAProxy: reads of every post, and every
	// tenth request a write. It counts what did not succeed.
	var edits atomic.Int64
	traffic := func(n int, stop <-chan struct{}) (requests, failures, incomplete int) {
		for i := 0; n < 0 || i < n; i++ {
			select {
			case <-stop:
				return
			default:
			}
			path := posts[i%len(posts)]
			var st int
			var h http.Header
			var body []byte
			if i%10 == 9 {
				st, h, body = c.tryDo("PUT", f.FrontURL()+path, user.Token, fmt.Sprintf(`{"body":"edit %d"}`, edits.Add(1)))
				if h.Get("Edgecache-Invalidation") == "pending" {
					incomplete++
				}
			} else {
				st, _, body = c.tryDo("GET", f.FrontURL()+path, "", "")
			}
			requests++
			if st != http.StatusOK {
				failures++
				if failures <= 5 {
					t.Logf("request %d: %d %s", i, st, body)
				}
			}
		}
		return
	}

	// Drill (a): stop zone a's proxy gracefully while traffic flows. No
	// request may fail: it is drained before it closes.
	t0 := time.Now()
	stop := make(chan struct{})
	var during struct{ requests, failures, incomplete int }
	var wg sync.WaitGroup
	wg.Go(func() { during.requests, during.failures, during.incomplete = traffic(-1, stop) })
	if err := f.StopProxy(ctx, "a"); err != nil {
		t.Error(err)
	}
	close(stop)
	wg.Wait()
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	sa, err := f.WaitServer(wctx, "a", ServerState.Down)
	wcancel()
	if err != nil {
		t.Fatal(err)
	}
	requests, failures, _ := traffic(300, nil)
	t.Logf("drill a (stop proxy a) took %s: during the stop %d requests, %d failed; HAProxy: a %s (%s); after it %d requests, %d failed",
		time.Since(t0).Round(time.Millisecond), during.requests, during.failures, sa.Status, sa.CheckStatus, requests, failures)
	if during.failures != 0 || failures != 0 {
		t.Errorf("drill a: %d of %d requests failed during the stop, %d of %d after", during.failures, during.requests, failures, requests)
	}

	// Drill (b): freeze zone b's memcached node. Reads still answer 200
	// (that node's keys from the origin), writes still succeed, and HAProxy
	// keeps the proxies in rotation (/readyz says degraded, not down).
	t0 = time.Now()
	if err := f.PauseMemcached("b"); err != nil {
		t.Fatal(err)
	}
	requests, failures, incomplete := traffic(200, nil)
	states, err := f.ServerStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("drill b (memcached b paused) took %s: %d requests, %d failed, %d writes with Edgecache-Invalidation: pending; HAProxy: %v",
		time.Since(t0).Round(time.Millisecond), requests, failures, incomplete, states)
	if failures != 0 {
		t.Errorf("drill b: %d of %d requests failed", failures, requests)
	}
	for _, name := range []string{"b", "c"} {
		if !states[name].Up() {
			t.Errorf("drill b: HAProxy took zone %s out: %+v", name, states[name])
		}
	}
	st, _, body = c.do("GET", "http://"+f.Zone("b").AdminAddr()+"/readyz", "", "")
	t.Logf("zone b /readyz: %d %s", st, bytes.TrimSpace(body))
	if st != http.StatusOK {
		t.Errorf("zone b /readyz with one memcached node frozen: %d %s", st, body)
	}
	if err := f.ResumeMemcached("b"); err != nil {
		t.Fatal(err)
	}

	// Drill (c): stop the replica. The origins read from the primary
	// instead (origin_db_replica_fallbacks_total counts it): reads and
	// writes still succeed. The writes in the mix make the next read of each
	// post a miss that the origins serve from a replica when one is up.
	if err := f.StopReplica(); err != nil {
		t.Fatal(err)
	}
	requests, failures, _ = traffic(100, nil)
	fallbacks := 0.0
	for _, name := range []string{"a", "b"} {
		fallbacks += c.metric("http://"+f.Zone(name).Origin.Addr()+"/metrics", "origin_db_replica_fallbacks_total")
	}
	t.Logf("drill c (replica stopped): %d requests, %d failed; the origins fell back to the primary %v times", requests, failures, fallbacks)
	if failures != 0 {
		t.Errorf("drill c: %d of %d requests failed with the replica stopped", failures, requests)
	}
	if fallbacks == 0 {
		t.Errorf("drill c: no origin read tried the stopped replica; the drill did not exercise it")
	}

	// The drills below put a production-like load through HAProxy: 200
	// reads a second of posts nothing writes meanwhile (cached: warmed
	// first), 5 writes a second to other posts.
	var writePosts []string
	for i := range nPosts {
		st, h, body := c.do("POST", fmt.Sprintf("%s/v1/users/%d/posts", f.FrontURL(), user.ID), user.Token,
			fmt.Sprintf(`{"body":"written %d"}`, i))
		if st != http.StatusCreated {
			t.Fatalf("create post: %d %s", st, body)
		}
		writePosts = append(writePosts, h.Get("Location"))
	}
	underLoad := func(drill func()) *loadReport {
		for _, p := range posts {
			c.do("GET", f.FrontURL()+p, "", "")
		}
		stop := make(chan struct{})
		done := make(chan *loadReport)
		go func() { done <- c.load(stop, posts, writePosts, user.Token, 200, 5) }()
		drill()
		close(stop)
		return <-done
	}
	liveProxies := []string{"b", "c"}
	// originsOut polls the live proxies' /readyz until each lists n
	// origins ejected, and returns how long that took and the slowest
	// /readyz answer meanwhile.
	originsOut := func(n int) (took, slowest time.Duration) {
		start := time.Now()
		for _, name := range liveProxies {
			for {
				t0 := time.Now()
				st, _, body := c.do("GET", "http://"+f.Zone(name).AdminAddr()+"/readyz", "", "")
				slowest = max(slowest, time.Since(t0))
				if st != http.StatusOK {
					t.Errorf("zone %s /readyz: %d %s", name, st, body)
				}
				if strings.Count(string(body), `"state":"ejected"`) == n {
					break
				}
				if time.Since(start) > 20*time.Second {
					t.Fatalf("zone %s: %d origins not ejected in 20 s: %s", name, n, body)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		return time.Since(start), slowest
	}
	const hang = 7 * time.Second // longer than PROXY_ORIGIN_TIMEOUT: writes sent to a hung origin time out

	// Drill (e): origin a hangs (its connections accept and answer
	// nothing, as after SIGSTOP). Every proxy ejects it and sends reads and
	// writes to origin b; reads all answer 200, a write answers 200 or, if
	// it went to origin a before the ejection, a JSON 504.
	var ejectedIn, backIn, slowestReady time.Duration
	rep := underLoad(func() {
		time.Sleep(time.Second) // load before the fault
		if err := f.PauseOrigin("a"); err != nil {
			t.Fatal(err)
		}
		paused := time.Now()
		ejectedIn, slowestReady = originsOut(1)
		time.Sleep(hang - time.Since(paused))
		if err := f.ResumeOrigin("a"); err != nil {
			t.Fatal(err)
		}
		backIn, _ = originsOut(0)
		time.Sleep(time.Second) // load after the fault
	})
	t.Logf("drill e (origin a hung %s): %s; every proxy ejected it after %s (slowest /readyz %s), took it back %s after it continued",
		hang, rep, ejectedIn.Round(time.Millisecond), slowestReady.Round(time.Millisecond), backIn.Round(time.Millisecond))
	if !rep.only("read", http.StatusOK) || !rep.only("write", http.StatusOK, http.StatusGatewayTimeout) ||
		rep.kind("read").notJSON+rep.kind("write").notJSON != 0 {
		t.Errorf("drill e: want reads all 200, writes 200 or JSON 504; got %s", rep)
	}

	// Drill (f): both origins hang. The proxies stay in HAProxy (their
	// /readyz says degraded) and keep answering cached reads; writes fail
	// with a JSON 504 until the proxies eject both origins, then with a
	// JSON 503 at once (not sent).
	rep = underLoad(func() {
		time.Sleep(time.Second)
		for _, name := range []string{"a", "b"} {
			if err := f.PauseOrigin(name); err != nil {
				t.Fatal(err)
			}
		}
		paused := time.Now()
		ejectedIn, slowestReady = originsOut(2)
		time.Sleep(hang - time.Since(paused))
		var err error
		if states, err = f.ServerStates(ctx); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"a", "b"} {
			if err := f.ResumeOrigin(name); err != nil {
				t.Fatal(err)
			}
		}
		backIn, _ = originsOut(0)
		time.Sleep(time.Second)
	})
	t.Logf("drill f (both origins hung %s): %s; every proxy ejected both after %s (slowest /readyz %s), took them back %s after they continued; HAProxy at the end of the hang: %v",
		hang, rep, ejectedIn.Round(time.Millisecond), slowestReady.Round(time.Millisecond), backIn.Round(time.Millisecond), states)
	for _, name := range liveProxies {
		if !states[name].Up() {
			t.Errorf("drill f: HAProxy took zone %s out while only the origins hung: %+v", name, states[name])
		}
	}
	if !rep.only("read", http.StatusOK) || !rep.only("write", http.StatusOK, http.StatusGatewayTimeout, http.StatusServiceUnavailable) ||
		rep.kind("read").notJSON+rep.kind("write").notJSON != 0 {
		t.Errorf("drill f: want cached reads all 200, writes 200 or JSON 504 or 503; got %s", rep)
	}

	// Drill (g): zone c's proxy stops (its connections accept and answer
	// nothing, as after SIGSTOP). HAProxy's check times out and takes it
	// out in about a second; resumed, it comes back.
	t0 = time.Now()
	if err := f.PauseProxy("c"); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel = context.WithTimeout(ctx, 10*time.Second)
	sc, err := f.WaitServer(wctx, "c", ServerState.Down)
	wcancel()
	if err != nil {
		t.Fatal(err)
	}
	detected := time.Since(t0)
	if err := f.ResumeProxy("c"); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel = context.WithTimeout(ctx, 10*time.Second)
	_, err = f.WaitServer(wctx, "c", func(s ServerState) bool { return s.Status == "UP" })
	wcancel()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("drill g (proxy c stopped): HAProxy marked it %s (%s) %s after it stopped; back UP %s after it continued",
		sc.Status, sc.CheckStatus, detected.Round(time.Millisecond), (time.Since(t0) - detected).Round(time.Millisecond))

	// Drill (d): zone c goes away at once (its proxy and memcached node).
	// Once HAProxy has marked it down, zone b alone answers everything.
	t0 = time.Now()
	if err := f.KillZone("c"); err != nil {
		t.Error(err)
	}
	wctx, wcancel = context.WithTimeout(ctx, 10*time.Second)
	sc, err = f.WaitServer(wctx, "c", ServerState.Down)
	wcancel()
	if err != nil {
		t.Fatal(err)
	}
	requests, failures, incomplete = traffic(100, nil)
	t.Logf("drill d (zone c killed): HAProxy marked it %s (%s) after %s; then %d requests, %d failed, %d writes with Edgecache-Invalidation: pending",
		sc.Status, sc.CheckStatus, time.Since(t0).Round(time.Millisecond), requests, failures, incomplete)
	if failures != 0 {
		t.Errorf("drill d: %d of %d requests failed after zone c was marked down", failures, requests)
	}

	// Drill (h): the last proxy goes too. HAProxy answers by itself, in the
	// API's JSON error shape.
	if err := f.KillZone("b"); err != nil {
		t.Error(err)
	}
	wctx, wcancel = context.WithTimeout(ctx, 10*time.Second)
	_, err = f.WaitServer(wctx, "b", ServerState.Down)
	wcancel()
	if err != nil {
		t.Fatal(err)
	}
	st, h, body = c.do("GET", f.FrontURL()+post, "", "")
	t.Logf("drill h (no proxy left): %d %s %s", st, h.Get("Content-Type"), bytes.TrimSpace(body))
	if st != http.StatusServiceUnavailable || h.Get("Content-Type") != "application/json" ||
		!strings.Contains(string(body), `{"error":{"code":"edge_unavailable",`) {
		t.Errorf("drill h: HAProxy with no proxy answered %d %q %s, want a JSON 503 edge_unavailable", st, h.Get("Content-Type"), body)
	}
}

// metric reads one counter or gauge (summed over its labels) from a
// Prometheus text page.
func (c *client) metric(url, name string) float64 {
	c.t.Helper()
	resp, err := c.http.Get(url)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	sum := 0.0
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(rest[strings.LastIndexByte(rest, ' ')+1:], &v); err == nil {
			sum += v
		}
	}
	return sum
}

// client sends requests with the Host clients use through HAProxy, also
// when it talks to a proxy directly, so that both see the same cache keys.
type client struct {
	t     *testing.T
	http  *http.Client
	front string
}

// do sends a request and fails the test on a transport error.
func (c *client) do(method, url, token, body string) (int, http.Header, []byte) {
	c.t.Helper()
	st, h, b := c.tryDo(method, url, token, body)
	if st == 0 {
		c.t.Fatalf("%s %s: %s", method, url, b)
	}
	return st, h, b
}

// tryDo sends a request; a transport error is status 0 with the error as body.
func (c *client) tryDo(method, url, token, body string) (int, http.Header, []byte) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return 0, nil, []byte(err.Error())
	}
	req.Host = c.front
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, http.Header{}, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, resp.Header, []byte(err.Error())
	}
	return resp.StatusCode, resp.Header, b
}
