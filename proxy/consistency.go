package proxy

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"edgecache/cachepolicy"
)

// Sampled consistency checks of hits, after Meta's Polaris: the guarantee
// measured in production rather than only argued. A fraction of hits
// (PROXY_CONSISTENCY_SAMPLE) is checked again, off the request path,
// against the primary database, at most PROXY_CONSISTENCY_MAX_RATE checks a
// second per proxy.
//
// # What is compared
//
// A stored entry does not keep its groups' origin versions (it keeps their
// memcached keys with the (incarnation, epoch) it was filled under), but
// it keeps the response's strong ETag, which names one state of the
// resource: the origin's ETag is the version of the row-group the answer
// was built from (origin/response.go), and versions never move backwards.
// A check asks the origin for the same URL with Edgecache-Fresh: 1 (read
// from the primary, never a replica; the proxy stores nothing of it) and
// If-None-Match: the served ETag. This is the origin's existing fresh path:
// no endpoint or contract of its own, one primary-key query, and a 304
// without a body when nothing changed. An entry without a strong ETag
// cannot be compared and is not checked ("skipped").
//
// # When a difference is a violation
//
// The guarantee is about writes acknowledged before a hit, and a check
// runs after the hit: seeing a newer state on the primary proves nothing
// by itself, since the write may have been in flight when the hit was
// served (committed, not yet answered: its writer moves the groups before
// the answer leaves, and with leases an L1 copy is legitimately served
// until the holder is told). Commit times are not known to the proxy. So,
// after Polaris, a difference is judged again once the pending bound has
// passed (PROXY_CONSISTENCY_BOUND, at least the longest time from a commit
// to its invalidation everywhere: the synchronous path with its retries
// and lease waits, and the durable invalidator's bound, 10–50 ms, that
// covers writes the edge never sees):
//
//  1. At T a hit serves the entry with ETag S. The check's first read of
//     the primary ends at T1 ≥ T. A 304 (or the same ETag) means the
//     primary still had S at a moment after T: nothing newer was committed
//     before the hit. Result ok.
//  2. Otherwise the primary had another state P1 (or none: 404), committed
//     at some c ≤ T1. At T2 = T1 + bound the check asks the cache what a
//     hit would serve now (the read path's own lookup: L1 under the lease,
//     else memcached). If it would still serve S, a hit at T2 serves a
//     state older than one committed at least the bound before: stale.
//     If it would serve anything else, or nothing, the change reached the
//     cache within the bound: ok.
//
// Sound, no false alarm for a write in flight: stale is counted only when
// S is still served a whole bound after the newer state was already on
// the primary; every write, acknowledged or in flight, from the edge or
// typed into the database, is invalidated within the bound of its commit
// when the system works. (It assumes ETags are not reused for another
// state, as versions are not; an origin whose ETag could return to an
// older value, A→B→A, could see a false alarm.)
//
// Sensitivity: a stale result proves a violation at T2 (a hit then would
// have been stale), not that the sampled hit itself was one. Staleness
// that lasts beyond T2, such as a lost invalidation, is always found once
// a hit of that key is sampled; staleness that ends before T2 (the entry
// expired, was evicted or refilled, another write moved the group) is
// missed, and so is staleness within the bound of its commit, by design.
// A key served stale n times is found after about 1/sample of them (1,000
// by default) when the budget allows. The ratio stale/checks estimates the
// share of hits that serve a state older than the bound.
//
// Cost: a hit that is not sampled draws one random number (no lock, no
// allocation); a sampled one takes a token, copies its request and starts
// a goroutine. Each check is one primary-key query and a 304 or a small
// answer; a difference costs one cache lookup more. The token bucket keeps
// a sample rate set too high from multiplying the origin's or the
// primary's load: over budget, a sampled hit is counted "skipped".
type consistency struct {
	sample float64
	bound  time.Duration
	budget tokenBucket
	counts map[string]*metrics.Counter // by result
	recent window
	// afterFirst, in tests, runs after a first read found a difference,
	// before the wait: tests order a write around it.
	afterFirst atomic.Pointer[func(primary string)]
}

// Check results, the label of edgecache_proxy_consistency_checks_total.
const (
	checkOK      = "ok"      // the hit served the primary's state, or a difference reached the cache within the bound
	checkStale   = "stale"   // the cache still served the older state a whole bound after the newer one was on the primary
	checkError   = "error"   // the origin could not answer the check
	checkSkipped = "skipped" // over budget, or the entry has no strong ETag to compare
)

// consistencyWindow is how far back /consistency counts.
const consistencyWindow = 10 * time.Minute

func newConsistency(cfg Config, set *metrics.Set) *consistency {
	if cfg.ConsistencySample <= 0 {
		return nil
	}
	bound := cfg.ConsistencyBound
	if cfg.PeerSecret != "" {
		// A lease holder serves its L1 copy until a writer tells it, or
		// until the lease that the writer waits out has ended: a shorter
		// wait would count such writes in flight as stale.
		bound = max(bound, cfg.LeaseDuration+cfg.PeerTimeout)
	}
	c := &consistency{sample: cfg.ConsistencySample, bound: bound,
		budget: newTokenBucket(cfg.ConsistencyMaxRate), counts: map[string]*metrics.Counter{}}
	for _, r := range []string{checkOK, checkStale, checkError, checkSkipped} {
		c.counts[r] = set.NewCounter(`edgecache_proxy_consistency_checks_total{result="` + r + `"}`)
	}
	return c
}

func (c *consistency) count(result string, now time.Time) {
	c.counts[result].Inc()
	c.recent.add(result, now)
}

// sampleHit decides whether the hit t, served at t.now with this age,
// is checked; a hit that is not sampled costs one random draw.
func (p *Proxy) sampleHit(t *txn, age int64) {
	c := p.consistency
	if c == nil || rand.Float64() >= c.sample {
		return
	}
	p.startCheck(c, t, age)
}

// hitCheck is one sampled hit: what it served, when, and the requests
// that check it (the origin's, and the client's header for the lookup).
type hitCheck struct {
	primary string
	etag    []byte // the served entry's strong ETag
	served  time.Time
	age     int64
	req     *fasthttp.Request // conditional GET from the primary
	header  fasthttp.RequestHeader
}

func (p *Proxy) startCheck(c *consistency, t *txn, age int64) {
	etag := t.ent.Meta.ETag
	if len(etag) == 0 || bytes.HasPrefix(etag, []byte("W/")) || !c.budget.take(t.now) {
		c.count(checkSkipped, t.now)
		return
	}
	select {
	case <-p.stop:
		return
	default:
	}
	h := &hitCheck{primary: string(t.primary), etag: bytes.Clone(etag), served: t.now, age: age, req: new(fasthttp.Request)}
	p.originRequest(t.ctx, h.req, true)
	h.req.Header.SetMethod(fasthttp.MethodGet)
	h.req.Header.SetBytesV("If-None-Match", h.etag)
	h.req.Header.Set(hdrFresh, "1")
	t.ctx.Request.Header.CopyTo(&h.header)
	p.bg.Add(1)
	go func() {
		defer p.bg.Done()
		defer func() {
			if r := recover(); r != nil { // a check must not take the process down
				p.m.panics.Inc()
				p.log.Error("panic in consistency check", zap.Any("panic", r), zap.String("key", h.primary), zap.ByteString("stack", debug.Stack()))
			}
		}()
		p.check(c, h)
	}()
}

// check judges one sampled hit (see consistency).
func (p *Proxy) check(c *consistency, h *hitCheck) {
	resp := new(fasthttp.Response)
	err := p.origins.do(h.req, resp, true, time.Now().Add(p.cfg.OriginReadTimeout))
	firstRead := time.Now()
	switch {
	case err != nil || resp.StatusCode() >= 500 || resp.StatusCode() == fasthttp.StatusTooManyRequests:
		p.log.Debug("consistency check failed", zap.String("key", h.primary), zap.Int("status", resp.StatusCode()), zap.Error(err))
		c.count(checkError, firstRead)
		return
	case resp.StatusCode() == fasthttp.StatusNotModified || bytes.Equal(resp.Header.Peek("ETag"), h.etag):
		c.count(checkOK, firstRead)
		return
	}
	if f := c.afterFirst.Load(); f != nil {
		(*f)(h.primary)
	}
	wait := time.NewTimer(time.Until(firstRead.Add(c.bound)))
	defer wait.Stop()
	select {
	case <-wait.C:
	case <-p.stop:
		return // no verdict
	}
	now := time.Now()
	if !p.cacheServes(h, now) {
		c.count(checkOK, now)
		return
	}
	c.count(checkStale, now)
	p.log.Warn("consistency check: stale hit (a newer state was on the primary for the whole pending bound while the cache kept serving the older one)",
		zap.String("key", h.primary), zap.ByteString("served_etag", h.etag),
		zap.ByteString("primary_etag", resp.Header.Peek("ETag")), zap.Int("primary_status", resp.StatusCode()),
		zap.ByteString("primary_groups", resp.Header.Peek(hdrGroups)),
		zap.Int64("entry_age_seconds", h.age), zap.Time("served_at", h.served),
		zap.Duration("newer_state_committed_at_least", now.Sub(firstRead)))
}

// cacheServes reports whether a hit of h's request at now would serve the
// entry h saw: the read path's own lookup (L1 under the lease, else
// memcached), then the caching rules for a request without directives.
func (p *Proxy) cacheServes(h *hitCheck, now time.Time) bool {
	ctx := new(fasthttp.RequestCtx)
	h.header.CopyTo(&ctx.Request.Header)
	t := txn{ctx: ctx, now: now, primary: []byte(h.primary),
		creq: cachepolicy.NewRequest([]byte(fasthttp.MethodGet), nil, nil, false)}
	p.lookup(&t)
	if !t.hasEnt {
		return false
	}
	switch cachepolicy.Decide(&t.creq, &t.ent.Meta, now).Action {
	case cachepolicy.Serve, cachepolicy.ServeStale:
		return bytes.Equal(t.ent.Meta.ETag, h.etag)
	}
	return false
}

// tokenBucket allows rate events a second on average, in bursts of at most
// a second's worth (and at least one).
type tokenBucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newTokenBucket(rate float64) tokenBucket {
	burst := max(rate, 1)
	return tokenBucket{rate: rate, burst: burst, tokens: burst}
}

func (b *tokenBucket) take(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.After(b.last) { // requests' times reach here out of order
		if !b.last.IsZero() {
			b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		}
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// window counts results over the last consistencyWindow, in buckets of
// windowStep.
type window struct {
	mu      sync.Mutex
	buckets [windowBuckets]windowBucket
}

const (
	windowStep    = 10 * time.Second
	windowBuckets = int(consistencyWindow / windowStep)
)

type windowBucket struct {
	step   int64 // unix time / windowStep of the counts
	counts map[string]int64
}

func (w *window) add(result string, now time.Time) {
	step := now.UnixNano() / int64(windowStep)
	w.mu.Lock()
	defer w.mu.Unlock()
	b := &w.buckets[step%int64(windowBuckets)]
	if b.step != step || b.counts == nil {
		b.step, b.counts = step, map[string]int64{}
	}
	b.counts[result]++
}

// sum is the counts of the buckets within the window ending at now.
func (w *window) sum(now time.Time) map[string]int64 {
	step := now.UnixNano() / int64(windowStep)
	out := map[string]int64{checkOK: 0, checkStale: 0, checkError: 0, checkSkipped: 0}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, b := range w.buckets {
		if b.counts != nil && step-b.step < int64(windowBuckets) && b.step <= step {
			for r, n := range b.counts {
				out[r] += n
			}
		}
	}
	return out
}

// consistencyReport is GET /consistency on the admin listener: the checks
// of the last ten minutes and what they say in nines.
type consistencyReport struct {
	Enabled       bool    `json:"enabled"`
	WindowSeconds float64 `json:"window_seconds"`
	Sample        float64 `json:"sample"`
	MaxRate       float64 `json:"max_rate"`
	BoundSeconds  float64 `json:"bound_seconds"`
	OK            int64   `json:"ok"`
	Stale         int64   `json:"stale"`
	Error         int64   `json:"error"`
	Skipped       int64   `json:"skipped"`
	// Nines is -log10(stale / (ok + stale)); with no stale check, log10(ok)
	// and NinesAtLeast: fewer than one in ok is all the sample can say.
	// Null before any check was judged.
	Nines        *float64 `json:"nines"`
	NinesAtLeast bool     `json:"nines_at_least"`
}

// nines is the consistency of judged checks as a count of nines:
// -log10(stale/judged), or, with none stale, log10(judged) as a lower
// bound (atLeast). ok is false when nothing was judged.
func nines(okCount, stale int64) (nines float64, atLeast, ok bool) {
	judged := okCount + stale
	switch {
	case judged == 0:
		return 0, false, false
	case stale == 0:
		return math.Log10(float64(judged)), true, true
	}
	return -math.Log10(float64(stale) / float64(judged)), false, true
}

func (p *Proxy) serveConsistency(ctx *fasthttp.RequestCtx) {
	r := consistencyReport{WindowSeconds: consistencyWindow.Seconds(), Sample: p.cfg.ConsistencySample,
		MaxRate: p.cfg.ConsistencyMaxRate, BoundSeconds: p.cfg.ConsistencyBound.Seconds()}
	if c := p.consistency; c != nil {
		r.Enabled, r.BoundSeconds = true, c.bound.Seconds()
		s := c.recent.sum(time.Now())
		r.OK, r.Stale, r.Error, r.Skipped = s[checkOK], s[checkStale], s[checkError], s[checkSkipped]
		if n, atLeast, ok := nines(r.OK, r.Stale); ok {
			r.Nines, r.NinesAtLeast = &n, atLeast
		}
	}
	b, _ := json.Marshal(r)
	ctx.SetContentType("application/json")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.SetBody(append(b, '\n'))
}
