// Command origin runs edgecache's origin: the users-and-posts API over
// MySQL. It is configured by environment variables only; -h lists them.
package main

import (
	"os"

	"github.com/go-sql-driver/mysql"
	"go.uber.org/zap"

	"edgecache/deploy/envconfig"
	"edgecache/origin"
)

const summary = `Serves the edgecache origin API (users and posts over MySQL), migrating the
schema at start-up. The application log is JSON on stderr; the access log
goes where ORIGIN_ACCESS_LOG says. SIGTERM or Ctrl-C: /readyz fails for
ORIGIN_DRAIN_DELAY, then in-flight requests finish (at most
ORIGIN_SHUTDOWN_TIMEOUT) and it exits; a second signal exits at once.

origin triggers -h: the invalidation_log triggers of a table of your own.`

func main() {
	if len(os.Args) > 1 && os.Args[1] == "triggers" {
		os.Exit(runTriggers(os.Args[2:], os.Stdout, os.Stderr))
	}
	cfg := envconfig.MustLoad[origin.Config]("origin", summary)
	log, err := envconfig.NewLogger(cfg.LogLevel, envconfig.FormatJSON)
	if err != nil {
		os.Stderr.WriteString("origin: logger: " + err.Error() + "\n")
		os.Exit(1)
	}
	defer log.Sync()
	mysql.SetLogger(zap.NewStdLog(log.Named("mysql"))) // the driver's own complaints, as JSON too

	srv, err := origin.Start(cfg, log)
	if err != nil {
		log.Fatal("start", zap.Error(err))
	}
	if err := envconfig.RunUntilSignal(log, srv, cfg.DrainDelay, cfg.ShutdownTimeout); err != nil {
		log.Sync()
		os.Exit(1)
	}
}
