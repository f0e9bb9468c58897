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

// Compare lines up the figures of several runs.
func Compare(runs []*Result) Comparison {
	c := Comparison{}
	for _, r := range runs {
		c.Names = append(c.Names, r.Config.Name)
	}
	row := func(label, unit string, get func(r *Result) (float64, bool)) {
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
	always := func(f func(r *Result) float64) func(r *Result) (float64, bool) {
		return func(r *Result) (float64, bool) { return f(r), true }
	}
	// What the cache saves first: the offload, then the hit ratio and the
	// read-after-write check, then speed.
	row("origin requests per client read", "", func(r *Result) (float64, bool) {
		return r.Derived.OriginRequestsPerRead, r.Derived.OriginRequestsPerRead >= 0
	})
	row("DB queries per client request", "", func(r *Result) (float64, bool) {
		return r.Derived.DBQueriesPerRequest, r.Derived.DBQueriesPerRequest > 0
	})
	row("hit ratio, steady", "%", func(r *Result) (float64, bool) {
		return 100 * r.Cache.SteadyHitRatio, r.Cache.judged() > 0
	})
	row("hit ratio, with the cold start", "%", func(r *Result) (float64, bool) {
		return 100 * r.Cache.HitRatio, r.Cache.judged() > 0
	})
	row("stale reads", "", always(func(r *Result) float64 { return float64(r.Derived.StaleReads) }))
	row("throughput", "req/s", always(func(r *Result) float64 { return r.Throughput }))
	row("requests", "", always(func(r *Result) float64 { return float64(r.Requests) }))
	row("errors", "%", always(func(r *Result) float64 { return 100 * float64(r.Errors) / float64(max(r.Requests, 1)) }))
	for _, op := range append(append([]string{}, "all"), opNames[:]...) {
		get := func(r *Result) (OpStats, bool) {
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
		qs := []struct {
			name string
			f    func(Percentiles) float64
		}{
			{"p50", func(p Percentiles) float64 { return p.P50 }},
			{"p90", func(p Percentiles) float64 { return p.P90 }},
			{"p99", func(p Percentiles) float64 { return p.P99 }},
			{"p99.9", func(p Percentiles) float64 { return p.P999 }},
			{"max", func(p Percentiles) float64 { return p.Max }},
		}
		if op != "all" {
			// Per kind, the middle and the tail; all of it for "all".
			qs = []struct {
				name string
				f    func(Percentiles) float64
			}{qs[0], qs[2]}
		}
		for _, q := range qs {
			row(op+" "+q.name, "ms", func(r *Result) (float64, bool) {
				s, ok := get(r)
				return q.f(s.Latency), ok
			})
		}
	}
	row("origin requests", "req/s", func(r *Result) (float64, bool) {
		return r.Derived.OriginRequestsPerSec, r.Derived.OriginRequestsPerRead >= 0
	})
	row("DB queries", "q/s", func(r *Result) (float64, bool) { return r.Derived.DBQueriesPerSec, r.Derived.DBQueriesPerSec > 0 })
	row("memcached ops", "ops/s", func(r *Result) (float64, bool) {
		return r.Derived.MemcachedOpsPerSec, r.Derived.MemcachedOpsPerSec > 0
	})
	row("proxy CPU", "cores", func(r *Result) (float64, bool) { return r.Derived.ProxyCores, r.Derived.ProxyCores > 0 })
	row("origin CPU", "cores", func(r *Result) (float64, bool) { return r.Derived.OriginCores, r.Derived.OriginCores > 0 })
	row("client CPU", "cores", always(func(r *Result) float64 { return r.Client.Cores }))
	return c
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
