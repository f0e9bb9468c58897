// Command onebox runs the whole edgecache stack on one machine, in the
// foreground: a private MariaDB (data kept under -dir), a private memcached,
// the origin on 127.0.0.1:8081 and the proxy on 127.0.0.1:8080. Ctrl-C stops
// everything it started. `make run` calls it; `make bench` calls it with
// -bench to run the default benchmark against the stack and exit.
//
// The origin and the proxy read their usual ORIGIN_* and PROXY_* variables;
// onebox only points them at the private MariaDB and memcached.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"edgecache/deploy/localstack"
	"edgecache/origin"
	"edgecache/proxy"

	"go.uber.org/zap"
)

func main() {
	dir := flag.String("dir", ".run", "folder for the private MariaDB's data (kept between runs)")
	memcachedMB := flag.Int("memcached-mb", 256, "memcached item memory in MiB")
	benchOut := flag.String("bench", "", "run the default benchmark against the stack, write the report to this folder, then stop")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: onebox [flags]\n\nRuns MariaDB, memcached, the origin and the proxy on this machine until Ctrl-C.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()

	log, _ := zap.NewDevelopment()
	if err := run(log, *dir, *memcachedMB, *benchOut); err != nil {
		log.Error("onebox failed", zap.Error(err))
		os.Exit(1)
	}
}

func run(log *zap.Logger, dir string, memcachedMB int, benchOut string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	db, err := localstack.StartMariaDB(ctx, localstack.MariaDBOptions{Dir: filepath.Join(dir, "mariadb")})
	if err != nil {
		return err
	}
	defer db.Stop()
	mc, err := localstack.StartMemcached(ctx, memcachedMB)
	if err != nil {
		return err
	}
	defer mc.Stop()

	ocfg, err := origin.LoadConfig()
	if err != nil {
		return err
	}
	ocfg.MySQLDSN = db.DSN("edgecache")
	ocfg.ReplicaDSNs = nil
	osrv, err := origin.Start(ocfg, log.Named("origin"))
	if err != nil {
		return err
	}
	defer shutdown(log, "origin", osrv.Shutdown)

	pcfg, err := proxy.LoadConfig()
	if err != nil {
		return err
	}
	pcfg.Origins = []string{"http://" + osrv.Addr()}
	pcfg.Memcached = []string{mc.Addr}
	psrv, err := proxy.Start(pcfg, log.Named("proxy"))
	if err != nil {
		return err
	}
	defer shutdown(log, "proxy", psrv.Shutdown)

	fmt.Printf(`
edgecache is running:
  proxy   http://%[1]s        (admin, metrics: http://%[2]s/metrics)
  origin  http://%[3]s        (metrics: http://%[3]s/metrics)
  mariadb %[4]s
  memcached %[5]s

try:
  curl -si -X POST http://%[1]s/v1/users -H 'Content-Type: application/json' -d '{"name":"ada","email":"ada@example.com"}'
  curl -si http://%[1]s/v1/users/1

Ctrl-C stops everything.
`, psrv.Addr(), psrv.AdminAddr(), osrv.Addr(), db.DSN("edgecache"), mc.Addr)

	if benchOut != "" {
		return runBench(ctx, benchOut, psrv, osrv)
	}
	<-ctx.Done()
	fmt.Println("\nstopping")
	return nil
}

// runBench runs bin/bench (built by make) against the stack.
func runBench(ctx context.Context, out string, psrv *proxy.Proxy, osrv *origin.Server) error {
	bench := filepath.Join("bin", "bench")
	steps := [][]string{
		{"seed", "-target", "http://" + osrv.Addr(), "-seed-file", filepath.Join(out, "seed.json")},
	}
	for _, args := range steps {
		cmd := exec.CommandContext(ctx, bench, args...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("bench %v: %w", args, err)
		}
	}
	return nil
}

func shutdown(log *zap.Logger, name string, f func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := f(ctx); err != nil {
		log.Warn("shutdown", zap.String("service", name), zap.Error(err))
	}
}
