// The membership drills: memcached nodes added, removed, replaced, put back
// with old contents, and dead for good, through the invalidators' admin
// endpoints (members.go) under the drills' load. Each marks its change on
// the load's timeline (MarkChange, MarkSettled) so that the report says how
// long it took to settle, what it refetched against the share of keys it
// moved, and, per 5 s, the writes answered "pending" and the hit ratio.
// Each puts the membership back on the zones' nodes afterwards (Undo).

package fleet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// membershipSettle bounds how long a drill waits for GET /memcached to show
// a change settled: three generations a view time (2 s) apart, after the
// ejection time (10 s) for a dead node, with room.
const membershipSettle = time.Minute

// deadFor is how long memcached-dead keeps its node stopped: the issue's
// bar (nothing answered "pending" 30 s after the node died, the hit ratio
// back within 30 s) and the time to see it hold.
const deadFor = 40 * time.Second

// readdedMarker is set on the node memcached-readded takes out: gone once
// it is back, or it rejoined unflushed.
const readdedMarker = "drill:readded"

// membershipDrills change zone c's node, or add a spare: zone c runs no
// origin or invalidator, so only memcached changes.
var membershipDrills = []Drill{
	{Name: "memcached-added", What: "a spare memcached node (empty, at a new address) added; removed again after",
		Run: func(ctx context.Context, f *Fleet, l *Load) error {
			spare, err := f.StartSpareMemcached(ctx)
			if err != nil {
				return err
			}
			return f.changeMembership(ctx, l, append(slices.Clone(f.pool), spare),
				func() error { _, err := f.AddMemcached(ctx, spare); return err })
		},
		Undo: restoreMembership},
	{Name: "memcached-removed", What: "zone c's memcached node removed (it keeps running); added back after (flushed first)",
		Run: func(ctx context.Context, f *Fleet, l *Load) error {
			c, _ := f.MemcachedAddr("c")
			return f.changeMembership(ctx, l, without(f.pool, c),
				func() error { _, err := f.RemoveMemcached(ctx, c); return err })
		},
		Undo: restoreMembership},
	{Name: "memcached-replaced", What: "zone c's memcached node replaced by a spare (empty, at a new address); replaced back after",
		Run: func(ctx context.Context, f *Fleet, l *Load) error {
			spare, err := f.StartSpareMemcached(ctx)
			if err != nil {
				return err
			}
			c, _ := f.MemcachedAddr("c")
			return f.changeMembership(ctx, l, append(without(f.pool, c), spare),
				func() error { _, err := f.ReplaceMemcached(ctx, c, spare); return err })
		},
		Undo: restoreMembership},
	{Name: "memcached-replaced-in-place", What: "zone c's memcached process restarted empty on its address (no command: the decider rewrites the document to it)",
		Run: func(ctx context.Context, f *Fleet, l *Load) error {
			c, _ := f.MemcachedAddr("c")
			l.MarkChange(movedShare(f.pool, without(f.pool, c))) // its keys are lost, not moved
			if err := f.RestartMemcached(ctx, "c"); err != nil {
				return err
			}
			return f.waitSettled(ctx, l, func(s MemcachedState) bool { return s.SettledOn(f.pool) && nodeUp(s, c) })
		}},
	{Name: "memcached-readded", What: "zone c's memcached node removed, every post written while it is out, then added back with its old contents (the decider must flush it first: a key set on it while out must be gone)",
		Run: func(ctx context.Context, f *Fleet, l *Load) error {
			c, _ := f.MemcachedAddr("c")
			if _, err := f.RemoveMemcached(ctx, c); err != nil {
				return err
			}
			if err := f.waitSettled(ctx, l, func(s MemcachedState) bool { return s.SettledOn(without(f.pool, c)) }); err != nil {
				return err
			}
			l.WriteEach(f.Zone("a").ProxyAddr())
			sleep(ctx, 2*time.Second) // the load writes more
			// The proxies' memory (L1, leases) hides most of what the node
			// holds from the load: a marker shows whether it was flushed.
			mc := memcache.New(c)
			if err := mc.Set(&memcache.Item{Key: readdedMarker, Value: []byte("old contents")}); err != nil {
				return fmt.Errorf("mark the removed node: %w", err)
			}
			if err := f.changeMembership(ctx, l, f.pool,
				func() error { _, err := f.AddMemcached(ctx, c); return err }); err != nil {
				return err
			}
			switch _, err := mc.Get(readdedMarker); {
			case err == nil:
				return errors.New("the node rejoined unflushed: a key set on it while it was out is still there")
			case !errors.Is(err, memcache.ErrCacheMiss):
				return fmt.Errorf("read the marker: %w", err)
			}
			return nil
		},
		Undo: restoreMembership},
	{Name: "memcached-dead", What: "zone c's memcached node stopped (SIGSTOP) for 40 s, no command: the decider ejects it; continued after (flushed as it rejoins)",
		Run: func(ctx context.Context, f *Fleet, l *Load) error {
			c, _ := f.MemcachedAddr("c")
			l.MarkChange(movedShare(f.pool, without(f.pool, c)))
			died := time.Now()
			if err := f.PauseMemcached("c"); err != nil {
				return err
			}
			err := f.waitSettled(ctx, l, func(s MemcachedState) bool { return s.SettledOn(without(f.pool, c)) })
			sleep(ctx, time.Until(died.Add(deadFor)))
			return err
		},
		Undo: func(ctx context.Context, f *Fleet, l *Load) error {
			return errors.Join(f.ResumeMemcached("c"), restoreMembership(ctx, f, l))
		}},
}

// changeMembership marks a change on l's timeline, asks for it, and waits
// until GET /memcached shows it settled with read as its read set.
func (f *Fleet) changeMembership(ctx context.Context, l *Load, read []string, ask func() error) error {
	cur, err := f.MemcachedStatus(ctx)
	if err != nil {
		return err
	}
	l.MarkChange(movedShare(cur.Read, read))
	if err := ask(); err != nil {
		return err
	}
	return f.waitSettled(ctx, l, func(s MemcachedState) bool { return s.SettledOn(read) })
}

// waitSettled waits (at most membershipSettle) until GET /memcached shows
// what done looks for, and marks the change settled on l's timeline.
func (f *Fleet) waitSettled(ctx context.Context, l *Load, done func(MemcachedState) bool) error {
	ctx, cancel := context.WithTimeout(ctx, membershipSettle)
	defer cancel()
	if _, err := f.WaitMemcached(ctx, done); err != nil {
		return err
	}
	l.MarkSettled()
	return nil
}

// restoreMembership asks for the zones' nodes as the membership again,
// waits until it settled there, and stops the spares.
func restoreMembership(ctx context.Context, f *Fleet, _ *Load) error {
	cur, err := f.MemcachedStatus(ctx)
	if err != nil {
		return err
	}
	extra, missing := without(cur.Desired, f.pool...), without(f.pool, cur.Desired...)
	if len(extra) == 1 && len(missing) == 1 {
		_, err = f.ReplaceMemcached(ctx, extra[0], missing[0]) // one change, not two
	} else {
		for _, n := range missing {
			_, e := f.AddMemcached(ctx, n)
			err = errors.Join(err, e)
		}
		for _, n := range extra {
			_, e := f.RemoveMemcached(ctx, n)
			err = errors.Join(err, e)
		}
	}
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, membershipSettle)
	defer cancel()
	if _, err := f.WaitMemcached(wctx, func(s MemcachedState) bool { return s.SettledOn(f.pool) }); err != nil {
		return err
	}
	f.mu.Lock()
	spares := make([]string, 0, len(f.spares))
	for addr := range f.spares {
		spares = append(spares, addr)
	}
	f.mu.Unlock()
	for _, addr := range spares {
		err = errors.Join(err, f.StopSpareMemcached(addr))
	}
	return err
}

// without is nodes without the given ones, sorted.
func without(nodes []string, drop ...string) []string {
	var out []string
	for _, n := range sorted(nodes) {
		if !slices.Contains(drop, n) {
			out = append(out, n)
		}
	}
	return out
}

// nodeUp reports whether the leader's GET /memcached shows node up (a
// standby's answer has no health: then it counts as up).
func nodeUp(s MemcachedState, node string) bool {
	if len(s.Nodes) == 0 {
		return true
	}
	i := slices.IndexFunc(s.Nodes, func(n MemcachedNode) bool { return n.Node == node })
	return i >= 0 && s.Nodes[i].Up
}
