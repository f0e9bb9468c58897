package store

import (
	"errors"
	"math/rand/v2"
	"strconv"

	"github.com/bradfitz/gomemcache/memcache"
)

// Group is a group's value in memcached: "incarnation epoch origin".
type Group struct {
	// Incarnation is random, chosen when the key is created: an entry
	// recorded against a lost and re-created key never validates again.
	Incarnation uint64
	// Epoch starts at 1 and moves by one per invalidation.
	Epoch uint64
	// Origin is the newest origin version of the group that a write, the
	// durable invalidator or a fill reported; 0 means unknown (the key was
	// re-created, or the group has no versions: URL groups). A response
	// below it came from a lagging replica.
	Origin uint64
	// Moved is the newest origin version a move carried (0: none). A move
	// for version v comes after v's commit, so once Moved >= v every entry
	// that could predate v is invalid: the durable path need not move the
	// group again for v (CatchUp), which would only send its readers to
	// the origin a second time. A fill's Learn raises Origin, never Moved.
	Moved uint64
}

// Validates reports whether an entry that recorded (incarnation, epoch)
// for this group is still current.
func (g Group) Validates(incarnation, epoch uint64) bool {
	return g.Incarnation == incarnation && g.Epoch <= epoch
}

// Bytes is the group's value as memcached holds it: "incarnation epoch
// origin", and " moved" when a move carried a version.
func (g Group) Bytes() []byte {
	b := strconv.AppendUint(make([]byte, 0, 80), g.Incarnation, 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, g.Epoch, 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, g.Origin, 10)
	if g.Moved > 0 {
		b = append(b, ' ')
		b = strconv.AppendUint(b, g.Moved, 10)
	}
	return b
}

// ParseGroup reads a group value; ok is false for anything malformed
// (which callers treat as unknown: never current).
func ParseGroup(b []byte) (g Group, ok bool) {
	var f [4]uint64
	n := 0
	start := 0
	for i := 0; i <= len(b); i++ {
		if i < len(b) && b[i] != ' ' {
			continue
		}
		if n == len(f) || i == start {
			return Group{}, false
		}
		v, err := strconv.ParseUint(string(b[start:i]), 10, 64)
		if err != nil {
			return Group{}, false
		}
		f[n] = v
		n++
		start = i + 1
	}
	if n < 3 || f[0] == 0 || f[1] == 0 {
		return Group{}, false
	}
	return Group{Incarnation: f[0], Epoch: f[1], Origin: f[2], Moved: f[3]}, true
}

// NewGroup is the value of a group key created now (or found garbled).
func NewGroup(origin uint64) Group {
	return Group{Incarnation: rand.Uint64() | 1, Epoch: 1, Origin: origin}
}

// Next is the group's value after a move that reported origin version
// origin: the next epoch, the newest origin version.
func (g Group) Next(origin uint64) Group {
	return Group{Incarnation: g.Incarnation, Epoch: g.Epoch + 1, Origin: max(g.Origin, origin), Moved: max(g.Moved, origin)}
}

// MovedFor reports whether a move for origin version origin has been made
// already: the durable path's CatchUp leaves such a group as it is.
func (g Group) MovedFor(origin uint64) bool { return origin > 0 && g.Moved >= origin }

// kv is the single-key memcached operations the group operations need:
// the Store's (with health tracking) or a node's own client (replay).
type kv interface {
	get(key string) (*memcache.Item, error)
	add(it *memcache.Item) error
	cas(it *memcache.Item) error
}

type rawKV struct{ c *memcache.Client }

func (r rawKV) get(key string) (*memcache.Item, error) { return r.c.Get(key) }
func (r rawKV) add(it *memcache.Item) error            { return r.c.Add(it) }
func (r rawKV) cas(it *memcache.Item) error            { return r.c.CompareAndSwap(it) }

const casAttempts = 16

// ErrContended is returned when a group changed under every one of an
// operation's compare-and-swap attempts.
var ErrContended = errors.New("group value: too many concurrent updates")

// move moves group key forward: epoch+1 (or a new incarnation if the key is
// missing or garbage), and origin version max(current, origin). With
// catchUp (the durable path), a group already moved for origin is left as
// it is (Group.Moved).
func move(s kv, key string, origin uint64, catchUp bool) error {
	for range casAttempts {
		it, err := s.get(key)
		if errors.Is(err, memcache.ErrCacheMiss) {
			err = s.add(&memcache.Item{Key: key, Value: NewGroup(0).Next(origin).Bytes()})
			if errors.Is(err, memcache.ErrNotStored) {
				continue // created meanwhile: move that one
			}
			return err
		}
		if err != nil {
			return err
		}
		next := NewGroup(origin)
		if cur, ok := ParseGroup(it.Value); ok && catchUp && cur.MovedFor(origin) {
			return nil
		} else if ok {
			next = cur.Next(origin)
		}
		it.Value = next.Bytes()
		err = s.cas(it)
		if errors.Is(err, memcache.ErrCASConflict) || errors.Is(err, memcache.ErrNotStored) {
			continue
		}
		return err
	}
	return ErrContended
}

// ensure returns the group's current value, creating it (with origin) if
// missing, and reports whether it created it. Its callers have just found
// the key missing, so it tries to create first: one round trip in the
// common case, two if another proxy won.
func ensure(s kv, key string, origin uint64) (Group, bool, error) {
	for range casAttempts {
		g := NewGroup(origin)
		err := s.add(&memcache.Item{Key: key, Value: g.Bytes()})
		if !errors.Is(err, memcache.ErrNotStored) {
			return g, err == nil, err
		}
		it, err := s.get(key)
		if errors.Is(err, memcache.ErrCacheMiss) {
			continue // gone again (evicted, or a node flushed): create it
		}
		if err != nil {
			return Group{}, false, err
		}
		if cur, ok := ParseGroup(it.Value); ok {
			return cur, false, nil
		}
		// Garbage under our key: replace it with a new incarnation.
		it.Value = g.Bytes()
		if err := s.cas(it); err == nil {
			return g, true, nil
		}
	}
	return Group{}, false, ErrContended
}

// learn raises the group's origin version to at least origin without
// moving its epoch: a version read from the database is committed, so a
// later response below it is from a lagging replica. It gives up quietly
// when the key is missing or contended: learning only sharpens lag
// detection, it never decides validity.
func learn(s kv, key string, origin uint64) error {
	for range 3 {
		it, err := s.get(key)
		if err != nil {
			return err
		}
		cur, ok := ParseGroup(it.Value)
		if !ok || cur.Origin >= origin {
			return nil
		}
		cur.Origin = origin
		it.Value = cur.Bytes()
		err = s.cas(it)
		if !errors.Is(err, memcache.ErrCASConflict) {
			return err
		}
	}
	return ErrContended
}
