package proxy

import (
	"testing"

	"github.com/bradfitz/gomemcache/memcache"
)

// TestEnsureGroupAndBump runs the group-version operations against a real
// memcached: creating a missing group, finding an existing one, replacing
// garbage, and bumps that only ever move a group forward.
func TestEnsureGroupAndBump(t *testing.T) {
	c := memcache.New(mc.Addr)
	s := rawStore{c}
	key := groupKey("ensure/" + t.Name())
	c.Delete(key)

	created, isNew, err := ensureGroup(s, key, 7)
	if err != nil || !isNew || created.origin != 7 || created.epoch == 0 {
		t.Fatalf("missing group: %+v created %v err %v", created, isNew, err)
	}
	again, isNew, err := ensureGroup(s, key, 9)
	if err != nil || isNew || again != created {
		t.Fatalf("existing group: %+v created %v err %v, want %+v unchanged", again, isNew, err, created)
	}

	if err := bump(s, key, 5); err != nil {
		t.Fatal(err)
	}
	it, err := c.Get(key)
	if err != nil {
		t.Fatal(err)
	}
	moved, ok := parseGroupState(it.Value)
	if !ok || moved.epoch != created.epoch+1 || moved.origin != 7 {
		t.Fatalf("after bump(5): %+v, want epoch %d and origin 7 (never backwards)", moved, created.epoch+1)
	}

	if err := c.Set(&memcache.Item{Key: key, Value: []byte("garbage")}); err != nil {
		t.Fatal(err)
	}
	fresh, isNew, err := ensureGroup(s, key, 3)
	if err != nil || !isNew || fresh.epoch <= moved.epoch {
		t.Fatalf("garbage: %+v created %v err %v, want a new epoch above %d", fresh, isNew, err, moved.epoch)
	}
}
