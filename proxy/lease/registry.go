package lease

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"

	"edgecache/proxy/store"
)

// Nodes is what the registry needs from memcached: single-key operations
// on one given node, every node holding its own copy. *store.Store
// (edgecache/proxy/store) implements it, counted in its operation metrics.
type Nodes interface {
	Nodes() int
	NodeGet(n int, key string) (*store.Item, error)
	NodeVersion(n int, key string) (store.Version, error)
	NodeAdd(n int, it *store.Item) error
	NodeSet(n int, it *store.Item) error
	NodeCompareAndSwap(n int, it *store.Item) error
}

// RegistryKey is the memcached key of the registry, the same on every node
// (each node keeps its own copy). It is in the "r:" namespace, apart from
// entries, groups and fill leases.
const RegistryKey = "r:leases"

// heartbeatKey is a member's heartbeat on each node: set by every renewal
// with an expiry of gcAfter durations, so that a member that stopped
// renewing is seen gone without its line being rewritten at every renewal
// (registry traffic grows with the number of members, not its square).
func heartbeatKey(id string) string { return "r:hb:" + id }

// registry is one copy's value:
//
//	leases 2 <incarnation> <removals>
//	<id> <addr> <duration ms> <L|R>    one line per member
//
// The incarnation is random, chosen when the copy is created: a member
// that finds another one knows the copy was lost since it last wrote it.
// removals counts the members taken out of this copy by others (their
// heartbeats gone): a mover counts a copy's age from when it first saw its
// (incarnation, removals), because a member taken out while it still held
// a lease is listed nowhere until it renews (Notifier.readRegistry). L is a
// live member, R one that a mover revoked.
type registry struct {
	incarnation uint64
	removals    uint64
	members     []member
}

type member struct {
	id       string
	addr     string // host:port of its peer listener
	duration time.Duration
	revoked  bool
}

const registryMagic = "leases 2 "

var errGarbled = errors.New("lease registry: garbled copy")

func newRegistry() registry { return registry{incarnation: rand.Uint64() | 1} }

func (r *registry) find(id string) int {
	for i := range r.members {
		if r.members[i].id == id {
			return i
		}
	}
	return -1
}

func (r *registry) bytes() []byte {
	b := make([]byte, 0, 48+56*len(r.members))
	b = append(b, registryMagic...)
	b = strconv.AppendUint(b, r.incarnation, 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, r.removals, 10)
	b = append(b, '\n')
	for _, m := range r.members {
		b = append(b, m.id...)
		b = append(b, ' ')
		b = append(b, m.addr...)
		b = append(b, ' ')
		b = strconv.AppendInt(b, m.duration.Milliseconds(), 10)
		if m.revoked {
			b = append(b, " R\n"...)
		} else {
			b = append(b, " L\n"...)
		}
	}
	return b
}

// parseRegistry reads a copy; anything malformed is errGarbled (a mover
// treats it as a lost copy, a member replaces it with a new incarnation).
func parseRegistry(b []byte) (registry, error) {
	var r registry
	line, rest, _ := bytes.Cut(b, []byte{'\n'})
	head, ok := bytes.CutPrefix(line, []byte(registryMagic))
	if !ok {
		return r, errGarbled
	}
	h := bytes.Fields(head)
	if len(h) != 2 {
		return r, errGarbled
	}
	inc, err1 := strconv.ParseUint(string(h[0]), 10, 64)
	rem, err2 := strconv.ParseUint(string(h[1]), 10, 64)
	if err1 != nil || err2 != nil || inc == 0 {
		return r, errGarbled
	}
	r.incarnation, r.removals = inc, rem
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte{'\n'})
		f := bytes.Fields(line)
		if len(f) != 4 || !validToken(f[0]) || !validToken(f[1]) || (string(f[3]) != "L" && string(f[3]) != "R") {
			return registry{}, errGarbled
		}
		ms, err := strconv.ParseInt(string(f[2]), 10, 64)
		if err != nil || ms <= 0 {
			return registry{}, errGarbled
		}
		r.members = append(r.members, member{id: string(f[0]), addr: string(f[1]),
			duration: time.Duration(ms) * time.Millisecond, revoked: f[3][0] == 'R'})
	}
	return r, nil
}

// validToken: what an id or an address may be (no spaces, no control
// characters), and short.
func validToken[T string | []byte](s T) bool {
	if len(s) == 0 || len(s) > 200 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// copyState is what reading one copy found.
type copyState int

const (
	copyOK     copyState = iota
	copyLost             // missing or garbled: whoever held a lease through it will see so
	copyFailed           // the node did not answer: nothing is known
	copyAbsent           // the node is not a member of the memcached generation this process follows: no copy is kept there
)

// copies keeps, per node, the copy last read there, so that a copy that
// has not changed since is not read again: its version (a few bytes) says
// so. Every renewal and every mover reads every copy, and a copy grows
// with the members, so reading them whole made the fleet's registry
// traffic grow with the square of the proxies.
type copies struct {
	mu   sync.Mutex
	last map[int]sawCopy
}

type sawCopy struct {
	v  store.Version
	it store.Item
}

// readCopy reads node n's copy: the one kept in c if its version is still
// the node's (c may be nil: read it whole).
func readCopy(nodes Nodes, c *copies, n int) (registry, *store.Item, copyState, error) {
	if c != nil {
		c.mu.Lock()
		saw, ok := c.last[n]
		c.mu.Unlock()
		if ok {
			v, err := nodes.NodeVersion(n, RegistryKey)
			switch {
			case err == nil && v == saw.v:
				it := saw.it
				it.Value = slices.Clone(saw.it.Value) // callers change it
				if r, err := parseRegistry(it.Value); err == nil {
					return r, &it, copyOK, nil
				}
			case err != nil:
				return readFailed(err) // the node said what a whole read would
			}
		}
	}
	it, err := nodes.NodeGet(n, RegistryKey)
	if err == nil && c != nil {
		c.mu.Lock()
		if c.last == nil {
			c.last = make(map[int]sawCopy)
		}
		saw := sawCopy{v: store.Version{CAS: it.CasID, Flags: it.Flags, Size: len(it.Value)}, it: *it}
		saw.it.Value = slices.Clone(it.Value)
		c.last[n] = saw
		c.mu.Unlock()
	}
	if err != nil {
		return readFailed(err)
	}
	r, err := parseRegistry(it.Value)
	if err != nil {
		return registry{}, it, copyLost, nil
	}
	return r, it, copyOK, nil
}

// written makes it the next value of a copy: flags drawn at random, so
// that a copy written after its node restarted (memcached's CAS uniques
// start again) does not look like one kept from before (copies).
func written(it *store.Item, r registry) *store.Item {
	it.Value, it.Flags = r.bytes(), rand.Uint32()
	return it
}

// readFailed is what a read of a copy that got err found.
func readFailed(err error) (registry, *store.Item, copyState, error) {
	switch {
	case errors.Is(err, store.ErrCacheMiss):
		return registry{}, nil, copyLost, nil
	case errors.Is(err, store.ErrNotMember):
		return registry{}, nil, copyAbsent, nil
	}
	return registry{}, nil, copyFailed, err
}

// casAttempts bounds the compare-and-swap attempts of one update of a copy.
const casAttempts = 16

// errContended is returned when a copy changed under every attempt.
var errContended = errors.New("lease registry: too many concurrent updates")

func isConflict(err error) bool {
	return errors.Is(err, store.ErrCASConflict) || errors.Is(err, store.ErrNotStored)
}
