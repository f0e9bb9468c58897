package store

import "github.com/VictoriaMetrics/metrics"

// storeMetrics are the pool's metrics; histograms are Prometheus-style.
type storeMetrics struct {
	ops, errors  map[string]*metrics.Counter // by operation
	latency      map[string]*metrics.PrometheusHistogram
	skipped      *metrics.Counter // operations not sent: node marked down
	nodeDown     *metrics.Counter
	nodeUp       *metrics.Counter
	moves        *metrics.Counter
	moveFailures *metrics.Counter
	moveRetries  *metrics.Counter
	replayed     *metrics.Counter // missed moves applied on recovery
	roundTrips   *metrics.Counter // GetMultis sent by Lookup
	lookups      *metrics.Counter // lookups they carried
	generation   *metrics.Gauge   // the membership generation followed (membership.go)
	outdated     *metrics.Gauge   // 1 once a newer membership with other nodes was found
	viewExpired  *metrics.Gauge   // 1 while the followed generation is not confirmed
	joinFlushes  *metrics.Counter // nodes flushed before joining a membership
}

// opNames are the operations counted; "pipeline" is a round trip of
// several commands (pipeline.go).
var opNames = []string{"get", "set", "add", "cas", "delete", "pipeline"}

var latencyBuckets = metrics.ExponentialBuckets(0.0001, 2, 18) // 100µs .. ~13s

func newStoreMetrics(s *metrics.Set, prefix string) *storeMetrics {
	m := &storeMetrics{ops: map[string]*metrics.Counter{}, errors: map[string]*metrics.Counter{},
		latency: map[string]*metrics.PrometheusHistogram{}}
	for _, op := range opNames {
		m.ops[op] = s.NewCounter(prefix + `_memcached_ops_total{op="` + op + `"}`)
		m.errors[op] = s.NewCounter(prefix + `_memcached_errors_total{op="` + op + `"}`)
		m.latency[op] = s.NewPrometheusHistogramExt(prefix+`_memcached_op_duration_seconds{op="`+op+`"}`, latencyBuckets)
	}
	m.skipped = s.NewCounter(prefix + `_memcached_skipped_total`)
	m.nodeDown = s.NewCounter(prefix + `_memcached_node_down_total`)
	m.nodeUp = s.NewCounter(prefix + `_memcached_node_up_total`)
	m.moves = s.NewCounter(prefix + `_invalidations_total`)
	m.moveFailures = s.NewCounter(prefix + `_invalidation_failures_total`)
	m.moveRetries = s.NewCounter(prefix + `_invalidation_retries_total`)
	m.replayed = s.NewCounter(prefix + `_invalidations_replayed_total`)
	m.roundTrips = s.NewCounter(prefix + `_lookup_round_trips_total`)
	m.lookups = s.NewCounter(prefix + `_lookups_total`)
	m.generation = s.NewGauge(prefix+`_memcached_membership_generation`, nil)
	m.outdated = s.NewGauge(prefix+`_memcached_membership_outdated`, nil)
	m.viewExpired = s.NewGauge(prefix+`_memcached_membership_view_expired`, nil)
	m.joinFlushes = s.NewCounter(prefix + `_memcached_membership_flushes_total`)
	return m
}

// Ops is the number of memcached round trips of operation op so far.
func (s *Store) Ops(op string) uint64 { return s.m.ops[op].Get() }
