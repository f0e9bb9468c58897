// The load's timeline: what it saw second by second, the keys it saw
// refetched for no write, and the membership change a drill made, so that a
// drill's report can say what the change cost and when things were back.

package fleet

import (
	"strings"
	"time"
)

// loadSecond is what the load saw in one second of its run.
type loadSecond struct {
	reads, hits int // reads answered 200, of them from a cache (Cache-Status "hit")
	pending     int // writes answered "Edgecache-Invalidation: pending"
}

// memberChange is the membership change a drill made: when it asked for
// it (or, for a dead node, when the node died), the share of keys whose
// node it changes, and when GET /memcached first showed it settled (zero
// until then).
type memberChange struct {
	asked, settled time.Time
	moved          float64
}

// second is the second of the timeline t falls in; l.mu is held.
func (l *Load) second(t time.Time) *loadSecond {
	i := max(0, int(t.Sub(l.start)/time.Second))
	for len(l.seconds) <= i {
		l.seconds = append(l.seconds, loadSecond{})
	}
	return &l.seconds[i]
}

// between sums the seconds from the one from falls in up to the one
// before to's.
func (l *Load) between(from, to time.Time) loadSecond {
	l.mu.Lock()
	defer l.mu.Unlock()
	var sum loadSecond
	for i := max(0, int(from.Sub(l.start)/time.Second)); i < len(l.seconds) && l.start.Add(time.Duration(i)*time.Second).Before(to); i++ {
		s := l.seconds[i]
		sum.reads += s.reads
		sum.hits += s.hits
		sum.pending += s.pending
	}
	return sum
}

// isHit reports whether a Cache-Status field says the answer came from a
// cache (L1 or memcached).
func isHit(cacheStatus string) bool { return strings.Contains(cacheStatus, "; hit") }

// keyState follows one read key (a post, or its author's list) to tell a
// refetch that no write explains: a miss after a hit with no write since.
type keyState struct {
	hitSinceWrite bool
	refetchedAt   []time.Time
}

// writing notes a write of the post sent (start) or answered (!start):
// until it is answered and the invalidations it causes have landed, a
// miss of its keys is the write's.
func (p *loadPost) writing(start bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if start {
		p.inFlight++
	} else {
		p.inFlight--
		p.lastWrite = time.Now()
	}
	p.keys[0].hitSinceWrite, p.keys[1].hitSinceWrite = false, false
}

// readAnswered notes a read of key (0 the post, 1 the list) sent at start,
// answered now from a cache or not. A miss counts as a refetch when the key
// was found cached since the last write, and no write was in flight or
// answered within PendingBound (the durable path's invalidation of it may
// still come) of the read.
func (p *loadPost) readAnswered(key int, start time.Time, hit bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inFlight > 0 || !start.After(p.lastWrite.Add(PendingBound)) {
		return
	}
	k := &p.keys[key]
	switch {
	case hit:
		k.hitSinceWrite = true
	case k.hitSinceWrite:
		k.hitSinceWrite = false
		k.refetchedAt = append(k.refetchedAt, time.Now())
	}
}

// refetched is how many keys were refetched for no write between from and
// to, and how many keys the load reads.
func (l *Load) refetched(from, to time.Time) (n, keys int) {
	for _, p := range l.posts {
		p.mu.Lock()
		for _, k := range p.keys {
			for _, at := range k.refetchedAt {
				if !at.Before(from) && at.Before(to) {
					n++
					break
				}
			}
		}
		p.mu.Unlock()
	}
	return n, 2 * len(l.posts)
}

// lastPending is the latest write answered "pending" before to, zero if
// none.
func (l *Load) lastPending(to time.Time) time.Time {
	var last time.Time
	for _, p := range l.posts {
		p.mu.Lock()
		for _, a := range p.pending {
			if a.at.After(last) && a.at.Before(to) {
				last = a.at
			}
		}
		p.mu.Unlock()
	}
	return last
}

// MarkChange notes that the drill asks now for a membership change that
// moves the given share of keys (movedShare), or that a node died now.
func (l *Load) MarkChange(moved float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.change = &memberChange{asked: time.Now(), moved: moved}
}

// MarkSettled notes that GET /memcached shows the change settled.
func (l *Load) MarkSettled() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.change != nil && l.change.settled.IsZero() {
		l.change.settled = time.Now()
	}
}

// memberChange is the change the drill marked, nil if none.
func (l *Load) memberChange() *memberChange {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.change == nil {
		return nil
	}
	c := *l.change
	return &c
}
