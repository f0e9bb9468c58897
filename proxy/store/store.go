package store

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
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
}

// Store is the memcached pool shared by every proxy instance. Keys are
// spread by rendezvous hashing; a node that fails at the network level
// three times in a row is marked down and skipped (its keys read as
// "unavailable", never as a plain miss) until a probe finds it answering.
type Store struct {
	ring    *ring.Ring
	mc      *memcache.Client
	probes  []*memcache.Client // one small client per node: probes, replay, flush
	log     *zap.Logger
	m       *storeMetrics
	timeout time.Duration
	every   time.Duration

	fails   []atomic.Int32 // per node: consecutive network failures
	missed  missedMoves
	lookups lookups
}

// failuresToMarkDown consecutive network failures mark a node down: one
// slow answer on a busy host should not send a node's whole share to the
// origin, three in a row mean the node is in trouble.
const failuresToMarkDown = 3

// New builds the pool. Its metrics are registered in set, named
// prefix_memcached_... (prefix "edgecache_proxy" for the proxy).
func New(cfg Config, log *zap.Logger, set *metrics.Set, prefix string) (*Store, error) {
	r, err := ring.New(cfg.Nodes)
	if err != nil {
		return nil, err
	}
	mc := memcache.NewFromSelector(r)
	mc.Timeout = cfg.Timeout
	mc.MaxIdleConns = cfg.MaxIdleConns
	s := &Store{ring: r, mc: mc, log: log, m: newStoreMetrics(set, prefix), timeout: cfg.Timeout,
		every: cfg.ProbeInterval, fails: make([]atomic.Int32, r.Len())}
	s.missed.init(r.Len())
	s.lookups.s = s
	set.NewGauge(prefix+"_invalidations_pending", func() float64 { return float64(s.missed.count()) })
	for _, addr := range cfg.Nodes {
		p := memcache.New(addr)
		p.Timeout = cfg.Timeout
		p.MaxIdleConns = 1
		s.probes = append(s.probes, p)
	}
	return s, nil
}

// Nodes is the number of memcached nodes.
func (s *Store) Nodes() int { return s.ring.Len() }

// NodeOf is the node that holds key.
func (s *Store) NodeOf(key string) int { return s.ring.Node(key) }

// NodeUp reports whether node n is in use (not marked down).
func (s *Store) NodeUp(n int) bool { return s.ring.Up(n) }

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

// GetMulti fetches keys in one round trip per node, the nodes in parallel.
// Keys on a down or failing node are reported in unavailable (which may be
// nil). Concurrent readers should use Lookup, which shares round trips.
func (s *Store) GetMulti(keys []string) (items map[string]*memcache.Item, unavailable []string) {
	if s.ring.Len() == 1 {
		return s.getMultiNode(0, keys)
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

func (s *Store) getMultiNode(node int, keys []string) (map[string]*memcache.Item, []string) {
	if !s.ring.Up(node) {
		s.m.skipped.Inc()
		return nil, keys
	}
	start := time.Now()
	items, err := s.mc.GetMulti(keys)
	s.observe("get", node, start, err)
	if err != nil {
		return nil, keys
	}
	return items, nil
}

// ErrUnavailable is returned for an operation on a key whose node is down
// or did not answer.
var ErrUnavailable = errors.New("memcached node unavailable")

// do runs one single-key operation with health tracking.
func (s *Store) do(op, key string, f func() error) error {
	node := s.ring.Node(key)
	if !s.ring.Up(node) {
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

// Set stores an item.
func (s *Store) Set(it *memcache.Item) error {
	return s.do("set", it.Key, func() error { return s.mc.Set(it) })
}

// Add stores an item only if its key is free (memcache.ErrNotStored if not).
func (s *Store) Add(it *memcache.Item) error { return s.add(it) }

// Delete removes a key; a missing key is not an error.
func (s *Store) Delete(key string) error {
	err := s.do("delete", key, func() error { return s.mc.Delete(key) })
	if errors.Is(err, memcache.ErrCacheMiss) {
		return nil
	}
	return err
}

// Ensure returns the value of the group under key, creating it (with
// origin version origin) if missing, and reports whether it created it.
func (s *Store) Ensure(key string, origin uint64) (Group, bool, error) {
	return ensure(s, key, origin)
}

// Learn raises the origin version of the group under key to at least
// origin, without moving its epoch; errors are only worth a log line.
func (s *Store) Learn(key string, origin uint64) error { return learn(s, key, origin) }

// Move moves group name forward (see package doc), retrying once at once
// on a new connection when the node failed: one broken pooled connection
// or a short stall must not leave a write's invalidation undone. It does
// not queue: the durable invalidator keeps its own log.
func (s *Store) Move(name string, origin uint64) error {
	key := GroupKey(name)
	err := move(s, key, origin)
	if err == nil || !nodeFailed(err) {
		s.countMove(err)
		return err
	}
	s.m.moveRetries.Inc()
	c := memcache.New(s.NodeAddr(s.ring.Node(key)))
	c.Timeout = s.timeout
	defer c.Close()
	err = move(rawKV{c}, key, origin)
	s.countMove(err)
	return err
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
	err := s.Move(name, origin)
	if err != nil && nodeFailed(err) {
		key := GroupKey(name)
		s.missed.add(s.ring.Node(key), key, origin)
	}
	return err
}

// Ping checks every node; down names the nodes that did not answer;
// allDown reports that none did.
func (s *Store) Ping() (down error, allDown bool) {
	var errs []error
	for i, p := range s.probes {
		if err := p.Ping(); err != nil {
			errs = append(errs, errors.New(s.NodeAddr(i)+": "+err.Error()))
		}
	}
	return errors.Join(errs...), len(errs) == len(s.probes)
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
