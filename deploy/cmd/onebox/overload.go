package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"edgecache/bench"
)

// overloadOptions are the origin-protection drills `make overload` runs
// (-overload): issue 20's floods beside the normal mix.
type overloadOptions struct {
	out      string        // report folder
	knee     float64       // the origin's knee, requests/s; 0: measure it with an origin sweep
	factor   float64       // the floods' rate, in knees
	rate     float64       // the mix's rate
	duration time.Duration // of each run
}

// runOverload runs bin/bench against the stack:
//
//  1. seed through the origin (reused when OUT/seed.json matches);
//  2. unless -overload-knee is given, "origin-sweep": the rate sweep of
//     make bench straight against the origin; its knee is the step that
//     missed the objective (-bench-step, -bench-p99);
//  3. through the proxy, the 100:1 mix at -overload-rate for
//     -overload-duration: alone ("overload-mix", which also warms the
//     cache), beside a cache-busting flood ("overload-bust") and beside an
//     id scan of missing posts ("overload-missing"), each flood at
//     -overload-factor times the knee on connections of its own. The
//     missing posts are all new, so every one is a miss: that run is the
//     offered load at 3× the origin's knee.
//
// Each run prints its table: origin requests/s and DB queries/s (onebox
// has no replicas: every query is the primary's), the mix's hit p99
// ("hit (mix)"), errors by status, stale reads.
// attackFrom is where the floods come from: another client than the mix
// (127.0.0.1), as the proxy's per-client budgets see it
// (PROXY_CLIENT_MISS_RATE, off unless set).
const attackFrom = "127.0.0.2"

func runOverload(ctx context.Context, o overloadOptions, b benchOptions, proxyURL, originURL, proxyAdmin string) error {
	benchBin := filepath.Join("bin", "bench")
	if _, err := os.Stat(benchBin); err != nil {
		return fmt.Errorf("%s missing (run make build): %w", benchBin, err)
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	seedFile := filepath.Join(o.out, "seed.json")
	metrics := "origin=" + originURL + "/metrics,proxy=http://" + proxyAdmin + "/metrics"
	common := func(cmd, name, target string) []string {
		return []string{cmd, "-name", name, "-target", target, "-seed-target", originURL, "-seed-file", seedFile,
			"-out", o.out, "-mix", "100:1", "-popularity", "zipf", "-metrics", metrics}
	}
	run := func(args ...string) error { return runBenchStep(ctx, benchBin, benchStep{args: args}, b.stdout) }
	if err := run("seed", "-target", originURL, "-seed-file", seedFile); err != nil {
		return err
	}
	knee := o.knee
	if knee == 0 {
		sweep := append(common("sweep", "origin-sweep", originURL), "-step", b.step.String(), "-p99", b.p99.String())
		if err := run(sweep...); err != nil {
			return err
		}
		var err error
		if knee, err = sweepKnee(filepath.Join(o.out, "origin-sweep.json")); err != nil {
			return err
		}
	}
	flood := strconv.FormatFloat(o.factor*knee, 'f', 0, 64)
	fmt.Fprintf(b.stdout, "\norigin knee %.0f requests/s: floods at %g× = %s/s beside the mix at %g/s\n", knee, o.factor, flood, o.rate)
	mix := func(name string) []string {
		return append(common("run", name, proxyURL), "-rate", strconv.FormatFloat(o.rate, 'f', -1, 64), "-duration", o.duration.String())
	}
	for _, args := range [][]string{
		mix("overload-mix"),
		append(mix("overload-bust"), "-attack", "bust="+flood, "-attack-from", attackFrom),
		append(mix("overload-missing"), "-attack", "missing="+flood, "-attack-from", attackFrom),
	} {
		if err := run(args...); err != nil {
			return err
		}
	}
	fmt.Fprintf(b.stdout, "\noverload drill reports: %s/overload-{mix,bust,missing}.html\n", o.out)
	return nil
}

// sweepKnee is the rate of the step where a sweep missed its objective.
func sweepKnee(path string) (float64, error) {
	s, err := bench.LoadSweep(path)
	if err != nil {
		return 0, err
	}
	if s.Best < 0 || !s.Saturated || s.Best+1 >= len(s.Steps) {
		return 0, fmt.Errorf("%s: the sweep found no knee (a noisy machine misses even its first step; the highest rate is only a lower bound): give one with -overload-knee", path)
	}
	return s.Steps[s.Best+1].Rate, nil
}
