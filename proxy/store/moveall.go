package store

import (
	"bufio"
	"errors"
	"strconv"
	"sync"
)

// GroupMove is one group a write moves, and the origin version it
// reported for it (0: none).
type GroupMove struct {
	Name   string
	Origin uint64
}

// MoveAllOrQueue is MoveOrQueue for every group of one write at once. The
// values of every place on a node are read in one round trip and swapped
// in one more: moved one by one, as MoveOrQueue does, each place cost two
// round trips of its own (a post's write names four groups, in two places
// each: 16 round trips, 8 of them one after another, a third of the
// memcached work of the 100:1 mix). A place whose swap lost a race, whose
// key was missing, or whose node failed is then moved alone, as
// MoveOrQueue moves it, and kept for replay if that fails too. The moves
// are concurrent, as a write's are once they are all under way; each is
// still a compare-and-swap, so none is lost. errs[i] is moves[i]'s.
func (s *Store) MoveAllOrQueue(moves []GroupMove) (errs []error) {
	var places []placeMove
	nodes := make(map[int][]int) // node → indexes in places
	for i, m := range moves {
		for _, p := range s.places(GroupKey(m.Name)) {
			nodes[p.node] = append(nodes[p.node], len(places))
			places = append(places, placeMove{place: p, move: i, origin: m.Origin})
		}
	}
	var wg sync.WaitGroup
	for n, at := range nodes {
		wg.Go(func() { s.movePlaces(n, places, at) })
	}
	wg.Wait()
	for i := range places {
		if pm := &places[i]; !pm.done {
			wg.Go(func() {
				pm.err = s.updateOne(pm.place, func(c kv, key string) error { return move(c, key, pm.origin, false) })
			})
		}
	}
	wg.Wait()
	errs = make([]error, len(moves))
	for _, pm := range places {
		if pm.err != nil {
			errs[pm.move] = errors.Join(errs[pm.move], pm.err)
			s.missed.add(pm.node, pm.key, pm.origin)
		}
	}
	for _, err := range errs {
		s.countMove(err)
	}
	return errs
}

// placeMove is one place of a move: done once its swap is stored.
type placeMove struct {
	place
	move   int // index in the moves
	origin uint64
	done   bool
	err    error
}

// movePlaces moves places[at...], all on node n, in two round trips: the
// values read (gets), then swapped (cas) where found. A place it could not
// move is left not done, for the caller.
func (s *Store) movePlaces(n int, places []placeMove, at []int) {
	keys := make([]string, len(at))
	for i, j := range at {
		keys[i] = places[j].key
	}
	if !legalKeys(keys...) {
		return
	}
	var items map[string]*Item
	if s.pipeline("pipeline", n, func(w *bufio.Writer) { writeGets(w, keys) },
		func(r *bufio.Reader) (err error) { items, err = readValues(r, keys); return err }) != nil {
		return
	}
	swaps := make([]*Item, len(at)) // nil: missing, left to the move alone
	for i, j := range at {
		it := items[keys[i]]
		if it == nil {
			continue
		}
		g := NewGroup(places[j].origin) // a garbled value gets a new incarnation, as move's
		if cur, ok := ParseGroup(it.Value); ok {
			g = cur.Next(places[j].origin)
		}
		swaps[i] = &Item{Key: it.Key, Value: g.Bytes(), Flags: s.stamp(), CasID: it.CasID}
	}
	s.pipeline("pipeline", n, func(w *bufio.Writer) {
		for _, it := range swaps {
			if it != nil {
				writeCas(w, it)
			}
		}
	}, func(r *bufio.Reader) error {
		for i, it := range swaps {
			if it == nil {
				continue
			}
			swapped, err := readSwapped(r)
			if err != nil {
				return err
			}
			places[at[i]].done = swapped == nil
		}
		return nil
	})
}

// writeCas writes a compare-and-swap of it, against it.CasID.
func writeCas(w *bufio.Writer, it *Item) {
	b := append(w.AvailableBuffer(), "cas "...)
	b = append(b, it.Key...)
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(it.Flags), 10)
	b = append(b, " 0 "...)
	b = strconv.AppendInt(b, int64(len(it.Value)), 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, it.CasID, 10)
	b = append(b, "\r\n"...)
	w.Write(b)
	w.Write(it.Value)
	w.WriteString("\r\n")
}
