package store

import (
	"bufio"
	"errors"
	"fmt"
	"strconv"
	"strings"
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
	if !s.NodeMember(n) {
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

// Version is how a node holds a key now, without its value: a reader that
// kept the item of the same CAS unique, flags and size has it still
// (memcached gives every change a new CAS unique; flags a writer sets at
// random cover the unique counter restarting with the node).
type Version struct {
	CAS   uint64
	Flags uint32
	Size  int
}

// NodeVersion reads key's Version on node n (memcache.ErrCacheMiss when it
// is not there) with a meta get, which memcached 1.6 answers in a few
// bytes whatever the value's size: package lease checks the registry
// copies so, and reads a copy only when it changed.
func (s *Store) NodeVersion(n int, key string) (v Version, err error) {
	if !s.NodeMember(n) {
		return Version{}, ErrNotMember
	}
	miss := false
	err = s.pipeline("get", n, func(w *bufio.Writer) { // counted as the get it is
		w.WriteString("mg " + key + " c f s\r\n")
	}, func(r *bufio.Reader) error {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		v, err = parseVersion(strings.TrimRight(line, "\r\n"))
		if errors.Is(err, memcache.ErrCacheMiss) {
			miss, err = true, nil // an answer: the connection stays good
		}
		return err
	})
	if miss {
		return Version{}, memcache.ErrCacheMiss
	}
	return v, err
}

// parseVersion reads a meta get's answer: "HD c<cas> f<flags> s<size>", or
// "EN" for a miss.
func parseVersion(line string) (Version, error) {
	if line == "EN" {
		return Version{}, memcache.ErrCacheMiss
	}
	f := strings.Fields(line)
	if len(f) != 4 || f[0] != "HD" {
		return Version{}, fmt.Errorf("memcached: unexpected meta get answer %q", line)
	}
	var v Version
	for _, tok := range f[1:] {
		if len(tok) < 2 {
			return Version{}, fmt.Errorf("memcached: unexpected meta get answer %q", line)
		}
		x, err := strconv.ParseUint(tok[1:], 10, 64)
		if err != nil {
			return Version{}, fmt.Errorf("memcached: unexpected meta get answer %q", line)
		}
		switch tok[0] {
		case 'c':
			v.CAS = x
		case 'f':
			if x > 1<<32-1 {
				return Version{}, fmt.Errorf("memcached: unexpected meta get answer %q", line)
			}
			v.Flags = uint32(x)
		case 's':
			v.Size = int(min(x, 1<<31))
		default:
			return Version{}, fmt.Errorf("memcached: unexpected meta get answer %q", line)
		}
	}
	return v, nil
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
		if !s.NodeMember(n) {
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
