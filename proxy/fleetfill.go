package proxy

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"edgecache/cachepolicy"
	"edgecache/proxy/store"
)

// The fleet-wide fill lease: one fill per key runs at a time across every
// proxy; the others wait for its entry (fleetfill_test.go).

// takeLease takes the key's fleet-wide fill lease. If another proxy holds
// it, it waits for that proxy's entry and returns it (other), or returns
// neither when the wait ends without one: the caller then fetches itself.
// held reports that the caller must give the lease back.
//
// Winning the lease does not mean that nobody filled the key: a fill that
// stored its entry and gave the lease back after this request's lookup
// leaves the lease free for a request that missed that entry. So the
// winner reads the entry again, and uses it as a waiter would (checked
// against its own groups, read now) instead of fetching a second time:
// without this, 64 concurrent misses over 8 proxies fetched twice in a
// quarter of trials (fleetfill_test.go).
func (p *Proxy) takeLease(job *fillJob) (held bool, other *fillResult) {
	lease := &store.Item{Key: job.lkey, Value: leaseValue(), Expiration: int32(p.cfg.LeaseTTL / time.Second)}
	// The groups the lookup did not find are created in the same round
	// trip, after the read: the snapshot would create them next.
	var missing []string
	for _, k := range job.keys[1:] {
		if _, ok := job.snap[k]; !ok {
			missing = append(missing, k)
		}
	}
	got, err := p.store.AddThenGet(lease, job.keys, missing)
	switch {
	case err == nil:
		if r := p.filledEntry(job, got.Items); r != nil {
			p.store.Delete(job.lkey)
			return false, r
		}
		for k, g := range got.Created {
			job.snap[k] = g // as snapshot's Ensure would have: created, origin version unknown
		}
		return true, nil
	case errors.Is(err, store.ErrNotStored):
		other, took := p.waitForFleetFill(job)
		return took, other
	}
	return false, nil // memcached is failing: fill without a lease
}

// waitForFleetFill waits while another proxy holds the key's lease,
// polling memcached, and returns its entry once it is stored and valid.
// It returns nil when the lease goes away without a usable entry or the
// wait exceeds PROXY_COALESCE_WAIT: the caller then fetches itself. took
// says it took an orphaned lease over: the caller holds it now.
func (p *Proxy) waitForFleetFill(job *fillJob) (other *fillResult, took bool) {
	p.m.coalescedFleet.Inc()
	if h := p.hooks.Load(); h != nil && h.onWait != nil {
		h.onWait("fleet")
	}
	keys := append([]string{job.lkey}, job.keys...)
	deadline := time.Now().Add(p.cfg.CoalesceWait)
	var last []byte // the lease's value as last seen, and since when
	lastAt := time.Now()
	for time.Now().Before(deadline) {
		time.Sleep(p.cfg.LeasePoll)
		items, _ := p.store.GetMulti(keys)
		if r := p.filledEntry(job, items); r != nil {
			return r, false
		}
		l := items[job.lkey]
		switch {
		case l == nil:
			return nil, false // the other fill finished (or died) without a usable entry
		case !bytes.Equal(l.Value, last):
			last, lastAt = l.Value, time.Now()
		case time.Since(lastAt) > orphanAfter*p.beatEvery():
			// Nobody beats it: its holder is gone, or its add reached a
			// stalled node after the holder gave up on it. One waiter
			// takes it over, and the others wait on that one.
			l.Value = leaseValue()
			if p.store.CompareAndSwap(l) == nil {
				p.m.leaseTakeovers.Inc()
				return nil, true
			}
			lastAt = time.Now()
		}
	}
	p.m.coalesceTimeout.Inc()
	return nil, false
}

// orphanAfter is how many beats a lease may miss before a waiter takes it
// over: a holder paused for that long only costs a second fetch.
const orphanAfter = 3

// beatEvery is how often a fill's holder beats its lease: ten polls of a
// waiter, so that a beat costs little and a waiter sees one soon.
func (p *Proxy) beatEvery() time.Duration { return 10 * p.cfg.LeasePoll }

// beat rewrites the lease key with a new value every beatEvery while the
// fill runs (a fetch longer than that), so that waiters can tell a live
// holder from an orphaned lease; stop ends it. Waiters that give up
// (PROXY_COALESCE_WAIT) before a takeover could come need no beats.
func (p *Proxy) beat(lkey string) (stop func()) {
	if orphanAfter*p.beatEvery() >= p.cfg.CoalesceWait {
		return func() {}
	}
	b := &beating{p: p, lkey: lkey}
	b.mu.Lock()
	b.t = time.AfterFunc(p.beatEvery(), b.beat)
	b.mu.Unlock()
	return b.stop
}

type beating struct {
	p       *Proxy
	lkey    string
	mu      sync.Mutex
	t       *time.Timer
	stopped bool
}

func (b *beating) beat() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped {
		return
	}
	b.p.store.Set(&store.Item{Key: b.lkey, Value: leaseValue(), Expiration: int32(b.p.cfg.LeaseTTL / time.Second)})
	b.t.Reset(b.p.beatEvery())
}

func (b *beating) stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stopped = true
	b.t.Stop()
}

// leaseValue is a fill lease's value: new at every beat and takeover.
func leaseValue() []byte { return strconv.AppendUint(nil, rand.Uint64(), 36) }

// filledEntry is the result of another proxy's fill for job, found in items
// (read from memcached after that fill may have stored it): its entry if it
// matches the request's Vary, every group of it is current by the values
// read now, and the request may be served from it; else nil.
func (p *Proxy) filledEntry(job *fillJob, items map[string]*store.Item) *fillResult {
	it := items[job.ekey]
	if it == nil {
		return nil
	}
	var e entry
	if store.DecodeEntry(it.Value, &e) != nil || !p.varyMatches(&e, &job.req.Header) ||
		p.fetchGroups(&e, items, []byte(job.primary)) || !p.current(&e, items) {
		return nil
	}
	if cachepolicy.Decide(&job.creq, &e.Meta, time.Now()).Action != cachepolicy.Serve {
		return nil
	}
	return &fillResult{job: job, ent: &e, fwd: job.d.Fwd, shareable: true, collapsed: true}
}
