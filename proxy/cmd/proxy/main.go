// Command proxy runs the edgecache edge proxy. Configuration is the
// environment (PROXY_*); `proxy -h` lists every variable with its default.
package main

import (
	"os"

	"go.uber.org/zap"

	"edgecache/deploy/envconfig"
	"edgecache/proxy"
)

const summary = `The edgecache edge proxy: caches GET/HEAD in memcached, forwards writes and
invalidates. The application log is JSON on stderr; the access log goes
where PROXY_ACCESS_LOG says. SIGTERM or Ctrl-C: /readyz fails for
PROXY_DRAIN_DELAY, then in-flight requests finish (at most
PROXY_SHUTDOWN_TIMEOUT) and it exits; a second signal exits at once.`

func main() {
	cfg := envconfig.MustLoad[proxy.Config]("proxy", summary)
	log, err := envconfig.NewLogger(cfg.LogLevel, envconfig.FormatJSON)
	if err != nil {
		os.Stderr.WriteString("proxy: logger: " + err.Error() + "\n")
		os.Exit(1)
	}
	defer log.Sync()

	p, err := proxy.Start(cfg, log)
	if err != nil {
		log.Fatal("start", zap.Error(err))
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		go p.LimitMemory(nil) // until the process ends
	}
	if err := envconfig.RunUntilSignal(log, p, cfg.DrainDelay, cfg.ShutdownTimeout); err != nil {
		log.Sync()
		os.Exit(1)
	}
}
