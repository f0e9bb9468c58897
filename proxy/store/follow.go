package store

import (
	"errors"
	"math/bits"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"go.uber.org/zap"

	"edgecache/proxy/membership"
	"edgecache/proxy/ring"
)

// Following the membership document (package membership): once any node
// holds one, the nodes this process uses are the newest generation's, not
// its configured list (which is then only where to look first). Every
// probe interval, Run reads the document from every node of the current
// generation and from the configured ones, and adopts the newest
// generation found. A generation is trusted for the document's view time
// after a read that found it still newest; past that, this process uses no
// node (reads go to the origin, writes answer "pending") until a read
// confirms it: the decider publishes the next generation only once every
// process has either seen the one before or stopped trusting its own.
//
// Group values carry, in their flags, the generation that last wrote them;
// one that the document does not show kept where it is read (Kept) is
// treated as garbage: replaced by a new incarnation, so that no entry
// recorded against it validates.

// view is one adopted generation, in the ring's node indexes.
type view struct {
	gen    uint64
	union  uint64 // every node of the generation
	hist   []histGen
	oldest uint64 // the oldest generation the document remembers
	doc    membership.Doc
}

// writes is the masks of the generation's write sets.
func (v *view) writes() []uint64 { return v.hist[0].writes }

type histGen struct {
	n      uint64
	writes []uint64
}

// following is the state of following the document.
type following struct {
	base       time.Time    // validUntil counts from it (monotonic)
	validUntil atomic.Int64 // nanoseconds after base: the view is trusted until then
	expired    atomic.Bool  // as last reported (metric, log)
}

// trusted reports whether the followed generation was confirmed less than
// the view time ago, less a tenth for clock rates (a lease's margin): it
// is checked at every use, so a process whose follow rounds stall (paused,
// starved) stops using its view in time all the same.
func (s *Store) trusted() bool { return time.Since(s.f.base).Nanoseconds() < s.f.validUntil.Load() }

// ErrNotMember is returned by node operations on a node the current
// generation does not have (package lease skips its copy).
var ErrNotMember = errors.New("memcached node is not a member of the current generation")

// Generation is the membership generation this process follows (0: none,
// the configured nodes are used as they are).
func (s *Store) Generation() uint64 { return uint64(s.stamp()) }

// follows reports whether this process follows a document.
func (s *Store) follows() bool { return s.view.Load() != nil }

// stamp is the generation a group value written now is stamped with.
func (s *Store) stamp() uint32 {
	if v := s.view.Load(); v != nil {
		return uint32(v.gen)
	}
	return 0
}

// inView reports whether node n may be used now: a followed generation
// says so by having it, while trusted; without one, the stamps
// (membership.go) once a node answered and none held a document, by
// marking the others down. Until one of the two is known, no node is
// used: a process whose configured nodes were slow at its start must not
// read where its own list places keys while the fleet follows a document.
func (s *Store) inView(n int) bool {
	v := s.view.Load()
	if v == nil {
		return s.static.Load()
	}
	return v.union&(1<<n) != 0 && s.trusted()
}

// kept reports whether the group value it, found on node n under its key
// as placed, may be trusted (see above). Anything else is not a group
// value: kept.
func (s *Store) kept(n int, it *memcache.Item) bool {
	v := s.view.Load()
	if v == nil || uint64(it.Flags) >= v.gen || !isGroupKey(it.Key) {
		return true
	}
	since := uint64(it.Flags)
	if since+1 < v.oldest {
		return false
	}
	for _, g := range v.hist {
		if g.n <= since {
			break
		}
		if !slices.ContainsFunc(g.writes, func(m uint64) bool { return placedIn(s.ring, it.Key, m) == n }) {
			return false
		}
	}
	return true
}

// placedIn is the node that holds key (as placed) in the set mask: a set
// of one node has no second place (-1). Moves (places) and the check of
// what they kept (kept) both place keys by it.
func placedIn(r *ring.Ring, key string, mask uint64) int {
	if bits.OnesCount64(mask) == 1 && strings.HasPrefix(key, "1~") {
		return -1
	}
	return r.NodeIn(key, mask)
}

func isGroupKey(key string) bool {
	return strings.HasPrefix(key, "g:") || strings.HasPrefix(key, "1~g:")
}

// follow reads the document from every node of the current generation and
// the configured ones, and adopts or confirms the newest generation.
func (s *Store) follow() {
	start := time.Now()
	var ask []int
	for n := range s.ring.Len() {
		if s.seeds&(1<<n) != 0 || (s.follows() && s.view.Load().union&(1<<n) != 0) {
			ask = append(ask, n)
		}
	}
	// A node that stalls must not hold the confirmation past the view
	// time: the answers in by a quarter of it decide.
	wait := s.timeout
	if v := s.view.Load(); v != nil {
		wait = min(wait, v.doc.View/4)
	}
	docs := make(chan membership.Doc, len(ask))
	for _, n := range ask {
		go func() {
			var d membership.Doc
			defer func() { docs <- d }()
			it, err := s.probes[n].Get(membership.Key)
			if err != nil {
				return
			}
			if d, err = membership.Parse(it.Value); err != nil {
				s.log.Warn("memcached membership document unreadable", zap.String("node", s.NodeAddr(n)), zap.Error(err))
			}
		}()
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	var newest membership.Doc
collect:
	for range ask {
		select {
		case d := <-docs:
			if len(d.Gens) > 0 && (len(newest.Gens) == 0 || d.Current().N > newest.Current().N) {
				newest = d
			}
		case <-timer.C:
			break collect
		}
	}
	v := s.view.Load()
	switch {
	case len(newest.Gens) == 0:
	case v == nil || newest.Current().N > v.gen:
		if err := s.adopt(newest); err != nil {
			s.log.Error("memcached membership document not followed", zap.Error(err))
			break
		}
		s.confirm(start, newest.View)
	case newest.Current().N == v.gen:
		s.confirm(start, newest.View)
	}
	if v := s.view.Load(); v != nil {
		stale := !s.trusted()
		if s.f.expired.Swap(stale) != stale {
			s.m.viewExpired.Set(b2f(stale))
			if stale {
				s.log.Error("memcached membership not confirmed for the view time: memcached unused until it is",
					zap.Uint64("generation", v.gen), zap.Duration("view", v.doc.View))
			} else {
				s.log.Info("memcached membership confirmed again", zap.Uint64("generation", v.gen))
			}
		}
	}
}

// confirm trusts the view for the view time (less a tenth) from at, when
// a read that found it newest began.
func (s *Store) confirm(at time.Time, view time.Duration) {
	until := at.Sub(s.f.base).Nanoseconds() + (view - view/10).Nanoseconds()
	for {
		cur := s.f.validUntil.Load()
		if until <= cur || s.f.validUntil.CompareAndSwap(cur, until) {
			return
		}
	}
}

// adopt makes d's newest generation this process's view.
func (s *Store) adopt(d membership.Doc) error {
	cur := d.Current()
	for _, node := range cur.Nodes() {
		if _, err := s.addNode(node); err != nil {
			return err
		}
	}
	v := &view{gen: cur.N, doc: d, oldest: d.Gens[len(d.Gens)-1].N}
	for _, g := range d.Gens {
		h := histGen{n: g.N}
		for _, set := range g.Write {
			m, ok := s.maskOf(set)
			if !ok {
				// A node this process never had: only the newest
				// generation's are added. Nothing older can be shown kept.
				v.oldest = g.N + 1
				break
			}
			h.writes = append(h.writes, m)
		}
		if v.oldest > g.N {
			break
		}
		v.hist = append(v.hist, h)
	}
	for _, m := range v.writes() {
		v.union |= m
	}
	read, _ := s.maskOf(cur.Read)
	old := s.view.Load()
	s.view.Store(v)
	s.ring.SetRead(read)
	if old != nil {
		for m := old.union &^ v.union; m != 0; m &= m - 1 {
			s.missed.take(bits.TrailingZeros64(m)) // nobody reads it any more; it is flushed before it joins again
		}
	}
	s.m.generation.Set(float64(cur.N))
	s.log.Info("memcached membership: following generation", zap.Uint64("generation", cur.N),
		zap.String("phase", cur.Phase()), zap.Strings("read", cur.Read))
	return nil
}

func (s *Store) maskOf(set []string) (uint64, bool) {
	var m uint64
	for _, node := range set {
		i, ok := s.ring.Index(node)
		if !ok {
			return 0, false
		}
		m |= 1 << i
	}
	return m, true
}

// addNode makes node known, with its clients, and returns its index.
func (s *Store) addNode(node string) (int, error) {
	s.addMu.Lock()
	defer s.addMu.Unlock()
	if i, ok := s.ring.Index(node); ok {
		return i, nil
	}
	i := s.ring.Len()
	if i == ring.MaxNodes {
		return 0, errors.New("memcached: more than 64 nodes")
	}
	p := memcache.New(node)
	p.Timeout = s.timeout
	p.MaxIdleConns = 1
	p.DialContext = s.dial
	c := memcache.New(node)
	c.Timeout = s.timeout
	c.MaxIdleConns = s.maxIdle
	c.DialContext = s.dial
	s.probes[i], s.nodes[i] = p, c
	return s.ring.Add(node) // publishes index i, after its clients
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
