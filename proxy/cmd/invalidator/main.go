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
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/go-sql-driver/mysql"
	"go.uber.org/zap"

	"edgecache/proxy/invalidator"
)

func main() {
	flag.Usage = func() {
		fmt.Fprint(os.Stderr, `usage: invalidator

Applies invalidation_log to memcached while it holds the lock, stands by
otherwise. SIGTERM or Ctrl-C: finishes the batch in hand, releases the lock,
exits.

`)
		invalidator.Usage(os.Stderr)
	}
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	cfg, err := invalidator.LoadConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "invalidator: bad configuration:\n"+err.Error())
		os.Exit(2)
	}
	zcfg := zap.NewProductionConfig()
	zcfg.Level, _ = zap.ParseAtomicLevel(cfg.LogLevel) // checked by LoadConfig
	log, err := zcfg.Build()
	if err != nil {
		fmt.Fprintln(os.Stderr, "invalidator:", err)
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

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	<-ctx.Done()
	stop()     // a second signal kills at once
	inv.Stop() // the batch in hand finished, the lock released
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	admin.Shutdown(shutdown)
	log.Info("stopped")
}
