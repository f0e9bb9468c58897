package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// ReportVersion changes when the JSON report's meaning changes.
const ReportVersion = 1

// Result is every figure of one run, with the configuration that produced
// it. It is the JSON report; compare and plan read it back.
type Result struct {
	ReportVersion int       `json:"report_version"`
	Config        RunConfig `json:"config"`
	SeedInfo      SeedInfo  `json:"seed"`
	Start         time.Time `json:"start"`
	// Elapsed is from the first scheduled request to the last answer.
	Elapsed time.Duration `json:"elapsed"`
	Mode    string        `json:"mode"` // "open loop" or "closed loop"
	// Scheduled is the number of requests the open-loop schedule held.
	Scheduled  int64   `json:"scheduled"`
	Requests   int64   `json:"requests"` // answered or failed, including not sent
	Errors     int64   `json:"errors"`
	Throughput float64 `json:"throughput"` // requests/s over Elapsed
	Retries    int64   `json:"retries"`    // reads retried on a closed keep-alive connection

	Ops     []OpStats   `json:"ops"`     // per operation kind
	All     OpStats     `json:"all"`     // every operation
	Service Percentiles `json:"service"` // send → answer, every operation
	Wait    Percentiles `json:"wait"`    // scheduled → sent: time queued in the generator
	// MixHits is scheduled → answer of the mix's reads answered as cache
	// hits: the cached reads' latency, attacks and misses left out.
	MixHits Percentiles `json:"mix_hits"`

	ErrorKinds []ErrorCount `json:"error_kinds"`
	Cache      CacheStats   `json:"cache"`
	Stale      []StaleCount `json:"stale"`
	// StaleExamples describe some of the stale reads, for whoever debugs
	// the cache.
	StaleExamples []string        `json:"stale_examples"`
	Timeline      []Second        `json:"timeline"`
	Metrics       []MetricsReport `json:"metrics"`
	Derived       Derived         `json:"derived"`
	Client        ClientCPU       `json:"client"`
	Warnings      []string        `json:"warnings"`
}

// SeedInfo says which data set the run used.
type SeedInfo struct {
	File   string `json:"file"`
	Tag    string `json:"tag"`
	Users  int    `json:"users"`
	Posts  int    `json:"posts"`
	Reused bool   `json:"reused"`
}

// Percentiles of a latency distribution, in milliseconds.
type Percentiles struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

// SpectrumPoint is one point of a latency-by-percentile curve.
type SpectrumPoint struct {
	Percentile float64 `json:"percentile"`
	Ms         float64 `json:"ms"`
}

// OpStats are one operation kind's figures.
type OpStats struct {
	Op     string  `json:"op"`
	Count  int64   `json:"count"`
	Errors int64   `json:"errors"`
	PerSec float64 `json:"per_sec"`
	// MeanBytes is the mean answer body size of successful requests.
	MeanBytes float64         `json:"mean_bytes"`
	Latency   Percentiles     `json:"latency"` // scheduled → answer
	Spectrum  []SpectrumPoint `json:"spectrum"`
}

// ErrorCount is how often one kind of failure happened to one operation.
type ErrorCount struct {
	Op    string `json:"op"`
	Kind  string `json:"kind"`
	Count int64  `json:"count"`
}

// CacheStats count the reads' Cache-Status outcomes.
type CacheStats struct {
	Outcomes map[string]int64 `json:"outcomes"`
	// HitRatio is hits over reads that carried a cache outcome; 0 when no
	// read did (the target is not a cache). It counts the cold start.
	HitRatio float64 `json:"hit_ratio"`
	// SteadyHitRatio is the same after the warm-up (RunConfig.Warmup, at
	// most half the run): the cache's hit ratio once it is full.
	SteadyHitRatio float64 `json:"steady_hit_ratio"`
}

// StaleCount is the read-after-write check's verdict for one read kind.
type StaleCount struct {
	Kind    string `json:"kind"`
	Checked int64  `json:"checked"`
	Stale   int64  `json:"stale"`
}

// Second is one second of the run, by completion time.
type Second struct {
	T int `json:"t"`
	secondStats
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
}

// Derived are figures computed from the others, for people and for plan.
type Derived struct {
	Reads      int64 `json:"reads"`
	Writes     int64 `json:"writes"`
	StaleReads int64 `json:"stale_reads"`
	// OriginRequestsPerRead is (origin requests − writes) / client reads,
	// from the origin's counters; -1 when not scraped.
	OriginRequestsPerRead float64 `json:"origin_requests_per_read"`
	OriginRequestsPerSec  float64 `json:"origin_requests_per_sec"`
	DBQueriesPerSec       float64 `json:"db_queries_per_sec"`
	DBQueriesPerOriginReq float64 `json:"db_queries_per_origin_request"`
	MemcachedOpsPerSec    float64 `json:"memcached_ops_per_sec"`
	// Requests per CPU second of each scraped service, from its
	// process_cpu_seconds_total: the capacity figure plan scales from.
	OriginRequestsPerCPUSec float64 `json:"origin_requests_per_cpu_sec"`
	ProxyRequestsPerCPUSec  float64 `json:"proxy_requests_per_cpu_sec"`
	// CPU cores each scraped service kept busy on average.
	OriginCores float64 `json:"origin_cores"`
	ProxyCores  float64 `json:"proxy_cores"`
	// DBQueriesPerRequest is DB queries per client request: what one
	// costs the database, through the cache or not.
	DBQueriesPerRequest float64 `json:"db_queries_per_request"`
	MeanReadBytes       float64 `json:"mean_read_bytes"`
	// Consistency is the proxy's sampled consistency checks of hits during
	// the run; nil when it exposes none.
	Consistency *ConsistencyChecks `json:"consistency,omitempty"`
}

// consistencyChecks ends the name of a proxy's counter of sampled
// consistency checks of hits, by result (proxy/README.md "Consistency
// checks").
const consistencyChecks = "_consistency_checks_total"

// ConsistencyChecks count a proxy's sampled checks of hits against the
// primary during the run, by result, and say what they measure in nines:
// -log10(stale / (ok + stale)), or with no stale check log10(ok + stale)
// as a lower bound (NinesAtLeast). Nines is 0 when nothing was judged.
type ConsistencyChecks struct {
	OK           float64 `json:"ok"`
	Stale        float64 `json:"stale"`
	Error        float64 `json:"error"`
	Skipped      float64 `json:"skipped"`
	Nines        float64 `json:"nines"`
	NinesAtLeast bool    `json:"nines_at_least"`
}

// consistencyOf reads the checks by result from a source's deltas; nil if
// it has none.
func consistencyOf(m MetricsReport) *ConsistencyChecks {
	var c *ConsistencyChecks
	for _, x := range m.Metrics {
		name, labels, ok := strings.Cut(x.Name, "{")
		if !ok || !strings.HasSuffix(name, consistencyChecks) {
			continue
		}
		if c == nil {
			c = &ConsistencyChecks{}
		}
		switch {
		case strings.Contains(labels, `result="ok"`):
			c.OK += x.Delta
		case strings.Contains(labels, `result="stale"`):
			c.Stale += x.Delta
		case strings.Contains(labels, `result="error"`):
			c.Error += x.Delta
		case strings.Contains(labels, `result="skipped"`):
			c.Skipped += x.Delta
		}
	}
	if c != nil {
		switch judged := c.OK + c.Stale; {
		case judged == 0:
		case c.Stale == 0:
			c.Nines, c.NinesAtLeast = math.Log10(judged), true
		default:
			c.Nines = -math.Log10(c.Stale / judged)
		}
	}
	return c
}

// judged is the number of reads that carried a cache outcome.
func (c CacheStats) judged() int64 {
	n := int64(0)
	for k, v := range c.Outcomes {
		if k != outcomeNames[outcomeNone] {
			n += v
		}
	}
	return n
}

func toMs(us int64) float64 { return float64(us) / 1000 }

func percentiles(h *hdr.Histogram) Percentiles {
	if h.TotalCount() == 0 {
		return Percentiles{}
	}
	return Percentiles{
		Count: h.TotalCount(),
		Mean:  h.Mean() / 1000,
		P50:   toMs(h.ValueAtQuantile(50)),
		P90:   toMs(h.ValueAtQuantile(90)),
		P99:   toMs(h.ValueAtQuantile(99)),
		P999:  toMs(h.ValueAtQuantile(99.9)),
		Max:   toMs(h.Max()),
	}
}

// spectrum samples the latency-by-percentile curve evenly in "nines"
// (0 = p0, 1 = p90, 2 = p99 …) up to where the sample size still says
// something.
func spectrum(h *hdr.Histogram) []SpectrumPoint {
	n := h.TotalCount()
	if n == 0 {
		return nil
	}
	maxNines := math.Log10(float64(n))
	var out []SpectrumPoint
	for x := 0.0; x < maxNines; x += 0.05 {
		q := 100 * (1 - math.Pow(10, -x))
		out = append(out, SpectrumPoint{Percentile: q, Ms: toMs(h.ValueAtQuantile(q))})
	}
	return append(out, SpectrumPoint{Percentile: 100, Ms: toMs(h.Max())})
}

// assemble merges the workers' recorders into a Result.
func assemble(st *runState, total *recorder, start, end time.Time, scheduled int64) *Result {
	cfg := st.cfg
	res := &Result{
		ReportVersion: ReportVersion,
		Config:        cfg,
		SeedInfo:      SeedInfo{File: cfg.SeedFile, Tag: st.seed.Tag, Users: len(st.seed.Users), Posts: len(st.seed.Posts)},
		Start:         start.UTC(),
		Elapsed:       end.Sub(start),
		Mode:          "open loop",
		Scheduled:     scheduled,
		Retries:       st.retries.Load(),
		Cache:         CacheStats{Outcomes: map[string]int64{}},
	}
	if cfg.Rate == 0 {
		res.Mode = "closed loop"
	}
	res.addOps(total)
	res.addChecks(total)
	res.Cache.SteadyHitRatio = steadyHitRatio(st.tl, min(cfg.Warmup, res.Elapsed/2))
	res.Timeline = st.tl.report()
	return res
}

// addOps adds the figures of each operation and of all of them, the
// errors by kind, and the mean size of a read's answer.
func (res *Result) addOps(total *recorder) {
	secs := res.Elapsed.Seconds()
	all := newHist()
	var readBytes, reads int64
	for op := range numOps {
		h := total.latency[op]
		all.Merge(h)
		s := OpStats{Op: opNames[op], Count: total.count[op], PerSec: float64(total.count[op]) / secs,
			Latency: percentiles(h), Spectrum: spectrum(h)}
		if ok := total.ok[op]; ok > 0 {
			s.MeanBytes = float64(total.okBytes[op]) / float64(ok)
		}
		for k, n := range total.errs[op] {
			s.Errors += n
			res.ErrorKinds = append(res.ErrorKinds, ErrorCount{Op: opNames[op], Kind: k, Count: n})
		}
		res.Ops = append(res.Ops, s)
		res.Requests += s.Count
		res.Errors += s.Errors
		if isRead(op) {
			readBytes += total.okBytes[op]
			reads += total.ok[op]
			res.Derived.Reads += s.Count
		} else {
			res.Derived.Writes += s.Count
		}
	}
	sort.Slice(res.ErrorKinds, func(i, j int) bool { return res.ErrorKinds[i].Count > res.ErrorKinds[j].Count })
	res.All = OpStats{Op: "all", Count: res.Requests, Errors: res.Errors, PerSec: float64(res.Requests) / secs,
		Latency: percentiles(all), Spectrum: spectrum(all)}
	res.Throughput = res.All.PerSec
	if reads > 0 {
		res.Derived.MeanReadBytes = float64(readBytes) / float64(reads)
	}
}

// addChecks adds the service and wait times, the cache outcomes and the
// read-after-write checks.
func (res *Result) addChecks(total *recorder) {
	res.Service, res.Wait = percentiles(total.service), percentiles(total.wait)
	res.MixHits = percentiles(total.mixHits)
	judged := int64(0)
	for i, n := range total.cache {
		res.Cache.Outcomes[outcomeNames[i]] = n
		if i != outcomeNone {
			judged += n
		}
	}
	if judged > 0 {
		res.Cache.HitRatio = float64(total.cache[outcomeHit]) / float64(judged)
	}
	for i := range total.checked {
		res.Stale = append(res.Stale, StaleCount{Kind: checkNames[i], Checked: total.checked[i], Stale: total.stale[i]})
		res.Derived.StaleReads += total.stale[i]
	}
	res.StaleExamples = total.staleExamples
}

// report is the timeline as the Result holds it.
func (tl *timeline) report() []Second {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var out []Second
	for i, s := range tl.seconds {
		sec := Second{T: i, secondStats: s}
		if h := tl.lat[i]; h != nil {
			sec.P50, sec.P99 = toMs(h.ValueAtQuantile(50)), toMs(h.ValueAtQuantile(99))
		}
		out = append(out, sec)
	}
	return out
}

// steadyHitRatio is hits over cache-judged reads in the seconds after
// warmup.
func steadyHitRatio(tl *timeline, warmup time.Duration) float64 {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var hits, judged int64
	for i, s := range tl.seconds {
		if time.Duration(i)*time.Second >= warmup {
			hits += s.Hits
			judged += s.Hits + s.Forwarded
		}
	}
	if judged == 0 {
		return 0
	}
	return float64(hits) / float64(judged)
}

// derive computes the figures that combine client and server counters, and
// the warnings about how far to trust the run.
func (r *Result) derive() {
	r.Derived.OriginRequestsPerRead = -1
	originScraped := false
	for _, m := range r.Metrics {
		if _, ok := m.sumKnown(knownRequests); ok && m.Error == "" && m.Source.Name == "origin" {
			originScraped = true
		}
	}
	secs := r.Elapsed.Seconds()
	for _, m := range r.Metrics {
		if m.Error != "" {
			r.Warnings = append(r.Warnings, fmt.Sprintf("metrics %s (%s): %s", m.Source.Name, m.Source.URL, m.Error))
			continue
		}
		switch m.Source.Name {
		case "origin":
			r.deriveOrigin(m)
		case "proxy":
			r.deriveProxy(m, originScraped)
		}
		if ops, ok := m.sumKnown(knownMemcached); ok {
			r.Derived.MemcachedOpsPerSec += ops / secs
		}
	}
	r.addWarnings()
}

// deriveOrigin takes the offload, capacity and database figures from the
// origin's counters.
func (r *Result) deriveOrigin(m MetricsReport) {
	d := &r.Derived
	secs := r.Elapsed.Seconds()
	reqs, hasReqs := m.sumKnown(knownRequests)
	cpu, hasCPU := m.sumKnown(knownCPU)
	if hasReqs {
		d.OriginRequestsPerSec = reqs / secs
		if d.Reads > 0 {
			d.OriginRequestsPerRead = max(reqs-float64(d.Writes), 0) / float64(d.Reads)
		}
		if hasCPU && cpu > 0 {
			d.OriginRequestsPerCPUSec = reqs / cpu
		}
	}
	if hasCPU {
		d.OriginCores = cpu / secs
	}
	if q, ok := m.sumKnown(knownDBQueries); ok {
		d.DBQueriesPerSec = q / secs
		if reqs > 0 {
			d.DBQueriesPerOriginReq = q / reqs
		}
		if r.Requests > 0 {
			d.DBQueriesPerRequest = q / float64(r.Requests)
		}
	}
}

// deriveProxy takes the capacity figures from the proxy's counters, and
// the offload when the origin's were not scraped.
func (r *Result) deriveProxy(m MetricsReport, originScraped bool) {
	d := &r.Derived
	secs := r.Elapsed.Seconds()
	reqs, hasReqs := m.sumKnown(knownRequests)
	cpu, hasCPU := m.sumKnown(knownCPU)
	if hasReqs && hasCPU && cpu > 0 {
		d.ProxyRequestsPerCPUSec = reqs / cpu
	}
	if hasCPU {
		d.ProxyCores = cpu / secs
	}
	d.Consistency = consistencyOf(m)
	// Without the origin's own counters, the proxy's count of its
	// requests to the origin gives the offload.
	if f, ok := m.sumKnown(knownOriginFetches); ok && !originScraped && d.Reads > 0 {
		d.OriginRequestsPerRead = max(f-float64(d.Writes), 0) / float64(d.Reads)
		d.OriginRequestsPerSec = f / secs
	}
}

// addWarnings says how far to trust the run: processes that share their
// CPU figures, failed requests, a busy client or machine, a schedule not
// kept, stale reads.
func (r *Result) addWarnings() {
	if shared := r.sharedProcesses(); shared != "" {
		r.Warnings = append(r.Warnings, "metrics sources "+shared+" report the same process_start_time_seconds and resident memory: "+
			"they likely run in one process, so each one's CPU figures are the process's total")
	}
	if r.Errors > 0 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%d of %d requests failed (%.2f%%): see the error table",
			r.Errors, r.Requests, 100*float64(r.Errors)/float64(max(r.Requests, 1))))
	}
	c := r.Client
	if c.Usable > 0 && c.Cores >= 0.8*float64(c.Usable) {
		r.Warnings = append(r.Warnings, fmt.Sprintf(
			"the load generator kept %.2f of its %d usable cores busy: it was likely the limit, not the target (raise -procs)", c.Cores, c.Usable))
	} else if c.NumCPU > 0 && c.Cores >= 0.4*float64(c.NumCPU) {
		r.Warnings = append(r.Warnings, fmt.Sprintf(
			"the load generator used %.2f of the machine's %d cores: a target on the same machine competed with it for CPU", c.Cores, c.NumCPU))
	}
	if busyMachine(c.LoadAverage, c.NumCPU) {
		r.Warnings = append(r.Warnings, fmt.Sprintf(
			"the machine's load average was %.1f on %d cores at the end of the run: other processes competed for CPU, so latency and capacity here understate a quiet machine", c.LoadAverage, c.NumCPU))
	}
	if r.Mode == "open loop" && r.Scheduled > 0 && r.Elapsed > 0 {
		want := float64(r.Scheduled) / r.Config.Duration.Seconds()
		if r.Config.Duration == 0 {
			want = r.Config.Rate
		}
		if r.Throughput < 0.9*want {
			r.Warnings = append(r.Warnings, fmt.Sprintf("achieved %.0f requests/s of the %.0f scheduled: the target (or the generator) could not keep up", r.Throughput, want))
		}
		if r.Wait.P99 > 1 && r.Wait.P99 > r.Service.P99 {
			r.Warnings = append(r.Warnings, fmt.Sprintf(
				"requests queued in the generator before they were sent (wait p99 %.1f ms > service p99 %.1f ms): the target stalled, or -connections is too low for this rate",
				r.Wait.P99, r.Service.P99))
		}
	}
	if c := r.Derived.Consistency; c != nil && c.Stale > 0 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("the proxy's consistency checks found %.0f stale hits of %.0f judged: see its log", c.Stale, c.OK+c.Stale))
	}
	if r.Derived.StaleReads > 0 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%d stale reads: the target served data older than acknowledged writes", r.Derived.StaleReads))
	}
}

// sharedProcesses names scraped sources that look like one process, "" if
// none: the same start time (whole seconds: two processes started together
// share it) and the same memory size when scraped (both scrapes run at
// once, so one process reports the same figure twice).
func (r *Result) sharedProcesses() string {
	byStart := map[[2]float64][]string{}
	for _, m := range r.Metrics {
		var key [2]float64
		for _, x := range m.Metrics {
			switch x.Name {
			case "process_start_time_seconds":
				key[0] = x.After
			case "process_resident_memory_bytes":
				key[1] = x.After
			}
		}
		if key[0] > 0 {
			byStart[key] = append(byStart[key], m.Source.Name)
		}
	}
	for _, names := range byStart {
		if len(names) > 1 {
			return strings.Join(names, " and ")
		}
	}
	return ""
}

// SaveJSON writes the report to path.
func (r *Result) SaveJSON(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// LoadResult reads a JSON report.
func LoadResult(path string) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if r.ReportVersion != ReportVersion {
		return nil, fmt.Errorf("%s: report version %d, this bench reads %d", path, r.ReportVersion, ReportVersion)
	}
	return &r, nil
}
