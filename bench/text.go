package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

func fmtDur(d time.Duration) string {
	switch {
	case d < 0:
		return "-"
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%dµs", d/time.Microsecond)
	}
}

// fmtMs prints a latency given in milliseconds.
func fmtMs(ms float64) string {
	return fmtDur(time.Duration(ms * float64(time.Millisecond)))
}

// WriteText prints the run's tables for a person.
func (r *Result) WriteText(w io.Writer) {
	r.writeHeader(w)
	r.writeLatencies(w)
	r.writeCorrectness(w)
	r.writeServers(w)
	fmt.Fprintf(w, "client CPU: %.2fs user + %.2fs system = %.2f cores busy of %d usable (machine: %d), %.0f µs per request\n",
		r.Client.UserSeconds, r.Client.SysSeconds, r.Client.Cores, r.Client.Usable, r.Client.NumCPU, r.Client.MicrosPerRequest)
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "WARNING: %s\n", warn)
	}
}

// writeHeader says what ran against what, and the totals.
func (r *Result) writeHeader(w io.Writer) {
	c := r.Config
	fmt.Fprintf(w, "run %q: %s against %s\n", c.Name, r.Mode, strings.Join(c.Targets, ", "))
	if c.Rate > 0 {
		fmt.Fprintf(w, "  scheduled %.0f/s", c.Rate)
		if c.Spike.Every > 0 {
			fmt.Fprintf(w, " with spikes %s", c.Spike)
		}
		if c.Attack.Rate > 0 {
			fmt.Fprintf(w, " and an attack %s/s on connections of its own", c.Attack)
		}
		fmt.Fprintf(w, ", %d connections per target", c.Connections)
	} else {
		fmt.Fprintf(w, "  %d connections per target", c.Connections)
	}
	fmt.Fprintf(w, ", mix %d:%d (reads %s; writes %s), %s popularity", c.Reads, c.Writes, c.ReadMix, c.WriteMix, c.Popularity)
	if c.Popularity == PopularityZipf {
		fmt.Fprintf(w, " s=%g", c.ZipfS)
	}
	fmt.Fprintf(w, ", seed %d\n", c.Seed)
	fmt.Fprintf(w, "  data: %d users, %d posts (%s)\n", r.SeedInfo.Users, r.SeedInfo.Posts, r.SeedInfo.File)
	fmt.Fprintf(w, "  %d requests in %s = %.0f/s, %d errors", r.Requests, r.Elapsed.Round(time.Millisecond), r.Throughput, r.Errors)
	if r.Mode == "open loop" {
		fmt.Fprintf(w, ", %d scheduled", r.Scheduled)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w)
}

// writeLatencies is the table of latencies by operation.
func (r *Result) writeLatencies(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tcount\terrors\tper s\tp50\tp90\tp99\tp99.9\tmax\t")
	for _, s := range append(append([]OpStats{}, r.Ops...), r.All) {
		if s.Count == 0 {
			continue
		}
		l := s.Latency
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t\n", s.Op, s.Count, s.Errors, s.PerSec,
			fmtMs(l.P50), fmtMs(l.P90), fmtMs(l.P99), fmtMs(l.P999), fmtMs(l.Max))
	}
	if l := r.MixHits; l.Count > 0 {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", "hit (mix)", l.Count, "-", "-",
			fmtMs(l.P50), fmtMs(l.P90), fmtMs(l.P99), fmtMs(l.P999), fmtMs(l.Max))
	}
	tw.Flush()
	fmt.Fprintf(w, "latency counts from the scheduled send time (failed requests included); service time (send → answer) p50 %s p99 %s; wait before send p99 %s\n\n",
		fmtMs(r.Service.P50), fmtMs(r.Service.P99), fmtMs(r.Wait.P99))
}

// writeCorrectness is what the client saw besides speed: cache outcomes,
// stale reads, errors and retries.
func (r *Result) writeCorrectness(w io.Writer) {
	o := r.Cache.Outcomes
	if r.Cache.judged() > 0 {
		fmt.Fprintf(w, "cache: hit ratio %.1f%% (hit %d, miss %d, stale %d, bypass %d, no Cache-Status %d)\n",
			100*r.Cache.HitRatio, o["hit"], o["miss"], o["stale"], o["bypass"], o["none"])
	} else {
		fmt.Fprintf(w, "cache: no read carried Cache-Status (the target is not a cache)\n")
	}
	fmt.Fprint(w, "read-after-write check:")
	for _, s := range r.Stale {
		fmt.Fprintf(w, "  %s %d stale of %d", s.Kind, s.Stale, s.Checked)
	}
	fmt.Fprintf(w, "  (total %d stale)\n", r.Derived.StaleReads)
	if c := r.Derived.Consistency; c != nil {
		fmt.Fprintf(w, "proxy consistency checks of sampled hits: ok %.0f, stale %.0f, error %.0f, skipped %.0f", c.OK, c.Stale, c.Error, c.Skipped)
		if c.OK+c.Stale > 0 {
			atLeast := ""
			if c.NinesAtLeast {
				atLeast = "at least "
			}
			fmt.Fprintf(w, "; %s%.1f nines", atLeast, c.Nines)
		}
		fmt.Fprintln(w)
	}
	for _, e := range r.StaleExamples {
		fmt.Fprintf(w, "  stale: %s\n", e)
	}
	if len(r.ErrorKinds) > 0 {
		fmt.Fprintln(w, "errors:")
		for _, e := range r.ErrorKinds {
			fmt.Fprintf(w, "  %-8s %-40s %d\n", e.Op, e.Kind, e.Count)
		}
	}
	if r.Retries > 0 {
		fmt.Fprintf(w, "reads retried on a keep-alive connection the server had closed: %d\n", r.Retries)
	}
}

// writeServers is what the servers' own counters said.
func (r *Result) writeServers(w io.Writer) {
	d := r.Derived
	if d.OriginRequestsPerRead >= 0 {
		fmt.Fprintf(w, "origin: %.0f requests/s, %.3f origin reads per client read (offload %.1f%%)",
			d.OriginRequestsPerSec, d.OriginRequestsPerRead, max(0, 100*(1-d.OriginRequestsPerRead)))
		if d.DBQueriesPerSec > 0 {
			fmt.Fprintf(w, ", %.0f DB queries/s", d.DBQueriesPerSec)
		}
		fmt.Fprintln(w)
	}
	if d.MemcachedOpsPerSec > 0 {
		fmt.Fprintf(w, "memcached: %.0f ops/s\n", d.MemcachedOpsPerSec)
	}
	for _, m := range r.Metrics {
		fmt.Fprintf(w, "metrics %s (%s):", m.Source.Name, m.Source.URL)
		if m.Error != "" {
			fmt.Fprintf(w, " %s\n", m.Error)
			continue
		}
		known := 0
		for _, x := range m.Metrics {
			if x.Known != "" {
				fmt.Fprintf(w, "\n  %-50s %-14s +%.0f (%.1f/s)", x.Name, "["+x.Known+"]", x.Delta, x.PerSec)
				known++
			}
		}
		fmt.Fprintf(w, "\n  (%d more metrics in the JSON report)\n", len(m.Metrics)-known)
	}
}
