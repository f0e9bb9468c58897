package origin

import (
	"database/sql"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// latencyBuckets are the upper bounds, in seconds, of the request latency
// histograms: from a cache-speed 0.5 ms to the query timeout's seconds.
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// serverMetrics are one Server's Prometheus metrics. They live in their own
// Set, not the package-global one, so that several origins in one process
// (tests, the one-box stack) do not share or collide.
type serverMetrics struct {
	set              *metrics.Set
	replicaFallbacks *metrics.Counter            // replica reads that failed, asked again of the primary
	replicaNoRows    *metrics.Counter            // replica reads that found no row, asked again of the primary
	queries          map[string]*metrics.Counter // by "target/kind"
	requests         sync.Map                    // routeStatus → *requestMetrics
}

// routeStatus is a route pattern and a status: one requests counter.
type routeStatus struct {
	route  string
	status int
}

// requestMetrics are the counter of a route and status and the route's
// latency histogram, looked up once: building their names and finding them
// in the Set took a lock and two allocations per request.
type requestMetrics struct {
	count   *metrics.Counter
	latency *metrics.PrometheusHistogram
}

func newServerMetrics() *serverMetrics {
	s := metrics.NewSet()
	m := &serverMetrics{
		set:              s,
		replicaFallbacks: s.NewCounter("origin_db_replica_fallbacks_total"),
		replicaNoRows:    s.NewCounter("origin_db_replica_no_rows_total"),
		queries:          map[string]*metrics.Counter{},
	}
	for _, q := range [][2]string{{"primary", "read"}, {"primary", "write"}, {"replica", "read"}} {
		m.queries[q[0]+"/"+q[1]] = s.NewCounter(fmt.Sprintf(`origin_db_queries_total{db=%q,kind=%q}`, q[0], q[1]))
	}
	return m
}

// query counts one read (a single statement) or one write transaction
// against the primary or a replica.
func (m *serverMetrics) query(target, kind string) {
	m.queries[target+"/"+kind].Inc()
}

// request records one finished request under its route pattern (such as
// "GET /v1/posts/{id}"; "unmatched" for anything the router did not know).
func (m *serverMetrics) request(route string, status int, took time.Duration) {
	key := routeStatus{route, status}
	rm, ok := m.requests.Load(key)
	if !ok {
		rm, _ = m.requests.LoadOrStore(key, &requestMetrics{
			count:   m.set.GetOrCreateCounter(`origin_http_requests_total{route="` + route + `",status="` + strconv.Itoa(status) + `"}`),
			latency: m.set.GetOrCreatePrometheusHistogramExt(`origin_http_request_duration_seconds{route="`+route+`"}`, latencyBuckets),
		})
	}
	rm.(*requestMetrics).count.Inc()
	rm.(*requestMetrics).latency.Update(took.Seconds())
}

// watchPool exports db's connection-pool statistics, read at scrape time.
func (m *serverMetrics) watchPool(name string, db *sql.DB) {
	m.set.RegisterMetricsWriter(func(w io.Writer) {
		st := db.Stats()
		label := `{pool="` + name + `"}`
		metrics.WriteGaugeUint64(w, "origin_db_pool_max_open"+label, uint64(st.MaxOpenConnections))
		metrics.WriteGaugeUint64(w, "origin_db_pool_open"+label, uint64(st.OpenConnections))
		metrics.WriteGaugeUint64(w, "origin_db_pool_in_use"+label, uint64(st.InUse))
		metrics.WriteGaugeUint64(w, "origin_db_pool_idle"+label, uint64(st.Idle))
		metrics.WriteCounterUint64(w, "origin_db_pool_wait_total"+label, uint64(st.WaitCount))
		metrics.WriteCounterFloat64(w, "origin_db_pool_wait_seconds_total"+label, st.WaitDuration.Seconds())
	})
}

// watchReplica exports whether a replica is in the rotation (1) or passed
// over until it answers a ping (0), and returns the counter of reads that
// passed it over.
func (m *serverMetrics) watchReplica(name string, down *atomic.Bool) *metrics.Counter {
	label := `{replica="` + name + `"}`
	m.set.NewGauge("origin_db_replica_up"+label, func() float64 {
		if down.Load() {
			return 0
		}
		return 1
	})
	return m.set.NewCounter("origin_db_replica_skips_total" + label)
}

// write writes every metric of this Server, then the process's own (Go
// runtime, CPU, memory, file descriptors).
func (m *serverMetrics) write(w io.Writer) {
	m.set.WritePrometheus(w)
	metrics.WriteProcessMetrics(w)
}
