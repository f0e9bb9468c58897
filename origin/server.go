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
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
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
	http         *fasthttp.Server
	listener     net.Listener
	served       chan struct{} // closed when Serve has returned
	draining     atomic.Bool   // set by Drain: /readyz fails, connections close after their answer
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

// The HTTP server's limits. They were net/http's ReadHeaderTimeout (5 s),
// ReadTimeout (15 s), WriteTimeout (30 s) and MaxHeaderBytes (1 MiB);
// fasthttp has no separate limit on the head, and its write timeout starts
// when the answer is written rather than when the request was read (the
// handler's time is bounded by ORIGIN_QUERY_TIMEOUT). origin/README.md,
// "The HTTP server", says the same for operators.
const (
	// readTimeout bounds reading a request, head and body, from its first
	// byte (on a new connection: from the accept).
	readTimeout = 15 * time.Second
	// writeTimeout bounds writing an answer.
	writeTimeout = 30 * time.Second
	// maxHeaderBytes is the largest request head (request line and fields)
	// read; beyond it, 431. It is fasthttp's read buffer, one per open
	// connection, so it is not net/http's 1 MiB: the proxy forwards at most
	// PROXY_MAX_HEADER_BYTES (16 KiB by default) of a client's fields.
	maxHeaderBytes = 64 << 10
)

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
		served:     make(chan struct{}),
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
	s.http = &fasthttp.Server{
		Handler:      s.serve,
		ErrorHandler: s.malformed,
		// What net/http sent: no Server field, and its own Date.
		// fasthttp's default Content-Type is never seen: every answer
		// with a body sets one, and 204 and 304 get none.
		NoDefaultServerHeader: true,
		ReadTimeout:           readTimeout,
		WriteTimeout:          writeTimeout,
		IdleTimeout:           cfg.IdleTimeout,
		ReadBufferSize:        maxHeaderBytes,
		// The handler reads a body itself, up to maxRequestBytes, and
		// answers 413 past it (readJSON): fasthttp's own 413 would be plain
		// text, before routing. What the handler leaves unread is drained
		// up to 256 KiB, past which the connection closes, as net/http did.
		StreamRequestBody:  true,
		MaxRequestBodySize: maxRequestBytes,
		// Bodies are JSON: a multipart form is refused with 415, never
		// parsed (fasthttp would spool a large one to temporary files).
		DisablePreParseMultipartForm: true,
		// Answers to requests in flight when Shutdown starts close their
		// connections, as net/http's did.
		CloseOnShutdown: true,
		Logger:          printfLogger{log.Named("http")},
	}
	go func() {
		defer close(s.served)
		if err := s.http.Serve(s.listener); err != nil {
			log.Error("serve", zap.Error(err))
		}
	}()
	log.Info("origin listening", zap.String("addr", s.Addr()), zap.Int("replicas", len(cfg.ReplicaDSNs)))
	return s, nil
}

// printfLogger gives fasthttp's log lines to zap, at debug: they repeat
// what malformed logs (with the request's bytes), and an error that ends
// Serve is logged by start.
type printfLogger struct{ log *zap.Logger }

func (l printfLogger) Printf(format string, args ...any) { l.log.Sugar().Debugf(format, args...) }

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

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.listener.Addr().String() }

// Drain makes /readyz fail and turns keep-alives off (serve closes each
// connection after its answer: clients reconnect, to another instance),
// while requests are still served, so that load balancers stop sending new
// ones.
func (s *Server) Drain() {
	s.drainOnce.Do(func() {
		s.drainedAt = time.Now()
		s.draining.Store(true)
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
	// fasthttp closes the listener and idle connections, then waits for
	// the requests in flight (until ctx ends).
	err := s.http.ShutdownWithContext(ctx)
	if err == nil {
		<-s.served
	}
	s.db.close()
	s.stopAccess()
	s.log.Info("stopped", zap.Error(err))
	return err
}

// healthz answers 200 while the process runs. It checks nothing else on
// purpose: a load balancer that sees every instance failing sends traffic
// to all of them anyway.
func (s *Server) healthz(ctx *fasthttp.RequestCtx, _ int64) {
	ctx.Response.Header.Set("Cache-Control", "no-store")
	writeBody(ctx, fasthttp.StatusOK, []byte(`{"status":"ok"}`))
}

// readyz answers 200 when this instance should get traffic: not shutting
// down, and the primary answers.
func (s *Server) readyz(ctx *fasthttp.RequestCtx, _ int64) {
	if s.draining.Load() {
		writeError(ctx, &apiError{fasthttp.StatusServiceUnavailable, "draining", "shutting down"})
		return
	}
	if err := s.db.pingPrimary(context.Background()); err != nil {
		s.databaseFailed(ctx, err)
		return
	}
	ctx.Response.Header.Set("Cache-Control", "no-store")
	writeBody(ctx, fasthttp.StatusOK, []byte(`{"status":"ready"}`))
}

// serveMetrics answers GET /metrics in the Prometheus text format.
func (s *Server) serveMetrics(ctx *fasthttp.RequestCtx, _ int64) {
	ctx.Response.Header.SetContentType("text/plain; version=0.0.4; charset=utf-8")
	ctx.Response.Header.Set("Cache-Control", "no-store")
	s.metrics.write(ctx)
}
