// Package ring picks the memcached node for a key by rendezvous (highest
// random weight) hashing, so that adding or losing a node moves only that
// node's keys, and tracks which nodes are down.
//
// A key is never moved silently to another node when its own is down: an
// invalidation written to one node could be missed by a reader asking
// another. A caller that wants a second place asks for it by name: the key
// "1~k" is k's second choice, a different node (package store keeps a
// replica of every group value there, moved by every write, and puts an
// entry there while its own node is down).
package ring

import (
	"errors"
	"hash/fnv"
	"net"
	"sync/atomic"
)

// ErrNodeDown is returned by PickServer for a key whose node is marked down.
var ErrNodeDown = errors.New("ring: memcached node is marked down")

// Ring is a memcache.ServerSelector over a fixed list of nodes.
type Ring struct {
	addrs []net.Addr
	index map[string]int
	nhash []uint64 // hashString of each node's name
	down  []atomic.Bool
}

// New resolves the node addresses (host:port) and builds the ring.
func New(nodes []string) (*Ring, error) {
	if len(nodes) == 0 {
		return nil, errors.New("ring: no memcached nodes")
	}
	r := &Ring{index: make(map[string]int, len(nodes)), down: make([]atomic.Bool, len(nodes))}
	for i, n := range nodes {
		a, err := net.ResolveTCPAddr("tcp", n)
		if err != nil {
			return nil, err
		}
		if _, dup := r.index[n]; dup {
			return nil, errors.New("ring: duplicate memcached node " + n)
		}
		r.addrs = append(r.addrs, staticAddr{network: a.Network(), str: a.String()})
		r.index[n] = i
	}
	for _, n := range nodes {
		r.nhash = append(r.nhash, hashString(n))
	}
	return r, nil
}

// staticAddr is a resolved address whose String does not allocate:
// gomemcache keys its connection pool by addr.String() on every operation.
type staticAddr struct{ network, str string }

func (a staticAddr) Network() string { return a.network }
func (a staticAddr) String() string  { return a.str }

func hashString(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// Node returns the index of the node that owns key, whether or not it is
// up. A key "1~k" names k's second choice (with one node, the same node).
func (r *Ring) Node(key string) int { return pick(r.nhash, key) }

// Pick is the index in nodes of the node that owns key, as Node has it for
// a ring over nodes, computed without building one: package membership
// asks it of the sets of past generations.
func Pick(nodes []string, key string) int {
	nhash := make([]uint64, len(nodes))
	for i, n := range nodes {
		nhash[i] = hashString(n)
	}
	return pick(nhash, key)
}

func pick(nhash []uint64, key string) int {
	second := len(key) > 2 && key[0] == '1' && key[1] == '~'
	if second {
		key = key[2:]
	}
	first, next := choices(nhash, key)
	if second && next >= 0 {
		return next
	}
	return first
}

// choices ranks the nodes for key by rendezvous weight and returns the
// first two (next is -1 with one node). The weight is go-rendezvous's, so
// that keys stayed where they were when the ring stopped using it.
func choices(nhash []uint64, key string) (first, next int) {
	kh := hashString(key)
	first, next = 0, -1
	best, second := weight(kh, nhash[0]), uint64(0)
	for i := 1; i < len(nhash); i++ {
		w := weight(kh, nhash[i])
		switch {
		case w > best:
			next, second = first, best
			first, best = i, w
		case next < 0 || w > second:
			next, second = i, w
		}
	}
	return first, next
}

func weight(keyHash, nodeHash uint64) uint64 {
	x := keyHash ^ nodeHash
	x ^= x >> 12
	x ^= x << 25
	x ^= x >> 27
	return x * 2685821657736338717
}

// Len is the number of nodes.
func (r *Ring) Len() int { return len(r.addrs) }

// Addr is node i's address.
func (r *Ring) Addr(i int) net.Addr { return r.addrs[i] }

// Up reports whether node i is currently considered reachable.
func (r *Ring) Up(i int) bool { return !r.down[i].Load() }

// SetDown marks node i down (true) or up (false) and reports whether the
// state changed.
func (r *Ring) SetDown(i int, down bool) bool { return r.down[i].Swap(down) != down }

// PickServer implements memcache.ServerSelector.
func (r *Ring) PickServer(key string) (net.Addr, error) {
	i := r.Node(key)
	if r.down[i].Load() {
		return nil, ErrNodeDown
	}
	return r.addrs[i], nil
}

// Each implements memcache.ServerSelector; it visits every node that is up.
func (r *Ring) Each(f func(net.Addr) error) error {
	for i, a := range r.addrs {
		if r.down[i].Load() {
			continue
		}
		if err := f(a); err != nil {
			return err
		}
	}
	return nil
}
