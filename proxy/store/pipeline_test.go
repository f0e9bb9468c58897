package store

import (
	"errors"
	"fmt"
	"strconv"
	"testing"

	"github.com/bradfitz/gomemcache/memcache"
)

// A pipeline's commands take effect in order, and each answer is its own:
// the get after an add reads the added value, a delete after a set removes
// what was set, a failed add reads nothing. Over one node every call is one
// round trip; over three, keys on other nodes take the one-by-one path, with
// the same results.
func TestPipelinesRunTheirCommandsInOrder(t *testing.T) {
	t.Run("one node", func(t *testing.T) { pipelinesInOrder(t, newStore(t), true) })
	t.Run("three nodes", func(t *testing.T) {
		var addrs []string
		for _, m := range startNodes(t, 3) {
			addrs = append(addrs, m.Addr)
		}
		pipelinesInOrder(t, storeOver(t, addrs...), false)
	})
}

func pipelinesInOrder(t *testing.T, s *Store, oneNode bool) {
	for i := range 20 {
		p := t.Name() + ":" + strconv.Itoa(i) + ":"
		lease, other, gone := p+"lease", p+"other", p+"gone"
		// A value with the protocol's own delimiters in it, and flags.
		if err := s.Set(&Item{Key: other, Value: []byte("VALUE x 0 1\r\nEND\r\n"), Flags: s.stamp()}); err != nil {
			t.Fatal(err)
		}
		trips := s.Ops("pipeline")
		existing, missing := GroupKey(p+"existing"), GroupKey(p+"missing")
		before, _, err := s.Ensure(existing, 0)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.AddThenGet(&Item{Key: lease, Value: []byte("mine"), Expiration: 60}, []string{lease, other, gone}, []string{existing, missing})
		items, unavailable := got.Items, got.Unavailable
		if err != nil || len(unavailable) > 0 {
			t.Fatalf("AddThenGet: %v, unavailable %v", err, unavailable)
		}
		if oneNode {
			// The missing group is created after the read, the existing one left as it is.
			if _, ok := got.Created[existing]; ok || len(got.Created) != 1 {
				t.Fatalf("created %v: want only the missing group", got.Created)
			}
			if g, created, err := s.Ensure(missing, 0); err != nil || created || g != got.Created[missing] {
				t.Fatalf("the group created is not the one memcached holds: %+v created %v (%v), reported %+v", g, created, err, got.Created[missing])
			}
			if g, _, _ := s.Ensure(existing, 0); g != before {
				t.Fatalf("an existing group was replaced: %+v, was %+v", g, before)
			}
		}
		if it := items[lease]; it == nil || string(it.Value) != "mine" {
			t.Fatalf("the get did not read after the add: %v", it)
		}
		if it := items[other]; it == nil || string(it.Value) != "VALUE x 0 1\r\nEND\r\n" || it.Flags != s.stamp() {
			t.Fatalf("other: %+v", it)
		}
		if _, ok := items[gone]; ok || len(items) != 2 {
			t.Fatalf("items: %v", items)
		}
		if oneNode && s.Ops("pipeline") != trips+1 {
			t.Fatalf("one node: %d round trips, want 1", s.Ops("pipeline")-trips)
		}
		// The items read can be swapped, as GetMulti's.
		items[other].Value = []byte("swapped")
		if err := s.CompareAndSwap(items[other]); err != nil {
			t.Fatalf("CompareAndSwap of an item read: %v", err)
		}
		if got, err := s.AddThenGet(&Item{Key: lease, Value: []byte("theirs")}, []string{lease}, nil); !errors.Is(err, ErrNotStored) || got.Items != nil {
			t.Fatalf("second add: %v, items %v", err, got.Items)
		}

		errs := s.SetThenDelete([]*Item{{Key: p + "entry", Value: []byte("e")}, {Key: p + "variant", Value: []byte("v")}}, lease)
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("SetThenDelete: %v", errs)
		}
		after, unavailable := s.GetMulti([]string{lease, p + "entry", p + "variant"})
		if len(unavailable) > 0 || after[lease] != nil || after[p+"entry"] == nil || string(after[p+"variant"].Value) != "v" {
			t.Fatalf("after SetThenDelete: %v", after)
		}
		// A delete after a set of the same key: gone.
		if errs := s.SetThenDelete([]*Item{{Key: other, Value: []byte("x")}}, other); errs[0] != nil {
			t.Fatal(errs[0])
		}
		if _, err := s.get(s.placed(other)); !errors.Is(err, memcache.ErrCacheMiss) {
			t.Fatalf("set then delete of one key: %v", err)
		}
	}
}

// A node that does not answer: the pipeline's commands are unavailable,
// nothing is read, and the node counts a failure like any operation's.
func TestPipelineToAStoppedNode(t *testing.T) {
	m := startNodes(t, 1)[0]
	s := storeOver(t, m.Addr)
	m.Stop()
	_, err := s.AddThenGet(&Item{Key: "lease", Value: []byte("x")}, []string{"entry"}, []string{GroupKey("g")})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("AddThenGet on a stopped node: %v", err)
	}
	if errs := s.SetThenDelete([]*Item{{Key: "entry", Value: []byte("x")}}, "lease"); !errors.Is(errs[0], ErrUnavailable) {
		t.Fatalf("SetThenDelete on a stopped node: %v", errs[0])
	}
}

// While a key's node is marked down, a pipeline goes to the keys' second
// places, and answers under the keys asked for: the lease added is read
// back, and deleted after the entry is stored, on either path (the lease
// and the entry on one node or not).
func TestPipelinesUseSecondPlacesWhileANodeIsDown(t *testing.T) {
	nodes := startNodes(t, 3)
	s := storeOver(t, nodes[0].Addr, nodes[1].Addr, nodes[2].Addr)
	var leases, entries []string // leases on node 0, entries anywhere
	for i := 0; len(leases) < 20; i++ {
		if k := LeaseKey(fmt.Sprint("http://x/", i)); s.NodeOf(k) == 0 {
			leases = append(leases, k)
			entries = append(entries, EntryKey(fmt.Sprint("http://x/", i)))
		}
	}
	nodes[0].Stop()
	for s.NodeUp(0) { // three failures mark it down
		s.GetMulti(leases[:1])
	}
	for i := range leases {
		lease, entry := leases[i], entries[i]
		got, err := s.AddThenGet(&Item{Key: lease, Value: []byte("mine"), Expiration: 60}, []string{lease, entry}, nil)
		items, unavailable := got.Items, got.Unavailable
		if err != nil || len(unavailable) > 0 || items[lease] == nil || string(items[lease].Value) != "mine" {
			t.Fatalf("AddThenGet with the first node down: %v, unavailable %v, items %v", err, unavailable, items)
		}
		if errs := s.SetThenDelete([]*Item{{Key: entry, Value: []byte("e")}}, lease); errs[0] != nil {
			t.Fatalf("SetThenDelete with the first node down: %v", errs[0])
		}
		after, _ := s.GetMulti([]string{lease, entry})
		if after[lease] != nil || after[entry] == nil {
			t.Fatalf("after SetThenDelete with the first node down: lease %v, entry %v", after[lease], after[entry])
		}
	}
}
