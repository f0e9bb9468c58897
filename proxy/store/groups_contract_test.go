package store_test

import (
	"errors"
	"testing"

	"edgecache/proxy/store"
	"edgecache/proxy/store/memstore"
)

// groupStore is what the group operations' contract is checked on: Store
// over memcached, and memstore, which the proxy's tests use in its place.
type groupStore interface {
	Ensure(key string, origin uint64) (store.Group, bool, error)
	MoveOrQueue(name string, origin uint64) error
	Learn(key string, origin uint64) error
	GetMulti(keys []string) (map[string]*store.Item, []string)
	Set(it *store.Item) error
	Delete(key string) error
}

// The group operations, the same on memcached and in memory: creating a
// missing group, finding an existing one, moves that only ever go forward,
// learning an origin version without moving the epoch, and garbage or a
// lost key coming back under a new incarnation, so that nothing recorded
// before validates.
func TestGroupOperations(t *testing.T) {
	for name, s := range map[string]groupStore{"memcached": store.NewTestStore(t), "memstore": memstore.New(2)} {
		t.Run(name, func(t *testing.T) { groupOperations(t, s) })
	}
}

func groupOperations(t *testing.T, s groupStore) {
	name := "ops/" + t.Name()
	key := store.GroupKey(name)
	s.Delete(key)
	value := func() store.Group {
		t.Helper()
		items, _ := s.GetMulti([]string{key})
		g, ok := store.ParseGroup(items[key].Value)
		if !ok {
			t.Fatalf("%s: unparsable group value %q", key, items[key].Value)
		}
		return g
	}

	created, isNew, err := s.Ensure(key, 7)
	if err != nil || !isNew || created.Origin != 7 || created.Epoch != 1 || created.Incarnation == 0 {
		t.Fatalf("missing group: %+v created %v err %v", created, isNew, err)
	}
	again, isNew, err := s.Ensure(key, 9)
	if err != nil || isNew || again != created {
		t.Fatalf("existing group: %+v created %v err %v, want %+v unchanged", again, isNew, err, created)
	}
	if err := s.MoveOrQueue(name, 5); err != nil {
		t.Fatal(err)
	}
	moved := value()
	if moved.Incarnation != created.Incarnation || moved.Epoch != 2 || moved.Origin != 7 {
		t.Fatalf("after a move to 5: %+v, want epoch 2, origin 7 (never backwards), same incarnation", moved)
	}
	if moved.Validates(created.Incarnation, created.Epoch) || !moved.Validates(moved.Incarnation, moved.Epoch) {
		t.Fatal("an entry recorded before the move still validates, or one after it does not")
	}
	if err := s.Learn(key, 11); err != nil {
		t.Fatal(err)
	}
	if l := value(); l.Epoch != moved.Epoch || l.Origin != 11 {
		t.Fatalf("after Learn(11): %+v, want epoch %d and origin 11", l, moved.Epoch)
	}

	// A lost key comes back under a new incarnation: an entry recorded
	// against the old one never validates, whatever its epoch.
	s.Delete(key)
	if err := s.Learn(key, 12); !errors.Is(err, store.ErrCacheMiss) {
		t.Fatalf("Learn of a missing group: %v, want ErrCacheMiss", err)
	}
	back, isNew, err := s.Ensure(key, 0)
	if err != nil || !isNew || back.Incarnation == moved.Incarnation || back.Validates(moved.Incarnation, moved.Epoch+1000) {
		t.Fatalf("re-created: %+v created %v err %v; must not validate incarnation %d", back, isNew, err, moved.Incarnation)
	}
	if err := s.Set(&store.Item{Key: key, Value: []byte("garbage")}); err != nil {
		t.Fatal(err)
	}
	if err := s.MoveOrQueue(name, 1); err != nil {
		t.Fatal(err)
	}
	if g := value(); g.Incarnation == back.Incarnation {
		t.Fatalf("garbage moved into %+v: want a new incarnation", g)
	}
}
