// A drill's report: the origin requests over the drill's windows, what a
// membership change cost, and the table make drills prints.

package fleet

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ChangeResult is what a membership drill's change cost and how long it
// took, from the load's timeline.
type ChangeResult struct {
	// Settled is how long after the change was asked for (or the node
	// died) GET /memcached showed it settled; 0: it never did.
	Settled time.Duration
	// Moved is the share of keys the change gives another node
	// (movedShare); Refetched the share of the load's keys refetched from
	// the origin for no write from the change until drillAfter after the
	// drill returned (it returns once the change settled, the dead-node
	// drill once its node was dead deadFor); RefetchedBefore the same in
	// the drillBefore window before the drill, for scale.
	Moved, Refetched, RefetchedBefore float64
	// HitBefore is the reads' hit ratio (%) in the drillBefore window.
	HitBefore float64
	// Buckets are 5 s each, from the change to drillAfter after the drill
	// returned.
	Buckets []ChangeBucket
	// LastPending is how long after the change the last write answered
	// "pending" came, up to the end of the buckets; negative: none.
	LastPending time.Duration
}

// ChangeBucket is 5 s of a change.
type ChangeBucket struct {
	Pending int     // writes answered "pending"
	Reads   int     // reads answered 200
	Hit     float64 // of them from a cache, %
}

// bucket is the length of a ChangeBucket.
const bucket = 5 * time.Second

// changeResult reads the timeline of change c up to end; before and fault
// bound the window before the drill.
func (l *Load) changeResult(c *memberChange, before, fault, end time.Time) *ChangeResult {
	r := &ChangeResult{Moved: c.moved, LastPending: -1}
	if !c.settled.IsZero() {
		r.Settled = c.settled.Sub(c.asked)
	}
	n, keys := l.refetched(c.asked, end)
	r.Refetched = float64(n) / float64(keys)
	n, _ = l.refetched(before, fault)
	r.RefetchedBefore = float64(n) / float64(keys)
	r.HitBefore = hitRatio(l.between(before, fault))
	for t := c.asked; t.Before(end); t = t.Add(bucket) {
		s := l.between(t, t.Add(bucket))
		r.Buckets = append(r.Buckets, ChangeBucket{Pending: s.pending, Reads: s.reads, Hit: hitRatio(s)})
	}
	if last := l.lastPending(end); last.After(c.asked) {
		r.LastPending = last.Sub(c.asked)
	}
	return r
}

func hitRatio(s loadSecond) float64 {
	if s.reads == 0 {
		return 0
	}
	return 100 * float64(s.hits) / float64(s.reads)
}

// HitBackAfter is when the hit ratio was back within 5 points of before
// for good: the end of the first bucket from which every bucket is; -1
// if the last one is not.
func (r *ChangeResult) HitBackAfter() time.Duration {
	back := -1
	for i := len(r.Buckets) - 1; i >= 0 && r.Buckets[i].Hit >= r.HitBefore-5; i-- {
		back = i
	}
	if back < 0 {
		return -1
	}
	return time.Duration(back+1) * bucket
}

// originSamples are the proxies' origin requests so far, read at times,
// counted from the first reading.
type originSamples struct {
	f       *Fleet
	mu      sync.Mutex
	last    map[string]float64 // by zone, the last reading
	samples []originSample
}

type originSample struct {
	at    time.Time
	total float64
}

// take reads the proxies' origin requests now, and returns when.
func (o *originSamples) take() time.Time {
	cur := o.f.originRequests()
	now := time.Now()
	o.add(now, cur)
	return now
}

// add notes the reading cur (by zone) taken at now.
func (o *originSamples) add(now time.Time, cur map[string]float64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	total := 0.0
	if n := len(o.samples); n > 0 {
		total = o.samples[n-1].total + originDelta(o.last, cur)
	}
	// A proxy that did not answer this time keeps its last reading: its
	// next one counts from there, not from zero.
	for zone, v := range o.last {
		if _, ok := cur[zone]; !ok {
			cur[zone] = v
		}
	}
	o.last = cur
	o.samples = append(o.samples, originSample{now, total})
}

// every takes a reading each interval until ctx ends.
func (o *originSamples) every(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			o.take()
		}
	}
}

// rate is the origin requests per second between the last reading at or
// before from and the first at or after to (the readings nearest inside
// when there are none).
func (o *originSamples) rate(from, to time.Time) float64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.samples) < 2 {
		return 0
	}
	a, b := o.samples[0], o.samples[len(o.samples)-1]
	for _, s := range o.samples {
		if !s.at.After(from) {
			a = s
		}
	}
	for i := len(o.samples) - 1; i >= 0; i-- {
		if !o.samples[i].at.Before(to) {
			b = o.samples[i]
		}
	}
	if !b.at.After(a.at) {
		return 0
	}
	return (b.total - a.total) / b.at.Sub(a.at).Seconds()
}

// WriteDrillTable writes the results as a Markdown table, then what each
// membership change cost over time, then the stale examples and errors of
// any drill that did not pass.
func WriteDrillTable(w io.Writer, results []DrillResult) {
	fmt.Fprintln(w, "| drill | reads | writes | acked (pending) | stale reads | lost writes | errors by status | over 2 s | slowest | origin req/s before → during → after | settled in | refetched / moved keys |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		s := r.Stats
		settled, refetched := "-", "-"
		if c := r.Change; c != nil {
			settled = "never"
			if c.Settled > 0 {
				settled = c.Settled.Round(100 * time.Millisecond).String()
			}
			refetched = fmt.Sprintf("%.0f%% / %.0f%%", 100*c.Refetched, 100*c.Moved)
		}
		fmt.Fprintf(w, "| %s | %d | %d | %d (%d) | %d | %d | %s | %d | %s | %.0f → %.0f → %.0f | %s | %s |\n", r.Drill.Name, s.Reads, s.Writes,
			s.Acked, s.Pending, s.Stale, s.Lost, s.ErrorsText(), s.Slow, s.MaxLatency.Round(time.Millisecond),
			r.OriginBefore, r.OriginDuring, r.OriginAfter, settled, refetched)
	}
	for _, r := range results {
		if c := r.Change; c != nil {
			writeChange(w, r.Drill.Name, c)
		}
	}
	for _, r := range results {
		if r.Err != nil {
			fmt.Fprintf(w, "\n%s: %v\n", r.Drill.Name, r.Err)
		}
		for _, e := range r.Stats.StaleExamples {
			fmt.Fprintf(w, "\n%s: STALE %s\n", r.Drill.Name, e)
		}
	}
}

// writeChange writes one membership change's timeline: per 5 s from the
// change, the writes answered "pending" and the hit ratio.
func writeChange(w io.Writer, name string, c *ChangeResult) {
	var pending, hits []string
	for _, b := range c.Buckets {
		pending = append(pending, strconv.Itoa(b.Pending))
		hits = append(hits, fmt.Sprintf("%.0f", b.Hit))
	}
	fmt.Fprintf(w, "\n%s, per 5 s from the change: pending answers %s; hit %% %s (before %.0f",
		name, strings.Join(pending, " "), strings.Join(hits, " "), c.HitBefore)
	if back := c.HitBackAfter(); back >= 0 {
		fmt.Fprintf(w, ", within 5 points again after %s)", back)
	} else {
		fmt.Fprint(w, ", not within 5 points again)")
	}
	if c.LastPending >= 0 {
		fmt.Fprintf(w, "; last pending answer %s after the change", c.LastPending.Round(100*time.Millisecond))
	} else {
		fmt.Fprint(w, "; no pending answer after the change")
	}
	fmt.Fprintf(w, "; refetched for no write: %.0f%% of keys during, %.0f%% in the %s before\n",
		100*c.Refetched, 100*c.RefetchedBefore, drillBefore)
}

// originDelta is the origin requests between two readings of
// originRequests; a proxy whose counter went down was restarted, and counts
// from zero.
func originDelta(before, after map[string]float64) float64 {
	var d float64
	for zone, v := range after {
		if b := before[zone]; v >= b {
			d += v - b
		} else {
			d += v
		}
	}
	return d
}

// originRequests is each running proxy's origin requests so far
// (edgecache_proxy_origin_requests_total, all results), by zone.
func (f *Fleet) originRequests() map[string]float64 {
	admins := map[string]string{} // read under f.mu: a drill may be restarting a proxy
	f.mu.Lock()
	for _, name := range Zones {
		if z := f.zones[name]; z.Proxy != nil {
			admins[name] = z.adminAddr
		}
	}
	f.mu.Unlock()
	out := map[string]float64{}
	for name, admin := range admins {
		resp, err := f.http.Get("http://" + admin + "/metrics")
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, "edgecache_proxy_origin_requests_total{") {
				continue
			}
			if i := strings.LastIndexByte(line, ' '); i > 0 {
				if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
					out[name] += v
				}
			}
		}
		resp.Body.Close()
	}
	return out
}
