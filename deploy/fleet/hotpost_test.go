package fleet

// TestHotPost is the fleet-scale check of the read-after-write guarantee
// (proxy/PROTOCOL.md "Measured on live processes"; issue 17): N proxies with
// leases on, all reading one hot post, 20 writes/s to it through rotating
// proxies, memcached flush_all every 2 s. It runs only when asked:
//
//	go test -count=1 -timeout 0 -run '^TestHotPost$' ./deploy/fleet/ -v -hotpost 1,8,24
//
// (make hotpost HOTPOST=1,8,24). It fails on any stale read.

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"edgecache/deploy/envconfig"
	"edgecache/deploy/localstack"
	"edgecache/origin"
	"edgecache/proxy"
	"edgecache/proxy/invalidator"

	"github.com/VictoriaMetrics/metrics"
	"go.uber.org/zap"
)

var (
	hotpostProxies = flag.String("hotpost", "", "run TestHotPost with these numbers of proxies, e.g. 1,8,24")
	hotpostFor     = flag.Duration("hotpost.for", 30*time.Second, "TestHotPost: how long each load phase runs")
	hotpostReads   = flag.Int("hotpost.reads", 4000, "TestHotPost: reads per second, from 16 readers that ask the proxies in turn")
)

const (
	hotpostWritesPerSec = 20
	hotpostFlushEvery   = 2 * time.Second
	hotpostHost         = "hotpost.test" // one cache key, whichever proxy is asked
)

func TestHotPost(t *testing.T) {
	if *hotpostProxies == "" {
		t.Skip("run with -hotpost 1,8,24 (make hotpost)")
	}
	var counts []int
	for _, s := range strings.Split(*hotpostProxies, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			t.Fatalf("-hotpost: want a list of proxy counts, got %q", *hotpostProxies)
		}
		counts = append(counts, n)
	}
	h := startHotpostStack(t)
	var rows []string
	for _, n := range counts {
		rows = append(rows, h.run(t, n)...)
	}
	fmt.Printf("\n| proxies | flush_all every 2 s | reads | stale (Cache-Status) | stale past pending bound | writes | pending | write p50 / p99 | registry to memcached, idle | registry renewals/s | young-copy waits | holders revoked |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n%s\n",
		strings.Join(rows, "\n"))
}

// hotpostStack is what every proxy count shares: MariaDB, three memcached
// nodes, an origin and the durable invalidator.
type hotpostStack struct {
	dir       string
	mc        []*localstack.Memcached
	pool      []string
	originURL string
	proxyCfg  proxy.Config
	bound     time.Duration // pending's bound (PROTOCOL.md)
	log       *zap.Logger
	invSet    *metrics.Set // the invalidator's metrics
}

func startHotpostStack(t *testing.T) *hotpostStack {
	ctx := context.Background()
	h := &hotpostStack{dir: t.TempDir()}
	var err error
	zc := zap.NewProductionConfig()
	zc.Level = zap.NewAtomicLevelAt(zap.WarnLevel)
	zc.OutputPaths = []string{filepath.Join(h.dir, "services.log")}
	if h.log, err = zc.Build(); err != nil {
		t.Fatal(err)
	}
	t.Logf("services' warnings: %s", filepath.Join(h.dir, "services.log"))
	db, err := localstack.StartMariaDB(ctx, localstack.MariaDBOptions{Dir: filepath.Join(h.dir, "primary"), ServerID: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Stop)
	for i := range 3 {
		m, err := localstack.StartMemcachedIn(ctx, filepath.Join(h.dir, fmt.Sprintf("memcached-%d", i)), 64)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Stop)
		h.mc, h.pool = append(h.mc, m), append(h.pool, m.Addr)
	}
	ocfg, err := envconfig.Load[origin.Config]()
	if err != nil {
		t.Fatal(err)
	}
	ocfg.Listen, ocfg.MySQLDSN, ocfg.AccessLog = "127.0.0.1:0", db.DSN("edgecache"), "off"
	o, err := origin.Start(ocfg, h.log.Named("origin"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Shutdown(context.Background()) })
	h.originURL = "http://" + o.Addr()
	if h.proxyCfg, err = envconfig.Load[proxy.Config](); err != nil {
		t.Fatal(err)
	}
	h.proxyCfg.PeerSecret = "hotpost-secret"
	h.proxyCfg.AccessLog = "off"
	icfg, err := envconfig.Load[invalidator.Config]()
	if err != nil {
		t.Fatal(err)
	}
	icfg.MySQLDSN, icfg.Memcached, icfg.PeerSecret = db.DSN("edgecache"), h.pool, h.proxyCfg.PeerSecret
	h.invSet = metrics.NewSet()
	inv, err := invalidator.StartBackground(icfg, h.log.Named("invalidator"), h.invSet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(inv.Stop)
	h.bound = icfg.PollInterval + icfg.PeerTimeout + icfg.LeaseDuration
	return h
}

// startProxies starts n proxies, with leases on or off.
func (h *hotpostStack) startProxies(t *testing.T, n int, leases bool) []*proxy.Proxy {
	cfg := h.proxyCfg
	cfg.Listen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Origins, cfg.Memcached = []string{h.originURL}, h.pool
	if !leases {
		cfg.PeerSecret = ""
	}
	var ps []*proxy.Proxy
	for i := range n {
		p, err := proxy.Start(cfg, h.log.Named(fmt.Sprintf("proxy-%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
		// Renewals every D/3 from each start: spread them over that
		// period, as in a fleet whose proxies started at different
		// times (started together, they would all renew within a few
		// milliseconds of each other and hide the window between the
		// first renewal after a flush_all and the last).
		time.Sleep(cfg.LeaseDuration / 3 / time.Duration(n))
	}
	return ps
}

func stopProxies(ps []*proxy.Proxy) {
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			p.Shutdown(ctx)
		})
	}
	wg.Wait()
}

// run measures n proxies: the registry's traffic at rest (leases on minus
// leases off), then the load without and with flush_all. It returns the
// table's rows.
func (h *hotpostStack) run(t *testing.T, n int) []string {
	const idle = 10 * time.Second
	off := h.startProxies(t, n, false)
	time.Sleep(2 * time.Second) // connections made
	base := h.memcachedDelta(t, idle)
	stopProxies(off)

	ps := h.startProxies(t, n, true)
	defer stopProxies(ps)
	time.Sleep(3 * time.Second) // every proxy registered and holding its lease
	on := h.memcachedDelta(t, idle)
	size := h.registrySize(t)
	regIn := (on["bytes_read"] - base["bytes_read"]) / idle.Seconds()
	regOut := (on["bytes_written"] - base["bytes_written"]) / idle.Seconds()
	conflicts := on["cas_badval"] / max(1, on["cas_hits"]+on["cas_badval"])
	t.Logf("%d proxies at rest: registry %d B per copy; memcached took %.0f B/s and sent %.0f B/s more with leases than without; %.0f CAS/s, %.1f%% conflicts",
		n, size, regIn, regOut, (on["cas_hits"]+on["cas_badval"])/idle.Seconds(), 100*conflicts)
	registry := fmt.Sprintf("%s/s in, %s/s out (%d B a copy, %.1f%% CAS conflicts)", kb(regIn), kb(regOut), size, 100*conflicts)

	post := newHotpost(t, h, ps)
	var rows []string
	for _, flush := range []bool{false, true} {
		r := post.load(t, flush)
		rows = append(rows, fmt.Sprintf("| %d | %s | %d | %s | %d | %d | %d | %.1f / %.1f ms | %s | %.1f | %d | %d |",
			n, map[bool]string{false: "no", true: "yes"}[flush], r.reads, r.staleText(), r.stalePending,
			r.writes, r.pending, ms(pct(r.writeLat, 0.50)), ms(pct(r.writeLat, 0.99)), registry, r.renewalsPerSec, r.youngWaits, r.revoked))
		for _, e := range r.examples {
			t.Logf("%d proxies, flush %v: %s", n, flush, e)
		}
		if r.stale > 0 || r.stalePending > 0 {
			t.Errorf("%d proxies, flush_all %v: %d stale reads after a non-pending write, %d past pending's bound", n, flush, r.stale, r.stalePending)
		}
		if r.errors > 0 {
			t.Logf("%d proxies, flush %v: %d failed requests (%s)", n, flush, r.errors, strings.Join(r.errorExamples, "; "))
		}
	}
	return rows
}

// memcachedDelta is how much each of memcached's counters moved over d,
// summed over the nodes: bytes_read is what clients wrote into memcached,
// bytes_written what they read.
func (h *hotpostStack) memcachedDelta(t *testing.T, d time.Duration) map[string]float64 {
	before := h.memcachedStats(t)
	time.Sleep(d)
	after := h.memcachedStats(t)
	delta := map[string]float64{}
	for i := range after {
		for k, v := range after[i] {
			delta[k] += v - before[i][k]
		}
	}
	return delta
}

func (h *hotpostStack) memcachedStats(t *testing.T) []map[string]float64 {
	var all []map[string]float64
	for _, addr := range h.pool {
		lines := memcachedCommand(t, addr, "stats", "END")
		s := map[string]float64{}
		for _, l := range lines {
			if f := strings.Fields(l); len(f) == 3 && f[0] == "STAT" {
				s[f[1]], _ = strconv.ParseFloat(f[2], 64)
			}
		}
		all = append(all, s)
	}
	return all
}

// registrySize is the size of the lease registry's value on the first node.
func (h *hotpostStack) registrySize(t *testing.T) int {
	lines := memcachedCommand(t, h.pool[0], "get r:leases", "END")
	if len(lines) == 0 {
		return 0
	}
	f := strings.Fields(lines[0]) // VALUE key flags bytes
	n, _ := strconv.Atoi(f[len(f)-1])
	return n
}

// memcachedCommand sends one text-protocol command and returns the lines
// of its answer up to end.
func memcachedCommand(t *testing.T, addr, cmd, end string) []string {
	lines, err := sendMemcached(addr, cmd, end)
	if err != nil {
		t.Fatal(err)
	}
	return lines
}

func sendMemcached(addr, cmd, end string) ([]string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	fmt.Fprintf(c, "%s\r\n", cmd)
	var lines []string
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		if sc.Text() == end {
			return lines, nil
		}
		lines = append(lines, sc.Text())
	}
	return nil, fmt.Errorf("memcached %s %q: no %q in the answer (%v)", addr, cmd, end, sc.Err())
}

// hotpost is the one post every proxy reads, and what was acknowledged.
type hotpost struct {
	h      *hotpostStack
	ps     []*proxy.Proxy
	client *http.Client
	path   string
	token  string
	ackLog
}

func newHotpost(t *testing.T, h *hotpostStack, ps []*proxy.Proxy) *hotpost {
	p := &hotpost{h: h, ps: ps, client: &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	var u struct {
		ID    int64  `json:"id"`
		Token string `json:"token"`
	}
	p.call(t, "POST", "/v1/users", "", fmt.Sprintf(`{"name":"hot","email":"hot-%d@example.com"}`, time.Now().UnixNano()), &u)
	var post struct {
		ID      int64 `json:"id"`
		Version int64 `json:"version"`
	}
	p.token = u.Token
	p.call(t, "POST", fmt.Sprintf("/v1/users/%d/posts", u.ID), u.Token, `{"body":"hot post"}`, &post)
	p.path = fmt.Sprintf("/v1/posts/%d", post.ID)
	p.acked.Store(post.Version)
	return p
}

func (p *hotpost) call(t *testing.T, method, path, token, body string, v any) {
	st, _, b, _ := p.do(p.ps[0], method, path, token, body)
	if st/100 != 2 || json.Unmarshal(b, v) != nil {
		t.Fatalf("%s %s: %d %s", method, path, st, b)
	}
}

func (p *hotpost) do(px *proxy.Proxy, method, path, token, body string) (int, http.Header, []byte, time.Duration) {
	req, _ := http.NewRequest(method, "http://"+px.Addr()+path, strings.NewReader(body))
	req.Host = hotpostHost
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	start := time.Now()
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, nil, []byte(err.Error()), time.Since(start)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, time.Since(start)
}

type hotpostResult struct {
	mu                          sync.Mutex
	reads, writes, pending      int
	stale, stalePending, errors int
	staleBy                     map[string]int // by Cache-Status
	writeLat                    []time.Duration
	examples, errorExamples     []string
	renewalsPerSec              float64
	youngWaits                  int
	revoked                     int // holders that did not acknowledge a mover in time
}

func (r *hotpostResult) staleText() string {
	if r.stale == 0 {
		return "0"
	}
	var parts []string
	for k, v := range r.staleBy {
		parts = append(parts, fmt.Sprintf("%d %s", v, k))
	}
	slices.Sort(parts)
	return fmt.Sprintf("%d (%s)", r.stale, strings.Join(parts, ", "))
}

// load runs readers, the writer and (if flush) the flusher for
// -hotpost.for.
func (p *hotpost) load(t *testing.T, flush bool) *hotpostResult {
	r := &hotpostResult{staleBy: map[string]int{}}
	c0 := p.leaseCounters(t)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), *hotpostFor)
	defer cancel()
	var lastFlush atomic.Int64 // unix nanos of the last flush_all sent
	var next atomic.Uint64
	var wg sync.WaitGroup
	// One read allowed per token; the ticker hands out a millisecond's worth.
	tokens := make(chan struct{}, *hotpostReads)
	wg.Go(func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for sent := 0; ; {
			select {
			case <-ctx.Done():
				close(tokens)
				return
			case <-tick.C:
				for due := int(time.Since(start).Seconds() * float64(*hotpostReads)); sent < due; sent++ {
					select {
					case tokens <- struct{}{}:
					default: // a second behind: skipped (the table shows the reads made)
					}
				}
			}
		}
	})
	for range 16 {
		wg.Go(func() {
			for range tokens {
				p.read(r, p.ps[next.Add(1)%uint64(len(p.ps))], &lastFlush)
			}
		})
	}
	wg.Go(func() {
		tick := time.NewTicker(time.Second / hotpostWritesPerSec)
		defer tick.Stop()
		var writes sync.WaitGroup
		defer writes.Wait()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				writes.Go(func() { p.write(r, p.ps[i%len(p.ps)]) })
			}
		}
	})
	if flush {
		wg.Go(func() {
			tick := time.NewTicker(hotpostFlushEvery)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					lastFlush.Store(time.Now().UnixNano())
					for _, addr := range p.h.pool {
						if _, err := sendMemcached(addr, "flush_all", "OK"); err != nil {
							t.Error(err)
						}
					}
				}
			}
		})
	}
	wg.Wait()
	c1 := p.leaseCounters(t)
	r.renewalsPerSec = (c1["edgecache_proxy_lease_renewals_total"] - c0["edgecache_proxy_lease_renewals_total"]) / hotpostFor.Seconds()
	r.youngWaits = int(c1["young"] - c0["young"])
	r.revoked = int(c1["revoked"] - c0["revoked"])
	return r
}

func (p *hotpost) read(r *hotpostResult, px *proxy.Proxy, lastFlush *atomic.Int64) {
	start := time.Now()
	want, fromPending := p.want(start, p.h.bound)
	st, hd, b, _ := p.do(px, "GET", p.path, "", "")
	var got struct{ Version int64 }
	ok := st == http.StatusOK && json.Unmarshal(b, &got) == nil
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reads++
	if !ok {
		r.failed(st, b)
		return
	}
	if got.Version >= want {
		return
	}
	cs := hd.Get("Cache-Status")
	if fromPending && got.Version >= p.acked.Load() {
		r.stalePending++
	} else {
		r.stale++
		r.staleBy[cs]++
	}
	if len(r.examples) < 10 {
		r.examples = append(r.examples, fmt.Sprintf("proxy %s: version %d, want %d (pending: %v), %s after the last flush_all, Cache-Status %q",
			px.Addr(), got.Version, want, fromPending, start.Sub(time.Unix(0, lastFlush.Load())).Round(time.Millisecond), cs))
	}
}

func (p *hotpost) write(r *hotpostResult, px *proxy.Proxy) {
	st, hd, b, took := p.do(px, "PUT", p.path, p.token, fmt.Sprintf(`{"body":"hot edit %d"}`, time.Now().UnixNano()))
	var v struct{ Version int64 }
	ok := st == http.StatusOK && json.Unmarshal(b, &v) == nil
	r.mu.Lock()
	r.writes++
	if !ok {
		r.failed(st, b)
		r.mu.Unlock()
		return
	}
	r.writeLat = append(r.writeLat, took)
	pending := hd.Get("Edgecache-Invalidation") == "pending"
	if pending {
		r.pending++
	}
	r.mu.Unlock()
	p.record(v.Version, pending)
}

// failed counts a failed request; r.mu is held.
func (r *hotpostResult) failed(status int, body []byte) {
	r.errors++
	if len(r.errorExamples) < 5 {
		r.errorExamples = append(r.errorExamples, fmt.Sprintf("%d %.200s", status, body))
	}
}

// leaseCounters sums the lease counters of every proxy and the
// invalidator: renewals, young-copy waits and revocations by movers (the
// last two over every mover).
func (p *hotpost) leaseCounters(t *testing.T) map[string]float64 {
	var text strings.Builder
	for _, px := range p.ps {
		resp, err := p.client.Get("http://" + px.AdminAddr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(&text, resp.Body)
		resp.Body.Close()
	}
	p.h.invSet.WritePrometheus(&text)
	c := map[string]float64{}
	for _, l := range strings.Split(text.String(), "\n") {
		f := strings.Fields(l)
		if len(f) != 2 {
			continue
		}
		v, _ := strconv.ParseFloat(f[1], 64)
		switch name := f[0]; {
		case name == "edgecache_proxy_lease_renewals_total":
			c[name] += v
		case strings.HasSuffix(name, "_lease_registry_young_waits_total"):
			c["young"] += v
		case strings.HasSuffix(name, `_lease_notifications_total{result="revoked"}`):
			c["revoked"] += v
		}
	}
	return c
}

func pct(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(q*float64(len(s)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func kb(b float64) string {
	if b >= 1000 {
		return fmt.Sprintf("%.1f KB", b/1000)
	}
	return fmt.Sprintf("%.0f B", b)
}
