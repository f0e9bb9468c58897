package proxy

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// Origin health, after Envoy's outlier detection.
//
// Passive: PROXY_ORIGIN_EJECT_AFTER failures in a row (timeouts, refused or
// broken connections, 502/503/504 answers, failed probes) eject an origin:
// requests stop going to it. A pooled connection the origin closed before
// it was used is not a failure (an idle timeout or a restart closes them). A failed dial ejects at once: the origin is
// not taking connections, and each further request would pay a dial to
// find out. The ejected origin's idle connections are closed: after a crash
// they are all dead, and each would fail one more request.
//
// Active: a probe asks every origin's /healthz each
// PROXY_ORIGIN_PROBE_INTERVAL, all in parallel, each within
// PROXY_ORIGIN_PROBE_TIMEOUT. A failed probe counts as a failure (a hung
// origin is ejected even when no request is waiting on it); a passing probe
// brings an ejected origin back once it has been out PROXY_ORIGIN_DOWN_FOR.
// No client request is used to test an ejected origin, unless every origin
// is ejected (see pick).
//
// An origin ejected again within PROXY_ORIGIN_MAX_DOWN_FOR of coming back
// stays out twice as long as the previous time, up to
// PROXY_ORIGIN_MAX_DOWN_FOR, so that a flapping origin settles out of
// service rather than failing a few requests every few seconds.
//
// /readyz reads this state; it never waits for an origin.
type health struct {
	up          atomic.Bool  // in service; pick reads it on every request
	fails       atomic.Int32 // failures in a row
	lastFailure atomic.Int64 // unix nanoseconds

	mu        sync.Mutex
	ejectedAt time.Time // when it was last ejected
	until     time.Time // no probe brings it back before then
	why       string    // the failure that ejected it
	back      time.Time // when it last came back
	ejections int       // ejections in a row, each soon after coming back
}

func (h *health) init() { h.up.Store(true) }

// succeeded resets the failure count (without a write when it is 0: this
// runs on every answered request).
func (h *health) succeeded() {
	if h.fails.Load() != 0 {
		h.fails.Store(0)
	}
}

// failed counts a failure of u, and ejects u at the threshold or, when
// atOnce, right away.
func (o *origins) failed(u *upstream, err error, atOnce bool) {
	h := &u.health
	now := time.Now()
	h.lastFailure.Store(now.UnixNano())
	if h.fails.Add(1) < o.ejectAfter && !atOnce || !h.up.Load() {
		return
	}
	h.mu.Lock()
	if !h.up.Load() { // another request ejected it meanwhile
		h.mu.Unlock()
		return
	}
	if now.Sub(h.back) > o.maxDownFor {
		h.ejections = 0
	}
	h.ejections++
	d := o.downFor
	for i := 1; i < h.ejections && d < o.maxDownFor; i++ {
		d *= 2
	}
	d = min(d, o.maxDownFor)
	h.ejectedAt, h.until, h.why = now, now.Add(d), err.Error()
	h.up.Store(false)
	h.mu.Unlock()
	u.hc.CloseIdleConnections()
	u.ejections.Inc()
	o.log.Warn("origin ejected", zap.String("origin", u.base), zap.Int32("failures", h.fails.Load()),
		zap.Duration("for_at_least", d), zap.Error(err))
}

// probeLoop probes every origin each interval until stop is closed.
func (o *origins) probeLoop(stop <-chan struct{}) {
	t := time.NewTicker(o.probeInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		var wg sync.WaitGroup
		for _, u := range o.ups {
			wg.Go(func() { o.probe(u) })
		}
		wg.Wait()
	}
}

// probe asks u's /healthz and records the result.
func (o *origins) probe(u *upstream) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(u.scheme + "://" + u.host + "/healthz")
	err := u.probe.DoTimeout(req, resp, o.probeTimeout)
	if err == nil && resp.StatusCode() != fasthttp.StatusOK {
		err = errors.New("/healthz answered " + fasthttp.StatusMessage(resp.StatusCode()))
	}
	if err != nil {
		o.m.originProbeFailures.Inc()
		o.failed(u, errors.New("probe: "+err.Error()), false)
		return
	}
	h := &u.health
	h.succeeded()
	if h.up.Load() {
		return
	}
	h.mu.Lock()
	now := time.Now()
	if now.Before(h.until) {
		h.mu.Unlock()
		return
	}
	h.back = now
	out := now.Sub(h.ejectedAt)
	h.up.Store(true)
	h.mu.Unlock()
	u.returns.Inc()
	o.log.Info("origin back in service", zap.String("origin", u.base), zap.Duration("was_out", out))
}

// allEjected reports whether every origin is out of service.
func (o *origins) allEjected() bool {
	for _, u := range o.ups {
		if u.health.up.Load() {
			return false
		}
	}
	return true
}

// originStatus is an ejected origin as /readyz reports it.
type originStatus struct {
	origin string
	since  time.Time
	why    string
}

// ejected lists the origins out of service.
func (o *origins) ejected() []originStatus {
	var out []originStatus
	for _, u := range o.ups {
		if u.health.up.Load() {
			continue
		}
		u.health.mu.Lock()
		out = append(out, originStatus{origin: u.base, since: u.health.ejectedAt, why: u.health.why})
		u.health.mu.Unlock()
	}
	return out
}
