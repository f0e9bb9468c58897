// Command origin runs edgecache's origin: the users-and-posts API over
// MySQL. It is configured by environment variables only; -h lists them.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"edgecache/origin"

	"github.com/go-sql-driver/mysql"
	"go.uber.org/zap"
)

func main() {
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), `usage: origin

Serves the edgecache origin API (users and posts over MySQL), migrating the
schema at start-up. SIGTERM or Ctrl-C: /readyz fails, in-flight requests
finish, then it exits.

Environment variables:
%s`, origin.Usage())
	}
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	cfg, err := origin.LoadConfig()
	if err != nil {
		fmt.Fprintf(os.Stderr, "origin: configuration:\n%v\n", err)
		os.Exit(2)
	}
	logCfg := zap.NewProductionConfig()
	logCfg.Level, _ = zap.ParseAtomicLevel(cfg.LogLevel) // checked by LoadConfig
	log, err := logCfg.Build()
	if err != nil {
		fmt.Fprintf(os.Stderr, "origin: logger: %v\n", err)
		os.Exit(1)
	}
	defer log.Sync()
	mysql.SetLogger(zap.NewStdLog(log.Named("mysql"))) // the driver's own complaints, as JSON too

	srv, err := origin.Start(cfg, log)
	if err != nil {
		log.Fatal("start", zap.Error(err))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	<-ctx.Done()
	stop() // a second signal kills at once
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Error("shutdown", zap.Error(err))
	}
}
