package store

import (
	"bufio"
	"context"
	"errors"
	"io"
	"math/bits"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/bradfitz/gomemcache/memcache"
	"go.uber.org/zap"

	"edgecache/proxy/ring"
)

// Config says where memcached is and how patient to be with it.
type Config struct {
	Nodes         []string      // host:port of every node, the same list on every instance
	Timeout       time.Duration // dial and per-operation deadline
	MaxIdleConns  int           // idle connections kept per node: size to peak concurrency
	ProbeInterval time.Duration // how often down nodes and nodes with missed moves are tried
	// Dial, if set, connects to a node instead of a plain dial: a test
	// cuts one process's path to a node (through a relay) while the node
	// keeps its name in the membership document.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
}

// Store is the memcached pool shared by every proxy instance. Keys are
// spread by rendezvous hashing; a node that fails at the network level
// three times in a row is marked down and skipped (its keys read as
// "unavailable", never as a plain miss) until a probe finds it answering.
type Store struct {
	ring    *ring.Ring
	mc      *memcache.Client
	probes  [ring.MaxNodes]*memcache.Client // one small client per node: probes, replay, flush
	nodes   [ring.MaxNodes]*memcache.Client // one client per node for node-targeted operations and moves
	log     *zap.Logger
	m       *storeMetrics
	timeout time.Duration
	maxIdle int
	dial    func(ctx context.Context, network, address string) (net.Conn, error)
	every   time.Duration
	seeds   uint64 // mask of the configured nodes

	fails      [ring.MaxNodes]atomic.Int32 // per node: consecutive network failures
	missed     missedMoves
	lookups    lookups
	pipes      pipeConns // pipeline.go
	membership stamped   // static: no document (membership.go)

	addMu  sync.Mutex // serialises addNode
	view   atomic.Pointer[view]
	static atomic.Bool // no document anywhere: the configured nodes and their stamps decide
	f      following
}

// failuresToMarkDown consecutive network failures mark a node down: one
// slow answer on a busy host should not send a node's whole share to the
// origin, three in a row mean the node is in trouble.
const failuresToMarkDown = 3

// New builds the pool. Its metrics are registered in set, named
// prefix_memcached_... (prefix "edgecache_proxy" for the proxy).
func New(cfg Config, log *zap.Logger, set *metrics.Set, prefix string) (*Store, error) {
	if len(cfg.Nodes) == 0 {
		return nil, errors.New("memcached: no nodes")
	}
	r := new(ring.Ring)
	mc := memcache.NewFromSelector(r)
	mc.Timeout = cfg.Timeout
	mc.MaxIdleConns = cfg.MaxIdleConns
	mc.DialContext = cfg.Dial
	s := &Store{ring: r, mc: mc, log: log, m: newStoreMetrics(set, prefix), timeout: cfg.Timeout,
		maxIdle: cfg.MaxIdleConns, every: cfg.ProbeInterval, dial: cfg.Dial}
	s.f.base = time.Now()
	for _, node := range cfg.Nodes {
		if _, known := r.Index(node); known {
			return nil, errors.New("memcached: duplicate node " + node)
		}
		n, err := s.addNode(node)
		if err != nil {
			return nil, err
		}
		s.seeds |= 1 << n
	}
	r.SetRead(s.seeds)
	s.missed.init(ring.MaxNodes)
	s.lookups.s = s
	set.NewGauge(prefix+"_invalidations_pending", func() float64 { return float64(s.missed.count()) })
	s.membership.ids, s.membership.member = make([]string, ring.MaxNodes), make([]bool, ring.MaxNodes)
	// A configured node may hold an old document (it left the membership
	// since): the first generation adopted lists nodes that know newer.
	for range 3 {
		before := s.stamp()
		if s.follow(); s.stamp() == before {
			break
		}
	}
	if !s.follows() {
		s.checkMembership()
	}
	return s, nil
}

// Nodes is the number of memcached nodes this process knows: the
// configured ones and every one a followed generation had. Node indexes
// run below it and never change.
func (s *Store) Nodes() int { return s.ring.Len() }

// NodeOf is the node that holds key.
func (s *Store) NodeOf(key string) int { return s.ring.Node(key) }

// NodeUp reports whether node n is in use (not marked down, a member).
func (s *Store) NodeUp(n int) bool { return s.up(n) }

// NodeMember reports whether node n is one the followed generation has
// (every configured node when none is followed): the others are neither
// used nor reported.
func (s *Store) NodeMember(n int) bool {
	v := s.view.Load()
	return v == nil || v.union&(1<<n) != 0
}

func (s *Store) up(n int) bool { return s.ring.Up(n) && s.inView(n) }

// NodeAddr is node n's host:port.
func (s *Store) NodeAddr(n int) string { return s.ring.Addr(n).String() }

// nodeFailed reports whether err means the node itself is unreachable or
// broken (as opposed to a protocol answer such as a miss or a CAS conflict).
func nodeFailed(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	var cte *memcache.ConnectTimeoutError
	return errors.As(err, &ne) || errors.As(err, &cte) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, ErrUnavailable)
}

// observe records an operation's latency and outcome and marks the key's
// node down on repeated network failures.
func (s *Store) observe(op string, node int, start time.Time, err error) {
	s.m.latency[op].UpdateDuration(start)
	s.m.ops[op].Inc()
	if err == nil || errors.Is(err, memcache.ErrCacheMiss) || errors.Is(err, memcache.ErrNotStored) ||
		errors.Is(err, memcache.ErrCASConflict) {
		if s.fails[node].Load() != 0 {
			s.fails[node].Store(0)
		}
		return
	}
	s.m.errors[op].Inc()
	if nodeFailed(err) && s.fails[node].Add(1) >= failuresToMarkDown && s.ring.SetDown(node, true) {
		s.m.nodeDown.Inc()
		s.log.Warn("memcached node marked down", zap.String("node", s.NodeAddr(node)), zap.String("op", op), zap.Error(err))
	}
}

// GetMulti fetches keys in one round trip per node, the nodes in parallel,
// each key where it lives now (placed). Items are returned under the keys
// asked for; keys whose node is down or failing are reported in
// unavailable (which may be nil). Concurrent readers should use Lookup,
// which shares round trips.
func (s *Store) GetMulti(keys []string) (items map[string]*memcache.Item, unavailable []string) {
	asked := keys
	var orig map[string]string // placed key -> key asked for, when they differ
	if s.ring.Readers() > 1 {
		for i, k := range keys {
			if p := s.placed(k); p != k {
				if orig == nil {
					orig = make(map[string]string)
					keys = append([]string(nil), asked...)
				}
				orig[p] = k
				keys[i] = p
			}
		}
	}
	items, unavailable = s.getMultiPlaced(keys)
	if orig == nil {
		return items, unavailable
	}
	for p, k := range orig {
		if it, ok := items[p]; ok {
			delete(items, p)
			items[k] = it
		}
	}
	for i, k := range unavailable {
		if o, ok := orig[k]; ok {
			unavailable[i] = o
		}
	}
	return items, unavailable
}

func (s *Store) getMultiPlaced(keys []string) (items map[string]*memcache.Item, unavailable []string) {
	if read := s.ring.Read(); bits.OnesCount64(read) == 1 {
		return s.getMultiNode(bits.TrailingZeros64(read), keys)
	}
	byNode := make(map[int][]string, 2)
	for _, k := range keys {
		n := s.ring.Node(k)
		byNode[n] = append(byNode[n], k)
	}
	if len(byNode) == 1 {
		for n, ks := range byNode {
			return s.getMultiNode(n, ks)
		}
	}
	type result struct {
		items       map[string]*memcache.Item
		unavailable []string
	}
	ch := make(chan result, len(byNode))
	for n, ks := range byNode {
		go func() {
			it, un := s.getMultiNode(n, ks)
			ch <- result{it, un}
		}()
	}
	items = make(map[string]*memcache.Item, len(keys))
	for range byNode {
		r := <-ch
		for k, it := range r.items {
			items[k] = it
		}
		unavailable = append(unavailable, r.unavailable...)
	}
	return items, unavailable
}

// second is key's second place (see ring): the replica of a group value,
// the fallback of an entry or a lease.
func second(key string) string { return "1~" + key }

// placed is where key is read and written now: its own node, or, while
// that node is marked down, its second place. Entries and leases may live
// anywhere (an entry is trusted only through its groups); a group's
// second place holds a replica that every move updates too, so a reader
// that falls back to it still sees every move a write made before its
// answer left (see Move).
func (s *Store) placed(key string) string {
	if s.ring.Readers() == 1 || s.up(s.ring.Node(key)) {
		return key
	}
	if alt := second(key); s.up(s.ring.Node(alt)) {
		return alt
	}
	return key
}

func (s *Store) getMultiNode(node int, keys []string) (map[string]*memcache.Item, []string) {
	switch {
	case len(keys) == 0:
		return nil, nil // "gets" with no key is not a command
	case !legalKeys(keys...):
		return nil, keys
	}
	var items map[string]*memcache.Item
	err := s.pipeline("get", node, func(w *bufio.Writer) { writeGets(w, keys) },
		func(r *bufio.Reader) (err error) { items, err = readValues(r, keys); return err })
	if err != nil {
		return nil, keys
	}
	for k, it := range items {
		if !s.kept(node, it) {
			delete(items, k) // read as missing: Ensure replaces it
		}
	}
	return items, nil
}

// ErrUnavailable is returned for an operation on a key whose node is down
// or did not answer.
var ErrUnavailable = errors.New("memcached node unavailable")

// do runs one single-key operation with health tracking.
func (s *Store) do(op, key string, f func() error) error {
	node := s.ring.Node(key)
	if !s.up(node) {
		s.m.skipped.Inc()
		return ErrUnavailable
	}
	start := time.Now()
	err := f()
	s.observe(op, node, start, err)
	if errors.Is(err, ring.ErrNodeDown) || nodeFailed(err) {
		return errors.Join(ErrUnavailable, err)
	}
	return err
}

func (s *Store) get(key string) (it *memcache.Item, err error) {
	err = s.do("get", key, func() error { it, err = s.mc.Get(key); return err })
	return it, err
}

func (s *Store) add(it *memcache.Item) error {
	return s.do("add", it.Key, func() error { return s.mc.Add(it) })
}

func (s *Store) cas(it *memcache.Item) error {
	return s.do("cas", it.Key, func() error { return s.mc.CompareAndSwap(it) })
}

// placedKV runs single-key operations on the keys' current places.
type placedKV struct{ s *Store }

func (p placedKV) get(key string) (*memcache.Item, error) { return p.s.get(p.s.placed(key)) }
func (p placedKV) add(it *memcache.Item) error            { return p.s.add(p.s.placedItem(it)) }
func (p placedKV) cas(it *memcache.Item) error            { return p.s.cas(it) } // it came from get: placed
func (p placedKV) stamp() uint32                          { return p.s.stamp() }
func (p placedKV) kept(it *memcache.Item) bool            { return p.s.kept(p.s.ring.Node(it.Key), it) }

func (s *Store) placedItem(it *memcache.Item) *memcache.Item {
	if p := s.placed(it.Key); p != it.Key {
		cp := *it
		cp.Key = p
		return &cp
	}
	return it
}

// Set stores an item where its key lives now.
func (s *Store) Set(it *memcache.Item) error {
	it = s.placedItem(it)
	return s.do("set", it.Key, func() error { return s.mc.Set(it) })
}

// CompareAndSwap replaces an item read by GetMulti or Lookup if it has not
// changed since (memcache.ErrCASConflict; memcache.ErrNotStored when gone).
func (s *Store) CompareAndSwap(it *memcache.Item) error { return s.cas(it) }

// Add stores an item only if its key is free (memcache.ErrNotStored if not).
func (s *Store) Add(it *memcache.Item) error { return s.add(s.placedItem(it)) }

// Delete removes a key; a missing key is not an error.
func (s *Store) Delete(key string) error {
	key = s.placed(key)
	err := s.do("delete", key, func() error { return s.mc.Delete(key) })
	if errors.Is(err, memcache.ErrCacheMiss) {
		return nil
	}
	return err
}

// Ensure returns the value of the group under key, creating it (with
// origin version origin) if missing, and reports whether it created it.
func (s *Store) Ensure(key string, origin uint64) (Group, bool, error) {
	return ensure(placedKV{s}, key, origin)
}

// Learn raises the origin version of the group under key to at least
// origin, without moving its epoch; errors are only worth a log line.
func (s *Store) Learn(key string, origin uint64) error { return learn(placedKV{s}, key, origin) }

// Move moves group name forward (see package doc) in both its places —
// the group's own node and its replica's — so that a reader that falls back
// to the replica while the first node is down still sees the move. Each
// place that fails is retried once at once on a new connection: one broken
// pooled connection or a short stall must not leave a write's
// invalidation undone. It does not queue (MoveOrQueue does).
//
// Move is the durable invalidator's: a place already moved for origin by
// the write's own synchronous path is left as it is (Group.Moved), so that
// its readers go to the origin once per write, not twice.
func (s *Store) Move(name string, origin uint64) error {
	_, err := s.move(name, origin, true)
	return err
}

// SoftPurge moves group name forward as a soft purge (Group.Hard: the
// entries recorded against it become stale, not invalid), in both its
// places as Move does. Only the admin purge uses it; nothing is queued
// when it fails.
func (s *Store) SoftPurge(name string) error {
	_, err := s.update(name, func(c kv, key string) error { return softPurge(c, key) })
	return err
}

// move moves both places of group name; failed reports the places that
// could not be moved. catchUp: see Move.
func (s *Store) move(name string, origin uint64, catchUp bool) (failed []place, err error) {
	return s.update(name, func(c kv, key string) error { return move(c, key, origin, catchUp) })
}

// update applies op to group name's value in both its places, each retried
// once at once on a new connection (see Move).
func (s *Store) update(name string, op func(c kv, key string) error) (failed []place, err error) {
	places := s.places(GroupKey(name))
	errs := make([]error, len(places))
	var wg sync.WaitGroup
	for i, p := range places {
		wg.Go(func() { errs[i] = s.updateOne(p, op) })
	}
	wg.Wait()
	for i, e := range errs {
		if e != nil {
			failed = append(failed, places[i])
		}
	}
	err = errors.Join(errs...)
	s.countMove(err)
	return failed, err
}

// place is a group key as placed ("1~" for its second place) on a node.
type place struct {
	key  string
	node int
}

// places is every place a move of group key goes to: its own node and its
// second place, in every write set of the followed generation (only the
// read set's without one).
func (s *Store) places(key string) []place {
	writes := []uint64{s.ring.Read()}
	if v := s.view.Load(); v != nil {
		writes = v.writes()
	}
	var out []place
	for _, m := range writes {
		for _, k := range []string{key, second(key)} {
			if n := placedIn(s.ring, k, m); n >= 0 && !slices.Contains(out, place{k, n}) {
				out = append(out, place{k, n})
			}
		}
	}
	return out
}

func (s *Store) updateOne(p place, op func(c kv, key string) error) error {
	err := op(nodeKV{s, p.node}, p.key)
	if err == nil || !nodeFailed(err) || !s.up(p.node) {
		return err // a node marked down is tried again by Run, not here
	}
	s.m.moveRetries.Inc()
	c := memcache.New(s.NodeAddr(p.node))
	c.Timeout = s.timeout
	c.DialContext = s.dial
	defer c.Close()
	return op(rawKV{c, s.stamp()}, p.key)
}

func (s *Store) countMove(err error) {
	if err != nil {
		s.m.moveFailures.Inc()
		return
	}
	s.m.moves.Inc()
}

// MoveOrQueue is Move for a write's synchronous path: a move that still
// fails is kept and replayed as soon as the node answers again (Run),
// whether or not the node was ever marked down. The error says the write's
// answer must carry "Edgecache-Invalidation: pending".
func (s *Store) MoveOrQueue(name string, origin uint64) error {
	failed, err := s.move(name, origin, false)
	for _, p := range failed {
		s.missed.add(p.node, p.key, origin)
	}
	return err
}

// NodeStats reads the counters of node n that say whether memcached is big
// enough (the "stats" command; gomemcache does not speak it): evictions of
// unexpired items, current items and bytes, and the memory limit.
func (s *Store) NodeStats(n int) (map[string]uint64, error) {
	c, err := net.DialTimeout("tcp", s.NodeAddr(n), s.timeout)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(s.timeout))
	if _, err := c.Write([]byte("stats\r\n")); err != nil {
		return nil, err
	}
	want := map[string]bool{"evictions": true, "curr_items": true, "bytes": true, "limit_maxbytes": true}
	out := make(map[string]uint64, len(want))
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "END" {
			return out, nil
		}
		f := strings.Fields(line) // "STAT name value"
		if len(f) == 3 && f[0] == "STAT" && want[f[1]] {
			if v, err := strconv.ParseUint(f[2], 10, 64); err == nil {
				out[f[1]] = v
			}
		}
	}
}
