// Command proxy runs the edgecache edge proxy. Configuration is the
// environment (PROXY_*); `proxy -h` lists every variable with its default.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"edgecache/proxy"
)

func main() {
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: proxy\n\nThe edgecache edge proxy: caches GET/HEAD in memcached, forwards writes and invalidates.")
		proxy.Usage(os.Stderr)
	}
	flag.Parse()
	cfg, err := proxy.LoadConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "proxy: bad configuration:\n"+err.Error())
		os.Exit(2)
	}
	level, _ := zapcore.ParseLevel(cfg.LogLevel)
	zcfg := zap.NewProductionConfig()
	zcfg.Level = zap.NewAtomicLevelAt(level)
	log, err := zcfg.Build()
	if err != nil {
		fmt.Fprintln(os.Stderr, "proxy:", err)
		os.Exit(1)
	}
	defer log.Sync()

	p, err := proxy.Start(cfg, log)
	if err != nil {
		log.Fatal("start", zap.Error(err))
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	s := <-sig
	// Fail readiness first and give the load balancer time to notice, then
	// stop accepting and wait for in-flight requests.
	log.Info("signal received: draining", zap.String("signal", s.String()), zap.Duration("drain_delay", cfg.DrainDelay))
	p.Drain()
	// A second signal means "now": the operator does not want to wait.
	go func() {
		s := <-sig
		log.Warn("second signal: exiting without draining", zap.String("signal", s.String()))
		log.Sync()
		os.Exit(1)
	}()
	time.Sleep(cfg.DrainDelay)
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownWait)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		log.Error("shutdown", zap.Error(err))
		os.Exit(1)
	}
	log.Info("stopped")
}
