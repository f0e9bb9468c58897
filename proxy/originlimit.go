package proxy

import (
	"errors"
	"math"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// An adaptive limit on the requests this proxy has in flight to its
// origins, after Netflix's Gradient2 (concurrency-limits) and Envoy's
// adaptive concurrency filter: when the origins' latency rises above its
// long-term baseline, requests are queueing there, and the limit shrinks
// in proportion (from what is in flight, when that is less) once it has
// for three windows; while latency stays at the baseline, it grows by its
// square root. Slow answers with no more than the floor in flight leave it
// alone: those requests are not the queue. A request beyond the limit is
// not sent: a read serves its stale entry where it has one (fetchFailed),
// else it gets a 503 origin_overloaded with Retry-After at once, instead
// of adding to the queue that slows every other request down.
//
// Writes may go a tenth over the limit (at least one request): during a
// flood of misses the limit is full of reads, and a write is what no
// stale entry can stand in for and what a user waits on. Beyond that they
// get the 503 too; how many writes one client may send is the per-client
// budget's to bound (PROXY_CLIENT_WRITE_RATE).

// errOriginOverloaded is the failure of a request refused by the limit:
// nothing of it was sent.
var errOriginOverloaded = &originError{fasthttp.StatusServiceUnavailable, "origin_overloaded",
	errors.New("origin concurrency limit reached")}

// Gradient2's parameters, at Netflix's defaults where it has them.
const (
	limitWindow    = 100 * time.Millisecond // latency is averaged over at least this long
	limitTolerance = 1.5                    // latency up to 1.5 × the baseline is not queueing
	limitSmoothing = 0.2                    // a window moves the limit a fifth of the way
	limitPersist   = 3                      // windows in a row of queueing before the limit shrinks
	baselineWeight = 0.01                   // the baseline follows the windows over about 100 of them (10 s)
)

type concurrencyLimit struct {
	mu       sync.Mutex
	limit    float64
	min, max float64
	inflight int

	windowStart time.Time
	windowSum   time.Duration
	windowN     int
	baseline    float64 // long-term average latency, seconds; 0: none yet
	queueing    int     // windows in a row whose latency showed queueing
}

// newConcurrencyLimit starts at max: the limit only comes down when the
// origins' latency shows queueing.
func newConcurrencyLimit(min, max int) *concurrencyLimit {
	return &concurrencyLimit{limit: float64(max), min: float64(min), max: float64(max)}
}

// acquire takes a slot for a read, or for a write (with the writes'
// headroom), or reports false when the limit is reached.
func (c *concurrencyLimit) acquire(write bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	limit := int(c.limit)
	if write {
		limit += max(1, limit/10)
	}
	if c.inflight >= limit {
		return false
	}
	c.inflight++
	return true
}

// reached says whether acquire would refuse a read now.
func (c *concurrencyLimit) reached() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inflight >= int(c.limit)
}

// release gives the slot back; latency is the request's, sampled when
// sample is set: for answers only. An overloaded origin still answers,
// slowly; a hung or unreachable one is the health checks' to eject
// (originhealth.go), and its timeouts must not shrink the limit that the
// healthy origins share.
func (c *concurrencyLimit) release(now time.Time, latency time.Duration, sample bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inflight--
	if !sample {
		return
	}
	if c.windowN == 0 {
		c.windowStart = now
	}
	c.windowSum += latency
	c.windowN++
	if now.Sub(c.windowStart) < limitWindow {
		return
	}
	c.update((c.windowSum / time.Duration(c.windowN)).Seconds())
	c.windowSum, c.windowN = 0, 0
}

// update moves the limit by one window's average latency.
func (c *concurrencyLimit) update(latency float64) {
	if c.baseline == 0 {
		c.baseline = latency
	}
	c.baseline += (latency - c.baseline) * baselineWeight
	if c.baseline > 2*latency {
		// The origins got faster than the baseline remembers (a cold
		// start, a recovery): catch up faster.
		c.baseline = (c.baseline + latency) / 2
	}
	inflight := float64(c.inflight)
	c.queueing++
	if latency <= limitTolerance*c.baseline {
		c.queueing = 0
	}
	switch {
	case c.queueing > 0 && (c.queueing < limitPersist || inflight <= c.min):
		// Not yet a queue, or too few requests in flight to be one (the
		// floor lets them through anyway): slow answers that come from
		// elsewhere, a stall of a shared machine, an origin busy with
		// other work. A limit shrunk for them only refuses the next
		// burst: a 500/s mix on a busy two-core machine got 503s at 130
		// and at 290 origin requests/s.
		return
	case c.queueing > 0 && inflight < c.limit/2:
		// A queue at the origins while the limit is far from reached: it
		// starts at its ceiling, which the clients may never fill (a flood
		// of misses over 256 connections kept 85 in flight while the
		// origin's latency rose twentyfold). Cut from what is in flight,
		// or the limit would only come down to where it is of no use.
		c.limit = inflight
	}
	// A fifth of the way to the gradient's limit, both ways (Netflix's
	// smoothing): the queue shrinks it by at most a tenth a window.
	// Growing while not in use is bounded by max, and lets the limit
	// recover once a flood is over.
	gradient := max(0.5, min(1, limitTolerance*c.baseline/latency))
	next := c.limit*(1-limitSmoothing) + (c.limit*gradient+math.Sqrt(c.limit))*limitSmoothing
	c.limit = max(c.min, min(c.max, next))
}

// current returns the limit and the requests in flight, for metrics.
func (c *concurrencyLimit) current() (limit float64, inflight int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.limit, c.inflight
}
