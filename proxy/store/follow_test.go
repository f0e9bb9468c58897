package store

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"edgecache/proxy/membership"
)

// publish plays the decider (package invalidator): it writes d on every
// node of its newest generation and of the one before.
func publish(t *testing.T, d membership.Doc) {
	t.Helper()
	nodes := d.Current().Nodes()
	if len(d.Gens) > 1 {
		nodes = append(nodes, d.Gens[1].Nodes()...)
	}
	for _, n := range nodes {
		c := memcache.New(n)
		if err := c.Set(&memcache.Item{Key: membership.Key, Value: d.Bytes()}); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
}

// change publishes the generations from d's newest to target, letting s
// follow each (as Run does every probe interval), and returns the document.
func change(t *testing.T, s *Store, d membership.Doc, target []string) membership.Doc {
	t.Helper()
	for {
		next, ok := membership.Next(d.Current(), target)
		if !ok {
			return d
		}
		d = d.With(next)
		publish(t, d)
		s.follow()
		if s.view.Load().gen != next.N {
			t.Fatalf("following generation %d, want %d", s.view.Load().gen, next.N)
		}
	}
}

// The follower uses the document's nodes, not its configured ones: a node
// it was never given is read and written once a generation has it.
func TestFollowerUsesTheDocumentsNodes(t *testing.T) {
	nodes := startNodes(t, 2)
	a, b := nodes[0].Addr, nodes[1].Addr
	d := membership.Doc{View: time.Hour, Gens: []membership.Gen{membership.Settled(1, []string{a, b})}}
	publish(t, d)
	s := storeOver(t, a) // configured with a only
	if s.Nodes() != 2 || !s.NodeMember(1) {
		t.Fatalf("nodes %d: the document's second node is not used", s.Nodes())
	}
	onB := 0
	for i := range 200 {
		key := fmt.Sprint("e:", i)
		if err := s.Set(&memcache.Item{Key: key, Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
		if s.NodeAddr(s.NodeOf(key)) == nodes[1].Addr {
			onB++
			if _, err := memcache.New(b).Get(key); err != nil {
				t.Fatalf("%s placed on %s, not there: %v", key, b, err)
			}
		}
	}
	if onB == 0 {
		t.Fatal("no key placed on the document's second node")
	}
	d = change(t, s, d, []string{a})
	if s.NodeMember(1) {
		t.Fatal("a node the newest generation dropped is still a member")
	}
	if _, err := s.NodeGet(1, "e:0"); !errors.Is(err, ErrNotMember) {
		t.Fatalf("node operation on a dropped node: %v, want ErrNotMember", err)
	}
}

// twoOfThree starts three nodes and publishes generation 1 over the first
// two.
func twoOfThree(t *testing.T) (a, b, c string, d membership.Doc) {
	t.Helper()
	nodes := startNodes(t, 3)
	a, b, c = nodes[0].Addr, nodes[1].Addr, nodes[2].Addr
	d = membership.Doc{View: time.Hour, Gens: []membership.Gen{membership.Settled(1, []string{a, b})}}
	publish(t, d)
	return a, b, c, d
}

// The counterexample group generations exist for: a node added, then
// removed. The keys it held go back to the nodes that held them before the
// add, whose values no write moved while the added node had the keys. No
// group value read afterwards may validate an entry recorded before.
func TestNodeAddedThenRemovedBringsNoOldGroupBack(t *testing.T) {
	a, b, c, d := twoOfThree(t)
	s := storeOver(t, a, b)
	type recorded struct{ inc, epoch uint64 }
	const groups = 120
	before := map[string]recorded{}
	for i := range groups {
		name := fmt.Sprint("post/", i)
		g, _, err := s.Ensure(GroupKey(name), 1)
		if err != nil {
			t.Fatal(err)
		}
		before[name] = recorded{g.Incarnation, g.Epoch} // what an entry filled now records
	}
	d = change(t, s, d, []string{a, b, c})
	for name := range before {
		if err := s.MoveOrQueue(name, 2); err != nil { // every group written while c is a member
			t.Fatal(err)
		}
	}
	change(t, s, d, []string{a, b})
	moved := 0
	for name, r := range before {
		key := GroupKey(name)
		items, _ := s.GetMulti([]string{key})
		g, ok := Group{}, false
		if it := items[key]; it != nil {
			g, ok = ParseGroup(it.Value)
		}
		if !ok {
			var err error
			if g, _, err = s.Ensure(key, 0); err != nil {
				t.Fatal(err)
			}
		}
		if g.Validates(r.inc, r.epoch) {
			t.Errorf("%s: the value from before the add validates an entry recorded then (%+v)", name, g)
		}
		moved++
	}
	if moved != groups {
		t.Fatalf("%d groups checked", moved)
	}
}

// A follower that cannot confirm its generation for the view time stops
// using memcached until it can.
func TestFollowerUnconfirmedForTheViewTimeUsesNoNode(t *testing.T) {
	nodes := startNodes(t, 1)
	a := nodes[0].Addr
	d := membership.Doc{View: time.Millisecond, Gens: []membership.Gen{membership.Settled(1, []string{a})}}
	publish(t, d)
	s := storeOver(t, a)
	if err := memcache.New(a).Delete(membership.Key); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond) // the view time itself is what must pass
	if err := s.Set(&memcache.Item{Key: "e:x", Value: []byte("v")}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("set while the view is unconfirmed: %v, want ErrUnavailable", err)
	}
	if err := s.MoveOrQueue("post/1", 2); err == nil {
		t.Fatal("a move while the view is unconfirmed reported done: the write would not answer pending")
	}
	d.View = time.Hour // the same generation, confirmed again, for long enough to use it
	publish(t, d)
	// A follow waits a quarter of the view it has (1 ms) for the
	// document: on a loaded machine one may not be enough.
	var err error
	for range 100 {
		s.follow()
		if err = s.Set(&memcache.Item{Key: "e:x", Value: []byte("v")}); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("set once confirmed again: %v", err)
	}
}

// Two processes one generation apart during a change: the one still
// reading where the old set places keys writes both placements, so the
// one already reading the new placement sees every move it made.
func TestWriterOneGenerationBehindIsSeenByTheReaderAhead(t *testing.T) {
	a, b, c, d := twoOfThree(t)
	behind, ahead := storeOver(t, a, b), storeOver(t, a, b)
	dualWrite, _ := membership.Next(d.Current(), []string{a, b, c})
	d = d.With(dualWrite)
	publish(t, d)
	behind.follow()
	ahead.follow()
	dualRead, _ := membership.Next(d.Current(), nil)
	publish(t, d.With(dualRead))
	ahead.follow()
	if behind.view.Load().gen != 2 || ahead.view.Load().gen != 3 {
		t.Fatalf("generations %d and %d, want 2 and 3", behind.view.Load().gen, ahead.view.Load().gen)
	}
	seen := 0
	for i := range 120 {
		name := fmt.Sprint("post/", i)
		g, _, err := ahead.Ensure(GroupKey(name), 1) // what the reader ahead records
		if err != nil {
			t.Fatal(err)
		}
		if err := behind.MoveOrQueue(name, 2); err != nil {
			t.Fatal(err)
		}
		items, _ := ahead.GetMulti([]string{GroupKey(name)})
		if it := items[GroupKey(name)]; it != nil {
			now, ok := ParseGroup(it.Value)
			if ok && now.Validates(g.Incarnation, g.Epoch) {
				t.Errorf("%s: the move by the process a generation behind is not seen by the one ahead", name)
			}
			seen++
		}
	}
	if seen == 0 {
		t.Fatal("no group read back")
	}
}
