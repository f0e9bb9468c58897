package fleet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// A Drill injects one fault into a running fleet while Load runs through
// HAProxy, holds it, and undoes it. RunDrill then checks, after the
// durable path's bound, every post through every proxy directly, and every
// acknowledged write against the primary.
//
// A membership drill (memberdrills.go) changes the memcached membership in
// Run, which returns once it settled; Undo, still under load and after the
// window that measures the fleet after the change, puts the fleet's
// membership back as it was. Undo runs even when Run failed.
type Drill struct {
	Name, What string
	Run        func(ctx context.Context, f *Fleet, l *Load) error
	Undo       func(ctx context.Context, f *Fleet, l *Load) error
}

// Drills are every drill: the faults, then the membership changes.
var Drills = slices.Concat(faultDrills, membershipDrills)

// faultDrills are the faults of the invalidation issue, in an order that
// leaves the fleet whole after each.
var faultDrills = []Drill{
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
		}, nil},
	{"memcached-stopped", "zone b's memcached stopped (SIGSTOP) for 3 s, then resumed: reads right after it answers again must not wait out a fill lease its stall left behind",
		func(ctx context.Context, f *Fleet, _ *Load) error {
			if err := f.PauseMemcached("b"); err != nil {
				return err
			}
			sleep(ctx, 3*time.Second)
			if err := f.ResumeMemcached("b"); err != nil {
				return err
			}
			sleep(ctx, 3*time.Second) // the reads of the 3 s after it came back are the ones measured
			return nil
		}, nil},
	{"memcached-restart", "zone c's memcached restarted empty (every entry and group value on it lost)",
		func(ctx context.Context, f *Fleet, _ *Load) error { return f.RestartMemcached(ctx, "c") }, nil},
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
		}, nil},
	{"invalidator-failover", "the leading invalidator's database session killed on the server: the standby takes over",
		func(ctx context.Context, f *Fleet, _ *Load) error {
			_, err := f.KillInvalidatorSession(ctx)
			return err
		}, nil},
	{"writes-bypass-edge", "every post edited by SQL typed into the primary (no proxy, no origin involved)",
		func(ctx context.Context, f *Fleet, l *Load) error { return l.WriteEachBySQL(ctx, f) }, nil},
	{"origin-answers-dropped", "zone a's origin answers lost on the way back for 1 s (requests arrive and commit)",
		func(ctx context.Context, f *Fleet, _ *Load) error {
			if err := f.DropOriginAnswers("a", true); err != nil {
				return err
			}
			sleep(ctx, time.Second)
			return f.DropOriginAnswers("a", false)
		}, nil},
	{"replica-lag", "the replica's SQL thread stopped for 3 s (it lags every write meanwhile)",
		func(ctx context.Context, f *Fleet, _ *Load) error {
			if err := f.StopReplicaSQL(ctx, true); err != nil {
				return err
			}
			sleep(ctx, 3*time.Second)
			return f.StopReplicaSQL(ctx, false)
		}, nil},
	{"primary-restart", "the MariaDB primary restarted (writes fail while it is down)",
		func(ctx context.Context, f *Fleet, _ *Load) error { return f.RestartPrimary(ctx) }, nil},
	// The availability drills.
	{"origin-hung", "zone a's origin frozen for 7 s (its connections accept and answer nothing)",
		func(ctx context.Context, f *Fleet, _ *Load) error {
			return hold(ctx, 7*time.Second, func() error { return f.PauseOrigin("a") }, func() error { return f.ResumeOrigin("a") })
		}, nil},
	{"origins-hung", "both origins frozen for 7 s",
		func(ctx context.Context, f *Fleet, _ *Load) error {
			return hold(ctx, 7*time.Second,
				func() error { return errors.Join(f.PauseOrigin("a"), f.PauseOrigin("b")) },
				func() error { return errors.Join(f.ResumeOrigin("a"), f.ResumeOrigin("b")) })
		}, nil},
	{"primary-hung", "the MariaDB primary frozen (SIGSTOP) for 3 s",
		func(ctx context.Context, f *Fleet, _ *Load) error {
			return hold(ctx, 3*time.Second, f.PausePrimary, f.ResumeDatabases)
		}, nil},
	{"replica-hung", "the MariaDB replica frozen (SIGSTOP) for 3 s",
		func(ctx context.Context, f *Fleet, _ *Load) error {
			return hold(ctx, 3*time.Second, f.PauseReplica, f.ResumeDatabases)
		}, nil},
	{"memcached-killed", "zone c's memcached node killed for 5 s (connections refused), then started again empty",
		func(ctx context.Context, f *Fleet, _ *Load) error {
			return hold(ctx, 5*time.Second, func() error { return f.StopMemcached("c") }, func() error { return f.StartMemcached(ctx, "c") })
		}, nil},
	{"proxy-frozen", "zone c's proxy frozen for 5 s, as after SIGSTOP",
		func(ctx context.Context, f *Fleet, _ *Load) error {
			return hold(ctx, 5*time.Second, func() error { return f.PauseProxy("c") }, func() error { return f.ResumeProxy("c") })
		}, nil},
	{"proxy-killed", "zone c's proxy killed, started again after 3 s",
		func(ctx context.Context, f *Fleet, _ *Load) error {
			return hold(ctx, 3*time.Second, func() error { return f.KillProxy("c") }, func() error { return f.StartProxy("c") })
		}, nil},
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
	// OriginBefore, OriginDuring and OriginAfter are the proxies' origin
	// requests per second in the drillBefore before the fault, while it
	// ran (for a membership change: until it settled), and in the
	// drillAfter after that.
	OriginBefore, OriginDuring, OriginAfter float64
	Change                                  *ChangeResult // membership drills only
}

// Passed reports no stale read and no lost write.
func (r DrillResult) Passed() bool { return r.Err == nil && r.Stats.Stale == 0 && r.Stats.Lost == 0 }

// Load rates of a drill: the 200 reads/s and 5 writes/s.
const (
	drillReadsPerSec  = 200
	drillWritesPerSec = 5
	drillPosts        = 20
)

// The windows a drill's report measures, before the fault and after it was
// undone (or the membership change settled).
const (
	drillBefore = 3 * time.Second
	drillAfter  = 3 * time.Second
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
	origin := &originSamples{f: f}
	go origin.every(lctx, 500*time.Millisecond)
	sleep(ctx, time.Second) // the load settles
	before := origin.take()
	sleep(ctx, drillBefore)
	fault := origin.take()
	res.Err = d.Run(ctx, f, l)
	returned := origin.take()
	recovered := returned
	change := l.memberChange()
	if change != nil && !change.settled.IsZero() {
		recovered = change.settled
	}
	sleep(ctx, time.Until(returned.Add(drillAfter))) // traffic after recovery
	origin.take()
	if d.Undo != nil {
		res.Err = errors.Join(res.Err, d.Undo(ctx, f, l))
		sleep(ctx, 2*time.Second)
	}
	stop()
	<-done
	res.OriginBefore = origin.rate(before, fault)
	res.OriginDuring = origin.rate(fault, recovered)
	if change != nil {
		res.OriginDuring = origin.rate(change.asked, recovered)
		res.Change = l.changeResult(change, before, fault, returned.Add(drillAfter))
	}
	res.OriginAfter = origin.rate(recovered, recovered.Add(drillAfter))
	sleep(ctx, PendingBound)
	var proxies []string
	for _, name := range Zones {
		if z := f.Zone(name); z.Proxy != nil {
			proxies = append(proxies, z.ProxyAddr())
		}
	}
	l.Sweep(proxies)
	if versions, err := f.PostVersions(ctx); err != nil {
		res.Err = errors.Join(res.Err, fmt.Errorf("read versions from the primary: %w", err))
	} else {
		l.CheckLost(versions)
	}
	res.Stats, res.Took = l.Stats(), time.Since(start)
	return res
}
