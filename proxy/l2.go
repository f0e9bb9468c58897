package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"go.uber.org/zap"

	"edgecache/proxy/ring"
)

// l2 is the memcached pool shared by every proxy instance: entries, group
// versions and fill leases. Keys are spread by rendezvous hashing; a node
// that fails at the network level is marked down and skipped (its keys read
// as "unavailable", never as a plain miss) until a background probe finds it
// answering again.
type l2 struct {
	ring    *ring.Ring
	mc      *memcache.Client
	probes  []*memcache.Client // one small client per node, for probing and flushing
	log     *zap.Logger
	m       *metricSet
	timeout time.Duration

	// pending holds group bumps that could not reach a down node: they are
	// applied, before the node is used again by this process, when it
	// answers probes. See invalidate.go.
	mu      sync.Mutex
	pending []map[string]uint64 // per node: group key -> version it must reach
	flush   []bool              // per node: too many pending bumps, flush the node instead

	fails []atomic.Int32 // per node: consecutive network failures
}

// failuresToMarkDown consecutive network failures mark a node down: one
// slow answer on a busy host should not send a node's whole share to the
// origin, three in a row mean the node is in trouble.
const failuresToMarkDown = 3

// maxPendingPerNode bounds the bumps remembered for a down node; beyond it
// the node is flushed on recovery (every key on it becomes unknown).
const maxPendingPerNode = 100000

func newL2(cfg Config, log *zap.Logger, m *metricSet) (*l2, error) {
	r, err := ring.New(cfg.Memcached)
	if err != nil {
		return nil, err
	}
	mc := memcache.NewFromSelector(r)
	mc.Timeout = cfg.MemcachedTimeout
	mc.MaxIdleConns = cfg.MemcachedMaxIdleConns
	s := &l2{ring: r, mc: mc, log: log, m: m, timeout: cfg.MemcachedTimeout,
		pending: make([]map[string]uint64, r.Len()), flush: make([]bool, r.Len()), fails: make([]atomic.Int32, r.Len())}
	for _, addr := range cfg.Memcached {
		p := memcache.New(addr)
		p.Timeout = cfg.MemcachedTimeout
		p.MaxIdleConns = 1
		s.probes = append(s.probes, p)
	}
	return s, nil
}

// nodeFailed reports whether err means the node itself is unreachable or
// broken (as opposed to a protocol answer such as a miss or a CAS conflict).
func nodeFailed(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	var cte *memcache.ConnectTimeoutError
	return errors.As(err, &ne) || errors.As(err, &cte) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}

// observe records an operation's latency and outcome and marks the key's node
// down on a network failure.
func (s *l2) observe(op string, node int, start time.Time, err error) {
	s.m.mcLatency(op).UpdateDuration(start)
	s.m.mcOps(op).Inc()
	if err == nil || errors.Is(err, memcache.ErrCacheMiss) || errors.Is(err, memcache.ErrNotStored) ||
		errors.Is(err, memcache.ErrCASConflict) {
		if s.fails[node].Load() != 0 {
			s.fails[node].Store(0)
		}
		return
	}
	s.m.mcErrors(op).Inc()
	if nodeFailed(err) && s.fails[node].Add(1) >= failuresToMarkDown && s.ring.SetDown(node, true) {
		s.m.mcNodeDown.Inc()
		s.log.Warn("memcached node marked down", zap.String("node", s.ring.Addr(node).String()), zap.String("op", op), zap.Error(err))
	}
}

// getMulti fetches keys in one round trip per node. Keys on a down or
// failing node are reported in unavailable (which may be nil).
func (s *l2) getMulti(keys []string) (items map[string]*memcache.Item, unavailable []string) {
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

func (s *l2) getMultiNode(node int, keys []string) (map[string]*memcache.Item, []string) {
	if !s.ring.Up(node) {
		s.m.mcSkipped.Inc()
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

// errUnavailable is returned for an operation on a key whose node is down.
var errUnavailable = errors.New("memcached node unavailable")

// do runs one single-key operation with health tracking.
func (s *l2) do(op, key string, f func() error) error {
	node := s.ring.Node(key)
	if !s.ring.Up(node) {
		s.m.mcSkipped.Inc()
		return errUnavailable
	}
	start := time.Now()
	err := f()
	s.observe(op, node, start, err)
	if errors.Is(err, ring.ErrNodeDown) || nodeFailed(err) {
		return errUnavailable
	}
	return err
}

func (s *l2) get(key string) (it *memcache.Item, err error) {
	err = s.do("get", key, func() error { it, err = s.mc.Get(key); return err })
	return it, err
}

func (s *l2) set(it *memcache.Item) error {
	return s.do("set", it.Key, func() error { return s.mc.Set(it) })
}

func (s *l2) add(it *memcache.Item) error {
	return s.do("add", it.Key, func() error { return s.mc.Add(it) })
}

func (s *l2) cas(it *memcache.Item) error {
	return s.do("cas", it.Key, func() error { return s.mc.CompareAndSwap(it) })
}

func (s *l2) del(key string) error {
	err := s.do("delete", key, func() error { return s.mc.Delete(key) })
	if errors.Is(err, memcache.ErrCacheMiss) {
		return nil
	}
	return err
}

// remember queues a group bump for a down node (see invalidate.go).
func (s *l2) remember(groupKey string, version uint64) {
	n := s.ring.Node(groupKey)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending[n] == nil {
		s.pending[n] = make(map[string]uint64)
	}
	if len(s.pending[n]) >= maxPendingPerNode {
		s.flush[n] = true
		return
	}
	if old, ok := s.pending[n][groupKey]; !ok || version > old {
		s.pending[n][groupKey] = version
	}
}

// probeLoop checks every down node each interval; when one answers, the
// bumps it missed are applied (or it is flushed) before it is marked up.
func (s *l2) probeLoop(interval time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		for n := 0; n < s.ring.Len(); n++ {
			if s.ring.Up(n) {
				continue
			}
			if err := s.recover(n); err != nil {
				s.log.Debug("memcached node still down", zap.String("node", s.ring.Addr(n).String()), zap.Error(err))
				continue
			}
			s.fails[n].Store(0)
			if s.ring.SetDown(n, false) {
				s.m.mcNodeUp.Inc()
				s.log.Info("memcached node back up", zap.String("node", s.ring.Addr(n).String()))
			}
		}
	}
}

// recover pings node n and replays what it missed while down.
func (s *l2) recover(n int) error {
	p := s.probes[n]
	if err := p.Ping(); err != nil {
		return err
	}
	s.mu.Lock()
	pending, flush := s.pending[n], s.flush[n]
	s.pending[n], s.flush[n] = nil, false
	s.mu.Unlock()
	requeue := func(err error) error {
		for k, v := range pending {
			s.remember(k, v)
		}
		if flush {
			s.mu.Lock()
			s.flush[n] = true
			s.mu.Unlock()
		}
		return err
	}
	if flush {
		if err := p.FlushAll(); err != nil {
			return requeue(err)
		}
		s.log.Warn("memcached node flushed on recovery: too many invalidations were missed", zap.String("node", s.ring.Addr(n).String()))
		return nil
	}
	for k, v := range pending {
		if err := bump(rawStore{p}, k, v); err != nil {
			return requeue(err)
		}
		delete(pending, k)
	}
	return nil
}

// ping checks every node; /readyz uses it. down names the nodes that did
// not answer; allDown reports that none did.
func (s *l2) ping() (down error, allDown bool) {
	var errs []error
	for i, p := range s.probes {
		if err := p.Ping(); err != nil {
			errs = append(errs, errors.New(s.ring.Addr(i).String()+": "+err.Error()))
		}
	}
	return errors.Join(errs...), len(errs) == len(s.probes)
}

// nodeStats reads the counters of node n that say whether memcached is big
// enough (the "stats" command; gomemcache does not speak it): evictions of
// unexpired items, current items and bytes, and the memory limit.
func (s *l2) nodeStats(n int) (map[string]uint64, error) {
	c, err := net.DialTimeout("tcp", s.ring.Addr(n).String(), s.timeout)
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
