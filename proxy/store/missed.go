package store

import (
	"sync"
	"time"

	"go.uber.org/zap"
)

// missedMoves are group moves a node could not take when a write made
// them. They are replayed, in Run, as soon as the node answers a probe —
// whether or not it was ever marked down, since a short stall never marks
// it down. Until then the write's answer said "pending" and the durable
// invalidator (which works from the database's log, not from this memory)
// finishes the job even if this process dies.
type missedMoves struct {
	mu    sync.Mutex
	moves []map[string]uint64 // per node: group key -> origin version it must reach
	flush []bool              // per node: too many missed, flush the node instead
}

// maxMissedPerNode bounds the moves remembered for a node; beyond it the
// node is flushed when it answers again (every key on it becomes unknown).
const maxMissedPerNode = 100000

func (q *missedMoves) init(nodes int) {
	q.moves = make([]map[string]uint64, nodes)
	q.flush = make([]bool, nodes)
}

func (q *missedMoves) add(node int, key string, origin uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.moves[node] == nil {
		q.moves[node] = make(map[string]uint64)
	}
	if len(q.moves[node]) >= maxMissedPerNode {
		q.flush[node] = true
		return
	}
	if old, ok := q.moves[node][key]; !ok || origin > old {
		q.moves[node][key] = origin
	}
}

// take removes and returns node's missed moves.
func (q *missedMoves) take(node int) (map[string]uint64, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	m, f := q.moves[node], q.flush[node]
	q.moves[node], q.flush[node] = nil, false
	return m, f
}

func (q *missedMoves) has(node int) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.moves[node]) > 0 || q.flush[node]
}

func (q *missedMoves) count() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, m := range q.moves {
		n += len(m)
	}
	return n
}

// Run probes, every ProbeInterval until stop closes, each node that is
// down or has missed moves; a node that answers gets its missed moves (or
// a flush) before it is marked up again.
func (s *Store) Run(stop <-chan struct{}) {
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		s.follow()
		if !s.follows() {
			s.checkMembership()
		}
		for n := 0; n < s.ring.Len(); n++ {
			if !s.inView(n) || (s.ring.Up(n) && !s.missed.has(n)) {
				continue
			}
			if err := s.recover(n); err != nil {
				s.log.Debug("memcached node still failing", zap.String("node", s.NodeAddr(n)), zap.Error(err))
				continue
			}
			if !s.isMember(n) {
				continue // answering, but not (yet) a member: the next check stamps it, or it stays out
			}
			s.fails[n].Store(0)
			if s.ring.SetDown(n, false) {
				s.m.nodeUp.Inc()
				s.log.Info("memcached node back up", zap.String("node", s.NodeAddr(n)))
			}
		}
	}
}

// recover pings node n and replays what it missed.
func (s *Store) recover(n int) error {
	p := s.probes[n]
	if err := p.Ping(); err != nil {
		return err
	}
	moves, flush := s.missed.take(n)
	requeue := func(err error) error {
		for k, v := range moves {
			s.missed.add(n, k, v)
		}
		if flush {
			s.missed.mu.Lock()
			s.missed.flush[n] = true
			s.missed.mu.Unlock()
		}
		return err
	}
	if flush {
		if err := s.flushNode(n); err != nil {
			return requeue(err)
		}
		s.log.Warn("memcached node flushed: too many invalidations were missed", zap.String("node", s.NodeAddr(n)))
		return nil
	}
	for k, v := range moves {
		if err := move(rawKV{p, s.stamp()}, k, v, false); err != nil {
			return requeue(err)
		}
		s.m.replayed.Inc()
		delete(moves, k)
	}
	return nil
}
