package proxy

import (
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// runID keeps this run's paths apart from earlier runs' entries in the
// shared memcached (go test -count).
func runID() string { return strconv.FormatInt(time.Now().UnixNano(), 36) }

// waitFor polls cond until it holds (failing the test after 20 s) and
// returns how long that took.
func waitFor(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > 20*time.Second {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// readyz asks p's /readyz and returns its status, its body and how long it
// took to answer.
func readyz(t *testing.T, p *Proxy) (int, readiness, time.Duration) {
	t.Helper()
	start := time.Now()
	r := adminDo(t, p, "GET", "/readyz", "")
	took := time.Since(start)
	var body readiness
	if err := json.Unmarshal(r.Body(), &body); err != nil {
		t.Fatalf("/readyz body %q: %v", r.Body(), err)
	}
	return r.StatusCode(), body, took
}

func ejectedOrigins(r readiness) int {
	n := 0
	for _, d := range r.Degraded {
		if d.Dependency == "origin" && d.State == "ejected" {
			n++
		}
	}
	return n
}

// healthConfig is testConfig with origin health settings that let a test
// see ejection and recovery in well under a second.
func healthConfig(origins ...string) Config {
	cfg := testConfig(origins...)
	cfg.OriginTimeout = 2 * time.Second
	cfg.OriginReadTimeout = 500 * time.Millisecond
	cfg.OriginDownFor = 200 * time.Millisecond
	cfg.OriginProbeInterval = 100 * time.Millisecond
	cfg.OriginProbeTimeout = 200 * time.Millisecond
	return cfg
}

// Both origins stop (SIGSTOP: they accept connections and answer nothing).
// The probe ejects them; /readyz stays 200, answers at once and names them;
// a cached read is still a hit; a miss fails with a JSON 504 instead of
// hanging, and a write with a JSON 503 at once, not sent (no pending
// invalidation). When they continue, the probe brings them back.
func TestReadyAndCachedReadsWhileEveryOriginIsHung(t *testing.T) {
	a, b := startOriginProcess(t), startOriginProcess(t)
	p := startProxy(t, healthConfig(a.url(), b.url()))
	run := runID()
	cached := "/hung/" + run + "/cached"
	if r := get(t, p, cached); r.StatusCode() != 200 {
		t.Fatalf("warm-up: %d %s", r.StatusCode(), r.Body())
	}
	if r := get(t, p, cached); !strings.Contains(cacheStatus(r), "hit") {
		t.Fatalf("warm-up: not a hit: %q", cacheStatus(r))
	}

	a.signal(t, syscall.SIGSTOP)
	b.signal(t, syscall.SIGSTOP)
	var slowest time.Duration
	ejectedIn := waitFor(t, "both origins ejected", func() bool {
		st, r, took := readyz(t, p)
		slowest = max(slowest, took)
		if st != 200 {
			t.Fatalf("/readyz while the origins hang: %d %+v", st, r)
		}
		return ejectedOrigins(r) == 2
	})
	st, r, _ := readyz(t, p)
	if st != 200 || r.Status != "degraded" {
		t.Fatalf("/readyz with every origin ejected: %d %+v, want 200 degraded", st, r)
	}
	if hit := get(t, p, cached); hit.StatusCode() != 200 || !strings.Contains(cacheStatus(hit), "hit") {
		t.Fatalf("cached read with every origin hung: %d %q", hit.StatusCode(), cacheStatus(hit))
	}
	start := time.Now()
	miss := get(t, p, "/hung/"+run+"/uncached")
	missTook := time.Since(start)
	if miss.StatusCode() != 504 || jsonErrorCode(t, miss) != "origin_timeout" {
		t.Fatalf("miss with every origin hung: %d %s", miss.StatusCode(), miss.Body())
	}
	start = time.Now()
	w := do(t, p, "PUT", "/hung/"+run+"/write", nil, "{}")
	writeTook := time.Since(start)
	if w.StatusCode() != 503 || jsonErrorCode(t, w) != "origin_unavailable" || string(w.Header.Peek("Retry-After")) != "1" ||
		len(w.Header.Peek(hdrInvalidation)) > 0 {
		t.Fatalf("write with every origin hung: %d %s %s", w.StatusCode(), w.Header.Header(), w.Body())
	}

	a.signal(t, syscall.SIGCONT)
	b.signal(t, syscall.SIGCONT)
	backIn := waitFor(t, "both origins back", func() bool {
		_, r, _ := readyz(t, p)
		return r.Status == "ready"
	})
	if r := get(t, p, "/hung/"+run+"/after"); r.StatusCode() != 200 {
		t.Fatalf("read after the origins continued: %d %s", r.StatusCode(), r.Body())
	}
	t.Logf("both origins ejected %s after SIGSTOP; slowest /readyz meanwhile %s; miss answered 504 in %s, write in %s; both back %s after SIGCONT",
		ejectedIn.Round(time.Millisecond), slowest.Round(time.Microsecond), missTook.Round(time.Millisecond),
		writeTook.Round(time.Millisecond), backIn.Round(time.Millisecond))
}

// One origin stops. Reads keep answering 200 (each attempt on the hung
// origin gives up after PROXY_ORIGIN_READ_TIMEOUT and goes to the other),
// the hung origin is ejected, writes then all go to the live origin, and
// after SIGCONT the probe brings it back. No write ever reached the
// stopped origin.
func TestHungOriginIsEjectedAndTrafficGoesToTheOther(t *testing.T) {
	a, b := startOriginProcess(t), startOriginProcess(t)
	p := startProxy(t, healthConfig(a.url(), b.url()))
	hung := p.origins.ups[0]
	run := runID()
	aWrites, bWrites := a.writes(t), b.writes(t)

	a.signal(t, syscall.SIGSTOP)
	stopped := time.Now()
	reads := 0
	for hung.health.up.Load() {
		reads++
		if r := get(t, p, "/onehung/"+run+"/"+strconv.Itoa(reads)); r.StatusCode() != 200 {
			t.Fatalf("read %d with one origin hung: %d %s", reads, r.StatusCode(), r.Body())
		}
		if time.Since(stopped) > 20*time.Second {
			t.Fatal("the hung origin was not ejected")
		}
	}
	ejectedIn := time.Since(stopped)
	for i := range 10 {
		if w := do(t, p, "PUT", "/onehung/"+run+"/w"+strconv.Itoa(i), nil, "{}"); w.StatusCode() != 200 {
			t.Fatalf("write %d with the hung origin ejected: %d %s", i, w.StatusCode(), w.Body())
		}
	}
	if n := b.writes(t) - bWrites; n != 10 {
		t.Fatalf("the live origin got %d writes, want 10", n)
	}
	if hung.ejections.Get() != 1 {
		t.Fatalf("ejections of the hung origin: %d, want 1", hung.ejections.Get())
	}

	a.signal(t, syscall.SIGCONT)
	backIn := waitFor(t, "the origin back", hung.health.up.Load)
	if hung.returns.Get() != 1 {
		t.Fatalf("returns of the origin: %d, want 1", hung.returns.Get())
	}
	if n := a.writes(t) - aWrites; n != 0 {
		t.Fatalf("the stopped origin got %d writes", n)
	}
	t.Logf("hung origin ejected %s after SIGSTOP (%d reads meanwhile, all 200); back %s after SIGCONT",
		ejectedIn.Round(time.Millisecond), reads, backIn.Round(time.Millisecond))
}

// One origin is killed while the proxy holds keep-alive connections to it.
// Every write afterwards is answered by the other origin, exactly once:
// the dead origin's pooled connections are found closed before a request
// is written on them, and its refused dial ejects it.
func TestWritesGoToTheLiveOriginWhenOneIsKilled(t *testing.T) {
	a, b := startOriginProcess(t), startOriginProcess(t)
	cfg := healthConfig(a.url(), b.url())
	cfg.OriginProbeInterval = time.Hour // only the writes may find out
	p := startProxy(t, cfg)
	run := runID()
	for i := range 4 { // pooled connections to both
		if w := do(t, p, "PUT", "/killed/"+run+"/warm"+strconv.Itoa(i), nil, "{}"); w.StatusCode() != 200 {
			t.Fatalf("warm-up write: %d %s", w.StatusCode(), w.Body())
		}
	}
	if a.writes(t) == 0 || b.writes(t) == 0 {
		t.Fatalf("warm-up did not reach both origins: %d and %d writes", a.writes(t), b.writes(t))
	}
	bWrites := b.writes(t)
	a.signal(t, syscall.SIGKILL)
	a.cmd.Wait() // its sockets are closed once it is reaped
	for i := range 10 {
		if w := do(t, p, "PUT", "/killed/"+run+"/"+strconv.Itoa(i), nil, "{}"); w.StatusCode() != 200 {
			t.Fatalf("write %d after an origin was killed: %d %s", i, w.StatusCode(), w.Body())
		}
	}
	if n := b.writes(t) - bWrites; n != 10 {
		t.Fatalf("the live origin got %d writes, want exactly 10", n)
	}
	if n := p.m.originRetries["unsent-write"].Get(); n == 0 {
		t.Fatal("no write was retried: the test did not meet the dead origin")
	}
	if p.origins.ups[0].health.up.Load() {
		t.Fatal("the killed origin is still in service")
	}
}

// An origin closes an idle keep-alive connection (as its idle timeout
// would). The next write must not be lost on that connection: it goes out
// on a new one, once.
func TestWriteOnAPooledConnectionTheOriginClosedGoesOutOnANewOne(t *testing.T) {
	opened, closed := make(chan net.Conn, 16), make(chan struct{}, 16)
	var puts atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) { puts.Add(1); ctx.Response.Header.Set("Cache-Control", "no-store") },
		ConnState: func(c net.Conn, s fasthttp.ConnState) {
			switch s {
			case fasthttp.StateNew:
				opened <- c
			case fasthttp.StateClosed:
				closed <- struct{}{}
			}
		},
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	cfg := testConfig("http://" + ln.Addr().String())
	cfg.OriginProbeInterval = time.Hour // no probe connections
	p := startProxy(t, cfg)
	run := runID()
	// Two writes in a row reuse one open connection: nothing to retry.
	for i := range 2 {
		if w := do(t, p, "PUT", "/stale/"+run+"/"+strconv.Itoa(i), nil, "{}"); w.StatusCode() != 200 {
			t.Fatalf("write %d: %d %s", i, w.StatusCode(), w.Body())
		}
	}
	if n := p.m.originRetries["unsent-write"].Get(); n != 0 {
		t.Fatalf("writes on an open pooled connection retried: %d", n)
	}
	(<-opened).Close() // the origin's side of the pooled connection
	<-closed
	if w := do(t, p, "PUT", "/stale/"+run+"/after", nil, "{}"); w.StatusCode() != 200 {
		t.Fatalf("write after the origin closed the pooled connection: %d %s", w.StatusCode(), w.Body())
	}
	if n := puts.Load(); n != 3 {
		t.Fatalf("the origin got %d writes, want exactly 3", n)
	}
	if n := p.m.originRetries["unsent-write"].Get(); n != 1 {
		t.Fatalf("unsent writes retried: %d, want 1", n)
	}
}

// An origin reads a PUT and closes the connection without answering: it may
// have applied it, so the proxy must not send it again, to this origin or
// the other. Each PUT arrives exactly once somewhere; the one the dropper
// got is answered 502.
func TestPutThatReachedAnOriginThatClosedIsNotResent(t *testing.T) {
	var dropped, answered atomic.Int64
	dropper := startCountingOrigin(t, func(ctx *fasthttp.RequestCtx) {
		dropped.Add(1)
		ctx.Conn().Close()
	})
	live := startCountingOrigin(t, func(ctx *fasthttp.RequestCtx) {
		answered.Add(1)
		ctx.Response.Header.Set("Cache-Control", "no-store")
	})
	cfg := testConfig(dropper, live)
	cfg.OriginProbeInterval = time.Hour
	p := startProxy(t, cfg)
	run := runID()
	for i := int64(1); dropped.Load() == 0; i++ {
		before := dropped.Load()
		w := do(t, p, "PUT", "/dropped/"+run+"/"+strconv.FormatInt(i, 10), nil, "{}")
		if got := dropped.Load() + answered.Load(); got != i {
			t.Fatalf("after %d PUTs the origins got %d", i, got)
		}
		if dropped.Load() > before && w.StatusCode() != 502 {
			t.Fatalf("PUT dropped by the origin: %d %s, want 502", w.StatusCode(), w.Body())
		}
		if i == 4 {
			t.Fatal("no PUT went to the dropping origin")
		}
	}
	if n := p.m.originRetries["unsent-write"].Get(); n != 0 {
		t.Fatalf("%d writes were resent", n)
	}
}

// One origin's address refuses connections. A write that meets it is sent
// to the live origin instead (nothing was sent), and the refusing origin
// is ejected at once, so only one write pays for the dial.
func TestWriteGoesToTheLiveOriginWhenTheOtherRefuses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String()
	ln.Close()
	var answered atomic.Int64
	live := startCountingOrigin(t, func(ctx *fasthttp.RequestCtx) {
		answered.Add(1)
		ctx.Response.Header.Set("Cache-Control", "no-store")
	})
	cfg := testConfig(refused, live)
	cfg.OriginProbeInterval = time.Hour
	p := startProxy(t, cfg)
	run := runID()
	for i := range 4 {
		if w := do(t, p, "POST", "/refused/"+run+"/"+strconv.Itoa(i), nil, "{}"); w.StatusCode() != 200 {
			t.Fatalf("write %d: %d %s", i, w.StatusCode(), w.Body())
		}
	}
	if n := answered.Load(); n != 4 {
		t.Fatalf("the live origin got %d writes, want exactly 4", n)
	}
	if n := p.m.originRetries["unsent-write"].Get(); n != 1 {
		t.Fatalf("writes retried after the refused dial: %d, want 1", n)
	}
	if n := p.origins.ups[0].ejections.Get(); n != 1 {
		t.Fatalf("ejections of the refusing origin: %d, want 1", n)
	}
}

// startCountingOrigin serves h on a free port and returns its base URL.
// /healthz answers 200 without reaching h.
func startCountingOrigin(t *testing.T, h fasthttp.RequestHandler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) != "/healthz" {
			h(ctx)
		}
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	return "http://" + ln.Addr().String()
}

// flakyOrigin answers 503 to everything, /healthz included, while broken.
type flakyOrigin struct {
	url    string
	broken atomic.Bool
	hits   atomic.Int64 // requests other than /healthz
}

func startFlakyOrigin(t *testing.T) *flakyOrigin {
	f := &flakyOrigin{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) != "/healthz" {
			f.hits.Add(1)
		}
		if f.broken.Load() {
			ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		}
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	f.url = "http://" + ln.Addr().String()
	return f
}

// The health state machine against real servers, driven step by step (the
// probe is called by the test, not by a timer): three 503s in a row eject
// an origin, and no request reaches it while it is out; a failing probe
// keeps it out; once its down time has passed a passing probe brings it
// back; ejected again soon after, it stays out twice as long.
func TestOriginEjectedAfterFailuresInARowAndBackThroughTheProbe(t *testing.T) {
	bad, good := startFlakyOrigin(t), startFlakyOrigin(t)
	bad.broken.Store(true)
	cfg := testConfig(bad.url, good.url)
	cfg.OriginEjectAfter = 3
	cfg.OriginDownFor = 100 * time.Millisecond
	cfg.OriginMaxDownFor = 10 * time.Second
	o, err := newOrigins(cfg, zap.NewNop(), newMetricSet("test"))
	if err != nil {
		t.Fatal(err)
	}
	u := o.ups[0]
	send := func() int {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI("/flaky")
		if err := o.do(req, resp, true, time.Now().Add(5*time.Second)); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode()
	}
	for bad.hits.Load() < 3 {
		if !u.health.up.Load() {
			t.Fatalf("ejected after %d failures, want 3", bad.hits.Load())
		}
		send()
	}
	if u.health.up.Load() || u.ejections.Get() != 1 {
		t.Fatalf("after 3 failures in a row: up %v, ejections %d", u.health.up.Load(), u.ejections.Get())
	}
	for range 10 {
		if st := send(); st != 200 {
			t.Fatalf("with the bad origin ejected: %d", st)
		}
	}
	if n := bad.hits.Load(); n != 3 {
		t.Fatalf("the ejected origin got %d requests, want none after the 3rd", n)
	}
	o.probe(u)
	if u.health.up.Load() {
		t.Fatal("a failing probe brought the origin back")
	}

	bad.broken.Store(false)
	backIn := waitFor(t, "the probe to bring the origin back", func() bool { o.probe(u); return u.health.up.Load() })
	if u.returns.Get() != 1 {
		t.Fatalf("returns: %d, want 1", u.returns.Get())
	}
	for bad.hits.Load() == 3 {
		send()
	}

	bad.broken.Store(true)
	for u.health.up.Load() {
		send()
	}
	u.health.mu.Lock()
	out := u.health.until.Sub(u.health.ejectedAt)
	u.health.mu.Unlock()
	if out != 2*cfg.OriginDownFor {
		t.Fatalf("second ejection soon after returning lasts %s, want %s", out, 2*cfg.OriginDownFor)
	}
	t.Logf("back through the probe %s after the origin recovered (down time %s)", backIn.Round(time.Millisecond), cfg.OriginDownFor)
}

// With every origin ejected, requests are still sent (to the origin that
// failed least recently), not refused without trying.
func TestEveryOriginEjectedIsStillTried(t *testing.T) {
	a, b := startFlakyOrigin(t), startFlakyOrigin(t)
	a.broken.Store(true)
	b.broken.Store(true)
	cfg := testConfig(a.url, b.url)
	cfg.OriginProbeInterval = time.Hour
	p := startProxy(t, cfg)
	run := runID()
	for p.origins.ups[0].health.up.Load() || p.origins.ups[1].health.up.Load() {
		get(t, p, "/allout/"+run)
	}
	a.broken.Store(false)
	b.broken.Store(false)
	before := a.hits.Load() + b.hits.Load()
	if r := get(t, p, "/allout/"+run+"/after"); r.StatusCode() != 200 {
		t.Fatalf("read with every origin ejected, both healthy again: %d %s", r.StatusCode(), r.Body())
	}
	if a.hits.Load()+b.hits.Load() == before {
		t.Fatal("no origin was tried")
	}
}

// Neither a memcached node nor an origin is usable: the instance can answer
// nothing, so /readyz fails.
func TestNotReadyWhenNeitherMemcachedNorAnyOriginIsUsable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nothing := ln.Addr().String()
	ln.Close()
	cfg := healthConfig("http://" + nothing)
	cfg.Memcached = []string{nothing}
	p := startProxy(t, cfg)
	run := runID()
	waitFor(t, "/readyz to fail", func() bool {
		get(t, p, "/nothing/"+run) // memcached failures mark its node down
		st, r, _ := readyz(t, p)
		if st == 503 && r.Status != "unavailable" {
			t.Fatalf("/readyz 503 with status %q", r.Status)
		}
		return st == 503
	})
	_, r, _ := readyz(t, p)
	if len(r.Degraded) != 2 {
		t.Fatalf("degraded: %+v, want the memcached node and the origin", r.Degraded)
	}
}
