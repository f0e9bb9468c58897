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

// readCopy reads node n's copy.
func readCopy(nodes Nodes, n int) (registry, *store.Item, copyState, error) {
	it, err := nodes.NodeGet(n, RegistryKey)
	if errors.Is(err, store.ErrCacheMiss) {
		return registry{}, nil, copyLost, nil
	}
	if errors.Is(err, store.ErrNotMember) {
		return registry{}, nil, copyAbsent, nil
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
