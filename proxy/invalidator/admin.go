package invalidator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/pprof"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/VictoriaMetrics/metrics"
)

// Handler serves the admin endpoints: /healthz (the process runs), /readyz
// (connected to the database, leading or standing by; a leader that finds
// invalidation_log triggers missing or cannot check the schema is not
// ready), POST /invalidate-all (InvalidateAll), GET /memcached and POST
// /memcached/add, remove and replace (the memcached membership, below),
// /metrics (Prometheus
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
	mux.HandleFunc("GET /memcached", inv.memcachedStatus)
	mux.HandleFunc("POST /memcached/add", inv.memcachedCommand("node", "", "node"))
	mux.HandleFunc("POST /memcached/remove", inv.memcachedCommand("", "node", "node"))
	mux.HandleFunc("POST /memcached/replace", inv.memcachedCommand("new", "old", "old and new"))
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

// membershipStatus is GET /memcached's answer, and the membership
// commands': the newest generation and the desired nodes as the database
// holds them, and on the leader its last view of every node.
type membershipStatus struct {
	Generation uint64       `json:"generation"` // 0: no decider ever ran
	Phase      string       `json:"phase"`      // settled, dual-write, dual-read; "none" before generation 1
	Read       []string     `json:"read"`
	Write      [][]string   `json:"write"`
	Desired    []string     `json:"desired"`
	Nodes      []nodeHealth `json:"nodes"` // empty on a standby
	Leading    bool         `json:"leading"`
}

func (inv *Invalidator) memcachedStatus(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), inv.cfg.SessionTimeout)
	defer cancel()
	inv.writeMembership(ctx, w)
}

// writeMembership answers with the membership status, or 503 when the
// database does not give it.
func (inv *Invalidator) writeMembership(ctx context.Context, w http.ResponseWriter) {
	gens, err := readGenerations(ctx, inv.db, 1)
	var desired []string
	if err == nil {
		desired, err = readDesired(ctx, inv.db, inv.cfg.Memcached, false)
	}
	if err != nil {
		inv.log.Warn("memcached membership: cannot read it", zap.Error(err))
		adminError(w, http.StatusServiceUnavailable, "database", "cannot read the membership from the database")
		return
	}
	st := membershipStatus{Phase: "none", Read: []string{}, Write: [][]string{}, Desired: desired, Nodes: []nodeHealth{}}
	if len(gens) > 0 {
		g := gens[0]
		st.Generation, st.Phase, st.Read, st.Write = g.N, g.Phase(), g.Read, g.Write
	}
	inv.mu.Lock()
	st.Leading = inv.leading
	if inv.memcachedHealth != nil {
		st.Nodes = slices.Clone(inv.memcachedHealth)
	}
	inv.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(st)
}

// memcachedCommand changes the desired nodes: it adds the node named by
// the query parameter add and takes out the one named by remove ("": none),
// in one transaction on memcached_desired, and answers with the status. The
// leader's decider takes the membership there, a generation per view time.
func (inv *Invalidator) memcachedCommand(add, remove, params string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var in, out string
		q := r.URL.Query()
		for _, p := range []struct {
			name string
			to   *string
		}{{add, &in}, {remove, &out}} {
			if p.name == "" {
				continue
			}
			if err := checkNode(q.Get(p.name)); err != nil {
				inv.log.Info("memcached membership: bad command", zap.String("path", r.URL.Path), zap.Error(err))
				adminError(w, http.StatusBadRequest, "bad_node", fmt.Sprintf("give %s as host:port (a port 1 to 65535, no spaces, commas or bars)", params))
				return
			}
			*p.to = q.Get(p.name)
		}
		if inv.cfg.MemcachedDiscovery != "" {
			adminError(w, http.StatusConflict, "discovery", "the nodes come from ElastiCache auto discovery (INVALIDATOR_MEMCACHED_DISCOVERY): change the cluster instead")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), inv.cfg.SessionTimeout)
		defer cancel()
		err := inv.changeDesired(ctx, func(nodes []string) ([]string, error) {
			switch {
			case out != "" && !slices.Contains(nodes, out):
				return nil, &refused{"absent", "the node to take out is not in the desired membership"}
			case in != "" && slices.Contains(nodes, in):
				return nil, &refused{"present", "the node to add is in the desired membership already"}
			}
			nodes = slices.DeleteFunc(nodes, func(n string) bool { return n == out })
			if in != "" {
				nodes = union(nodes, []string{in})
			}
			switch {
			case len(nodes) == 0:
				return nil, &refused{"last_node", "the last node cannot be taken out"}
			case len(strings.Join(nodes, ",")) > maxDesired:
				return nil, &refused{"too_many", "the desired nodes would not fit in memcached_desired"}
			}
			return nodes, nil
		})
		var no *refused
		switch {
		case errors.As(err, &no):
			inv.log.Info("memcached membership: command refused", zap.String("path", r.URL.Path), zap.String("why", no.message))
			adminError(w, http.StatusConflict, no.code, no.message)
			return
		case err != nil:
			inv.log.Warn("memcached membership: command failed", zap.String("path", r.URL.Path), zap.Error(err))
			adminError(w, http.StatusServiceUnavailable, "database", "the desired membership could not be changed; try again")
			return
		}
		inv.log.Info("memcached membership: desired nodes changed", zap.String("added", in), zap.String("removed", out))
		inv.writeMembership(ctx, w)
	}
}

// maxDesired is memcached_desired.nodes' size.
const maxDesired = 8192

// refused is a command the membership does not allow (409).
type refused struct{ code, message string }

func (e *refused) Error() string { return e.message }

// changeDesired applies change to the desired nodes in one transaction; no
// row yet means the seeds.
func (inv *Invalidator) changeDesired(ctx context.Context, change func(nodes []string) ([]string, error)) error {
	tx, err := inv.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// The row exists before it is locked, so that two first commands
	// queue on it instead of both inserting.
	if _, err := tx.ExecContext(ctx, "INSERT IGNORE INTO memcached_desired (id, nodes) VALUES (1, ?)",
		strings.Join(union(inv.cfg.Memcached, nil), ",")); err != nil {
		return err
	}
	nodes, err := readDesired(ctx, tx, inv.cfg.Memcached, true)
	if err != nil {
		return err
	}
	if nodes, err = change(nodes); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "UPDATE memcached_desired SET nodes = ? WHERE id = 1", strings.Join(nodes, ",")); err != nil {
		return err
	}
	return tx.Commit()
}

// adminError writes the project's JSON error shape.
func adminError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": message}})
}
