package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Comparison is runs side by side: one row per figure, one column per run,
// and each later run's ratio to the first.
type Comparison struct {
	Names []string        `json:"names"`
	Rows  []ComparisonRow `json:"rows"`
}

// ComparisonRow is one figure across the runs.
type ComparisonRow struct {
	Label  string    `json:"label"`
	Values []float64 `json:"values"`
	Unit   string    `json:"unit"`
	// Missing marks values a run does not have (no metrics scraped…).
	Missing []bool `json:"missing"`
}

// Compare lines up the figures of several runs: what the cache saves first
// (the offload, then the hit ratio and the read-after-write check), then
// speed, then what the servers spent.
func Compare(runs []*Result) Comparison {
	c := Comparison{}
	for _, r := range runs {
		c.Names = append(c.Names, r.Config.Name)
	}
	c.addSavings(runs)
	c.addLatencies(runs)
	c.addServers(runs)
	return c
}

// row adds the figure get reads from each run, unless no run has it.
func (c *Comparison) row(runs []*Result, label, unit string, get func(r *Result) (float64, bool)) {
	cr := ComparisonRow{Label: label, Unit: unit}
	any := false
	for _, r := range runs {
		v, ok := get(r)
		cr.Values = append(cr.Values, v)
		cr.Missing = append(cr.Missing, !ok)
		any = any || ok
	}
	if any {
		c.Rows = append(c.Rows, cr)
	}
}

// always is a figure every run has.
func always(f func(r *Result) float64) func(r *Result) (float64, bool) {
	return func(r *Result) (float64, bool) { return f(r), true }
}

// addSavings adds the offload, the hit ratio, stale reads and the totals.
func (c *Comparison) addSavings(runs []*Result) {
	c.row(runs, "origin requests per client read", "", func(r *Result) (float64, bool) {
		return r.Derived.OriginRequestsPerRead, r.Derived.OriginRequestsPerRead >= 0
	})
	c.row(runs, "DB queries per client request", "", func(r *Result) (float64, bool) {
		return r.Derived.DBQueriesPerRequest, r.Derived.DBQueriesPerRequest > 0
	})
	c.row(runs, "hit ratio, steady", "%", func(r *Result) (float64, bool) {
		return 100 * r.Cache.SteadyHitRatio, r.Cache.judged() > 0
	})
	c.row(runs, "hit ratio, with the cold start", "%", func(r *Result) (float64, bool) {
		return 100 * r.Cache.HitRatio, r.Cache.judged() > 0
	})
	c.row(runs, "stale reads", "", always(func(r *Result) float64 { return float64(r.Derived.StaleReads) }))
	c.row(runs, "throughput", "req/s", always(func(r *Result) float64 { return r.Throughput }))
	c.row(runs, "requests", "", always(func(r *Result) float64 { return float64(r.Requests) }))
	c.row(runs, "errors", "%", always(func(r *Result) float64 { return 100 * float64(r.Errors) / float64(max(r.Requests, 1)) }))
}

// latencyQuantile is one column of a latency row.
type latencyQuantile struct {
	name string
	of   func(Percentiles) float64
}

var (
	// allQuantiles are compared for all requests together.
	allQuantiles = []latencyQuantile{
		{"p50", func(p Percentiles) float64 { return p.P50 }},
		{"p90", func(p Percentiles) float64 { return p.P90 }},
		{"p99", func(p Percentiles) float64 { return p.P99 }},
		{"p99.9", func(p Percentiles) float64 { return p.P999 }},
		{"max", func(p Percentiles) float64 { return p.Max }},
	}
	// opQuantiles are compared per kind of request: the middle and the
	// tail.
	opQuantiles = []latencyQuantile{allQuantiles[0], allQuantiles[2]}
)

// addLatencies adds the latencies of all requests, then of each kind.
func (c *Comparison) addLatencies(runs []*Result) {
	for _, op := range append([]string{"all"}, opNames[:]...) {
		qs := opQuantiles
		if op == "all" {
			qs = allQuantiles
		}
		for _, q := range qs {
			c.row(runs, op+" "+q.name, "ms", func(r *Result) (float64, bool) {
				s, ok := r.opStats(op)
				return q.of(s.Latency), ok
			})
		}
	}
}

// opStats is the figures of op ("all" for all requests), and whether the run
// made any such request.
func (r *Result) opStats(op string) (OpStats, bool) {
	if op == "all" {
		return r.All, r.All.Count > 0
	}
	for _, s := range r.Ops {
		if s.Op == op {
			return s, s.Count > 0
		}
	}
	return OpStats{}, false
}

// addServers adds what the servers and the client spent.
func (c *Comparison) addServers(runs []*Result) {
	c.row(runs, "origin requests", "req/s", func(r *Result) (float64, bool) {
		return r.Derived.OriginRequestsPerSec, r.Derived.OriginRequestsPerRead >= 0
	})
	c.row(runs, "DB queries", "q/s", func(r *Result) (float64, bool) { return r.Derived.DBQueriesPerSec, r.Derived.DBQueriesPerSec > 0 })
	c.row(runs, "memcached ops", "ops/s", func(r *Result) (float64, bool) {
		return r.Derived.MemcachedOpsPerSec, r.Derived.MemcachedOpsPerSec > 0
	})
	c.row(runs, "proxy CPU", "cores", func(r *Result) (float64, bool) { return r.Derived.ProxyCores, r.Derived.ProxyCores > 0 })
	c.row(runs, "origin CPU", "cores", func(r *Result) (float64, bool) { return r.Derived.OriginCores, r.Derived.OriginCores > 0 })
	c.row(runs, "client CPU", "cores", always(func(r *Result) float64 { return r.Client.Cores }))
	c.row(runs, "client CPU per request", "µs", always(func(r *Result) float64 { return r.Client.MicrosPerRequest }))
}

// fmtValue prints a figure compactly.
func fmtValue(v float64) string {
	switch a := abs(v); {
	case a == 0:
		return "0"
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}

// ratio prints v/base, or "-" when it says nothing.
func ratio(v, base float64, missing bool) string {
	if missing || base == 0 {
		return "-"
	}
	return fmt.Sprintf("×%.2f", v/base)
}

// WriteText prints the comparison as a table with ratios to the first run.
func (c Comparison) WriteText(w io.Writer) {
	if len(c.Names) > 1 {
		fmt.Fprintf(w, "ratio columns: each run's figure ÷ %s's (×0.10: a tenth of it)\n", c.Names[0])
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{"figure", "unit"}
	head = append(head, c.Names...)
	for _, n := range c.Names[1:] {
		head = append(head, n+" ÷ "+c.Names[0])
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for _, r := range c.Rows {
		cells := []string{r.Label, r.Unit}
		for i, v := range r.Values {
			if r.Missing[i] {
				cells = append(cells, "-")
			} else {
				cells = append(cells, fmtValue(v))
			}
		}
		for i := 1; i < len(r.Values); i++ {
			cells = append(cells, ratio(r.Values[i], r.Values[0], r.Missing[i] || r.Missing[0]))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	tw.Flush()
}
