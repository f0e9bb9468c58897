package proxy

import (
	"runtime"
	"sync"

	"github.com/bradfitz/gomemcache/memcache"
)

// sharedGets batches the lookups of concurrent reads (an L1 hit's group
// versions; an L1 miss's entry and versions): every request that arrives
// while a GetMulti is in flight waits for the next one, which carries the
// keys of all of them. Under load, one memcached round trip answers many
// requests.
//
// The batch keeps the read-after-write guarantee because a request's keys
// are always read by a GetMulti sent after the request arrived: a write
// acknowledged before that moved its groups (by CAS, before its answer left)
// before the read, and memcached answers a get with the value of the last
// completed update.
type sharedGets struct {
	l2 *l2
	m  *metricSet

	mu      sync.Mutex
	pending []*sharedGet // wait for the next round trip
	running bool         // a round trip is in flight
}

// sharedGet is one request's share of a round trip. items holds only its
// own keys: the caller may add to it (validGroups does).
type sharedGet struct {
	keys        []string
	items       map[string]*memcache.Item
	unavailable bool
	done        chan struct{}
}

// read returns the current items of keys and whether any key's node was
// unavailable.
func (b *sharedGets) read(keys []string) (map[string]*memcache.Item, bool) {
	r := &sharedGet{keys: keys, done: make(chan struct{})}
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
func (b *sharedGets) round() {
	b.mu.Lock()
	batch := b.pending
	if len(batch) > maxRound {
		batch = batch[:maxRound:maxRound]
		b.pending = append([]*sharedGet(nil), b.pending[maxRound:]...)
	} else {
		b.pending = nil
	}
	b.mu.Unlock()

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
	items, unavailable := b.l2.getMulti(keys)
	down := make(map[string]struct{}, len(unavailable))
	for _, k := range unavailable {
		down[k] = struct{}{}
	}
	b.m.sharedRoundTrips.Inc()
	b.m.sharedGets.Add(len(batch))
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

	b.mu.Lock()
	if len(b.pending) == 0 {
		b.running = false
		b.mu.Unlock()
		return
	}
	b.mu.Unlock()
	go b.round()
}
