package fleet

import (
	"context"
	"fmt"
	"io"
	"slices"
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
	res.Err = d.Run(ctx, f, l)
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
	fmt.Fprintln(w, "| drill | reads | writes | acked (pending) | stale reads | lost writes | errors by status | over 2 s | slowest |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		s := r.Stats
		fmt.Fprintf(w, "| %s | %d | %d | %d (%d) | %d | %d | %s | %d | %s |\n", r.Drill.Name, s.Reads, s.Writes,
			s.Acked, s.Pending, s.Stale, s.Lost, s.ErrorsText(), s.Slow, s.MaxLatency.Round(time.Millisecond))
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
