// Command onebox runs the whole edgecache stack on one machine, in the
// foreground: a private MariaDB (data kept under -dir), a private memcached
// (its files under -dir too), the origin on 127.0.0.1:8081, the proxy on
// 127.0.0.1:8080 and the durable invalidator beside the origin, all in this
// one process. Ctrl-C stops everything it started and exits 0; if onebox is
// killed, its child processes die with it and nothing is left outside -dir.
// `make run` calls it.
//
// With -bench (`make bench`) it runs the default benchmark against the stack
// and exits: seed through the origin, then for the proxy, the origin alone,
// and nginx and Varnish in front of the origin, a short open-loop run and a
// rate sweep to find the highest rate within the latency objective; their
// comparison and the sizing plan, with the reports in the -bench folder.
// There the proxy is bin/proxy in a process of its own, so that its CPU is
// measured apart from the origin's. With -overload (`make overload`) it runs
// the origin-protection drills instead (overload.go).
//
// The proxy and the invalidator share an invalidation-lease secret
// (PROXY_PEER_SECRET, made up if unset), so that L1 hits skip memcached.
// The origin, the proxy and the invalidator read their usual ORIGIN_*,
// PROXY_* and INVALIDATOR_* variables; onebox sets their database and
// memcached addresses, the origins of the proxy (the origin it started),
// no read replicas, no drain delay (no load balancer waits), and, unless
// the variables are set, access logs to files under -dir.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
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

	"edgecache/deploy/envconfig"
	"edgecache/deploy/localstack"
	"edgecache/origin"
	"edgecache/proxy"
	"edgecache/proxy/invalidator"

	"github.com/VictoriaMetrics/metrics"
	"go.uber.org/zap"
)

// options are onebox's flags.
type options struct {
	dir           string
	memcachedMB   int
	mariadbPort   int
	memcachedPort int
	logFormat     string
	proxyProcess  bool
	bench         benchOptions
	overload      overloadOptions
}

func main() {
	var o options
	flag.StringVar(&o.dir, "dir", ".run", "run folder: the private MariaDB's data (kept between runs), memcached's files (new at every start), the access logs")
	flag.IntVar(&o.memcachedMB, "memcached-mb", 256, "memcached item memory in MiB")
	flag.IntVar(&o.mariadbPort, "mariadb-port", 0, "MariaDB's port on 127.0.0.1 (0: a free one, chosen at every start)")
	flag.IntVar(&o.memcachedPort, "memcached-port", 0, "memcached's port on 127.0.0.1 (0: a free one, chosen at every start)")
	flag.StringVar(&o.logFormat, "log-format", envconfig.FormatConsole, "application log format on stderr: console or json")
	flag.BoolVar(&o.proxyProcess, "proxy-process", false, "run the proxy in a process of its own (bin/proxy, logging to -dir/proxy.log), as it is deployed, instead of in this one with the origin and the invalidator; deploy/compare/compare.sh measures it so (always so with -bench)")
	flag.StringVar(&o.bench.out, "bench", "", "run the default benchmark against the stack, write the reports to this folder, then stop")
	flag.Float64Var(&o.bench.rate, "bench-rate", 1000, "with -bench: open-loop requests per second of the run of each target (proxy, origin, nginx, Varnish) before its sweep")
	flag.DurationVar(&o.bench.duration, "bench-duration", 20*time.Second, "with -bench: how long each of those runs schedules requests")
	flag.DurationVar(&o.bench.step, "bench-step", 8*time.Second, "with -bench: how long each step of the rate sweeps lasts")
	flag.DurationVar(&o.bench.p99, "bench-p99", 50*time.Millisecond, "with -bench: the latency objective of the sweeps (p99 at most this, no errors)")
	flag.IntVar(&o.bench.retries, "bench-retries", 3, "with -bench: a sweep step that missed the objective is run this many more times before it counts as the knee\n(bench sweep -retries): on a shared machine a neighbour's burst of a few seconds can miss any step")
	flag.StringVar(&o.overload.out, "overload", "", "run the origin-protection drills against the stack (make overload): the 100:1 mix alone, beside a cache-busting flood and beside an id scan of missing posts, the floods at -overload-factor times the origin's knee; write the reports to this folder, then stop")
	flag.Float64Var(&o.overload.knee, "overload-knee", 0, "with -overload: the origin's knee in requests/s (0: measure it first with an origin sweep, -bench-step and -bench-p99)")
	flag.Float64Var(&o.overload.factor, "overload-factor", 3, "with -overload: the floods' rate in knees")
	flag.Float64Var(&o.overload.rate, "overload-rate", 500, "with -overload: the mix's open-loop requests per second")
	flag.DurationVar(&o.overload.duration, "overload-duration", 20*time.Second, "with -overload: how long each run schedules requests")
	flag.Usage = func() {
		w := flag.CommandLine.Output()
		fmt.Fprintf(w, `usage: onebox [flags]

Runs MariaDB, memcached, the origin, the invalidator and the proxy on this
machine until Ctrl-C (make run), or the default benchmark against them
(make bench), or the origin-protection drills (make overload). The origin,
proxy and invalidator read their usual ORIGIN_*, PROXY_* and INVALIDATOR_*
variables (origin -h, proxy -h, invalidator -h);
onebox sets their database and memcached addresses, the proxy's origin, no
replicas, no drain delay, and (unless set) ORIGIN_ACCESS_LOG and
PROXY_ACCESS_LOG to files under -dir.

Flags:
`)
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 || (o.logFormat != envconfig.FormatConsole && o.logFormat != envconfig.FormatJSON) ||
		(o.bench.out != "" && o.overload.out != "") || o.bench.retries < 0 || o.overload.knee < 0 || o.overload.factor <= 0 || o.overload.rate <= 0 {
		flag.Usage()
		os.Exit(2)
	}
	o.bench.stdout = os.Stdout

	log, err := envconfig.NewLogger("info", o.logFormat)
	if err != nil {
		fmt.Fprintln(os.Stderr, "onebox:", err)
		os.Exit(2)
	}
	restore := localstack.TakeTerminal() // Ctrl-C under make: exit 0, not make's Error 1
	err = run(log, o)
	log.Sync()
	restore()
	var ps envconfig.Problems
	switch {
	case errors.As(err, &ps):
		fmt.Fprintf(os.Stderr, "onebox: bad configuration:\n  %s\n", strings.ReplaceAll(ps.Error(), "\n", "\n  "))
		os.Exit(2)
	case err != nil && !errors.Is(err, context.Canceled):
		log.Error("onebox failed", zap.Error(err))
		os.Exit(1)
	}
}

// configs are the three services' settings from the environment, with
// what onebox sets.
type configs struct {
	origin      origin.Config
	proxy       proxy.Config
	invalidator invalidator.Config
}

// loadConfigs reads the environment, reporting every problem of the three.
func loadConfigs() (configs, error) {
	var c configs
	var ps envconfig.Problems
	var err error
	collect := func(err error) {
		var p envconfig.Problems
		if errors.As(err, &p) {
			ps = append(ps, p...)
		} else if err != nil {
			ps.Addf("(environment)", "%v", err)
		}
	}
	c.origin, err = envconfig.Load[origin.Config]()
	collect(err)
	c.proxy, err = envconfig.Load[proxy.Config]()
	collect(err)
	c.invalidator, err = envconfig.Load[invalidator.Config]()
	collect(err)
	return c, ps.Err()
}

// accessLogIn points an access log at dir/name unless the variable is set.
func accessLogIn(dest *string, variable, dir, name string) {
	if _, set := os.LookupEnv(variable); !set {
		*dest = filepath.Join(dir, name)
	}
}

func run(log *zap.Logger, o options) error {
	began := time.Now()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s := &stack{}
	defer s.stop()
	if err := s.start(ctx, log, o); err != nil {
		return err
	}
	w := o.bench.stdout
	s.printReady(w, time.Since(began))
	if o.overload.out != "" {
		return runOverload(ctx, o.overload, o.bench, "http://"+s.proxyAddr, "http://"+s.origin.Addr(), s.proxyAdmin)
	}
	if o.bench.out != "" {
		others := startCompetitors(ctx, s.origin.Addr(), w)
		for _, c := range others {
			defer c.stop()
			fmt.Fprintf(w, "  %-9s http://%s   (for comparison, in front of the origin)\n", c.name, c.addr)
		}
		return runBench(ctx, o.bench, s.proxyAddr, s.proxyAdmin, s.origin, others)
	}
	fmt.Fprintf(w, `
try:
  curl -si -X POST http://%[1]s/v1/users -H 'Content-Type: application/json' -d '{"name":"ada","email":"ada@example.com"}'
  curl -si http://%[1]s/v1/users/1

Ctrl-C stops everything.
`, s.proxyAddr)
	<-ctx.Done()
	fmt.Fprintln(w, "\nstopping")
	return nil
}

// stack is the one-box stack: where each part serves, and how to stop the
// parts started so far, the last first.
type stack struct {
	db                    *localstack.MariaDB
	mc                    *localstack.Memcached
	origin                *origin.Server
	proxyAddr, proxyAdmin string
	proxyLog              string // the proxy's own log when it runs in its own process
	originAccessLog       string
	proxyAccessLog        string
	stops                 []func()
}

// start starts MariaDB, memcached, the origin, the invalidator and the
// proxy, in that order: each needs the ones before it. What started is
// stopped by stop, also when start fails part way.
func (s *stack) start(ctx context.Context, log *zap.Logger, o options) error {
	cfgs, err := loadConfigs()
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	accessLogIn(&cfgs.origin.AccessLog, "ORIGIN_ACCESS_LOG", dir, "origin-access.log")
	accessLogIn(&cfgs.proxy.AccessLog, "PROXY_ACCESS_LOG", dir, "proxy-access.log")
	s.originAccessLog, s.proxyAccessLog = cfgs.origin.AccessLog, cfgs.proxy.AccessLog

	if s.db, err = localstack.StartMariaDB(ctx, localstack.MariaDBOptions{Dir: filepath.Join(dir, "mariadb"), Port: o.mariadbPort}); err != nil {
		return err
	}
	s.onStop(s.db.Stop)
	// Under dir, not /tmp: if onebox is killed, memcached dies with it
	// (Pdeathsig) and the next start clears the folder.
	if s.mc, err = localstack.StartMemcachedAt(ctx, filepath.Join(dir, "memcached"), o.memcachedMB, o.memcachedPort); err != nil {
		return err
	}
	s.onStop(s.mc.Stop)

	ocfg := cfgs.origin
	ocfg.MySQLDSN = s.db.DSN("edgecache")
	ocfg.ReplicaDSNs = nil
	ocfg.DrainDelay = 0 // no load balancer waits to notice
	if s.origin, err = origin.Start(ocfg, log.Named("origin")); err != nil {
		return err
	}
	s.onStop(func() { shutdown(log, "origin", s.origin.Shutdown) })

	// Invalidation leases on (proxy/README.md "Leases"): one secret for the
	// proxy and the invalidator.
	secret, err := peerSecret()
	if err != nil {
		return err
	}
	// The durable invalidator beside the origin (the origin has migrated
	// the log table and its triggers): every committed change reaches
	// memcached, whichever way it was made.
	icfg := cfgs.invalidator
	icfg.MySQLDSN, icfg.Memcached = s.db.DSN("edgecache"), []string{s.mc.Addr}
	icfg.PeerSecret = secret
	// This memcached is new at every start (a new port, nothing in it),
	// while the database is kept: the membership the last start recorded
	// names a node that is gone. Forget it, so the decider starts at the
	// new node instead of changing over to it from a dead one.
	if err := forgetMembership(s.db.DSN("edgecache")); err != nil {
		return err
	}
	inv, err := invalidator.StartBackground(icfg, log.Named("invalidator"), metrics.NewSet())
	if err != nil {
		return err
	}
	s.onStop(inv.Stop)

	pcfg := cfgs.proxy
	pcfg.Origins = []string{"http://" + s.origin.Addr()}
	pcfg.Memcached = []string{s.mc.Addr}
	pcfg.PeerSecret = secret
	pcfg.DrainDelay = 0
	// The benchmark's proxy runs in its own process, so that its CPU
	// counters are its own: bench plan sizes the proxy fleet from them.
	return s.startProxy(ctx, log, pcfg, o.proxyProcess || o.bench.out != "" || o.overload.out != "", dir)
}

// startProxy starts the proxy in this process, or with ownProcess in a
// process of its own (bin/proxy) logging to dir/proxy.log.
func (s *stack) startProxy(ctx context.Context, log *zap.Logger, cfg proxy.Config, ownProcess bool, dir string) error {
	if ownProcess {
		s.proxyLog = filepath.Join(dir, "proxy.log")
		p, err := startProxyProcess(ctx, cfg, s.proxyLog)
		if err != nil {
			return err
		}
		s.onStop(p.Stop)
		s.proxyAddr, s.proxyAdmin = cfg.Listen, cfg.AdminListen
		return nil
	}
	psrv, err := proxy.Start(cfg, log.Named("proxy"))
	if err != nil {
		return err
	}
	s.onStop(func() { shutdown(log, "proxy", psrv.Shutdown) })
	s.proxyAddr, s.proxyAdmin = psrv.Addr(), psrv.AdminAddr()
	return nil
}

// onStop adds f to what stop does first.
func (s *stack) onStop(f func()) { s.stops = append(s.stops, f) }

// stop stops what start started, the last first.
func (s *stack) stop() {
	for i := len(s.stops) - 1; i >= 0; i-- {
		s.stops[i]()
	}
}

// peerSecret is PROXY_PEER_SECRET, or one made up when it is not set.
func peerSecret() (string, error) {
	if secret := os.Getenv("PROXY_PEER_SECRET"); secret != "" {
		return secret, nil
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// printReady is the banner: where each part of the stack serves, and its
// logs.
func (s *stack) printReady(w io.Writer, took time.Duration) {
	fmt.Fprintf(w, `
edgecache is running (ready in %[8]s):
  proxy     http://%[1]s   the API, /v1/...   (admin: http://%[2]s/metrics, /readyz)
  origin    http://%[3]s   (its /metrics, /readyz are not served by the proxy)
  mariadb   %[4]s
  memcached %[5]s
  logs      access logs: %[6]s, %[7]s`, s.proxyAddr, s.proxyAdmin, s.origin.Addr(), s.db.DSN("edgecache"), s.mc.Addr,
		logName(s.proxyAccessLog), logName(s.originAccessLog), took.Round(100*time.Millisecond))
	if s.proxyLog != "" {
		fmt.Fprintf(w, "; the proxy's own log: %s", logName(s.proxyLog))
	}
	fmt.Fprint(w, "\n")
}

// logName is how the banner names an access log destination.
func logName(dest string) string {
	wd, err := os.Getwd()
	if !strings.Contains(dest, "/") || err != nil {
		return dest
	}
	if rel, err := filepath.Rel(wd, dest); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return dest
}

// benchOptions is the default benchmark `make bench` runs (-bench).
type benchOptions struct {
	out      string        // report folder
	rate     float64       // open-loop requests per second of each target's run
	duration time.Duration // schedule length of those runs
	step     time.Duration // length of one step of a rate sweep
	p99      time.Duration // the sweeps' latency objective
	retries  int           // more attempts of a sweep step that missed
	stdout   io.Writer     // the terminal
}

// runBench runs bin/bench (built by make) against the stack and prints
// where the reports are:
//
//  1. seed through the origin (reused when bench/out/seed.json matches);
//  2. for each target in turn, the proxy ("proxy"), the origin alone
//     ("origin"), and nginx's proxy_cache ("nginx") and Varnish ("varnish")
//     in front of the origin (competitors.go; left out when not
//     installed), whose stale reads the read-after-write check counts:
//     a run of the 100:1 mix at -bench-rate (from a cold cache: memcached
//     starts empty with the stack), then at once a rate sweep ("NAME-sweep"),
//     open-loop steps of -bench-step from 500 requests/s, each 1.5 times
//     the last, until a step misses the objective (-bench-p99, no
//     errors) 1 + -bench-retries times in a row: the highest rate within
//     it is how much the target can do here, measured with the cache the
//     run warmed;
//  3. compare: the capacity table of the four sweeps on stdout and
//     bench/out/index.html, the sweeps first, then the runs;
//  4. plan: bench/out/plan.txt, sized from the proxy's and the origin's
//     sweeps when they found their knee.
//
// Writes sent past the proxy (to the origin, nginx or Varnish) reach
// memcached through the durable invalidator, so the proxy serves none of
// them stale later. The seed file carries the acknowledged versions and
// post counts from each step to the next, for the read-after-write check.
func runBench(ctx context.Context, o benchOptions, proxyAddr, proxyAdmin string, osrv *origin.Server, others []*competitor) error {
	bench := filepath.Join("bin", "bench")
	if _, err := os.Stat(bench); err != nil {
		return fmt.Errorf("%s missing (run make build): %w", bench, err)
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	steps, reports := benchSteps(o, "http://"+osrv.Addr(), "http://"+proxyAddr, proxyAdmin, others)
	for _, st := range steps {
		if err := runBenchStep(ctx, bench, st, o.stdout); err != nil {
			return err
		}
	}
	fmt.Fprintf(o.stdout, "\nbenchmark reports (open the first in a browser):\n")
	for _, p := range reports {
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

// benchStep is one bin/bench command of the benchmark.
type benchStep struct {
	args []string
	save string // also write the step's output to this file
}

// benchSteps is the benchmark's bin/bench commands in order (runBench), and
// the reports they write, the comparison page first.
func benchSteps(o benchOptions, originURL, proxyURL, proxyAdmin string, others []*competitor) (steps []benchStep, reports []string) {
	seedFile := filepath.Join(o.out, "seed.json")
	metrics := "origin=" + originURL + "/metrics,proxy=http://" + proxyAdmin + "/metrics"
	common := func(name, target, metrics string) []string {
		return []string{"-name", name, "-target", target, "-seed-target", originURL, "-seed-file", seedFile,
			"-out", o.out, "-mix", "100:1", "-popularity", "zipf", "-metrics", metrics}
	}
	runArgs := func(name, target, metrics string) []string {
		return append(append([]string{"run"}, common(name, target, metrics)...),
			"-rate", strconv.FormatFloat(o.rate, 'f', -1, 64), "-duration", o.duration.String())
	}
	sweepArgs := func(name, target, metrics string) []string {
		return append(append([]string{"sweep"}, common(name, target, metrics)...), "-step", o.step.String(), "-p99", o.p99.String(),
			"-retries", strconv.Itoa(o.retries))
	}
	report := func(name string) string { return filepath.Join(o.out, name) }
	index := report("index.html")
	planFile := report("plan.txt")
	// Each target's run, then at once its sweep: the run warms the cache
	// (entries live 60 s), so every sweep starts warm. nginx and Varnish
	// are measured by the origin's counters.
	type target struct{ name, url, metrics string }
	targets := []target{{"proxy", proxyURL, metrics}, {"origin", originURL, metrics}}
	for _, c := range others {
		targets = append(targets, target{c.name, "http://" + c.addr, "origin=" + originURL + "/metrics"})
	}
	steps = []benchStep{{args: []string{"seed", "-target", originURL, "-seed-file", seedFile}}}
	var compared, sweeps []string
	for _, t := range targets {
		steps = append(steps, benchStep{args: runArgs(t.name, t.url, t.metrics)}, benchStep{args: sweepArgs(t.name+"-sweep", t.url, t.metrics)})
		compared = append(compared, report(t.name+".json"))
		sweeps = append(sweeps, report(t.name+"-sweep.json"))
	}
	// The origin first: the comparison's ratios are to it.
	compared[0], compared[1] = compared[1], compared[0]
	steps = append(steps, []benchStep{
		{args: append([]string{"compare", "-html", index, "-sweeps", strings.Join(sweeps, ",")}, compared...)},
		{args: []string{"plan", "-proxy-sweep", report("proxy-sweep.json"), "-origin-sweep", report("origin-sweep.json"),
			report("proxy.json"), report("origin.json")}, save: planFile},
	}...)

	reports = []string{index}
	for _, sw := range sweeps {
		reports = append(reports, strings.TrimSuffix(sw, ".json")+".html")
	}
	for _, c := range compared {
		reports = append(reports, strings.TrimSuffix(c, ".json")+".html")
	}
	reports = append(reports, append(append(compared, sweeps...), planFile)...)
	return steps, reports
}

// runBenchStep runs bench with st's arguments, its output on stdout (and
// in st.save).
func runBenchStep(ctx context.Context, bench string, st benchStep, stdout io.Writer) error {
	fmt.Fprintf(stdout, "\n$ %s %s\n", bench, strings.Join(st.args, " "))
	cmd := exec.CommandContext(ctx, bench, st.args...)
	cmd.Stdout, cmd.Stderr = stdout, os.Stderr
	// On Ctrl-C let bench finish its report of what it measured.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	var saved bytes.Buffer
	if st.save != "" {
		cmd.Stdout = io.MultiWriter(stdout, &saved)
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("bench %s: %w", st.args[0], err)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if st.save != "" {
		return os.WriteFile(st.save, saved.Bytes(), 0o644)
	}
	return nil
}

// startProxyProcess starts bin/proxy (built by make) with cfg's origins and
// memcached, its output in logPath, and waits until its /readyz answers.
// Its Stop drains at once: no load balancer is waiting to notice.
func startProxyProcess(ctx context.Context, cfg proxy.Config, logPath string) (*localstack.Process, error) {
	p, err := localstack.StartProcess(logPath, []string{"PROXY_ORIGINS=" + strings.Join(cfg.Origins, ","),
		"PROXY_MEMCACHED=" + strings.Join(cfg.Memcached, ","), "PROXY_DRAIN_DELAY=0s", "PROXY_ACCESS_LOG=" + cfg.AccessLog,
		"PROXY_PEER_SECRET=" + cfg.PeerSecret},
		filepath.Join("bin", "proxy"))
	if err != nil {
		return nil, fmt.Errorf("%w (run make build)", err)
	}
	ready := "http://" + cfg.AdminListen + "/readyz"
	err = p.WaitReady(ctx, 30*time.Second, 50*time.Millisecond, func() error {
		resp, err := http.Get(ready)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s answered %s", ready, resp.Status)
		}
		return nil
	})
	if err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

func shutdown(log *zap.Logger, name string, f func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := f(ctx); err != nil {
		log.Warn("shutdown", zap.String("service", name), zap.Error(err))
	}
}

// forgetMembership empties the memcached membership tables (origin
// migration 0004).
func forgetMembership(dsn string) error {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	for _, table := range []string{"memcached_generations", "memcached_desired"} {
		if _, err := db.Exec("DELETE FROM " + table); err != nil {
			return fmt.Errorf("forgetting the memcached membership: %w", err)
		}
	}
	return nil
}
