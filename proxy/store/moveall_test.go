package store

import (
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// A write's moves, all at once, do what MoveOrQueue does to each group (on
// one node, its own place only: an existing value moved, a missing one created moved, a
// garbled one given a new incarnation) in two round trips on one node; and
// concurrent writes' moves of the same groups lose none: every place ends
// exactly one epoch further per move.
func TestMoveAllOrQueueMovesEveryPlaceInTwoRoundTrips(t *testing.T) {
	s := newStore(t)
	c := memcache.New(mc.Addr)
	p := t.Name() + ":"
	existing, missing, garbled := p+"existing", p+"missing", p+"garbled"
	before, _, err := s.Ensure(GroupKey(existing), 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set(&memcache.Item{Key: GroupKey(garbled), Value: []byte("not a group")}); err != nil {
		t.Fatal(err)
	}
	trips := s.Ops("pipeline")
	for i, err := range s.MoveAllOrQueue([]GroupMove{{existing, 7}, {missing, 0}, {garbled, 2}}) {
		if err != nil {
			t.Fatalf("move %d: %v", i, err)
		}
	}
	if n := s.Ops("pipeline") - trips; n != 2 {
		t.Errorf("%d pipelined round trips, want 2: the reads, then the swaps", n)
	}
	if g := value(t, c, GroupKey(existing)); g.Incarnation != before.Incarnation || g.Epoch != before.Epoch+1 || g.Origin != 7 || g.Moved != 7 {
		t.Errorf("%+v, want %+v moved for version 7", g, before)
	}
	value(t, c, GroupKey(missing)) // a group value now
	value(t, c, GroupKey(garbled))

	// Concurrent writes of the same groups: each swap that loses a race is
	// moved again alone, so none is lost. A move that loses every one of
	// its attempts says so (ErrContended; a write's answer would say
	// "pending" and the move be replayed): it is not counted.
	const writers, writes = 8, 25
	names := []string{existing, missing}
	start := make([]Group, len(names))
	for i, n := range names {
		start[i] = value(t, c, GroupKey(n))
	}
	var moved [2]atomic.Uint64
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range writes {
				for i, err := range s.MoveAllOrQueue([]GroupMove{{existing, 0}, {missing, 0}}) {
					switch {
					case err == nil:
						moved[i].Add(1)
					case !errors.Is(err, ErrContended):
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	for i, n := range names {
		if g := value(t, c, GroupKey(n)); g.Incarnation != start[i].Incarnation || g.Epoch != start[i].Epoch+moved[i].Load() {
			t.Errorf("%s: epoch %d after %d moves from %d: moves were lost", n, g.Epoch, moved[i].Load(), start[i].Epoch)
		}
	}
	if moved[0].Load() == 0 {
		t.Error("no move went through")
	}
}

// A write's moves against a stopped node fail, are kept, and are replayed
// once the node answers, as MoveOrQueue's are.
func TestMoveAllOrQueueKeepsWhatAStoppedNodeMissed(t *testing.T) {
	node, s := storeOverItsOwnNode(t)
	var moves []GroupMove
	var before []Group
	for i := range 3 {
		moves = append(moves, GroupMove{Name: "stall/" + t.Name() + strconv.Itoa(i), Origin: 2})
		g, _, err := s.Ensure(GroupKey(moves[i].Name), 1)
		if err != nil {
			t.Fatal(err)
		}
		before = append(before, g)
	}
	if err := node.Pause(); err != nil {
		t.Fatal(err)
	}
	errs := s.MoveAllOrQueue(moves)
	node.Resume()
	for i, err := range errs {
		if err == nil {
			t.Fatalf("move %d against a stopped node succeeded", i)
		}
	}
	c := memcache.New(node.Addr)
	deadline := time.Now().Add(30 * time.Second)
	for i, m := range moves {
		for {
			g := value(t, c, GroupKey(m.Name))
			if !g.Validates(before[i].Incarnation, before[i].Epoch) {
				if g.Origin != 2 {
					t.Fatalf("replayed move: %+v, want origin 2", g)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the missed move of %s was never replayed", m.Name)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
