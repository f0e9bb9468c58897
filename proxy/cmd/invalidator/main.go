// Command invalidator runs edgecache's durable invalidator: it applies
// invalidation_log, the groups every committed change names, to memcached.
// Run two or more per deployment: one leads (a MySQL named lock), the
// others stand by and take over within about a second when it dies.
// Configuration is the environment (INVALIDATOR_*); `invalidator -h` lists
// every variable with its default.
package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/go-sql-driver/mysql"
	"go.uber.org/zap"

	"edgecache/deploy/envconfig"
	"edgecache/proxy/invalidator"
)

const summary = `Applies invalidation_log to memcached while it holds the lock, stands by
otherwise. The log is JSON on stderr. SIGTERM or Ctrl-C: finishes the batch
in hand, releases the lock, exits; a second signal exits at once.`

func main() {
	cfg := envconfig.MustLoad[invalidator.Config]("invalidator", summary)
	log, err := envconfig.NewLogger(cfg.LogLevel, envconfig.FormatJSON)
	if err != nil {
		os.Stderr.WriteString("invalidator: logger: " + err.Error() + "\n")
		os.Exit(1)
	}
	defer log.Sync()
	mysql.SetLogger(zap.NewStdLog(log.Named("mysql"))) // the driver's own complaints, as JSON too

	// The store's metrics go to the process-wide registry, which the admin
	// handler writes after the invalidator's own.
	storeMetrics := metrics.NewSet()
	metrics.RegisterSet(storeMetrics)
	inv, err := invalidator.StartBackground(cfg, log, storeMetrics)
	if err != nil {
		log.Fatal("start", zap.Error(err))
	}
	ln, err := net.Listen("tcp", cfg.AdminListen)
	if err != nil {
		log.Fatal("admin listener", zap.Error(err))
	}
	admin := &http.Server{Handler: inv.Handler(), ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout: 60 * time.Second} // pprof profiles take 30 s by default
	go func() {
		if err := admin.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Fatal("admin listener", zap.Error(err))
		}
	}()
	log.Info("started", zap.String("admin", ln.Addr().String()), zap.String("lock", cfg.LockName))

	// No drain delay: a standby is ready too, and no load balancer sends
	// the invalidator traffic.
	if err := envconfig.RunUntilSignal(log, service{inv, admin}, 0, cfg.ShutdownTimeout); err != nil {
		log.Sync()
		os.Exit(1)
	}
}

// service stops the invalidator, then its admin listener.
type service struct {
	inv   *invalidator.Background
	admin *http.Server
}

func (s service) Drain() {}

func (s service) Shutdown(ctx context.Context) error {
	s.inv.Stop() // the batch in hand finished, the lock released
	return s.admin.Shutdown(ctx)
}
