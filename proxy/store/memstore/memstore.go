// Package memstore is the shared cache of package store kept in memory,
// for tests of the proxy's logic without memcached: nodes are maps of
// items with CAS ids, and group values are created, moved and learnt as
// store.Store does it, so that what the proxy sees is the same. Two things
// make interleavings scriptable: a hook runs before every operation on a
// key (Before), so that a test can land a write at an exact point of a
// fill; and a node can be marked down (SetDown), its keys then unavailable
// and the moves it misses queued, then replayed before it is up again.
//
// What it leaves out, on purpose: items never expire (a test runs well
// within every TTL), and a key whose node is down is unavailable rather
// than read from its second place (store.Store's replicas); the proxy
// meets that case anyway when both places are down.
package memstore

import (
	"errors"
	"hash/fnv"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"edgecache/proxy/store"
)

// Store is an in-memory store.Store. Its methods are safe for concurrent use.
type Store struct {
	before atomic.Pointer[func(op, key string)]

	mu    sync.Mutex
	nodes []node
	cas   uint64 // the last CAS id handed out
}

type node struct {
	down   bool
	items  map[string]store.Item
	missed map[string]uint64 // moves queued while down: group key -> origin version
}

// New is a store of n empty nodes, all up.
func New(n int) *Store {
	s := &Store{nodes: make([]node, n)}
	for i := range s.nodes {
		s.nodes[i] = node{items: map[string]store.Item{}, missed: map[string]uint64{}}
	}
	return s
}

// Before makes f run before every operation on a key: op is the method's
// name ("Lookup", "Set", "MoveOrQueue", …) and key the key (a group's
// GroupKey for the moves; each key of a Lookup or GetMulti in turn). f runs
// outside the store's lock, so it may use the store, or block to hold the
// operation back. nil removes it.
func (s *Store) Before(f func(op, key string)) {
	if f == nil {
		s.before.Store(nil)
		return
	}
	s.before.Store(&f)
}

func (s *Store) hook(op, key string) {
	if f := s.before.Load(); f != nil {
		(*f)(op, key)
	}
}

// Nodes is the number of nodes.
func (s *Store) Nodes() int { return len(s.nodes) }

// NodeOf is the node that holds key.
func (s *Store) NodeOf(key string) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(len(s.nodes)))
}

// NodeUp reports whether node n is up.
// NodeMember reports true: membership never changes here.
func (s *Store) NodeMember(int) bool { return true }

func (s *Store) NodeUp(n int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.nodes[n].down
}

// NodeAddr names node n.
func (s *Store) NodeAddr(n int) string { return "memstore-" + strconv.Itoa(n) }

// NodeStats is node n's items and their bytes, as memcached's stats name them.
func (s *Store) NodeStats(n int) (map[string]uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := map[string]uint64{"curr_items": uint64(len(s.nodes[n].items))}
	for _, it := range s.nodes[n].items {
		st["bytes"] += uint64(len(it.Key) + len(it.Value))
	}
	return st, nil
}

// SetDown marks node n down or up. A node coming up first takes the moves
// it missed, as store.Store replays them before it uses the node again.
func (s *Store) SetDown(n int, down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	nd := &s.nodes[n]
	if !down {
		for key, origin := range nd.missed {
			s.move(nd, key, origin)
		}
		clear(nd.missed)
	}
	nd.down = down
}

// Run waits for stop: nothing here needs probing, SetDown replays.
func (s *Store) Run(stop <-chan struct{}) { <-stop }

// Lookup returns the items of keys found, and whether a key's node was down.
func (s *Store) Lookup(keys []string) (map[string]*store.Item, bool) {
	items, unavailable := s.getMulti("Lookup", keys)
	return items, len(unavailable) > 0
}

// GetMulti returns the items of keys found, and the keys whose node was down.
func (s *Store) GetMulti(keys []string) (map[string]*store.Item, []string) {
	return s.getMulti("GetMulti", keys)
}

func (s *Store) getMulti(op string, keys []string) (map[string]*store.Item, []string) {
	for _, k := range keys {
		s.hook(op, k)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	items := make(map[string]*store.Item, len(keys))
	var unavailable []string
	for _, k := range keys {
		it, err := s.get(s.NodeOf(k), k)
		switch {
		case err == nil:
			items[k] = it
		case errors.Is(err, store.ErrUnavailable):
			unavailable = append(unavailable, k)
		}
	}
	return items, unavailable
}

// Add stores it if its key is free (store.ErrNotStored if not).
func (s *Store) Add(it *store.Item) error {
	return s.do("Add", it.Key, func() error { return s.add(s.NodeOf(it.Key), it) })
}

// Set stores it.
func (s *Store) Set(it *store.Item) error {
	return s.do("Set", it.Key, func() error {
		nd := &s.nodes[s.NodeOf(it.Key)]
		if nd.down {
			return store.ErrUnavailable
		}
		s.put(nd, it)
		return nil
	})
}

// Delete removes key; a missing key is not an error.
func (s *Store) Delete(key string) error {
	return s.do("Delete", key, func() error {
		nd := &s.nodes[s.NodeOf(key)]
		if nd.down {
			return store.ErrUnavailable
		}
		delete(nd.items, key)
		return nil
	})
}

// NodeGet reads key on node n.
func (s *Store) NodeGet(n int, key string) (it *store.Item, err error) {
	err = s.do("NodeGet", key, func() error { it, err = s.get(n, key); return err })
	return it, err
}

// NodeVersion is key's CAS id, flags and size on node n.
func (s *Store) NodeVersion(n int, key string) (v store.Version, err error) {
	err = s.do("NodeVersion", key, func() error {
		it, err := s.get(n, key)
		if err == nil {
			v = store.Version{CAS: it.CasID, Flags: it.Flags, Size: len(it.Value)}
		}
		return err
	})
	return v, err
}

// NodeAdd stores it on node n if its key is free there (store.ErrNotStored if not).
func (s *Store) NodeAdd(n int, it *store.Item) error {
	return s.do("NodeAdd", it.Key, func() error { return s.add(n, it) })
}

// NodeSet stores it on node n (its expiry is ignored, as every item's).
func (s *Store) NodeSet(n int, it *store.Item) error {
	return s.do("NodeSet", it.Key, func() error {
		if s.nodes[n].down {
			return store.ErrUnavailable
		}
		s.put(&s.nodes[n], it)
		return nil
	})
}

// NodeCompareAndSwap replaces it on node n if it has not changed since it
// was read (store.ErrCASConflict; store.ErrNotStored when it is gone).
func (s *Store) NodeCompareAndSwap(n int, it *store.Item) error {
	return s.do("NodeCompareAndSwap", it.Key, func() error {
		nd := &s.nodes[n]
		cur, ok := nd.items[it.Key]
		switch {
		case nd.down:
			return store.ErrUnavailable
		case !ok:
			return store.ErrNotStored
		case cur.CasID != it.CasID:
			return store.ErrCASConflict
		}
		s.put(nd, it)
		return nil
	})
}

// CompareAndSwap replaces it where its key lives if it has not changed
// since it was read (store.ErrCASConflict; store.ErrNotStored when gone).
func (s *Store) CompareAndSwap(it *store.Item) error {
	return s.NodeCompareAndSwap(s.NodeOf(it.Key), it)
}

// do runs the hook, then f under the lock.
func (s *Store) do(op, key string, f func() error) error {
	s.hook(op, key)
	s.mu.Lock()
	defer s.mu.Unlock()
	return f()
}

func (s *Store) add(n int, it *store.Item) error {
	nd := &s.nodes[n]
	switch _, taken := nd.items[it.Key]; {
	case nd.down:
		return store.ErrUnavailable
	case taken:
		return store.ErrNotStored
	}
	s.put(nd, it)
	return nil
}

// get returns a copy of key's item on node n: callers may keep and change it.
func (s *Store) get(n int, key string) (*store.Item, error) {
	nd := &s.nodes[n]
	if nd.down {
		return nil, store.ErrUnavailable
	}
	it, ok := nd.items[key]
	if !ok {
		return nil, store.ErrCacheMiss
	}
	it.Value = append([]byte(nil), it.Value...)
	return &it, nil
}

// put stores a copy of it under a new CAS id.
func (s *Store) put(nd *node, it *store.Item) {
	s.cas++
	cp := *it
	cp.Value = append([]byte(nil), it.Value...)
	cp.CasID = s.cas
	nd.items[it.Key] = cp
}

// The faults of the simulator (proxy/simulate_test.go): what memcached
// does to items behind its clients' backs. None runs the hook.

// Keys lists the keys of node n's items, sorted.
func (s *Store) Keys(n int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ks := make([]string, 0, len(s.nodes[n].items))
	for k := range s.nodes[n].items {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// Evict drops key from node n, as memcached's LRU does.
func (s *Store) Evict(n int, key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.nodes[n].items, key)
}

// Flush empties node n, as flush_all or a restart does.
func (s *Store) Flush(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.nodes[n].items)
}

// ForgetMissed drops the moves queued for nodes that are down, as when
// the processes that queued them die.
func (s *Store) ForgetMissed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.nodes {
		clear(s.nodes[i].missed)
	}
}

// AddThenGet adds it and then, if the add succeeded, reads keys and
// creates the groups of create that are missing: one after the other, as
// memcached runs a pipeline's commands (other clients' operations may
// come between them).
func (s *Store) AddThenGet(it *store.Item, keys, create []string) (store.Got, error) {
	if err := s.Add(it); err != nil {
		return store.Got{}, err
	}
	var got store.Got
	got.Items, got.Unavailable = s.GetMulti(keys)
	for _, k := range create {
		if g, created, err := s.Ensure(k, 0); err == nil && created {
			if got.Created == nil {
				got.Created = map[string]store.Group{}
			}
			got.Created[k] = g
		}
	}
	return got, nil
}

// SetThenDelete stores items and then deletes del (nothing if ""), one
// after the other.
func (s *Store) SetThenDelete(items []*store.Item, del string) []error {
	errs := make([]error, len(items))
	for i, it := range items {
		errs[i] = s.Set(it)
	}
	if del != "" {
		s.Delete(del)
	}
	return errs
}
