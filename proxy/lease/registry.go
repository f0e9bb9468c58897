package lease

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strconv"
	"time"

	"edgecache/proxy/store"
)

// Nodes is what the registry needs from memcached: single-key operations
// on one given node, every node holding its own copy. *store.Store
// (edgecache/proxy/store) implements it, counted in its operation metrics.
type Nodes interface {
	Nodes() int
	NodeGet(n int, key string) (*store.Item, error)
	NodeAdd(n int, it *store.Item) error
	NodeCompareAndSwap(n int, it *store.Item) error
}

// RegistryKey is the memcached key of the registry, the same on every node
// (each node keeps its own copy). It is in the "r:" namespace, apart from
// entries, groups and fill leases.
const RegistryKey = "r:leases"

// registry is one copy's value:
//
//	leases 1 <incarnation>
//	<id> <addr> <counter> <duration ms> <L|R>    one line per member
//
// The incarnation is random, chosen when the copy is created: a member
// that finds another one knows the copy was lost since it last wrote it.
// L is a live member, R one that a mover revoked (a tombstone, kept until
// it has not changed for gcAfter of its durations, so that a mover that
// read the member before the revocation can still tell what happened).
type registry struct {
	incarnation uint64
	members     []member
}

type member struct {
	id       string
	addr     string // host:port of its peer listener
	counter  uint64 // moves by one per renewal
	duration time.Duration
	revoked  bool
}

const registryMagic = "leases 1 "

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
	b := make([]byte, 0, 32+64*len(r.members))
	b = append(b, registryMagic...)
	b = strconv.AppendUint(b, r.incarnation, 10)
	b = append(b, '\n')
	for _, m := range r.members {
		b = append(b, m.id...)
		b = append(b, ' ')
		b = append(b, m.addr...)
		b = append(b, ' ')
		b = strconv.AppendUint(b, m.counter, 10)
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
	inc, ok := bytes.CutPrefix(line, []byte(registryMagic))
	if !ok {
		return r, errGarbled
	}
	v, err := strconv.ParseUint(string(inc), 10, 64)
	if err != nil || v == 0 {
		return r, errGarbled
	}
	r.incarnation = v
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte{'\n'})
		f := bytes.Fields(line)
		if len(f) != 5 || !validToken(f[0]) || !validToken(f[1]) || (string(f[4]) != "L" && string(f[4]) != "R") {
			return registry{}, errGarbled
		}
		c, err1 := strconv.ParseUint(string(f[2]), 10, 64)
		ms, err2 := strconv.ParseInt(string(f[3]), 10, 64)
		if err1 != nil || err2 != nil || ms <= 0 {
			return registry{}, errGarbled
		}
		r.members = append(r.members, member{id: string(f[0]), addr: string(f[1]), counter: c,
			duration: time.Duration(ms) * time.Millisecond, revoked: f[4][0] == 'R'})
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
)

// readCopy reads node n's copy.
func readCopy(nodes Nodes, n int) (registry, *store.Item, copyState, error) {
	it, err := nodes.NodeGet(n, RegistryKey)
	if errors.Is(err, store.ErrCacheMiss) {
		return registry{}, nil, copyLost, nil
	}
	if err != nil {
		return registry{}, nil, copyFailed, err
	}
	r, err := parseRegistry(it.Value)
	if err != nil {
		return registry{}, it, copyLost, nil
	}
	return r, it, copyOK, nil
}

// casAttempts bounds the compare-and-swap attempts of one update of a copy.
const casAttempts = 16

// errContended is returned when a copy changed under every attempt.
var errContended = errors.New("lease registry: too many concurrent updates")

func isConflict(err error) bool {
	return errors.Is(err, store.ErrCASConflict) || errors.Is(err, store.ErrNotStored)
}
