package store

import (
	"errors"
	"fmt"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

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
	if !s.ring.Up(n) {
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
	for n, p := range s.probes {
		if err := p.FlushAll(); err != nil {
			errs = append(errs, fmt.Errorf("memcached %s: flush_all: %w", s.NodeAddr(n), err))
		}
	}
	return errors.Join(errs...)
}
