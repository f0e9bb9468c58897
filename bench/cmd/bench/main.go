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
	"strings"
	"syscall"
	"time"

	"edgecache/bench"
)

const usage = `bench: the edgecache load-test harness.

Usage:
  bench seed    [flags]              create users and posts through the API, save them to a seed file
  bench run     [flags]              run the workload (seeding first if the seed file is missing or stale)
  bench compare [-html FILE] A.json B.json …   runs side by side, with ratios to the first
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
	targets := fs.String("target", strings.Join(d.Targets, ","), "comma-separated base URLs; requests are spread round-robin like a load balancer")
	fs.Float64Var(&d.Rate, "rate", d.Rate, "open loop: requests per second (spread over all targets); 0 = closed loop")
	fs.IntVar(&d.Connections, "connections", d.Connections, "connections (= concurrent requests) per target; in open loop the most in flight")
	fs.DurationVar(&d.Duration, "duration", d.Duration, "how long to schedule requests (0 with -requests: until that many)")
	fs.Int64Var(&d.Requests, "requests", d.Requests, "stop after this many requests; 0 = no limit")
	spike := fs.String("spike", "", "open-loop rate profile LENGTH@FACTORx/EVERY, e.g. 5s@3x/30s: the last 5 s of every 30 s at 3× -rate")
	fs.DurationVar(&d.Timeout, "timeout", d.Timeout, "per request; a timeout counts as an error")
	fs.DurationVar(&d.Drain, "drain", d.Drain, "after the schedule ends, how long queued requests may still be sent; the rest count as not sent")
	mix := fs.String("mix", "100:1", "reads:writes")
	readMix := fs.String("read-mix", d.ReadMix.String(), "weights of the read kinds: a post, a user's first page of posts, a user's profile")
	writeMix := fs.String("write-mix", d.WriteMix.String(), "weights of the write kinds: edit a post (PUT, owner's token), create a post (POST)")
	fs.IntVar(&d.BodyBytes, "body-bytes", d.BodyBytes, "body size of seeded, edited and new posts")
	fs.IntVar(&d.ListLimit, "list-limit", d.ListLimit, "?limit= of list reads")
	fs.StringVar(&d.Popularity, "popularity", d.Popularity, "key popularity: zipf or uniform")
	fs.Float64Var(&d.ZipfS, "zipf-s", d.ZipfS, "Zipf exponent, > 1 (higher: hotter hot keys)")
	fs.Uint64Var(&d.Seed, "seed", d.Seed, "random seed: the same seed draws the same request sequence")
	metrics := fs.String("metrics", "", "Prometheus endpoints scraped before and after, NAME=URL,…; name them origin and proxy, e.g.\norigin=http://127.0.0.1:8081/metrics,proxy=http://127.0.0.1:8082/metrics")
	fs.StringVar(&d.OutDir, "out", d.OutDir, "report folder")
	fs.StringVar(&d.Name, "name", d.Name, "report name: OUT/NAME.json, NAME.html, NAME-*.png")
	sf := addSeedFlags(fs, true)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("run: unexpected arguments %q", fs.Args())
	}
	var err error
	d.Targets = strings.Split(*targets, ",")
	if d.Spike, err = bench.ParseSpike(*spike); err != nil {
		return err
	}
	if d.Reads, d.Writes, err = bench.ParseMix(*mix); err != nil {
		return err
	}
	rw, err := bench.ParseWeights(*readMix, "post", "list", "profile")
	if err != nil {
		return err
	}
	d.ReadMix = bench.ReadMix{Post: rw["post"], List: rw["list"], Profile: rw["profile"]}
	ww, err := bench.ParseWeights(*writeMix, "edit", "create")
	if err != nil {
		return err
	}
	d.WriteMix = bench.WriteMix{Edit: ww["edit"], Create: ww["create"]}
	if d.Metrics, err = bench.ParseMetricsSources(*metrics); err != nil {
		return err
	}
	d.SeedFile = *sf.file
	if err := d.Validate(); err != nil {
		return err
	}

	seedCfg := sf.config(d.Targets[0], d.BodyBytes, d.Timeout)
	seed, reused, err := bench.LoadOrSeed(ctx, seedCfg, os.Stderr)
	if err != nil {
		return err
	}
	res, err := bench.Run(ctx, d, seed, os.Stderr)
	if err != nil {
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

func compareCmd(args []string) error {
	fs := newFlagSet("compare", "bench compare [-html FILE] A.json B.json …: the runs side by side, each later one also as a ratio to A.")
	html := fs.String("html", "", "also write one HTML page with the comparison, overlaid charts and each run's details")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 1 {
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
	bench.Compare(runs).WriteText(os.Stdout)
	if *html != "" {
		if err := bench.WriteComparisonHTML(*html, runs); err != nil {
			return err
		}
		fmt.Printf("report: %s\n", *html)
	}
	return nil
}

func planCmd(args []string) error {
	c := bench.DefaultPlanConfig()
	fs := newFlagSet("plan", "bench plan [flags] RUN.json [ORIGIN_RUN.json]: the sizing exercise with the run's measured numbers\n(hit ratio, origin reads per client read, requests per CPU second of proxy and origin,\nDB queries per request, answer sizes, Zipf skew). Every assumption is printed beside its figure.\nORIGIN_RUN, a run straight against the origin, gives the origin's capacity per core: in a run\nthrough the proxy the origin's process CPU may include a proxy in the same process (one-box stack).")
	fs.Float64Var(&c.Users, "users", c.Users, "users")
	fs.Float64Var(&c.ReadsPerSec, "reads", c.ReadsPerSec, "average reads/s")
	fs.Float64Var(&c.WritesPerSec, "writes", c.WritesPerSec, "average writes/s")
	fs.Float64Var(&c.Peak, "peak", c.Peak, "peak factor over the average")
	fs.Float64Var(&c.Posts, "posts", c.Posts, "posts stored: the key space of post reads")
	fs.Float64Var(&c.HitRatio, "hit-ratio", c.HitRatio, "hit ratio to size memcached for; 0 = the run's")
	fs.IntVar(&c.AZs, "azs", c.AZs, "availability zones; each tier survives losing one")
	fs.Float64Var(&c.CoresPerInstance, "cores", c.CoresPerInstance, "cores per proxy or origin instance")
	fs.Float64Var(&c.Utilisation, "utilisation", c.Utilisation, "share of CPU to use at peak")
	fs.Float64Var(&c.ProxyRPSPerCore, "proxy-rps-per-core", c.ProxyRPSPerCore, "proxy capacity; 0 = measured from the proxy's metrics in the run")
	capacityRun := fs.String("proxy-capacity-run", "", "a saturating (closed-loop) run through the proxy: its proxy requests per proxy CPU second give the proxy's capacity (a light open-loop run mostly measures wake-ups)")
	fs.Float64Var(&c.OriginRPSPerCore, "origin-rps-per-core", c.OriginRPSPerCore, "origin capacity; 0 = measured from the origin's metrics in the run")
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
	if *capacityRun != "" && c.ProxyRPSPerCore == 0 {
		cr, err := bench.LoadResult(*capacityRun)
		if err != nil {
			return err
		}
		if cr.Derived.ProxyRequestsPerCPUSec <= 0 {
			return fmt.Errorf("plan: %s has no proxy CPU figures (run it with -metrics proxy=ADMIN/metrics)", *capacityRun)
		}
		c.ProxyRPSPerCore = cr.Derived.ProxyRequestsPerCPUSec
		c.ProxyRPSBasis = fmt.Sprintf("run %q (%s, %.0f req/s): proxy requests per proxy CPU second", cr.Config.Name, cr.Mode, cr.Throughput)
	}
	p, err := bench.MakePlan(r, originRun, c)
	if err != nil {
		return err
	}
	p.WriteText(os.Stdout)
	return nil
}
