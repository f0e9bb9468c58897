package invalidator

import (
	"context"
	"fmt"
	"net/http"
	"net/http/pprof"
	"time"

	"go.uber.org/zap"

	"github.com/VictoriaMetrics/metrics"
)

// Handler serves the admin endpoints: /healthz (the process runs), /readyz
// (connected to the database, leading or standing by; a leader that finds
// invalidation_log triggers missing or cannot check the schema is not
// ready), POST /invalidate-all (InvalidateAll), /metrics (Prometheus
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
	mux.HandleFunc("POST /invalidate-all", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		if err := inv.InvalidateAll(r.Context()); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not done: %v\n", err)
			return
		}
		fmt.Fprintln(w, "every memcached node flushed; every lease taken before has ended")
	})
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
	connected, leading, holder, dbErr, schemaBad := inv.connected, inv.leading, inv.holder, inv.dbErr, inv.schemaBad
	inv.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain")
	switch {
	case leading && schemaBad != "":
		// Loud on purpose: some changes are no longer invalidated, and no
		// failover fixes that; the schema must.
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "leader, but %s\n", schemaBad)
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

// InvalidateAll does on demand what a schema change found does: it flushes
// every memcached node, then waits one lease duration, after which no
// proxy serves anything cached before the call. For a change the schema
// watch cannot see (doc.go, "Schema changes"). Any instance may run it,
// leader or standby: a flush needs no lock.
func (inv *Invalidator) InvalidateAll(ctx context.Context) error {
	if err := inv.mover.FlushAll(); err != nil {
		return err
	}
	inv.log.Warn("invalidate-all: every memcached node flushed; waiting out the leases", zap.Duration("lease", inv.cfg.LeaseDuration))
	t := time.NewTimer(inv.cfg.LeaseDuration)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}
