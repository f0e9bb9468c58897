package invalidator

import (
	"fmt"
	"net/http"
	"net/http/pprof"

	"github.com/VictoriaMetrics/metrics"
)

// Handler serves the admin endpoints: /healthz (the process runs), /readyz
// (connected to the database, leading or standing by), /metrics (Prometheus
// text: this instance's metrics, then the process-wide ones: sets
// registered with metrics.RegisterSet, such as the store's, and the Go
// runtime's) and /debug/pprof/.
func (inv *Invalidator) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", inv.readyz)
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		inv.m.set.WritePrometheus(w)
		metrics.WritePrometheus(w, true)
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// readyz is ready while the database answers on this instance's pinned
// connection. A standby is ready too: it is what takes over, and taking it
// out of service would leave nothing to fail over to.
func (inv *Invalidator) readyz(w http.ResponseWriter, r *http.Request) {
	inv.mu.Lock()
	connected, leading, holder, dbErr := inv.connected, inv.leading, inv.holder, inv.dbErr
	inv.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain")
	switch {
	case leading:
		fmt.Fprintln(w, "leader")
	case connected:
		fmt.Fprintf(w, "standby: lock held by connection %d\n", holder)
	case dbErr != nil:
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "database: %v\n", dbErr)
	default:
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "database: not connected yet")
	}
}
