package store

import (
	"errors"
	"fmt"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"edgecache/proxy/membership"
	"edgecache/proxy/ring"
)

// Operations on one node, whatever a key's place on the ring: package
// lease keeps a copy of its registry on every node (a lease is held only
// while every copy renews it, so a mover needs any one copy). They count in
// the same operation metrics and node health as every other operation.

// NodeGet reads key on node n.
func (s *Store) NodeGet(n int, key string) (it *memcache.Item, err error) {
	err = s.doNode("get", n, func(c *memcache.Client) error { it, err = c.Get(key); return err })
	return it, err
}

// NodeAdd stores it on node n if its key is free there (memcache.ErrNotStored if not).
func (s *Store) NodeAdd(n int, it *memcache.Item) error {
	return s.doNode("add", n, func(c *memcache.Client) error { return c.Add(it) })
}

// NodeSet stores it on node n.
func (s *Store) NodeSet(n int, it *memcache.Item) error {
	return s.doNode("set", n, func(c *memcache.Client) error { return c.Set(it) })
}

// NodeCompareAndSwap replaces it on node n if it has not changed since it
// was read there (memcache.ErrCASConflict; memcache.ErrNotStored when gone).
func (s *Store) NodeCompareAndSwap(n int, it *memcache.Item) error {
	return s.doNode("cas", n, func(c *memcache.Client) error { return c.CompareAndSwap(it) })
}

func (s *Store) doNode(op string, n int, f func(*memcache.Client) error) error {
	if v := s.view.Load(); v != nil && v.union&(1<<n) == 0 {
		return ErrNotMember
	}
	if !s.up(n) {
		s.m.skipped.Inc()
		return ErrUnavailable
	}
	start := time.Now()
	err := f(s.nodes[n])
	s.observe(op, n, start, err)
	if errors.Is(err, ring.ErrNodeDown) || nodeFailed(err) {
		return errors.Join(ErrUnavailable, err)
	}
	return err
}

// FlushAll empties every node, marked down or not: every group value is
// lost, so a group created again gets a new incarnation and no entry
// recorded before validates (package doc), and every copy of the lease
// registry is lost, so every lease holder loses its lease at its next
// renewal (package lease). It is what the durable invalidator does when
// the tables behind the groups changed under the triggers (TRUNCATE, DROP,
// a restored backup). The error names every node that did not take it;
// the others are flushed all the same.
func (s *Store) FlushAll() error {
	var errs []error
	for n := range s.ring.Len() {
		if v := s.view.Load(); v != nil && v.union&(1<<n) == 0 {
			continue // not a member: flushed before it joins again
		}
		if err := s.flushNode(n); err != nil {
			errs = append(errs, fmt.Errorf("memcached %s: flush_all: %w", s.NodeAddr(n), err))
		}
	}
	return errors.Join(errs...)
}

// nodeKV runs the group operations on one node (a move's place), with
// health tracking.
type nodeKV struct {
	s *Store
	n int
}

func (k nodeKV) get(key string) (it *memcache.Item, err error) {
	err = k.s.doNode("get", k.n, func(c *memcache.Client) error { it, err = c.Get(key); return err })
	return it, err
}

func (k nodeKV) add(it *memcache.Item) error {
	return k.s.doNode("add", k.n, func(c *memcache.Client) error { return c.Add(it) })
}

func (k nodeKV) cas(it *memcache.Item) error {
	return k.s.doNode("cas", k.n, func(c *memcache.Client) error { return c.CompareAndSwap(it) })
}

func (k nodeKV) stamp() uint32               { return k.s.stamp() }
func (k nodeKV) kept(it *memcache.Item) bool { return k.s.kept(k.n, it) }

// flushNode empties node n and puts back the membership document this
// process follows: flushing the cache must not make every process lose
// its confirmation until the decider's next round.
func (s *Store) flushNode(n int) error {
	if err := s.probes[n].FlushAll(); err != nil {
		return err
	}
	if v := s.view.Load(); v != nil {
		return s.probes[n].Set(&memcache.Item{Key: membership.Key, Value: v.doc.Bytes()})
	}
	return nil
}
