package proxy

import (
	"github.com/VictoriaMetrics/metrics"
)

// metricSet is one proxy instance's metrics (a Set per instance, so that
// tests can run several proxies in one process). Histograms are
// Prometheus-style (le buckets).
type metricSet struct {
	set *metrics.Set

	requests            map[string]*metrics.Counter // by outcome
	readDuration        *metrics.PrometheusHistogram
	writeDuration       *metrics.PrometheusHistogram
	originRequests      map[string]*metrics.Counter // by result
	originDuration      *metrics.PrometheusHistogram
	originRetries       map[string]*metrics.Counter // second attempts, by kind: read, unsent-write
	originProbeFailures *metrics.Counter
	coalescedLocal      *metrics.Counter
	coalescedFleet      *metrics.Counter
	coalesceTimeout     *metrics.Counter
	leaseTakeovers      *metrics.Counter
	groupUnknown        *metrics.Counter
	tooLarge            *metrics.Counter
	stores              *metrics.Counter
	storeErrors         *metrics.Counter
	lagRefetch          *metrics.Counter
	panics              *metrics.Counter
	accessLogErrors     *metrics.Counter
	purges              *metrics.Counter
	writesPending       map[string]*metrics.Counter // by reason: origin-failed, origin-5xx, memcached

	l1Hits *metrics.Counter

	clientLimited map[string]*metrics.Counter // 429s of the per-client budgets, by kind: miss, write
}

// Request outcomes, also used in the access log.
const (
	outcomeHit         = "hit"         // fresh entry served
	outcomeStale       = "stale"       // stale entry served (while revalidating, or on origin error)
	outcomeRevalidated = "revalidated" // stored entry validated with the origin (304)
	outcomeMiss        = "miss"        // fetched from the origin
	outcomeCollapsed   = "collapsed"   // answered by another request's fill
	outcomePass        = "pass"        // not cacheable: forwarded
	outcomeWrite       = "write"       // a write forwarded to the origin
	outcomeError       = "error"       // the proxy answered with an error of its own
)

// Why a write was answered "Edgecache-Invalidation: pending".
const (
	pendingOriginFailed = "origin-failed" // no answer from the origin: it may have committed
	pendingOrigin5xx    = "origin-5xx"    // a 5xx: it may have committed
	pendingMemcached    = "memcached"     // memcached could not take an invalidation
)

var latencyBuckets = metrics.ExponentialBuckets(0.0001, 2, 18) // 100µs .. ~13s

func newMetricSet(cacheName string) *metricSet {
	s := metrics.NewSet()
	m := &metricSet{set: s,
		requests:       map[string]*metrics.Counter{},
		originRequests: map[string]*metrics.Counter{},
		originRetries:  map[string]*metrics.Counter{},
		writesPending:  map[string]*metrics.Counter{},
		clientLimited:  map[string]*metrics.Counter{},
	}
	for _, k := range []string{budgetMiss, budgetWrite} {
		m.clientLimited[k] = s.NewCounter(`edgecache_proxy_client_limited_total{kind="` + k + `"}`)
	}
	for _, o := range []string{outcomeHit, outcomeStale, outcomeRevalidated, outcomeMiss, outcomeCollapsed, outcomePass, outcomeWrite, outcomeError} {
		m.requests[o] = s.NewCounter(`edgecache_proxy_requests_total{outcome="` + o + `"}`)
	}
	m.readDuration = s.NewPrometheusHistogramExt(`edgecache_proxy_request_duration_seconds{kind="read"}`, latencyBuckets)
	m.writeDuration = s.NewPrometheusHistogramExt(`edgecache_proxy_request_duration_seconds{kind="write"}`, latencyBuckets)
	for _, r := range []string{"ok", "error", "timeout", "busy", "5xx", "overloaded"} {
		m.originRequests[r] = s.NewCounter(`edgecache_proxy_origin_requests_total{result="` + r + `"}`)
	}
	m.originDuration = s.NewPrometheusHistogramExt(`edgecache_proxy_origin_request_duration_seconds`, latencyBuckets)
	for _, k := range []string{"read", "unsent-write"} {
		m.originRetries[k] = s.NewCounter(`edgecache_proxy_origin_retries_total{kind="` + k + `"}`)
	}
	m.originProbeFailures = s.NewCounter(`edgecache_proxy_origin_probe_failures_total`)
	m.coalescedLocal = s.NewCounter(`edgecache_proxy_coalesced_waits_total{scope="process"}`)
	m.coalescedFleet = s.NewCounter(`edgecache_proxy_coalesced_waits_total{scope="fleet"}`)
	m.coalesceTimeout = s.NewCounter(`edgecache_proxy_coalesce_timeouts_total`)
	m.leaseTakeovers = s.NewCounter(`edgecache_proxy_fill_lease_takeovers_total`)
	m.groupUnknown = s.NewCounter(`edgecache_proxy_group_version_unknown_total`)
	m.tooLarge = s.NewCounter(`edgecache_proxy_too_large_total`)
	m.stores = s.NewCounter(`edgecache_proxy_stores_total`)
	m.storeErrors = s.NewCounter(`edgecache_proxy_store_errors_total`)
	m.lagRefetch = s.NewCounter(`edgecache_proxy_replica_lag_refetches_total`)
	m.panics = s.NewCounter(`edgecache_proxy_panics_total`)
	m.accessLogErrors = s.NewCounter(`edgecache_proxy_access_log_errors_total`)
	m.purges = s.NewCounter(`edgecache_proxy_purges_total`)
	// Writes whose answer said "Edgecache-Invalidation: pending": the
	// durable invalidator, not the write, finishes their invalidation.
	for _, r := range []string{pendingOriginFailed, pendingOrigin5xx, pendingMemcached} {
		m.writesPending[r] = s.NewCounter(`edgecache_proxy_writes_pending_total{reason="` + r + `"}`)
	}
	m.l1Hits = s.NewCounter(`edgecache_proxy_l1_hits_total`)
	s.NewGauge(`edgecache_proxy_hit_ratio`, func() float64 {
		hits := float64(m.requests[outcomeHit].Get() + m.requests[outcomeStale].Get() +
			m.requests[outcomeRevalidated].Get() + m.requests[outcomeCollapsed].Get())
		total := hits + float64(m.requests[outcomeMiss].Get())
		if total == 0 {
			return 0
		}
		return hits / total
	})
	return m
}

// originHealth registers one origin's health metrics: whether it is in
// service (up reports it), and counters of its ejections and returns.
func (m *metricSet) originHealth(origin string, up func() bool) (ejections, returns *metrics.Counter) {
	label := `{origin="` + origin + `"}`
	m.set.NewGauge(`edgecache_proxy_origin_up`+label, func() float64 {
		if up() {
			return 1
		}
		return 0
	})
	return m.set.NewCounter(`edgecache_proxy_origin_ejections_total` + label),
		m.set.NewCounter(`edgecache_proxy_origin_returns_total` + label)
}

// originLimit exports the adaptive origin concurrency limit (originlimit.go).
func (m *metricSet) originLimit(c *concurrencyLimit) {
	m.set.NewGauge(`edgecache_proxy_origin_concurrency_limit`, func() float64 { l, _ := c.current(); return l })
	m.set.NewGauge(`edgecache_proxy_origin_inflight`, func() float64 { _, n := c.current(); return float64(n) })
}
