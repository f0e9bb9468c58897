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
//
// The ring knows every node it was ever given (at most MaxNodes, each
// keeping its index for good) and places keys over a subset of them, the
// read set, which membership changes replace (package membership). Other
// subsets are asked by mask (NodeIn): where a change's writes go.
package ring

import (
	"errors"
	"hash/fnv"
	"math/bits"
	"net"
	"sync"
	"sync/atomic"
)

// MaxNodes bounds the nodes one ring ever knows.
const MaxNodes = 64

// ErrNodeDown is returned by PickServer for a key whose node is marked down.
var ErrNodeDown = errors.New("ring: memcached node is marked down")

// Ring is a memcache.ServerSelector over the nodes of its read set.
type Ring struct {
	mu    sync.Mutex // serialises Add
	count atomic.Int32
	read  atomic.Uint64 // mask of the read set
	names [MaxNodes]string
	addrs [MaxNodes]net.Addr
	nhash [MaxNodes]uint64 // hashString of each node's name
	down  [MaxNodes]atomic.Bool
}

// New resolves the node addresses (host:port) and builds a ring that
// reads them all.
func New(nodes []string) (*Ring, error) {
	if len(nodes) == 0 {
		return nil, errors.New("ring: no memcached nodes")
	}
	r := &Ring{}
	var mask uint64
	for _, n := range nodes {
		if _, known := r.Index(n); known {
			return nil, errors.New("ring: duplicate memcached node " + n)
		}
		i, err := r.Add(n)
		if err != nil {
			return nil, err
		}
		mask |= 1 << i
	}
	r.read.Store(mask)
	return r, nil
}

// Add makes node known (resolving its address) and returns its index; a
// node known already keeps its index. It joins no set.
func (r *Ring) Add(node string) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i, ok := r.Index(node); ok {
		return i, nil
	}
	i := int(r.count.Load())
	if i == MaxNodes {
		return 0, errors.New("ring: more than 64 memcached nodes")
	}
	a, err := net.ResolveTCPAddr("tcp", node)
	if err != nil {
		return 0, err
	}
	r.names[i], r.addrs[i], r.nhash[i] = node, staticAddr{network: a.Network(), str: a.String()}, hashString(node)
	r.count.Store(int32(i + 1)) // publishes the slot: readers load count before they read it
	return i, nil
}

// Index is node's index, if the ring knows it.
func (r *Ring) Index(node string) (int, bool) {
	for i := range int(r.count.Load()) {
		if r.names[i] == node {
			return i, true
		}
	}
	return 0, false
}

// Mask is the mask of nodes (every one known: see Add).
func (r *Ring) Mask(nodes []string) uint64 {
	var m uint64
	for _, n := range nodes {
		if i, ok := r.Index(n); ok {
			m |= 1 << i
		}
	}
	return m
}

// SetRead makes mask the read set: where keys are placed from now on.
func (r *Ring) SetRead(mask uint64) { r.read.Store(mask) }

// Read is the read set's mask.
func (r *Ring) Read() uint64 { return r.read.Load() }

// Readers is how many nodes the read set has.
func (r *Ring) Readers() int { return bits.OnesCount64(r.read.Load()) }

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

// Node returns the index of the read-set node that owns key, whether or
// not it is up. A key "1~k" names k's second choice (with one node, the
// same node).
func (r *Ring) Node(key string) int { return r.NodeIn(key, r.read.Load()) }

// NodeIn is Node over the nodes of mask (not empty, every one known).
func (r *Ring) NodeIn(key string, mask uint64) int {
	second := len(key) > 2 && key[0] == '1' && key[1] == '~'
	if second {
		key = key[2:]
	}
	first, next := choices(&r.nhash, mask, key)
	if second && next >= 0 {
		return next
	}
	return first
}

// Pick is the index in nodes of the node that owns key, as Node has it for
// a ring over nodes, computed without building one: package membership
// asks it of the sets of past generations.
func Pick(nodes []string, key string) int {
	var nhash [MaxNodes]uint64
	for i, n := range nodes {
		nhash[i] = hashString(n)
	}
	second := len(key) > 2 && key[0] == '1' && key[1] == '~'
	if second {
		key = key[2:]
	}
	first, next := choices(&nhash, 1<<len(nodes)-1, key)
	if second && next >= 0 {
		return next
	}
	return first
}

// choices ranks the nodes of mask for key by rendezvous weight and returns
// the first two (next is -1 with one node). The weight is go-rendezvous's,
// so that keys stayed where they were when the ring stopped using it.
func choices(nhash *[MaxNodes]uint64, mask uint64, key string) (first, next int) {
	kh := hashString(key)
	first, next = -1, -1
	var best, second uint64
	for m := mask; m != 0; m &= m - 1 {
		i := bits.TrailingZeros64(m)
		w := weight(kh, nhash[i])
		switch {
		case first < 0 || w > best:
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

// Len is the number of nodes known (read or not); indexes run below it.
func (r *Ring) Len() int { return int(r.count.Load()) }

// Addr is node i's address.
func (r *Ring) Addr(i int) net.Addr { return r.addrs[i] }

// Name is node i as it was given (host:port, unresolved): what
// placement hashes and membership documents list.
func (r *Ring) Name(i int) string { return r.names[i] }

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

// Each implements memcache.ServerSelector; it visits every read-set node
// that is up.
func (r *Ring) Each(f func(net.Addr) error) error {
	for m := r.read.Load(); m != 0; m &= m - 1 {
		i := bits.TrailingZeros64(m)
		if r.down[i].Load() {
			continue
		}
		if err := f(r.addrs[i]); err != nil {
			return err
		}
	}
	return nil
}
