// Package origin is edgecache's application service: the users-and-posts
// HTTP/JSON API over MySQL. It owns the schema (embedded migrations), the
// per-row-group versions that let the proxy cache its answers and
// invalidate them exactly (the Edgecache-Groups header), the routing of
// reads to replicas and writes to the primary, and the service's health,
// metrics and graceful shutdown.
package origin

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"edgecache/proxy/accesslog"
)

// migrateTimeout bounds start-up migration, including the wait for another
// origin that holds the migration lock.
const migrateTimeout = 60 * time.Second

// Server is a running origin.
type Server struct {
	cfg          Config
	log          *zap.Logger
	access       *accesslog.Log // nil: the access log is off
	stopAccess   func()
	db           *database
	metrics      *serverMetrics
	mux          *http.ServeMux // the routes, and "/" (unmatched) for any other request
	routeTable   *http.ServeMux // the routes alone: asked which methods an unmatched path allows
	http         *http.Server
	listener     net.Listener
	draining     atomic.Bool // set by Drain: /readyz fails from then on
	drainOnce    sync.Once
	drainedAt    time.Time // set by Drain
	shutdownOnce sync.Once
	shutdownErr  error
	cacheControl string // of cacheable GET responses
	// edgecacheCacheControl is their Edgecache-Cache-Control ("": none),
	// which edgecache reads instead of Cache-Control (RFC 9213): it
	// invalidates what every write changes, so it need not go back to the
	// origin every minute as a cache that only expires must. On the 100:1
	// mix those revalidations were most of the origin's requests.
	edgecacheCacheControl string
}

// Start migrates the primary's schema, then serves on cfg.Listen (which may
// be "127.0.0.1:0") until Shutdown. App logs go to log; the access log goes
// where cfg.AccessLog says.
func Start(cfg Config, log *zap.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w, stopAccess, err := accesslog.OpenWriter(cfg.AccessLog)
	if err != nil {
		return nil, err
	}
	var access *accesslog.Log
	if w != nil {
		access = accesslog.New(w)
	}
	stop := func() { stopAccess() }
	s, err := start(cfg, log, access, stop)
	if err != nil {
		stop()
		return nil, err
	}
	return s, nil
}

// start is Start with the access log given (nil: off), so that tests can
// read it; stopAccess flushes it at shutdown.
func start(cfg Config, log *zap.Logger, access *accesslog.Log, stopAccess func()) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:        cfg,
		log:        log,
		access:     access,
		stopAccess: stopAccess,
		metrics:    newServerMetrics(),
		mux:        http.NewServeMux(),
		routeTable: http.NewServeMux(),
		cacheControl: fmt.Sprintf("public, max-age=0, s-maxage=%d, stale-while-revalidate=%d, stale-if-error=%d",
			cfg.CacheSeconds, cfg.StaleWhileRevalidateSeconds, cfg.StaleIfErrorSeconds),
	}
	if cfg.EdgecacheCacheSeconds > 0 {
		s.edgecacheCacheControl = fmt.Sprintf("max-age=%d, stale-while-revalidate=%d, stale-if-error=%d",
			cfg.EdgecacheCacheSeconds, cfg.StaleWhileRevalidateSeconds, cfg.StaleIfErrorSeconds)
	}
	db, err := openDatabase(cfg, s.metrics, log)
	if err != nil {
		return nil, err
	}
	s.db = db
	if err := migrateAtStart(cfg.MySQLDSN, log); err != nil {
		db.close()
		return nil, fmt.Errorf("migrate: %w", err)
	}
	s.listener, err = net.Listen("tcp", cfg.Listen)
	if err != nil {
		db.close()
		return nil, err
	}
	s.routes()
	s.http = &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       cfg.IdleTimeout,
		ErrorLog:          zap.NewStdLog(log.Named("http")),
	}
	go func() {
		if err := s.http.Serve(s.listener); !errors.Is(err, http.ErrServerClosed) {
			log.Error("serve", zap.Error(err))
		}
	}()
	log.Info("origin listening", zap.String("addr", s.Addr()), zap.Int("replicas", len(cfg.ReplicaDSNs)))
	return s, nil
}

// migrateAtStart migrates the primary on a pool of its own, without the
// DSN's readTimeout (see migrationDSN), within migrateTimeout.
func migrateAtStart(dsn string, log *zap.Logger) error {
	dsn, err := migrationDSN(dsn)
	if err != nil {
		return err
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), migrateTimeout)
	defer cancel()
	return Migrate(ctx, db, log)
}

// routes registers the routes in both muxes, and in s.mux a catch-all "/",
// so that one lookup routes every request: a request matched by no route
// gets unmatched, which only then asks routeTable for the methods its path
// allows.
func (s *Server) routes() {
	for pattern, handler := range map[string]http.HandlerFunc{
		"POST /v1/users":            s.createUser,
		"GET /v1/users/{id}":        s.getUser,
		"POST /v1/users/{id}/posts": s.createPost,
		"GET /v1/users/{id}/posts":  s.listPosts,
		"GET /v1/posts/{id}":        s.getPost,
		"PUT /v1/posts/{id}":        s.updatePost,
		"DELETE /v1/posts/{id}":     s.deletePost,
		"GET /healthz":              s.healthz,
		"GET /readyz":               s.readyz,
		"GET /metrics":              s.serveMetrics,
	} {
		s.mux.Handle(pattern, handler)
		s.routeTable.Handle(pattern, handler)
	}
	s.mux.HandleFunc(unmatchedPattern, s.unmatched)
}

// unmatchedPattern routes what no route takes to unmatched.
const unmatchedPattern = "/"

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.listener.Addr().String() }

// Drain makes /readyz fail and turns keep-alives off, while requests are
// still served, so that load balancers stop sending new ones.
func (s *Server) Drain() {
	s.drainOnce.Do(func() {
		s.drainedAt = time.Now()
		s.draining.Store(true)
		s.http.SetKeepAlivesEnabled(false) // clients reconnect, to another instance
		s.log.Info("draining", zap.Duration("delay", s.cfg.DrainDelay))
	})
}

// Shutdown drains (if Drain was not called) and waits until the drain
// delay has passed since Drain, so that load balancers stop sending
// requests, then stops accepting connections, waits for in-flight requests
// (until ctx ends), and closes the database pools. Calls after the first
// return the first one's result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() { s.shutdownErr = s.shutdown(ctx) })
	return s.shutdownErr
}

func (s *Server) shutdown(ctx context.Context) error {
	s.Drain()
	delay := time.NewTimer(time.Until(s.drainedAt.Add(s.cfg.DrainDelay)))
	select {
	case <-delay.C:
	case <-ctx.Done():
		delay.Stop()
	}
	err := s.http.Shutdown(ctx)
	s.db.close()
	s.stopAccess()
	s.log.Info("stopped", zap.Error(err))
	return err
}

// serveHTTP routes a request and records it: one access log line, the
// request metrics, and a 500 instead of a dropped connection on a panic.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	began := time.Now()
	rl := &responseLog{ResponseWriter: w}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("panic serving request", zap.Any("panic", p), zap.String("path", r.URL.Path), zap.Stack("stack"))
			if rl.status == 0 {
				writeError(rl, &apiError{http.StatusInternalServerError, "internal", "internal error"})
			}
		}
		route := r.Pattern
		if route == "" || route == unmatchedPattern {
			route = "unmatched"
		}
		if rl.status == 0 { // the handler wrote nothing
			rl.status = http.StatusOK
		}
		end := time.Now()
		s.metrics.request(route, rl.status, end.Sub(began))
		s.logRequest(r, route, rl, began, end)
	}()
	// A path not in its one clean form (path.Clean: no "//", "." or ".."
	// segment, no trailing "/") gets a 404, not ServeMux's redirect to the
	// clean path: a proxy invalidates a write's Location, so PUT
	// /v1//posts/1 would let anyone purge /v1/posts/1. GET and HEAD get the
	// same 404, which keeps one URL, and one cache key, per resource.
	if p := r.URL.Path; path.Clean(p) != p {
		writeError(rl, errNotFound)
		return
	}
	s.mux.ServeHTTP(rl, r)
}

// unmatched answers a request no route takes with a JSON 404, or 405 and
// Allow when the path exists under other methods. The route table's own
// answer is plain text: it is run only to learn its Allow header.
func (s *Server) unmatched(w http.ResponseWriter, r *http.Request) {
	muxAnswer, _ := s.routeTable.Handler(r)
	probe := &headerProbe{header: http.Header{}}
	muxAnswer.ServeHTTP(probe, r)
	if allow := probe.header.Get("Allow"); allow != "" {
		w.Header().Set("Allow", allow)
		writeError(w, &apiError{http.StatusMethodNotAllowed, "method_not_allowed", "allowed: " + allow})
		return
	}
	writeError(w, errNotFound)
}

// headerProbe runs a mux handler only to see the headers it sets.
type headerProbe struct{ header http.Header }

func (p *headerProbe) Header() http.Header         { return p.header }
func (p *headerProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *headerProbe) WriteHeader(int)             {}

// healthz answers 200 while the process runs. It checks nothing else on
// purpose: a load balancer that sees every instance failing sends traffic
// to all of them anyway.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	writeBody(w, http.StatusOK, []byte(`{"status":"ok"}`))
}

// readyz answers 200 when this instance should get traffic: not shutting
// down, and the primary answers.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		writeError(w, &apiError{http.StatusServiceUnavailable, "draining", "shutting down"})
		return
	}
	if err := s.db.pingPrimary(r.Context()); err != nil {
		s.databaseFailed(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeBody(w, http.StatusOK, []byte(`{"status":"ready"}`))
}

// serveMetrics answers GET /metrics in the Prometheus text format.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	s.metrics.write(w)
}
