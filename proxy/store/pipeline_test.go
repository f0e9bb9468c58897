package store

import (
	"errors"
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
		items, unavailable, err := s.AddThenGet(&Item{Key: lease, Value: []byte("mine"), Expiration: 60}, []string{lease, other, gone})
		if err != nil || len(unavailable) > 0 {
			t.Fatalf("AddThenGet: %v, unavailable %v", err, unavailable)
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
		if items, _, err := s.AddThenGet(&Item{Key: lease, Value: []byte("theirs")}, []string{lease}); !errors.Is(err, ErrNotStored) || items != nil {
			t.Fatalf("second add: %v, items %v", err, items)
		}

		errs := s.SetThenDelete([]*Item{{Key: p + "entry", Value: []byte("e")}, {Key: p + "variant", Value: []byte("v")}}, lease)
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("SetThenDelete: %v", errs)
		}
		got, unavailable := s.GetMulti([]string{lease, p + "entry", p + "variant"})
		if len(unavailable) > 0 || got[lease] != nil || got[p+"entry"] == nil || string(got[p+"variant"].Value) != "v" {
			t.Fatalf("after SetThenDelete: %v", got)
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
	_, _, err := s.AddThenGet(&Item{Key: "lease", Value: []byte("x")}, []string{"entry"})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("AddThenGet on a stopped node: %v", err)
	}
	if errs := s.SetThenDelete([]*Item{{Key: "entry", Value: []byte("x")}}, "lease"); !errors.Is(errs[0], ErrUnavailable) {
		t.Fatalf("SetThenDelete on a stopped node: %v", errs[0])
	}
}
