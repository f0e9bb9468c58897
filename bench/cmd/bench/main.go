// Command bench load-tests edgecache (or any cache in front of its origin):
// seed data, run the 100:1 workload, compare runs, and size a fleet from a
// run. Run `bench -h` or `bench SUBCOMMAND -h` for the flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"edgecache/bench"
)

const usage = `bench: the edgecache load-test harness.

Usage:
  bench seed    [flags]              create users and posts through the API, save them to a seed file
  bench run     [flags]              run the workload (seeding first if the seed file is missing or stale)
  bench sweep   [flags]              the workload at rising rates until p99 misses the objective: how much it can do
  bench compare [-html FILE] [-sweeps S.json,…] A.json B.json …   runs side by side, with ratios to the first
  bench plan    [flags] RUN.json     size the fleet for 10 M users from a run's measured figures

Each subcommand takes -h. Reports go to -out (bench/out): NAME.json (every
figure and the full configuration), NAME.html (offline, charts embedded) and
NAME-*.png.
`

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		fmt.Fprint(os.Stderr, usage)
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "seed":
		err = seedCmd(ctx, args)
	case "run":
		err = runCmd(ctx, args)
	case "sweep":
		err = sweepCmd(ctx, args)
	case "compare":
		err = compareCmd(args)
	case "plan":
		err = planCmd(args)
	default:
		fmt.Fprintf(os.Stderr, "bench: unknown subcommand %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// seedFlags are shared by seed and run (run seeds when it must).
type seedFlags struct {
	target      *string
	users       *int
	posts       *int
	file        *string
	connections *int
}

func addSeedFlags(fs *flag.FlagSet, withTarget bool) seedFlags {
	target := new(string)
	if withTarget {
		target = fs.String("seed-target", "", "base URL to seed through if seeding is needed (default: the first -target)")
	}
	return seedFlags{
		target:      target,
		users:       fs.Int("users", 1000, "users to seed"),
		posts:       fs.Int("posts", 10000, "posts to seed (post i belongs to user i mod -users)"),
		file:        fs.String("seed-file", "bench/out/seed.json", "seed file: users' ids and tokens, post ids; reused when it exists, has the same -users/-posts/-body-bytes and still matches the target's data"),
		connections: fs.Int("seed-connections", 32, "parallel requests while seeding"),
	}
}

func (s seedFlags) config(target string, bodyBytes int, timeout time.Duration) bench.SeedConfig {
	if *s.target != "" {
		target = *s.target
	}
	return bench.SeedConfig{Target: target, Users: *s.users, Posts: *s.posts, BodyBytes: bodyBytes,
		Connections: *s.connections, Timeout: timeout, File: *s.file}
}

func newFlagSet(name, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "%s\n\nFlags:\n", summary)
		fs.PrintDefaults()
	}
	return fs
}

func seedCmd(ctx context.Context, args []string) error {
	fs := newFlagSet("seed", "bench seed [flags]: create -users users and -posts posts with -body-bytes bodies through the\norigin API, in parallel with a progress bar, and save ids and tokens to -seed-file.\nAn existing seed file is reused when it matches (use a new -seed-file to force a fresh seed).")
	target := fs.String("target", "http://127.0.0.1:8081", "base URL to seed through (the origin, or the proxy)")
	bodyBytes := fs.Int("body-bytes", 1024, "post body size in bytes (the origin accepts up to 1024)")
	timeout := fs.Duration("timeout", 10*time.Second, "per request")
	sf := addSeedFlags(fs, false)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := sf.config(*target, *bodyBytes, *timeout)
	start := time.Now()
	s, reused, err := bench.LoadOrSeed(ctx, cfg, os.Stderr)
	if err != nil {
		return err
	}
	verb := "seeded"
	if reused {
		verb = "reused"
	}
	fmt.Printf("%s %d users and %d posts (%s) in %s: %s\n", verb, len(s.Users), len(s.Posts), s.Tag, time.Since(start).Round(time.Millisecond), cfg.File)
	return nil
}

// workloadFlags are the flags of run and sweep that shape the workload.
type workloadFlags struct {
	cfg                                  *bench.RunConfig
	targets, spike, mix, readMix, writes *string
	metrics                              *string
	procs                                *int
	cpuProfile                           *string
	seed                                 seedFlags
}

func addWorkloadFlags(fs *flag.FlagSet, d *bench.RunConfig) workloadFlags {
	w := workloadFlags{cfg: d}
	w.targets = fs.String("target", strings.Join(d.Targets, ","), "comma-separated base URLs; requests are spread round-robin like a load balancer")
	fs.IntVar(&d.Connections, "connections", d.Connections, "connections (= concurrent requests) per target; in open loop the most in flight")
	fs.DurationVar(&d.Timeout, "timeout", d.Timeout, "per request; a timeout counts as an error")
	fs.DurationVar(&d.Drain, "drain", d.Drain, "after the schedule ends, how long queued requests may still be sent; the rest count as not sent")
	fs.DurationVar(&d.Warmup, "warmup", d.Warmup, "the start of the run left out of the steady-state hit ratio (at most half the run)")
	w.mix = fs.String("mix", "100:1", "reads:writes")
	w.readMix = fs.String("read-mix", d.ReadMix.String(), "weights of the read kinds: a post, a user's first page of posts, a user's profile; and attacks: bust (a post with a random query string), missing (an id scan of posts that do not exist, 404)")
	w.writes = fs.String("write-mix", d.WriteMix.String(), "weights of the write kinds: edit a post (PUT, owner's token), create a post (POST)")
	fs.IntVar(&d.BodyBytes, "body-bytes", d.BodyBytes, "body size of seeded, edited and new posts")
	fs.IntVar(&d.ListLimit, "list-limit", d.ListLimit, "?limit= of list reads")
	fs.StringVar(&d.Popularity, "popularity", d.Popularity, "key popularity: zipf or uniform")
	fs.Float64Var(&d.ZipfS, "zipf-s", d.ZipfS, "Zipf exponent, > 1 (higher: hotter hot keys)")
	fs.Uint64Var(&d.Seed, "seed", d.Seed, "random seed: the same seed draws the same request sequence")
	w.metrics = fs.String("metrics", "", "Prometheus endpoints scraped before and after, NAME=URL,…; name them origin and proxy, e.g.\norigin=http://127.0.0.1:8081/metrics,proxy=http://127.0.0.1:8082/metrics")
	fs.StringVar(&d.OutDir, "out", d.OutDir, "report folder")
	fs.StringVar(&d.Name, "name", d.Name, "report name: OUT/NAME.json, NAME.html, NAME-*.png")
	w.procs = fs.Int("procs", 1, "cores the generator may use at once (GOMAXPROCS; 0: all). One wastes no CPU waking a second\n"+
		"to share a request's work, and leaves the others to the target on one box; the report warns when one is the limit")
	w.cpuProfile = fs.String("cpuprofile", "", "write the generator's CPU profile over the run(s) to this file, for go tool pprof")
	w.spike = new(string)
	w.seed = addSeedFlags(fs, true)
	return w
}

// startProfile starts the CPU profile if -cpuprofile asks for one; stop
// ends it and writes the file.
func (w workloadFlags) startProfile() (stop func() error, err error) {
	if *w.cpuProfile == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(*w.cpuProfile)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

// apply parses the workload flags' values into the configuration.
func (w workloadFlags) apply() error {
	d := w.cfg
	var err error
	d.Targets = strings.Split(*w.targets, ",")
	if d.Spike, err = bench.ParseSpike(*w.spike); err != nil {
		return err
	}
	if d.Reads, d.Writes, err = bench.ParseMix(*w.mix); err != nil {
		return err
	}
	rw, err := bench.ParseWeights(*w.readMix, "post", "list", "profile", "bust", "missing")
	if err != nil {
		return err
	}
	d.ReadMix = bench.ReadMix{Post: rw["post"], List: rw["list"], Profile: rw["profile"], Bust: rw["bust"], Missing: rw["missing"]}
	ww, err := bench.ParseWeights(*w.writes, "edit", "create")
	if err != nil {
		return err
	}
	d.WriteMix = bench.WriteMix{Edit: ww["edit"], Create: ww["create"]}
	if d.Metrics, err = bench.ParseMetricsSources(*w.metrics); err != nil {
		return err
	}
	d.SeedFile = *w.seed.file
	if *w.procs < 0 {
		return fmt.Errorf("-procs %d: want 0 (all cores) or more", *w.procs)
	}
	if *w.procs > 0 { // before anything runs
		runtime.GOMAXPROCS(*w.procs)
	}
	return nil
}

func runCmd(ctx context.Context, args []string) error {
	d := bench.DefaultRunConfig()
	fs := newFlagSet("run", `bench run [flags]: drive the read/write mix against -target and report.

Open loop (-rate > 0): requests are due at fixed intervals and latency counts
from the due time, so a stalled target shows in the percentiles. Closed loop
(-rate 0): each of -connections workers sends its next request when the last
one is answered, for maximum throughput. Every read is checked against the
writes acknowledged before it was sent (stale reads, per read kind); the seed
file carries acknowledged versions from run to run. A cache that did not see
writes sent straight to the origin in an earlier run rightly shows stale reads
until its entries expire.`)
	fs.Float64Var(&d.Rate, "rate", d.Rate, "open loop: requests per second (spread over all targets); 0 = closed loop")
	fs.DurationVar(&d.Duration, "duration", d.Duration, "how long to schedule requests (0 with -requests: until that many)")
	fs.Int64Var(&d.Requests, "requests", d.Requests, "stop after this many requests; 0 = no limit")
	w := addWorkloadFlags(fs, &d)
	w.spike = fs.String("spike", "", "open-loop rate profile LENGTH@FACTORx/EVERY, e.g. 5s@3x/30s: the last 5 s of every 30 s at 3× -rate")
	attack := fs.String("attack", "", "open loop: a flood KIND=RATE beside the mix, bust (a post with a random query string) or missing\n(an id scan of posts that do not exist), RATE requests/s on its own schedule and connections, e.g. missing=7500")
	attackConns := fs.Int("attack-connections", 256, "with -attack: the attack's connections per target, apart from the mix's")
	attackFrom := fs.String("attack-from", "", "with -attack: the address the attack's connections come from, so that the target sees another client (per-client budgets); on loopback any 127.0.0.0/8 address; empty: the system's choice")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if d.Attack, err = bench.ParseAttack(*attack); err != nil {
		return err
	}
	d.Attack.Connections, d.Attack.From = *attackConns, *attackFrom
	if fs.NArg() > 0 {
		return fmt.Errorf("run: unexpected arguments %q", fs.Args())
	}
	if err := w.apply(); err != nil {
		return err
	}
	if err := d.Validate(); err != nil {
		return err
	}

	seedCfg := w.seed.config(d.Targets[0], d.BodyBytes, d.Timeout)
	seed, reused, err := bench.LoadOrSeed(ctx, seedCfg, os.Stderr)
	if err != nil {
		return err
	}
	stopProfile, err := w.startProfile()
	if err != nil {
		return err
	}
	res, err := bench.Run(ctx, d, seed, os.Stderr)
	if err := errors.Join(err, stopProfile()); err != nil {
		return err
	}
	res.SeedInfo.Reused = reused
	// The seed carries the acknowledged versions and counts to the next run.
	if err := seed.Save(seedCfg.File); err != nil {
		return err
	}
	res.WriteText(os.Stdout)
	paths, err := bench.WriteReport(res, d.OutDir)
	if err != nil {
		return err
	}
	fmt.Printf("report: %s\n", strings.Join(paths, " "))
	return nil
}

func sweepCmd(ctx context.Context, args []string) error {
	d := bench.DefaultRunConfig()
	d.Name, d.Connections = "sweep", 128
	fs := newFlagSet("sweep", `bench sweep [flags]: how much can the target do? The workload of bench run, open
loop, at each of -rates in turn for -step each, until a step misses the
objective (-p99, -max-errors, -min-delivered) -retries+1 times in a row: the
highest rate that met it is the answer, and the step that missed is the knee. A sweep that never missed
says so: its highest rate is only a lower bound. bench plan sizes the fleet
from a sweep that found its knee (-proxy-sweep, -origin-sweep).`)
	cfg := bench.SweepConfig{Step: 8 * time.Second, P99: 50 * time.Millisecond, MinDelivered: 0.95, Retries: 1}
	rates := fs.String("rates", "", "comma-separated rising rates, requests/s (default: 500, ×1.5 each step, up to 128000)")
	fs.DurationVar(&cfg.Step, "step", cfg.Step, "how long each step schedules requests")
	fs.DurationVar(&cfg.P99, "p99", cfg.P99, "objective: p99 latency at most this (from the scheduled send time)")
	fs.Float64Var(&cfg.MaxErrorRatio, "max-errors", 0, "objective: errors at most this share of a step's requests")
	fs.Float64Var(&cfg.MinDelivered, "min-delivered", cfg.MinDelivered, "objective: at least this share of the scheduled rate answered")
	fs.IntVar(&cfg.Retries, "retries", cfg.Retries, "a step that missed the objective is run this many more times before it counts as the knee (one stall of another process can miss a p99 bound)")
	w := addWorkloadFlags(fs, &d)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("sweep: unexpected arguments %q", fs.Args())
	}
	if err := w.apply(); err != nil {
		return err
	}
	cfg.Rates = bench.DefaultSweepRates()
	if *rates != "" {
		cfg.Rates = nil
		for _, r := range strings.Split(*rates, ",") {
			v, err := strconv.ParseFloat(strings.TrimSpace(r), 64)
			if err != nil {
				return fmt.Errorf("sweep: -rates %q: %w", *rates, err)
			}
			cfg.Rates = append(cfg.Rates, v)
		}
	}
	cfg.Run = d
	if err := cfg.Validate(); err != nil {
		return err
	}
	seedCfg := w.seed.config(d.Targets[0], d.BodyBytes, d.Timeout)
	seed, _, err := bench.LoadOrSeed(ctx, seedCfg, os.Stderr)
	if err != nil {
		return err
	}
	stopProfile, err := w.startProfile()
	if err != nil {
		return err
	}
	res, err := bench.Sweep(ctx, cfg, seed, os.Stderr)
	if err := errors.Join(err, stopProfile()); err != nil {
		return err
	}
	if err := seed.Save(seedCfg.File); err != nil {
		return err
	}
	res.WriteText(os.Stdout)
	paths, err := bench.WriteSweepReport(res, d.OutDir)
	if err != nil {
		return err
	}
	fmt.Printf("report: %s\n", strings.Join(paths, " "))
	return nil
}

func compareCmd(args []string) error {
	fs := newFlagSet("compare", "bench compare [-html FILE] A.json B.json …: the runs side by side, each later one also as a ratio to A.")
	html := fs.String("html", "", "also write one HTML page with the comparison, overlaid charts and each run's details")
	sweepFiles := fs.String("sweeps", "", "comma-separated sweep reports (bench sweep) shown first, one line each: how much each target can do,\nits hit ratio there, its stale reads and its knee")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var sweeps []*bench.SweepResult
	for _, p := range strings.Split(*sweepFiles, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		sw, err := bench.LoadSweep(p)
		if err != nil {
			return err
		}
		sweeps = append(sweeps, sw)
	}
	if len(sweeps) > 0 {
		bench.WriteCapacityTable(os.Stdout, sweeps)
		fmt.Println()
	}
	if fs.NArg() < 1 && len(sweeps) == 0 {
		fs.Usage()
		return errors.New("compare: give at least one report")
	}
	var runs []*bench.Result
	for _, p := range fs.Args() {
		r, err := bench.LoadResult(p)
		if err != nil {
			return err
		}
		runs = append(runs, r)
	}
	if len(runs) > 0 {
		bench.Compare(runs).WriteText(os.Stdout)
	}
	if *html != "" {
		if err := bench.WriteComparisonHTML(*html, runs, sweeps); err != nil {
			return err
		}
		fmt.Printf("report: %s\n", *html)
	}
	return nil
}

func planCmd(args []string) error {
	c := bench.DefaultPlanConfig()
	fs := newFlagSet("plan", "bench plan [flags] RUN.json [ORIGIN_RUN.json]: the sizing exercise with the run's measured numbers\n(hit ratio, origin reads per client read, DB queries per request, answer sizes, Zipf skew) and the\ncapacities per core measured at saturation by -proxy-sweep and -origin-sweep (bench sweep; a sweep\nthat did not find its knee is not used, and the plan says so). Every assumption is printed beside\nits figure. ORIGIN_RUN, a run straight against the origin, adds its warnings to the caveats.")
	fs.Float64Var(&c.Users, "users", c.Users, "users")
	fs.Float64Var(&c.ReadsPerSec, "reads", c.ReadsPerSec, "average reads/s")
	fs.Float64Var(&c.WritesPerSec, "writes", c.WritesPerSec, "average writes/s")
	fs.Float64Var(&c.Peak, "peak", c.Peak, "peak factor over the average")
	fs.Float64Var(&c.Posts, "posts", c.Posts, "posts stored: the key space of post reads")
	fs.Float64Var(&c.HitRatio, "hit-ratio", c.HitRatio, "hit ratio to size memcached for; 0 = the run's")
	fs.IntVar(&c.AZs, "azs", c.AZs, "availability zones; each tier survives losing one")
	fs.Float64Var(&c.CoresPerInstance, "cores", c.CoresPerInstance, "cores per proxy or origin instance")
	fs.Float64Var(&c.Utilisation, "utilisation", c.Utilisation, "share of CPU to use at peak")
	fs.Float64Var(&c.ProxyRPSPerCore, "proxy-rps-per-core", c.ProxyRPSPerCore, "proxy capacity per core; 0 = from -proxy-sweep, else assumed")
	proxySweep := fs.String("proxy-sweep", "", "a sweep through the proxy (bench sweep): if it found its knee, its proxy requests per proxy CPU second at the highest rate within the objective are the proxy's capacity")
	fs.Float64Var(&c.OriginRPSPerCore, "origin-rps-per-core", c.OriginRPSPerCore, "origin capacity per core; 0 = from -origin-sweep, else assumed")
	originSweep := fs.String("origin-sweep", "", "a sweep straight against the origin: if it found its knee, the origin's capacity as -proxy-sweep gives the proxy's")
	fs.Float64Var(&c.ReplicaQPS, "replica-qps", c.ReplicaQPS, "read queries/s one MySQL replica serves (assumed: primary-key lookups)")
	fs.Float64Var(&c.ItemOverheadBytes, "item-overhead", c.ItemOverheadBytes, "bytes per cached item beyond the body: key, memcached header, stored headers")
	fs.Float64Var(&c.SlabEfficiency, "slab-efficiency", c.SlabEfficiency, "usable share of memcached memory")
	fs.Float64Var(&c.MemcachedNodeBytes, "node-bytes", c.MemcachedNodeBytes, "memory of one memcached node (default: cache.r7g.large)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		fs.Usage()
		return errors.New("plan: give a run's report, and optionally a run straight against the origin")
	}
	r, err := bench.LoadResult(fs.Arg(0))
	if err != nil {
		return err
	}
	var originRun *bench.Result
	if fs.NArg() == 2 {
		if originRun, err = bench.LoadResult(fs.Arg(1)); err != nil {
			return err
		}
	}
	for _, sw := range []struct {
		file, service string
		perCore       *float64
		basis         *string
	}{{*proxySweep, "proxy", &c.ProxyRPSPerCore, &c.ProxyRPSBasis}, {*originSweep, "origin", &c.OriginRPSPerCore, &c.OriginRPSBasis}} {
		if sw.file == "" || *sw.perCore != 0 {
			continue
		}
		s, err := bench.LoadSweep(sw.file)
		if err != nil {
			return err
		}
		perCore, basis, ok := bench.SweepCapacity(s, sw.service)
		if !ok {
			c.Caveats = append(c.Caveats, basis)
			continue
		}
		*sw.perCore, *sw.basis = perCore, basis
	}
	p, err := bench.MakePlan(r, originRun, c)
	if err != nil {
		return err
	}
	p.WriteText(os.Stdout)
	return nil
}
