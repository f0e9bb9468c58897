package store

import (
	"runtime"
	"sync"

	"github.com/bradfitz/gomemcache/memcache"
)

// lookups batches the reads of concurrent requests (an L1 hit's group
// values; an L1 miss's entry and groups): every request that arrives while
// a GetMulti is in flight waits for the next one, which carries the keys of
// all of them. Under load, one memcached round trip answers many requests.
//
// The batch keeps the read-after-write guarantee because a request's keys
// are always read by a GetMulti sent after the request arrived: a write
// acknowledged before that moved its groups (by CAS, before its answer left)
// before the read, and memcached answers a get with the value of the last
// completed update.
type lookups struct {
	s *Store

	mu      sync.Mutex
	pending []*lookup // wait for the next round trip
	running bool      // a round trip is in flight
}

// lookup is one request's share of a round trip. items holds only its own
// keys: the caller may add to it.
type lookup struct {
	keys        []string
	items       map[string]*memcache.Item
	unavailable bool
	done        chan struct{}
}

// Lookup returns the current items of keys, read by a round trip sent
// after the call began and shared with concurrent callers, and whether any
// key's node was unavailable. The map is the caller's.
func (s *Store) Lookup(keys []string) (map[string]*memcache.Item, bool) {
	b := &s.lookups
	r := &lookup{keys: keys, done: make(chan struct{})}
	b.mu.Lock()
	b.pending = append(b.pending, r)
	lead := !b.running
	b.running = true
	b.mu.Unlock()
	if lead {
		// Let the requests that are already runnable (read from their
		// connections, on their way here) join this round first: it costs
		// nothing when there are none, and saves a round trip each when
		// there are.
		runtime.Gosched()
		b.round()
	}
	<-r.done
	return r.items, r.unavailable
}

// maxRound bounds the requests one round trip carries: a huge GetMulti
// would make all of them wait for the slowest part of its answer.
const maxRound = 256

// round sends one GetMulti for what is pending (at most maxRound requests)
// and hands out the results; if more requests are pending, another
// goroutine runs the next round so that this request can answer its client
// now.
func (b *lookups) round() {
	b.mu.Lock()
	batch := b.pending
	if len(batch) > maxRound {
		batch = batch[:maxRound:maxRound]
		b.pending = append([]*lookup(nil), b.pending[maxRound:]...)
	} else {
		b.pending = nil
	}
	b.mu.Unlock()

	if len(batch) == 1 {
		b.alone(batch[0])
		return
	}
	seen := make(map[string]struct{}, 2*len(batch))
	keys := make([]string, 0, 2*len(batch))
	for _, r := range batch {
		for _, k := range r.keys {
			if _, ok := seen[k]; !ok {
				seen[k] = struct{}{}
				keys = append(keys, k)
			}
		}
	}
	items, unavailable := b.s.GetMulti(keys)
	down := make(map[string]struct{}, len(unavailable))
	for _, k := range unavailable {
		down[k] = struct{}{}
	}
	b.s.m.roundTrips.Inc()
	b.s.m.lookups.Add(len(batch))
	for _, r := range batch {
		r.items = make(map[string]*memcache.Item, len(r.keys)+1)
		for _, k := range r.keys {
			if it := items[k]; it != nil {
				r.items[k] = it
			}
			if _, ok := down[k]; ok {
				r.unavailable = true
			}
		}
		close(r.done)
	}

	b.next()
}

// alone is a round of one request: its keys are read as they are, and the
// map GetMulti made is handed over, not copied (4 allocations fewer for a
// request that nothing shared the round trip with).
func (b *lookups) alone(r *lookup) {
	items, unavailable := b.s.GetMulti(r.keys)
	b.s.m.roundTrips.Inc()
	b.s.m.lookups.Add(1)
	if items == nil {
		items = make(map[string]*memcache.Item, len(r.keys)+1)
	}
	r.items, r.unavailable = items, len(unavailable) > 0
	close(r.done)
	b.next()
}

// next ends the round: the next one runs in another goroutine if requests
// are pending.
func (b *lookups) next() {
	b.mu.Lock()
	if len(b.pending) == 0 {
		b.running = false
		b.mu.Unlock()
		return
	}
	b.mu.Unlock()
	go b.round()
}
