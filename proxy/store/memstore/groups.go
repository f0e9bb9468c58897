package memstore

import "edgecache/proxy/store"

// The group operations of store.Store, each atomic here (one lock) where
// memcached needs compare-and-swap loops: store.Group's NewGroup and Next
// are the values they leave.

// Ensure returns the group under key, creating it with origin version
// origin if it is missing or garbled, and reports whether it created it.
func (s *Store) Ensure(key string, origin uint64) (g store.Group, created bool, err error) {
	err = s.do("Ensure", key, func() error {
		nd := &s.nodes[s.NodeOf(key)]
		if nd.down {
			return store.ErrUnavailable
		}
		if it, ok := nd.items[key]; ok {
			if g, ok = store.ParseGroup(it.Value); ok {
				return nil
			}
		}
		g, created = store.NewGroup(origin), true
		s.put(nd, &store.Item{Key: key, Value: g.Bytes()})
		return nil
	})
	return g, created, err
}

// Learn raises the origin version of the group under key to at least
// origin, without moving its epoch: store.ErrCacheMiss if it is missing,
// nothing if it is garbled.
func (s *Store) Learn(key string, origin uint64) error {
	return s.do("Learn", key, func() error {
		n := s.NodeOf(key)
		it, err := s.get(n, key)
		if err != nil {
			return err
		}
		cur, ok := store.ParseGroup(it.Value)
		if !ok || cur.Origin >= origin {
			return nil
		}
		cur.Origin = origin
		it.Value = cur.Bytes()
		s.put(&s.nodes[n], it)
		return nil
	})
}

// MoveOrQueue moves group name forward. While its node is down the move is
// queued for the node's return and the error says so, as store.Store's
// does: the write's answer must say "pending".
func (s *Store) MoveOrQueue(name string, origin uint64) error {
	key := store.GroupKey(name)
	return s.do("MoveOrQueue", key, func() error {
		nd := &s.nodes[s.NodeOf(key)]
		if nd.down {
			nd.missed[key] = max(nd.missed[key], origin)
			return store.ErrUnavailable
		}
		s.move(nd, key, origin)
		return nil
	})
}

// MoveAllOrQueue is MoveOrQueue of each move in turn: store.Store's
// batches them into two round trips a node, which changes no outcome, only
// what it costs.
func (s *Store) MoveAllOrQueue(moves []store.GroupMove) []error {
	errs := make([]error, len(moves))
	for i, m := range moves {
		errs[i] = s.MoveOrQueue(m.Name, m.Origin)
	}
	return errs
}

// Move moves group name forward, as store.Store's Move does for the
// durable invalidator: a node that is down fails it, and nothing is queued
// (the log row stays, and the invalidator tries again); a group already
// moved for origin is left as it is.
func (s *Store) Move(name string, origin uint64) error {
	key := store.GroupKey(name)
	return s.do("Move", key, func() error {
		nd := &s.nodes[s.NodeOf(key)]
		if nd.down {
			return store.ErrUnavailable
		}
		if it, ok := nd.items[key]; ok {
			if cur, ok := store.ParseGroup(it.Value); ok && cur.MovedFor(origin) {
				return nil // moved for this version already, by the write itself
			}
		}
		s.move(nd, key, origin)
		return nil
	})
}

// SoftPurge moves group name forward as a soft purge, as store.Store's
// does: a node that is down fails it, nothing is queued.
func (s *Store) SoftPurge(name string) error {
	key := store.GroupKey(name)
	return s.do("SoftPurge", key, func() error {
		nd := &s.nodes[s.NodeOf(key)]
		if nd.down {
			return store.ErrUnavailable
		}
		g := store.NewGroup(0)
		if it, ok := nd.items[key]; ok {
			if cur, ok := store.ParseGroup(it.Value); ok {
				g = cur.SoftNext()
			}
		}
		s.put(nd, &store.Item{Key: key, Value: g.Bytes()})
		return nil
	})
}

// move leaves the next epoch under key, or a new incarnation if the key is
// missing or garbled.
func (s *Store) move(nd *node, key string, origin uint64) {
	g := store.NewGroup(0).Next(origin)
	if it, ok := nd.items[key]; ok {
		if cur, ok := store.ParseGroup(it.Value); ok {
			g = cur.Next(origin)
		}
	}
	s.put(nd, &store.Item{Key: key, Value: g.Bytes()})
}
