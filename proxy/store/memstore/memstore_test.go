package memstore

import (
	"errors"
	"slices"
	"testing"

	"edgecache/proxy/store"
)

// Items as memcached keeps them: Add only into a free key, compare-and-swap
// against the CAS id of the last read, Delete of a missing key is no error,
// and what a caller gets is its own copy.
func TestItems(t *testing.T) {
	s := New(1)
	if err := s.Add(&store.Item{Key: "k", Value: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(&store.Item{Key: "k", Value: []byte("2")}); !errors.Is(err, store.ErrNotStored) {
		t.Fatalf("Add into a taken key: %v, want ErrNotStored", err)
	}
	it, err := s.NodeGet(0, "k")
	if err != nil || string(it.Value) != "1" {
		t.Fatalf("NodeGet: %v %v", it, err)
	}
	it.Value[0] = 'x' // the caller's copy
	if err := s.Set(&store.Item{Key: "k", Value: []byte("3")}); err != nil {
		t.Fatal(err)
	}
	if err := s.NodeCompareAndSwap(0, it); !errors.Is(err, store.ErrCASConflict) {
		t.Fatalf("CAS after a Set: %v, want ErrCASConflict", err)
	}
	items, _ := s.Lookup([]string{"k", "missing"})
	if len(items) != 1 || string(items["k"].Value) != "3" {
		t.Fatalf("Lookup: %v", items)
	}
	it = items["k"]
	it.Value = []byte("4")
	if err := s.NodeCompareAndSwap(0, it); err != nil {
		t.Fatalf("CAS of the last read: %v", err)
	}
	if err := s.Delete("k"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("k"); err != nil {
		t.Fatalf("Delete of a missing key: %v", err)
	}
	if err := s.NodeCompareAndSwap(0, it); !errors.Is(err, store.ErrNotStored) {
		t.Fatalf("CAS of a deleted key: %v, want ErrNotStored", err)
	}
}

func group(t *testing.T, s *Store, key string) store.Group {
	t.Helper()
	it, err := s.NodeGet(s.NodeOf(key), key)
	if err != nil {
		t.Fatal(err)
	}
	g, ok := store.ParseGroup(it.Value)
	if !ok {
		t.Fatalf("%s: unparsable group value %q", key, it.Value)
	}
	return g
}

// A down node's keys are unavailable, never a plain miss; the moves it
// misses are queued, answered with an error, and taken before it is up.
func TestNodeDown(t *testing.T) {
	s := New(2)
	name := "user/42/posts"
	key := store.GroupKey(name)
	down := s.NodeOf(key)
	g, _, _ := s.Ensure(key, 3)
	other := "k"
	for s.NodeOf(other) == down {
		other += "k"
	}
	s.Set(&store.Item{Key: other, Value: []byte("v")})

	s.SetDown(down, true)
	if s.NodeUp(down) || !s.NodeUp(1-down) {
		t.Fatal("node states")
	}
	items, unavailable := s.GetMulti([]string{key, other})
	if _, ok := items[other]; !ok || !slices.Equal(unavailable, []string{key}) {
		t.Fatalf("GetMulti with a node down: %v, unavailable %v", items, unavailable)
	}
	if _, un := s.Lookup([]string{key}); !un {
		t.Fatal("Lookup of a down node's key is not unavailable")
	}
	if _, _, err := s.Ensure(key, 3); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Ensure on a down node: %v", err)
	}
	if err := s.MoveOrQueue(name, 4); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("a move to a down node: %v, want ErrUnavailable", err)
	}
	s.SetDown(down, false)
	if m := group(t, s, key); m.Incarnation != g.Incarnation || m.Epoch != 2 || m.Origin != 4 {
		t.Fatalf("after the node came back: %+v, want the queued move (epoch 2, origin 4)", m)
	}
}

// The hook runs before the operation, outside the lock: it can make another
// operation land first.
func TestBeforeRunsFirst(t *testing.T) {
	s := New(1)
	s.Before(func(op, key string) {
		if op == "Add" && key == "lease" {
			s.Before(nil)
			s.Set(&store.Item{Key: "lease", Value: []byte("other")})
		}
	})
	if err := s.Add(&store.Item{Key: "lease", Value: []byte("mine")}); !errors.Is(err, store.ErrNotStored) {
		t.Fatalf("Add after the hook's Set: %v, want ErrNotStored", err)
	}
}
