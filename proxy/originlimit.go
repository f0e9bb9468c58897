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
// in proportion (from what is in flight, when that is less); while
// latency stays at the baseline, it grows by its square root. Slow answers
// with no more than the floor in flight leave it alone: those requests are
// not the queue. A request beyond the limit is not sent: a read serves its
// stale entry where it has one (fetchFailed), else it and
// any write get a 503 origin_overloaded with Retry-After at once, instead
// of adding to the queue that slows every other request down.

// errOriginOverloaded is the failure of a request refused by the limit:
// nothing of it was sent.
var errOriginOverloaded = &originError{fasthttp.StatusServiceUnavailable, "origin_overloaded",
	errors.New("origin concurrency limit reached")}

// Gradient2's parameters, at Netflix's defaults where it has them.
const (
	limitWindow    = 100 * time.Millisecond // latency is averaged over at least this long
	limitTolerance = 1.5                    // latency up to 1.5 × the baseline is not queueing
	limitSmoothing = 0.2                    // a window grows the limit a fifth of the way
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
}

// newConcurrencyLimit starts at max: the limit only comes down when the
// origins' latency shows queueing.
func newConcurrencyLimit(min, max int) *concurrencyLimit {
	return &concurrencyLimit{limit: float64(max), min: float64(min), max: float64(max)}
}

// acquire takes a slot, or reports false when the limit is reached.
func (c *concurrencyLimit) acquire() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inflight >= int(c.limit) {
		return false
	}
	c.inflight++
	return true
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
	queueing, inflight := latency > limitTolerance*c.baseline, float64(c.inflight)
	switch {
	case queueing && inflight <= c.min:
		// Too few requests in flight to be the queue (the floor lets them
		// through anyway): the slow answers come from elsewhere, a stall
		// of the machine, an origin busy with other work. A limit shrunk
		// for them only refuses the next burst: a 500/s mix on a busy
		// machine drove it from 1024 to 16 and got 503s at 130 origin
		// requests/s.
		return
	case queueing && inflight < c.limit/2:
		// A queue at the origins while the limit is far from reached: it
		// starts at its ceiling, which the clients may never fill (a flood
		// of misses over 256 connections kept 85 in flight while the
		// origin's latency rose twentyfold). Cut from what is in flight,
		// or the limit would only come down to where it is of no use.
		c.limit = inflight
	}
	gradient := max(0.5, min(1, limitTolerance*c.baseline/latency))
	next := c.limit*gradient + math.Sqrt(c.limit)
	if next > c.limit {
		next = c.limit*(1-limitSmoothing) + next*limitSmoothing // grow gently
	} // shrink at once, as Envoy's gradient controller does: the queue is there now
	// Growing while not in use is bounded by max, and lets the limit
	// recover once a flood is over.
	c.limit = max(c.min, min(c.max, next))
}

// current returns the limit and the requests in flight, for metrics.
func (c *concurrencyLimit) current() (limit float64, inflight int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.limit, c.inflight
}
