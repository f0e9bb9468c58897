package bench

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
)

// PlanConfig is the load to size for and the assumptions the run cannot
// measure. Every one is printed with the plan.
type PlanConfig struct {
	Users        float64 // 10 M
	ReadsPerSec  float64 // average
	WritesPerSec float64 // average
	Peak         float64 // peak / average
	Posts        float64 // posts stored (the key space of post reads)
	HitRatio     float64 // the hit ratio to size memcached for; 0 = the run's
	AZs          int     // availability zones; each tier survives losing one

	CoresPerInstance float64 // of a proxy or origin instance
	Utilisation      float64 // the share of CPU to plan to use at peak
	// Capacities per core, measured at saturation (a rate sweep that found
	// its knee, SweepCapacity) or given; 0 = not measured, and then an
	// assumed figure is used and said to be one. A run below saturation
	// says little: at light load the CPU per request is mostly waking up.
	ProxyRPSPerCore    float64
	ProxyRPSBasis      string // where ProxyRPSPerCore comes from; "" = "given"
	OriginRPSPerCore   float64
	OriginRPSBasis     string   // where OriginRPSPerCore comes from; "" = "given"
	Caveats            []string // printed with the plan (a sweep that was not used, …)
	ReplicaQPS         float64  // read queries/s one MySQL replica serves
	ItemOverheadBytes  float64  // per cached item: key, memcached header, stored headers
	SlabEfficiency     float64  // usable share of memcached memory
	MemcachedNodeBytes float64  // memory of one memcached node
}

// DefaultPlanConfig is the load edgecache is built for (README "What it is
// built for"): 10 M users, 40,000 reads/s and 400 writes/s on average, peaks
// 3× that, 1 billion writes a month kept 3 years.
func DefaultPlanConfig() PlanConfig {
	return PlanConfig{
		Users: 10e6, ReadsPerSec: 40000, WritesPerSec: 400, Peak: 3,
		Posts: 36e9, AZs: 3,
		CoresPerInstance: 2, Utilisation: 0.6,
		ReplicaQPS:         10000,
		ItemOverheadBytes:  400,
		SlabEfficiency:     0.85,
		MemcachedNodeBytes: 13.07 * (1 << 30), // cache.r7g.large
	}
}

// Validate rejects a plan that cannot be computed.
func (c PlanConfig) Validate() error {
	switch {
	case c.Users < 1 || c.Posts < 1:
		return errors.New("plan: -users and -posts must be ≥ 1")
	case c.ReadsPerSec <= 0 || c.WritesPerSec < 0:
		return errors.New("plan: -reads must be > 0 and -writes ≥ 0")
	case c.Peak < 1:
		return errors.New("plan: -peak must be ≥ 1")
	case c.HitRatio < 0 || c.HitRatio >= 1:
		return errors.New("plan: -hit-ratio must be in [0, 1); 0 = the run's")
	case c.AZs < 2:
		return errors.New("plan: -azs must be ≥ 2 (one AZ may fail)")
	case c.CoresPerInstance <= 0 || c.Utilisation <= 0 || c.Utilisation > 1:
		return errors.New("plan: -cores must be > 0 and -utilisation in (0, 1]")
	case c.ProxyRPSPerCore < 0 || c.OriginRPSPerCore < 0 || c.ReplicaQPS <= 0:
		return errors.New("plan: capacities must be > 0 (0 = measured for proxy and origin)")
	case c.ItemOverheadBytes < 0 || c.SlabEfficiency <= 0 || c.SlabEfficiency > 1 || c.MemcachedNodeBytes <= 0:
		return errors.New("plan: memcached assumptions out of range")
	}
	return nil
}

// Plan is the sizing, line by line, each with where its inputs came from.
type Plan struct {
	Lines []PlanLine
}

// PlanLine is one figure of the plan.
type PlanLine struct {
	Section string
	What    string
	Value   string
	Basis   string // how it was computed or where the input came from
}

// Fallbacks when no saturating run measured a capacity; printed as
// assumptions. On the 2-core development machine fasthttp serves about
// 60,000-120,000 fixed answers/s per core, and a memcached round trip costs
// about as much again.
const (
	assumedProxyRPSPerCore  = 30000
	assumedOriginRPSPerCore = 3000
)

// MakePlan sizes the fleet for cfg with the figures measured in r. When
// originRun is not nil (a run straight against the origin), the origin's
// capacity comes from it: there the origin served every request, while in a
// run through the proxy its CPU counter may also count a proxy sharing its
// process (the one-box stack).
func MakePlan(r, originRun *Result, cfg PlanConfig) (Plan, error) {
	if err := cfg.Validate(); err != nil {
		return Plan{}, err
	}
	pl := &planner{r: r, cfg: cfg, run: fmt.Sprintf("run %q", r.Config.Name),
		peakReads: cfg.ReadsPerSec * cfg.Peak, peakWrites: cfg.WritesPerSec * cfg.Peak}
	pl.load()
	perRead := pl.originReadsPerRead()
	pl.proxyAndOrigin(perRead)
	pl.database(perRead)
	pl.memcached(pl.hitRatio(perRead))
	pl.caveats(originRun)
	return pl.plan, nil
}

// planner builds a Plan section by section, in the order it is printed.
type planner struct {
	plan                  Plan
	r                     *Result
	cfg                   PlanConfig
	run                   string // names r in a line's basis
	peakReads, peakWrites float64
}

func (pl *planner) add(section, what, value, basis string) {
	pl.plan.Lines = append(pl.plan.Lines, PlanLine{section, what, value, basis})
}

// load restates the load sized for.
func (pl *planner) load() {
	cfg := pl.cfg
	pl.add("load", "users", fmtCount(cfg.Users), "given")
	pl.add("load", "reads/s average → peak", fmtCount(cfg.ReadsPerSec)+" → "+fmtCount(pl.peakReads), fmt.Sprintf("peak factor %g", cfg.Peak))
	pl.add("load", "writes/s average → peak", fmtCount(cfg.WritesPerSec)+" → "+fmtCount(pl.peakWrites), fmt.Sprintf("peak factor %g", cfg.Peak))
	pl.add("load", "posts stored", fmtCount(cfg.Posts), "given (1 billion writes/month × 36 months by default)")
}

// originReadsPerRead is the miss traffic: how many client reads reach the
// origin. In the steady state, after the warm-up, when the run measured it:
// a fleet runs warm, and a short run's cold start would oversize it.
func (pl *planner) originReadsPerRead() float64 {
	r := pl.r
	perRead, basis := r.Derived.OriginRequestsPerRead, pl.run+": origin reads per client read, from the origin's counters"
	if steady := r.Cache.SteadyHitRatio; steady > 0 {
		was := ""
		if perRead >= 0 {
			was = fmt.Sprintf("; %.4f over the whole run, cold start included", perRead)
		}
		perRead, basis = 1-steady, pl.run+": 1 − steady-state hit ratio (after the warm-up)"+was
	} else if perRead < 0 {
		perRead, basis = 1-r.Cache.HitRatio, pl.run+": 1 − hit ratio from Cache-Status (no origin counters scraped)"
	}
	pl.add("measured", "origin reads per client read", fmt.Sprintf("%.4f", perRead), basis)
	return perRead
}

// proxyAndOrigin sizes the proxy and origin tiers. Capacities come from
// saturating measurements only: a run at a fixed rate below the knee is not
// one.
func (pl *planner) proxyAndOrigin(perRead float64) {
	cfg := pl.cfg
	originRPS := pl.peakReads*perRead + pl.peakWrites
	pl.add("origin", "origin requests/s at peak", fmtCount(originRPS), "peak reads × origin reads per client read + peak writes")

	proxyCap, proxyBasis := cfg.ProxyRPSPerCore, cmp.Or(cfg.ProxyRPSBasis, "given")
	if proxyCap == 0 {
		proxyCap, proxyBasis = assumedProxyRPSPerCore, "assumed: not measured at saturation (give -proxy-sweep, a bench sweep through the proxy that found its knee)"
		if light := pl.r.Derived.ProxyRequestsPerCPUSec; light > 0 {
			proxyBasis += fmt.Sprintf("; %s's %s/core at its light load is not a capacity", pl.run, fmtCount(light))
		}
	}
	originCap, originBasis := cfg.OriginRPSPerCore, cmp.Or(cfg.OriginRPSBasis, "given")
	if originCap == 0 {
		originCap, originBasis = assumedOriginRPSPerCore, "assumed: not measured at saturation (give -origin-sweep, a bench sweep straight against the origin that found its knee)"
	}
	pl.add("measured", "proxy requests/s per core", fmtCount(proxyCap), proxyBasis)
	pl.add("measured", "origin requests/s per core", fmtCount(originCap), originBasis)

	perInstance := fmt.Sprintf("%g cores × %.0f%% utilisation; survives losing 1 of %d AZs", cfg.CoresPerInstance, 100*cfg.Utilisation, cfg.AZs)
	proxyRPS := pl.peakReads + pl.peakWrites
	proxies := instances(proxyRPS, proxyCap*cfg.CoresPerInstance*cfg.Utilisation, cfg.AZs)
	pl.add("proxy", "proxy instances", fmt.Sprint(proxies), fmt.Sprintf("%s req/s at peak ÷ (%s/core × %s)", fmtCount(proxyRPS), fmtCount(proxyCap), perInstance))
	origins := instances(originRPS, originCap*cfg.CoresPerInstance*cfg.Utilisation, cfg.AZs)
	pl.add("origin", "origin instances", fmt.Sprint(origins), fmt.Sprintf("%s req/s at peak ÷ (%s/core × %s)", fmtCount(originRPS), fmtCount(originCap), perInstance))
}

// database sizes the replicas for the miss traffic and the primary for
// writes.
func (pl *planner) database(perRead float64) {
	cfg := pl.cfg
	qPerReq, qBasis := pl.r.Derived.DBQueriesPerOriginReq, pl.run+": DB queries per origin request"
	if qPerReq == 0 {
		qPerReq, qBasis = 1, "assumed: 1 (no DB query counter scraped)"
	}
	pl.add("measured", "DB queries per origin request", fmt.Sprintf("%.2f", qPerReq), qBasis)
	readQPS := pl.peakReads * perRead * qPerReq
	pl.add("database", "read queries/s at peak (replicas)", fmtCount(readQPS), "peak reads × origin reads per client read × queries per request")
	replicas := max(int(math.Ceil(readQPS/(cfg.ReplicaQPS*cfg.Utilisation))), 1)
	replicas = max(replicas, cfg.AZs-1)
	pl.add("database", "read replicas", fmt.Sprint(replicas), fmt.Sprintf("÷ (%s queries/s per replica (assumed) × %.0f%%), at least one per AZ besides the primary's", fmtCount(cfg.ReplicaQPS), 100*cfg.Utilisation))
	pl.add("database", "write transactions/s at peak (primary)", fmtCount(pl.peakWrites), "one transaction per write (Multi-AZ standby for failover)")
}

// hitRatio is the hit ratio memcached is sized to keep: given, else the
// run's, steady state first.
func (pl *planner) hitRatio(perRead float64) float64 {
	r := pl.r
	hit, basis := pl.cfg.HitRatio, "given"
	if hit == 0 {
		hit, basis = r.Cache.HitRatio, pl.run+": hit ratio from Cache-Status"
		if r.Cache.SteadyHitRatio > 0 {
			hit, basis = r.Cache.SteadyHitRatio, pl.run+": steady-state hit ratio from Cache-Status (after the warm-up)"
		}
		if hit == 0 {
			hit, basis = 1-perRead, pl.run+": 1 − origin reads per client read"
		}
		if hit <= 0 || hit >= 1 {
			hit, basis = 0.95, "assumed: the run measured no usable hit ratio"
		}
	}
	pl.add("memcached", "hit ratio to keep", fmt.Sprintf("%.1f%%", 100*hit), basis)
	return hit
}

// memcached sizes memcached for the hot set of each kind of read: its top
// keys, enough of them to get the hit ratio's share of its reads.
func (pl *planner) memcached(hit float64) {
	r, cfg := pl.r, pl.cfg
	s := r.Config.ZipfS
	if r.Config.Popularity != PopularityZipf {
		s = 1.1
	}
	pl.add("memcached", "popularity", fmt.Sprintf("Zipf s=%g", s), "the run's -zipf-s (1.1 if the run was uniform)")
	rm := r.Config.ReadMix
	mix := rm.Post + rm.List + rm.Profile
	kinds := []struct {
		name  string
		share float64
		keys  float64
		op    int
	}{
		{"posts", rm.Post / mix, cfg.Posts, opPost},
		{"post lists", rm.List / mix, cfg.Users, opList},
		{"profiles", rm.Profile / mix, cfg.Users, opProfile},
	}
	totalBytes := 0.0
	for _, k := range kinds {
		if k.share == 0 {
			continue
		}
		size := r.Ops[k.op].MeanBytes
		sizeBasis := pl.run + ": mean answer size"
		if size == 0 {
			size, sizeBasis = 1024, "assumed"
		}
		n := topKeysFor(s, int(k.keys), hit)
		bytes := float64(n) * (size + cfg.ItemOverheadBytes) / cfg.SlabEfficiency
		totalBytes += bytes
		pl.add("memcached", "hot "+k.name, fmt.Sprintf("%s items, %s", fmtCount(float64(n)), fmtBytes(bytes)),
			fmt.Sprintf("top keys of %s getting %.1f%% of their reads; %.0f B/answer (%s) + %.0f B overhead, ÷ %.0f%% slab efficiency",
				fmtCount(k.keys), 100*hit, size, sizeBasis, cfg.ItemOverheadBytes, 100*cfg.SlabEfficiency))
	}
	nodes := max(int(math.Ceil(totalBytes/cfg.MemcachedNodeBytes*float64(cfg.AZs)/float64(cfg.AZs-1))), cfg.AZs)
	pl.add("memcached", "memory for the hot set", fmtBytes(totalBytes), "sum of the above")
	pl.add("memcached", "memcached nodes", fmt.Sprint(nodes), fmt.Sprintf("%s per node; keys spread so losing one AZ's nodes keeps the rest", fmtBytes(cfg.MemcachedNodeBytes)))
	if ops := r.Derived.MemcachedOpsPerSec; ops > 0 && r.Throughput > 0 {
		perReq := ops / r.Throughput
		pl.add("memcached", "memcached ops/s at peak", fmtCount(perReq*(pl.peakReads+pl.peakWrites)), fmt.Sprintf("%s: %.2f memcached ops per client request", pl.run, perReq))
	}
}

// caveats lists what limits the plan: the given caveats and the runs'
// warnings.
func (pl *planner) caveats(originRun *Result) {
	lists := [][]string{pl.cfg.Caveats, pl.r.Warnings}
	if originRun != nil {
		lists = append(lists, originRun.Warnings)
	}
	for _, list := range lists {
		for _, w := range list {
			pl.add("caveat", w, "", "")
		}
	}
}

// SweepCapacity is the capacity per core a sweep measured for service
// ("proxy" or "origin"): its requests per CPU second at the highest rate
// within the objective. ok is false, with the reason, when the sweep did not
// find its knee (the rate was not the most it can do) or did not scrape the
// service's CPU.
func SweepCapacity(s *SweepResult, service string) (perCore float64, basis string, ok bool) {
	b := s.BestStep()
	switch {
	case b == nil:
		return 0, fmt.Sprintf("sweep %q: no step met the objective; not used for the %s's capacity", s.Name(), service), false
	case !s.Saturated:
		return 0, fmt.Sprintf("sweep %q did not reach its knee (every step up to %.0f/s met the objective): its figures are not the %s's capacity and are not used",
			s.Name(), s.Steps[len(s.Steps)-1].Rate, service), false
	}
	perCore = b.Derived.ProxyRequestsPerCPUSec
	if service == "origin" {
		perCore = b.Derived.OriginRequestsPerCPUSec
	}
	if perCore <= 0 {
		return 0, fmt.Sprintf("sweep %q scraped no %s CPU (run it with -metrics %s=…/metrics); not used", s.Name(), service, service), false
	}
	return perCore, fmt.Sprintf("sweep %q: %s requests per %s CPU second at %.0f/s, its highest rate within %s (the knee: %.0f/s)",
		s.Name(), service, service, b.Throughput, s.Objective(), s.Knee().Rate), true
}

// instances is ceil(load / perInstance), grown so that losing one of azs
// zones leaves enough, and at least one per zone.
func instances(load, perInstance float64, azs int) int {
	n := math.Ceil(load / perInstance)
	n = math.Ceil(n * float64(azs) / float64(azs-1))
	return max(int(n), azs)
}

func fmtCount(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.1f G", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.1f M", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1f k", v/1e3)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

func fmtBytes(v float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}

// planSections is the order the plan is printed in.
var planSections = []string{"load", "measured", "proxy", "origin", "database", "memcached", "caveat"}

// WriteText prints the plan grouped by section.
func (p Plan) WriteText(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, section := range planSections {
		header := false
		for _, l := range p.Lines {
			if l.Section != section {
				continue
			}
			if section == "caveat" {
				// Free text: outside the table's columns.
				tw.Flush()
				if !header {
					fmt.Fprintln(w, "CAVEATS")
					header = true
				}
				fmt.Fprintf(w, "  - %s\n", l.What)
				continue
			}
			if !header {
				fmt.Fprintf(tw, "%s\t\t\n", strings.ToUpper(section))
				header = true
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", l.What, l.Value, l.Basis)
		}
	}
	tw.Flush()
}
