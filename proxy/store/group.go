package store

import (
	"errors"
	"math/rand/v2"
	"strconv"

	"github.com/bradfitz/gomemcache/memcache"
)

// Group is a group's value in memcached: "incarnation epoch origin", then
// " moved" when a move carried a version, and " moved hard" after a soft
// purge.
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
	// Hard is the epoch that the group's last hard move (every move but a
	// soft purge: writes, the durable invalidator, hard purges) reached.
	// An entry recorded at an epoch before Epoch but not before Hard was
	// only soft-purged since: stale, never invalidated. Written only when
	// below Epoch, as a fifth field: every value a hard move leaves is
	// what code older than soft purges reads, and such code takes a
	// five-field value for garbage, which it replaces with a new
	// incarnation — a hard purge, never a missed one.
	Hard uint64
}

// Validates reports whether an entry that recorded (incarnation, epoch)
// for this group is still current.
func (g Group) Validates(incarnation, epoch uint64) bool {
	return g.Incarnation == incarnation && g.Epoch <= epoch
}

// SoftPurged reports whether an entry that recorded (incarnation, epoch)
// for this group, and is no longer current by it, was only soft-purged
// since: no hard move came after its record.
func (g Group) SoftPurged(incarnation, epoch uint64) bool {
	return g.Incarnation == incarnation && g.Epoch > epoch && g.Hard <= epoch
}

// Bytes is the group's value as memcached holds it: "incarnation epoch
// origin", " moved" when a move carried a version or a soft purge came
// after the last hard move, and then " hard".
func (g Group) Bytes() []byte {
	b := strconv.AppendUint(make([]byte, 0, 80), g.Incarnation, 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, g.Epoch, 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, g.Origin, 10)
	soft := g.Hard > 0 && g.Hard < g.Epoch
	if g.Moved > 0 || soft {
		b = append(b, ' ')
		b = strconv.AppendUint(b, g.Moved, 10)
	}
	if soft {
		b = append(b, ' ')
		b = strconv.AppendUint(b, g.Hard, 10)
	}
	return b
}

// ParseGroup reads a group value; ok is false for anything malformed
// (which callers treat as unknown: never current).
func ParseGroup(b []byte) (g Group, ok bool) {
	var f [5]uint64
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
	switch {
	case n < 3 || f[0]%2 == 0 || f[1] == 0: // incarnations are odd: NeverCurrent
		return Group{}, false
	case n < 5:
		return Group{Incarnation: f[0], Epoch: f[1], Origin: f[2], Moved: f[3], Hard: f[1]}, true
	case f[4] == 0 || f[4] >= f[1]: // Bytes writes a fifth field only below the epoch
		return Group{}, false
	}
	return Group{Incarnation: f[0], Epoch: f[1], Origin: f[2], Moved: f[3], Hard: f[4]}, true
}

// NeverCurrent is what an entry records for a group it could not check (a
// witness of its groups: proxy's resolveGroups). Its incarnation is even,
// which no group value's is (NewGroup's are odd, ParseGroup refuses the
// others), so it validates against nothing, not even a soft purge.
var NeverCurrent = Group{Incarnation: 2, Epoch: 1}

// NewGroup is the value of a group key created now (or found garbled).
func NewGroup(origin uint64) Group {
	return Group{Incarnation: rand.Uint64() | 1, Epoch: 1, Origin: origin, Hard: 1}
}

// Next is the group's value after a move that reported origin version
// origin: the next epoch, the newest origin version.
func (g Group) Next(origin uint64) Group {
	return Group{Incarnation: g.Incarnation, Epoch: g.Epoch + 1, Origin: max(g.Origin, origin), Moved: max(g.Moved, origin), Hard: g.Epoch + 1}
}

// SoftNext is the group's value after a soft purge: the next epoch, and
// the last hard move's epoch kept.
func (g Group) SoftNext() Group {
	g.Epoch++
	return g
}

// MovedFor reports whether a move for origin version origin has been made
// already: the durable path's CatchUp leaves such a group as it is.
func (g Group) MovedFor(origin uint64) bool { return origin > 0 && g.Moved >= origin }

// kv is the single-key memcached operations the group operations need:
// the Store's (with health tracking) or a node's own client (replay).
// stamp is the generation a value written now carries in its flags; kept
// says whether a value read may be trusted (follow.go).
type kv interface {
	get(key string) (*memcache.Item, error)
	add(it *memcache.Item) error
	cas(it *memcache.Item) error
	stamp() uint32
	kept(it *memcache.Item) bool
}

// rawKV is a node's own client: a move replayed or retried there. A move
// needs no trust in the value it moves (its epoch passes every entry's).
type rawKV struct {
	c   *memcache.Client
	gen uint32
}

func (r rawKV) get(key string) (*memcache.Item, error) { return r.c.Get(key) }
func (r rawKV) add(it *memcache.Item) error            { return r.c.Add(it) }
func (r rawKV) cas(it *memcache.Item) error            { return r.c.CompareAndSwap(it) }
func (r rawKV) stamp() uint32                          { return r.gen }
func (r rawKV) kept(*memcache.Item) bool               { return true }

const casAttempts = 16

// ErrContended is returned when a group changed under every one of an
// operation's compare-and-swap attempts.
var ErrContended = errors.New("group value: too many concurrent updates")

// move moves group key forward: epoch+1 (or a new incarnation if the key is
// missing or garbage), and origin version max(current, origin). With
// catchUp (the durable path), a group already moved for origin is left as
// it is (Group.Moved).
func move(s kv, key string, origin uint64, catchUp bool) error {
	return update(s, key, origin, func(cur Group) (Group, bool) {
		if catchUp && cur.MovedFor(origin) {
			return cur, false
		}
		return cur.Next(origin), true
	})
}

// softPurge moves group key forward as a soft purge: epoch+1, the last
// hard move's epoch kept. A key missing or garbage gets a new incarnation,
// as a hard move gives it: nothing recorded can be kept stale then.
func softPurge(s kv, key string) error {
	return update(s, key, 0, func(cur Group) (Group, bool) { return cur.SoftNext(), true })
}

// update replaces group key's value by next of it (unless next says
// false), by compare-and-swap: a concurrent move is never lost, whichever
// kind each is. A missing key is created moved for origin, a garbled one
// gets a new incarnation.
func update(s kv, key string, origin uint64, next func(Group) (Group, bool)) error {
	for range casAttempts {
		it, err := s.get(key)
		if errors.Is(err, memcache.ErrCacheMiss) {
			err = s.add(&memcache.Item{Key: key, Value: NewGroup(0).Next(origin).Bytes(), Flags: s.stamp()})
			if errors.Is(err, memcache.ErrNotStored) {
				continue // created meanwhile: move that one
			}
			return err
		}
		if err != nil {
			return err
		}
		g := NewGroup(origin)
		if cur, ok := ParseGroup(it.Value); ok {
			var change bool
			if g, change = next(cur); !change {
				return nil
			}
		}
		it.Value, it.Flags = g.Bytes(), s.stamp()
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
		err := s.add(&memcache.Item{Key: key, Value: g.Bytes(), Flags: s.stamp()})
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
		if cur, ok := ParseGroup(it.Value); ok && s.kept(it) {
			return cur, false, nil
		}
		// Garbage under our key, or a value no longer kept where it is:
		// replace it with a new incarnation.
		it.Value, it.Flags = g.Bytes(), s.stamp()
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
		if !ok || cur.Origin >= origin || !s.kept(it) {
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
