// Command onebox runs the whole edgecache stack on one machine, in the
// foreground: a private MariaDB (data kept under -dir), a private memcached
// (its files under -dir too), the origin on 127.0.0.1:8081 and the proxy on
// 127.0.0.1:8080, and the durable invalidator beside the origin. Ctrl-C
// stops everything it started; if onebox is killed, its child processes die
// with it and nothing is left outside -dir. `make run` calls it; `make
// bench` calls it with
// -bench to run the default benchmark against the stack and exit: seed
// through the origin, a short open-loop run through the proxy, the same run
// straight against the origin, their comparison and the sizing plan, with
// the reports in the -bench folder (-bench-rate and -bench-duration shape
// the runs; `make bench BENCH_FLAGS="-bench-rate 2000"`). With -bench the
// proxy is bin/proxy in a process of its own, so that its CPU is measured
// apart from the origin's.
//
// The proxy and the invalidator share an invalidation-lease secret
// (PROXY_PEER_SECRET, made up if unset), so that L1 hits skip memcached.
// The origin, the proxy and the invalidator read their usual ORIGIN_*,
// PROXY_* and INVALIDATOR_* variables; onebox only points them at the
// private MariaDB and memcached.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"edgecache/deploy/localstack"
	"edgecache/origin"
	"edgecache/proxy"
	"edgecache/proxy/invalidator"

	"github.com/VictoriaMetrics/metrics"
	"go.uber.org/zap"
)

func main() {
	dir := flag.String("dir", ".run", "run folder: the private MariaDB's data (kept between runs), memcached's files (new at every start), bench logs")
	memcachedMB := flag.Int("memcached-mb", 256, "memcached item memory in MiB")
	benchOut := flag.String("bench", "", "run the default benchmark against the stack, write the report to this folder, then stop")
	benchRate := flag.Float64("bench-rate", 1000, "with -bench: open-loop requests per second of each run (proxy, then origin)")
	benchDuration := flag.Duration("bench-duration", 20*time.Second, "with -bench: how long each run schedules requests")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: onebox [flags]\n\nRuns MariaDB, memcached, the origin and the proxy on this machine until Ctrl-C.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()

	log, _ := zap.NewDevelopment()
	bench := benchOptions{out: *benchOut, rate: *benchRate, duration: *benchDuration, stdout: os.Stdout}
	if err := run(log, *dir, *memcachedMB, bench); err != nil {
		log.Error("onebox failed", zap.Error(err))
		os.Exit(1)
	}
}

func run(log *zap.Logger, dir string, memcachedMB int, bench benchOptions) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	accessLog := ""
	if bench.out != "" {
		// The origin's and the proxy's access logs (one line per request,
		// on stdout) stay on, as in production, but go to a file so that
		// the benchmark's tables can be read on the terminal.
		accessLog = filepath.Join(dir, "bench-access.log")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		f, err := os.Create(accessLog)
		if err != nil {
			return err
		}
		defer f.Close()
		os.Stdout = f
		defer func() { os.Stdout = bench.stdout }()
	}

	db, err := localstack.StartMariaDB(ctx, localstack.MariaDBOptions{Dir: filepath.Join(dir, "mariadb")})
	if err != nil {
		return err
	}
	defer db.Stop()
	// Under dir, not /tmp: if onebox is killed, memcached dies with it
	// (Pdeathsig) and the next start clears the folder.
	mc, err := localstack.StartMemcachedIn(ctx, filepath.Join(dir, "memcached"), memcachedMB)
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

	// The durable invalidator beside the origin (the origin has migrated
	// the log table and its triggers): every committed change reaches
	// memcached, whichever way it was made.
	icfg, err := invalidator.LoadConfig()
	if err != nil {
		return err
	}
	icfg.MySQLDSN, icfg.Memcached = db.DSN("edgecache"), []string{mc.Addr}
	// Invalidation leases on (README "Leases"): one secret for the proxy
	// and the invalidator, made up here unless PROXY_PEER_SECRET is set.
	secret := os.Getenv("PROXY_PEER_SECRET")
	if secret == "" {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		secret = hex.EncodeToString(b[:])
	}
	icfg.PeerSecret = secret
	inv, err := invalidator.StartBackground(icfg, log.Named("invalidator"), metrics.NewSet())
	if err != nil {
		return err
	}
	defer inv.Stop()

	pcfg, err := proxy.LoadConfig()
	if err != nil {
		return err
	}
	pcfg.Origins = []string{"http://" + osrv.Addr()}
	pcfg.Memcached = []string{mc.Addr}
	pcfg.PeerSecret = secret
	proxyAddr, proxyAdmin := pcfg.Listen, pcfg.AdminListen
	if bench.out != "" {
		// The benchmark's proxy runs in its own process (bin/proxy), so
		// that its CPU counters are its own: bench plan sizes the proxy
		// fleet from them.
		proxyLog := filepath.Join(dir, "bench-proxy.log")
		p, err := startProxyProcess(ctx, pcfg, proxyLog)
		if err != nil {
			return err
		}
		defer p.Stop()
		fmt.Fprintf(bench.stdout, "benchmark: the proxy's logs go to %s\n", proxyLog)
	} else {
		psrv, err := proxy.Start(pcfg, log.Named("proxy"))
		if err != nil {
			return err
		}
		defer shutdown(log, "proxy", psrv.Shutdown)
		proxyAddr, proxyAdmin = psrv.Addr(), psrv.AdminAddr()
	}

	fmt.Fprintf(bench.stdout, `
edgecache is running:
  proxy   http://%[1]s        (admin, metrics: http://%[2]s/metrics)
  origin  http://%[3]s        (metrics: http://%[3]s/metrics)
  mariadb %[4]s
  memcached %[5]s

try:
  curl -si -X POST http://%[1]s/v1/users -H 'Content-Type: application/json' -d '{"name":"ada","email":"ada@example.com"}'
  curl -si http://%[1]s/v1/users/1

Ctrl-C stops everything.
`, proxyAddr, proxyAdmin, osrv.Addr(), db.DSN("edgecache"), mc.Addr)

	if bench.out != "" {
		fmt.Fprintf(bench.stdout, "benchmark: the access logs go to %s\n", accessLog)
		return runBench(ctx, bench, proxyAddr, proxyAdmin, osrv)
	}
	<-ctx.Done()
	fmt.Println("\nstopping")
	return nil
}

// benchOptions is the default benchmark `make bench` runs (-bench).
type benchOptions struct {
	out      string        // report folder
	rate     float64       // open-loop requests per second of each run
	duration time.Duration // schedule length of each run
	stdout   *os.File      // the terminal (os.Stdout goes to the access log meanwhile)
}

// runBench runs bin/bench (built by make) against the stack: seed through
// the origin, one run through the proxy and one straight against the
// origin, the comparison and the sizing plan; then it prints where the
// reports are.
//
// The proxy run goes first: memcached was started
// empty with this stack, so it starts from a cold cache that has seen no
// write it was not told about. The origin run comes after it and goes to
// the origin only, so it neither warms nor confuses the proxy's cache for a
// later measurement (the stack stops right after). The seed file carries
// the acknowledged versions and post counts of each run to the next one.
func runBench(ctx context.Context, o benchOptions, proxyAddr, proxyAdmin string, osrv *origin.Server) error {
	bench := filepath.Join("bin", "bench")
	if _, err := os.Stat(bench); err != nil {
		return fmt.Errorf("%s missing (run make build): %w", bench, err)
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	originURL := "http://" + osrv.Addr()
	proxyURL := "http://" + proxyAddr
	seedFile := filepath.Join(o.out, "seed.json")
	metrics := "origin=" + originURL + "/metrics,proxy=http://" + proxyAdmin + "/metrics"
	runArgs := func(name, target string) []string {
		return []string{"run", "-name", name, "-target", target,
			"-seed-target", originURL, "-seed-file", seedFile, "-out", o.out,
			"-rate", strconv.FormatFloat(o.rate, 'f', -1, 64), "-duration", o.duration.String(),
			"-mix", "100:1", "-popularity", "zipf", "-metrics", metrics}
	}
	report := func(name string) string { return filepath.Join(o.out, name) }
	index := report("index.html")
	planFile := report("plan.txt")
	steps := []struct {
		args []string
		save string // also write the step's output to this file
	}{
		{args: []string{"seed", "-target", originURL, "-seed-file", seedFile}},
		{args: runArgs("proxy", proxyURL)},
		// The proxy's capacity: a saturating closed-loop run, whose CPU per
		// request is the work, not the wake-ups of a light load.
		{args: append(runArgs("proxy-max", proxyURL), "-rate", "0", "-connections", "64", "-duration", "10s")},
		{args: runArgs("origin", originURL)},
		{args: []string{"compare", "-html", index, report("proxy.json"), report("origin.json")}},
		{args: []string{"plan", "-proxy-capacity-run", report("proxy-max.json"), report("proxy.json"), report("origin.json")}, save: planFile},
	}
	for _, st := range steps {
		fmt.Fprintf(o.stdout, "\n$ %s %s\n", bench, strings.Join(st.args, " "))
		cmd := exec.CommandContext(ctx, bench, st.args...)
		cmd.Stdout, cmd.Stderr = o.stdout, os.Stderr
		// On Ctrl-C let bench finish its report of what it measured.
		cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
		cmd.WaitDelay = 30 * time.Second
		var saved bytes.Buffer
		if st.save != "" {
			cmd.Stdout = io.MultiWriter(o.stdout, &saved)
		}
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("bench %s: %w", st.args[0], err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if st.save != "" {
			if err := os.WriteFile(st.save, saved.Bytes(), 0o644); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(o.stdout, "\nbenchmark reports:\n")
	for _, p := range []string{index, report("proxy.html"), report("proxy.json"), report("proxy-max.html"), report("proxy-max.json"),
		report("origin.html"), report("origin.json"), planFile} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("report missing: %w", err)
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			abs = p
		}
		fmt.Fprintf(o.stdout, "  %s\n", abs)
	}
	return nil
}

// startProxyProcess starts bin/proxy (built by make) with cfg's origins and
// memcached, its output in logPath, and waits until its /readyz answers.
// Its Stop drains at once: no load balancer is waiting to notice.
func startProxyProcess(ctx context.Context, cfg proxy.Config, logPath string) (*localstack.Process, error) {
	p, err := localstack.StartProcess(logPath, []string{"PROXY_ORIGINS=" + strings.Join(cfg.Origins, ","),
		"PROXY_MEMCACHED=" + strings.Join(cfg.Memcached, ","), "PROXY_DRAIN_DELAY=0s", "PROXY_PEER_SECRET=" + cfg.PeerSecret},
		filepath.Join("bin", "proxy"))
	if err != nil {
		return nil, fmt.Errorf("%w (run make build)", err)
	}
	ready := "http://" + cfg.AdminListen + "/readyz"
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := http.Get(ready); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case <-p.Exited():
			return nil, fmt.Errorf("bin/proxy exited during start-up:\n%s", p.Tail())
		case <-ctx.Done():
			p.Stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.Stop()
			return nil, fmt.Errorf("bin/proxy: %s did not answer 200 within 30s:\n%s", ready, p.Tail())
		}
	}
}

func shutdown(log *zap.Logger, name string, f func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := f(ctx); err != nil {
		log.Warn("shutdown", zap.String("service", name), zap.Error(err))
	}
}
