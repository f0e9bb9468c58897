package proxy

import (
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"edgecache/cachepolicy"
)

// How the read-after-write guarantee is kept (DESIGN.md "Invalidation").
//
// memcached holds, per group, a groupState: an epoch and the newest origin
// version any write reported. Every stored entry records, for each of its
// groups, the epoch read BEFORE the fill's origin fetch began. An entry is
// valid only while every group's current epoch is <= the recorded one.
//
// A write, once the origin answered 2xx/3xx and before the answer is sent,
// moves every group it changed strictly forward (epoch+1, by CAS). Any fill
// whose fetch could have read data older than the write took its snapshot
// before that move, so its entry fails validation on every proxy from then
// on. Fills never overwrite invalidations: they only record what they saw.
//
// Epochs are not the origin's versions: a group key can be evicted or lost
// with its node, and a fill or write that finds it missing starts it again.
// It starts at the wall clock in microseconds, which is above any epoch a
// previous incarnation handed out (those started at an earlier clock reading
// and moved by one per write), so entries recorded against the lost key can
// never validate. The origin versions are kept beside the epoch only to spot
// a lagging replica: a fill whose response names a version below the one a
// write already reported is refetched from the primary (Edgecache-Fresh).
//
// The one case this does not cover: a write while the memcached node that
// holds one of its groups is unreachable from the writing proxy. The bump
// cannot be made; the writer queues it in its own memory (l2.remember),
// deletes the target URIs' entries where it can, and marks its answer
// "Edgecache-Invalidation: incomplete". While the node is down for every
// proxy nothing validated against it is served (unknown is not current),
// and a node that restarted lost its groups (new epochs): both are safe.
// What is not: a node that comes back with its memory intact and is used by
// another proxy before the writer replays its queue, or one that only the
// writer could not reach (a partial partition), or a writer that dies with
// its queue. Closing it needs the bump to survive the writer (a second
// copy on another node, or the origin's commit log as the source of
// invalidations, as in "Scaling Memcache at Facebook").

// groupState is a group's value in memcached: "epoch originVersion".
type groupState struct {
	epoch  uint64
	origin uint64
}

func (g groupState) bytes() []byte {
	b := strconv.AppendUint(make([]byte, 0, 40), g.epoch, 10)
	b = append(b, ' ')
	return strconv.AppendUint(b, g.origin, 10)
}

func parseGroupState(b []byte) (groupState, bool) {
	var g groupState
	sp := -1
	for i, c := range b {
		if c == ' ' {
			sp = i
			break
		}
	}
	if sp <= 0 {
		return g, false
	}
	e, err1 := strconv.ParseUint(string(b[:sp]), 10, 64)
	o, err2 := strconv.ParseUint(string(b[sp+1:]), 10, 64)
	if err1 != nil || err2 != nil || e == 0 {
		return g, false
	}
	return groupState{e, o}, true
}

var lastEpoch atomic.Uint64

// newEpoch is the starting epoch of a group key created now.
func newEpoch() uint64 {
	for {
		now := uint64(time.Now().UnixMicro())
		last := lastEpoch.Load()
		if now <= last {
			now = last + 1
		}
		if lastEpoch.CompareAndSwap(last, now) {
			return now
		}
	}
}

// memcached keys. User input never reaches the memcached protocol raw:
// every key is a prefix and a hash.
func mcKey(prefix, s string) string {
	var buf [64]byte
	return string(cachepolicy.AppendMemcacheKey(buf[:0], prefix, []byte(s)))
}

func entryKey(cacheKey string) string { return mcKey("e:", cacheKey) }
func leaseKey(cacheKey string) string { return mcKey("l:", cacheKey) }
func groupKey(name string) string     { return mcKey("g:", name) }

// urlGroup is the group name of a URL's primary cache key.
func urlGroup(primaryKey string) string { return "url:" + primaryKey }

// versionStore is what moving a group needs; l2 implements it with health
// tracking, rawStore for a node being recovered.
type versionStore interface {
	get(key string) (*memcache.Item, error)
	add(it *memcache.Item) error
	cas(it *memcache.Item) error
}

type rawStore struct{ c *memcache.Client }

func (r rawStore) get(key string) (*memcache.Item, error) { return r.c.Get(key) }
func (r rawStore) add(it *memcache.Item) error            { return r.c.Add(it) }
func (r rawStore) cas(it *memcache.Item) error            { return r.c.CompareAndSwap(it) }

const bumpAttempts = 16

var errBumpContended = errors.New("group version: too many concurrent updates")

// bump moves group key strictly forward: epoch+1 (or a new epoch if the key
// is missing), and origin version max(current, originVersion).
func bump(s versionStore, key string, originVersion uint64) error {
	for range bumpAttempts {
		it, err := s.get(key)
		if errors.Is(err, memcache.ErrCacheMiss) {
			err = s.add(&memcache.Item{Key: key, Value: groupState{newEpoch(), originVersion}.bytes()})
			if errors.Is(err, memcache.ErrNotStored) {
				continue // someone created it meanwhile: move that one
			}
			return err
		}
		if err != nil {
			return err
		}
		cur, ok := parseGroupState(it.Value)
		next := groupState{epoch: cur.epoch + 1, origin: max(cur.origin, originVersion)}
		if !ok {
			next = groupState{epoch: newEpoch(), origin: originVersion}
		}
		it.Value = next.bytes()
		err = s.cas(it)
		if errors.Is(err, memcache.ErrCASConflict) || errors.Is(err, memcache.ErrNotStored) {
			continue
		}
		return err
	}
	return errBumpContended
}

// ensureGroup returns the group's current state, creating it (with
// originVersion) if missing, and reports whether it created it. Its callers
// have just read the key and found it missing, so it tries to create it
// first: one round trip in the common case, two if another proxy won.
func ensureGroup(s versionStore, key string, originVersion uint64) (groupState, bool, error) {
	for range bumpAttempts {
		st := groupState{epoch: newEpoch(), origin: originVersion}
		err := s.add(&memcache.Item{Key: key, Value: st.bytes()})
		if !errors.Is(err, memcache.ErrNotStored) {
			return st, err == nil, err
		}
		it, err := s.get(key)
		if errors.Is(err, memcache.ErrCacheMiss) {
			continue // gone again (evicted, or a node flushed): create it
		}
		if err != nil {
			return groupState{}, false, err
		}
		if cur, ok := parseGroupState(it.Value); ok {
			return cur, false, nil
		}
		// Garbage under our key: replace it with a new epoch.
		it.Value = st.bytes()
		if err := s.cas(it); err == nil {
			return st, true, nil
		}
	}
	return groupState{}, false, errBumpContended
}
