package invalidator

import (
	"github.com/VictoriaMetrics/metrics"
)

// metricSet is one invalidator's metrics (a Set per instance, so that tests
// can run several in one process). Histograms are Prometheus-style (le
// buckets).
type metricSet struct {
	set *metrics.Set

	rowsApplied    *metrics.Counter // moved and deleted
	groupsMoved    *metrics.Counter
	moveFailures   *metrics.Counter
	notifyFailures *metrics.Counter
	dbErrors       *metrics.Counter // statements the server refused while leading
	backlog        *metrics.Gauge   // rows seen waiting in the last sweep of the log
	appliedID      *metrics.Gauge   // highest log id this instance applied
	delay          *metrics.PrometheusHistogram
	leaderGained   *metrics.Counter
	leaderLost     *metrics.Counter
	lockHolder     *metrics.Gauge // connection id holding the lock, as a standby last saw it
	sessionsOpen   *metrics.Counter
	sessionErrors  *metrics.Counter

	ddlDetected      *metrics.Counter // schema changes found (each flushed memcached)
	ddlApplied       *metrics.Counter // schema changes invalidated: flushed, leases waited out, recorded
	ddlFlushFailures *metrics.Counter
	ddlCheckFailures *metrics.Counter // schema checks the server refused
	triggersMissing  *metrics.Gauge   // watched tables' INSERT, UPDATE or DELETE that writes no log row

	// memcached membership (the leader's decider; node_up gauges are made
	// per node as it probes them)
	memcachedGeneration *metrics.Gauge   // the newest generation; 0 on a standby
	memcachedChanges    *metrics.Counter // generations published
	memcachedEjections  *metrics.Counter // nodes taken out for failing EjectAfter
}

// delayBuckets span a healthy delay (a few poll intervals) up to a
// memcached outage.
var delayBuckets = metrics.ExponentialBuckets(0.001, 2, 16) // 1ms .. ~33s

func newMetricSet(leading func() float64) *metricSet {
	s := metrics.NewSet()
	s.NewGauge(`edgecache_invalidator_leader`, leading)
	return &metricSet{set: s,
		rowsApplied:    s.NewCounter(`edgecache_invalidator_rows_applied_total`),
		groupsMoved:    s.NewCounter(`edgecache_invalidator_groups_moved_total`),
		moveFailures:   s.NewCounter(`edgecache_invalidator_move_failures_total`),
		notifyFailures: s.NewCounter(`edgecache_invalidator_lease_notify_failures_total`),
		dbErrors:       s.NewCounter(`edgecache_invalidator_db_errors_total`),
		backlog:        s.NewGauge(`edgecache_invalidator_backlog_rows`, nil),
		appliedID:      s.NewGauge(`edgecache_invalidator_applied_id_max`, nil),
		// From the row's insert, by the database's clock, to its group's
		// move: the time a change waited for the durable path.
		delay:         s.NewPrometheusHistogramExt(`edgecache_invalidator_apply_delay_seconds`, delayBuckets),
		leaderGained:  s.NewCounter(`edgecache_invalidator_leadership_changes_total{change="gained"}`),
		leaderLost:    s.NewCounter(`edgecache_invalidator_leadership_changes_total{change="lost"}`),
		lockHolder:    s.NewGauge(`edgecache_invalidator_lock_holder_connection_id`, nil),
		sessionsOpen:  s.NewCounter(`edgecache_invalidator_sessions_opened_total`),
		sessionErrors: s.NewCounter(`edgecache_invalidator_session_errors_total`),

		ddlDetected:      s.NewCounter(`edgecache_invalidator_ddl_detected_total`),
		ddlApplied:       s.NewCounter(`edgecache_invalidator_ddl_applied_total`),
		ddlFlushFailures: s.NewCounter(`edgecache_invalidator_ddl_flush_failures_total`),
		ddlCheckFailures: s.NewCounter(`edgecache_invalidator_ddl_check_failures_total`),
		triggersMissing:  s.NewGauge(`edgecache_invalidator_log_triggers_missing`, nil),

		memcachedGeneration: s.NewGauge(`edgecache_invalidator_memcached_generation`, nil),
		memcachedChanges:    s.NewCounter(`edgecache_invalidator_memcached_changes_total`),
		memcachedEjections:  s.NewCounter(`edgecache_invalidator_memcached_ejections_total`),
	}
}
