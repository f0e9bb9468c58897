package fleet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A Drill injects one fault into a running fleet while Load runs through
// HAProxy, holds it, and undoes it. RunDrill then checks, after the
// durable path's bound, every post through every proxy directly, and every
// acknowledged write against the primary.
type Drill struct {
	Name, What string
	Run        func(ctx context.Context, f *Fleet, l *Load) error
}

// Drills are the faults of the invalidation issue, in an order that leaves
// the fleet whole after each.
var Drills = []Drill{
	{"memcached-stall", "zone b's memcached stopped (SIGSTOP) for 0.3 s, 10 times, 0.3 s apart",
		func(ctx context.Context, f *Fleet, _ *Load) error {
			for range 10 {
				if err := f.PauseMemcached("b"); err != nil {
					return err
				}
				sleep(ctx, 300*time.Millisecond)
				if err := f.ResumeMemcached("b"); err != nil {
					return err
				}
				sleep(ctx, 300*time.Millisecond)
			}
			return nil
		}},
	{"memcached-restart", "zone c's memcached restarted empty (every entry and group value on it lost)",
		func(ctx context.Context, f *Fleet, _ *Load) error { return f.RestartMemcached(ctx, "c") }},
	{"writer-killed", "zone b's memcached stopped; every post edited through zone a's proxy (moves queued there); zone a's proxy killed; memcached resumed; the proxy started again",
		func(ctx context.Context, f *Fleet, l *Load) error {
			if err := f.PauseMemcached("b"); err != nil {
				return err
			}
			l.WriteEach(f.Zone("a").ProxyAddr())
			killErr := f.KillProxy("a")
			if err := f.ResumeMemcached("b"); err != nil {
				return err
			}
			if killErr != nil {
				return killErr
			}
			sleep(ctx, time.Second)
			return f.StartProxy("a")
		}},
	{"invalidator-failover", "the leading invalidator's database session killed on the server: the standby takes over",
		func(ctx context.Context, f *Fleet, _ *Load) error {
			_, err := f.KillInvalidatorSession(ctx)
			return err
		}},
	{"writes-bypass-edge", "every post edited by SQL typed into the primary (no proxy, no origin involved)",
		func(ctx context.Context, f *Fleet, l *Load) error { return l.WriteEachBySQL(ctx, f) }},
	{"origin-answers-dropped", "zone a's origin answers lost on the way back for 1 s (requests arrive and commit)",
		func(ctx context.Context, f *Fleet, _ *Load) error {
			if err := f.DropOriginAnswers("a", true); err != nil {
				return err
			}
			sleep(ctx, time.Second)
			return f.DropOriginAnswers("a", false)
		}},
	{"replica-lag", "the replica's SQL thread stopped for 3 s (it lags every write meanwhile)",
		func(ctx context.Context, f *Fleet, _ *Load) error {
			if err := f.StopReplicaSQL(ctx, true); err != nil {
				return err
			}
			sleep(ctx, 3*time.Second)
			return f.StopReplicaSQL(ctx, false)
		}},
	{"primary-restart", "the MariaDB primary restarted (writes fail while it is down)",
		func(ctx context.Context, f *Fleet, _ *Load) error { return f.RestartPrimary(ctx) }},
	// The availability drills.
	{"origin-hung", "zone a's origin frozen for 7 s (its connections accept and answer nothing)",
		func(ctx context.Context, f *Fleet, _ *Load) error {
			return hold(ctx, 7*time.Second, func() error { return f.PauseOrigin("a") }, func() error { return f.ResumeOrigin("a") })
		}},
	{"origins-hung", "both origins frozen for 7 s",
		func(ctx context.Context, f *Fleet, _ *Load) error {
			return hold(ctx, 7*time.Second,
				func() error { return errors.Join(f.PauseOrigin("a"), f.PauseOrigin("b")) },
				func() error { return errors.Join(f.ResumeOrigin("a"), f.ResumeOrigin("b")) })
		}},
	{"primary-hung", "the MariaDB primary frozen (SIGSTOP) for 3 s",
		func(ctx context.Context, f *Fleet, _ *Load) error {
			return hold(ctx, 3*time.Second, f.PausePrimary, f.ResumeDatabases)
		}},
	{"replica-hung", "the MariaDB replica frozen (SIGSTOP) for 3 s",
		func(ctx context.Context, f *Fleet, _ *Load) error {
			return hold(ctx, 3*time.Second, f.PauseReplica, f.ResumeDatabases)
		}},
	{"memcached-killed", "zone c's memcached node killed for 5 s (connections refused), then started again empty",
		func(ctx context.Context, f *Fleet, _ *Load) error {
			return hold(ctx, 5*time.Second, func() error { return f.StopMemcached("c") }, func() error { return f.StartMemcached(ctx, "c") })
		}},
	{"proxy-frozen", "zone c's proxy frozen for 5 s, as after SIGSTOP",
		func(ctx context.Context, f *Fleet, _ *Load) error {
			return hold(ctx, 5*time.Second, func() error { return f.PauseProxy("c") }, func() error { return f.ResumeProxy("c") })
		}},
	{"proxy-killed", "zone c's proxy killed, started again after 3 s",
		func(ctx context.Context, f *Fleet, _ *Load) error {
			return hold(ctx, 3*time.Second, func() error { return f.KillProxy("c") }, func() error { return f.StartProxy("c") })
		}},
}

// hold injects a fault, waits d, and undoes it.
func hold(ctx context.Context, d time.Duration, inject, undo func() error) error {
	if err := inject(); err != nil {
		return err
	}
	sleep(ctx, d)
	return undo()
}

// DrillByName finds a drill.
func DrillByName(name string) (Drill, bool) {
	i := slices.IndexFunc(Drills, func(d Drill) bool { return d.Name == name })
	if i < 0 {
		return Drill{}, false
	}
	return Drills[i], true
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// DrillResult is one drill's outcome.
type DrillResult struct {
	Drill Drill
	Stats LoadStats
	Took  time.Duration
	Err   error // the drill could not inject or undo its fault
	// OriginBefore and OriginDuring are the proxies' origin requests per
	// second in the second before the fault and while it ran.
	OriginBefore, OriginDuring float64
}

// Passed reports no stale read and no lost write.
func (r DrillResult) Passed() bool { return r.Err == nil && r.Stats.Stale == 0 && r.Stats.Lost == 0 }

// Load rates of a drill: the 200 reads/s and 5 writes/s.
const (
	drillReadsPerSec  = 200
	drillWritesPerSec = 5
	drillPosts        = 20
)

// RunDrill runs d under load and checks the outcome.
func (f *Fleet) RunDrill(ctx context.Context, d Drill) DrillResult {
	start := time.Now()
	res := DrillResult{Drill: d}
	l, err := NewLoad(ctx, f.FrontURL(), drillPosts)
	if err != nil {
		res.Err = fmt.Errorf("set up load: %w", err)
		return res
	}
	lctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { l.Run(lctx, drillReadsPerSec, drillWritesPerSec); close(done) }()
	sleep(ctx, time.Second)
	o0, t0 := f.originRequests(), time.Now()
	sleep(ctx, time.Second)
	o1, t1 := f.originRequests(), time.Now()
	res.Err = d.Run(ctx, f, l)
	o2, t2 := f.originRequests(), time.Now()
	res.OriginBefore = originDelta(o0, o1) / t1.Sub(t0).Seconds()
	res.OriginDuring = originDelta(o1, o2) / t2.Sub(t1).Seconds()
	sleep(ctx, 2*time.Second) // traffic after recovery
	stop()
	<-done
	sleep(ctx, PendingBound)
	var proxies []string
	for _, name := range Zones {
		if z := f.Zone(name); z.Proxy != nil {
			proxies = append(proxies, z.ProxyAddr())
		}
	}
	l.Sweep(proxies)
	if versions, err := f.PostVersions(ctx); err != nil {
		res.Err = fmt.Errorf("read versions from the primary: %w", err)
	} else {
		l.CheckLost(versions)
	}
	res.Stats, res.Took = l.Stats(), time.Since(start)
	return res
}

// WriteDrillTable writes the results as a Markdown table, then the stale
// examples and errors of any drill that did not pass.
func WriteDrillTable(w io.Writer, results []DrillResult) {
	fmt.Fprintln(w, "| drill | reads | writes | acked (pending) | stale reads | lost writes | errors by status | over 2 s | slowest | origin req/s before → during |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		s := r.Stats
		fmt.Fprintf(w, "| %s | %d | %d | %d (%d) | %d | %d | %s | %d | %s | %.0f → %.0f |\n", r.Drill.Name, s.Reads, s.Writes,
			s.Acked, s.Pending, s.Stale, s.Lost, s.ErrorsText(), s.Slow, s.MaxLatency.Round(time.Millisecond), r.OriginBefore, r.OriginDuring)
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
	out := map[string]float64{}
	for _, name := range Zones {
		z := f.Zone(name)
		if z.Proxy == nil {
			continue
		}
		resp, err := f.http.Get("http://" + z.AdminAddr() + "/metrics")
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
