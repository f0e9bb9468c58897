package lru

import (
	"strconv"
	"sync"
	"testing"
)

func TestEvictsLeastRecentlyUsedByWeight(t *testing.T) {
	c := New[string](10)
	c.Add("a", "A", 4)
	c.Add("b", "B", 4)
	if _, ok := c.Get("a"); !ok { // a is now more recent than b
		t.Fatal("a missing")
	}
	c.Add("c", "C", 4) // 12 > 10: b goes
	if _, ok := c.Get("b"); ok {
		t.Fatal("b kept, want it evicted")
	}
	for _, k := range []string{"a", "c"} {
		if _, ok := c.Get(k); !ok {
			t.Fatalf("%s evicted", k)
		}
	}
	if c.Weight() != 8 || c.Len() != 2 || c.Evictions() != 1 {
		t.Fatalf("weight %d len %d evictions %d, want 8, 2 and 1", c.Weight(), c.Len(), c.Evictions())
	}
}

func TestReplaceRemoveAndTooHeavy(t *testing.T) {
	c := New[int](10)
	c.Add("a", 1, 3)
	c.Add("a", 2, 5)
	if v, _ := c.Get("a"); v != 2 || c.Weight() != 5 {
		t.Fatalf("replace: value %d weight %d", v, c.Weight())
	}
	c.Add("big", 3, 11)
	if _, ok := c.Get("big"); ok {
		t.Fatal("a value heavier than the cache was kept")
	}
	if _, ok := c.Get("a"); !ok {
		t.Fatal("a too-heavy value evicted others")
	}
	c.Remove("a")
	if _, ok := c.Get("a"); ok || c.Weight() != 0 || c.Evictions() != 0 {
		t.Fatalf("after Remove: present %v weight %d evictions %d", ok, c.Weight(), c.Evictions())
	}
	c.Add("big", 3, 11) // replacing with a too-heavy value removes the old one
	c.Add("x", 1, 1)
	c.Add("x", 2, 11)
	if _, ok := c.Get("x"); ok {
		t.Fatal("old value kept after a too-heavy replacement")
	}
}

func TestConcurrentUse(t *testing.T) {
	c := New[int](1000)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				k := strconv.Itoa((g*7 + i) % 300)
				c.Add(k, i, 5)
				c.Get(k)
				if i%10 == 0 {
					c.Remove(k)
				}
			}
		}()
	}
	wg.Wait()
	if c.Weight() > 1000 || int64(c.Len())*5 != c.Weight() {
		t.Fatalf("weight %d with %d values", c.Weight(), c.Len())
	}
}

func TestGetBytesFindsWhatGetFinds(t *testing.T) {
	c := New[int](100)
	c.Add("a", 1, 10)
	c.Add("b", 2, 10)
	if v, ok := c.GetBytes([]byte("a")); !ok || v != 1 {
		t.Fatalf("GetBytes(a) = %d, %v", v, ok)
	}
	if _, ok := c.GetBytes([]byte("zz")); ok {
		t.Fatal("GetBytes found a missing key")
	}
	c.Add("c", 3, 85) // evicts the least recently used: b, since GetBytes used a
	if _, ok := c.Get("b"); ok {
		t.Error("b survived: GetBytes did not mark a as recently used")
	}
	if n := testing.AllocsPerRun(100, func() { c.GetBytes([]byte("a")) }); n != 0 {
		t.Errorf("GetBytes allocates %.0f times", n)
	}
}

func TestGrowCountsOnlyTheValueStillThere(t *testing.T) {
	c := New[*int](10)
	a, b := new(int), new(int)
	c.Add("a", a, 3)
	c.Add("b", b, 3)
	c.Grow("a", a, 2)
	if c.Weight() != 8 {
		t.Fatalf("after Grow: weight %d, want 8", c.Weight())
	}
	c.Grow("a", b, 5) // not a's value: nothing
	c.Grow("x", a, 5) // no such key: nothing
	if c.Weight() != 8 || c.Len() != 2 {
		t.Fatalf("Grow of another value or key: weight %d len %d, want 8 and 2", c.Weight(), c.Len())
	}
	c.Grow("b", b, 4) // 12 > 10: a, the least recently used, goes
	if _, ok := c.Get("a"); ok || c.Weight() != 7 || c.Evictions() != 1 {
		t.Fatalf("Grow past the bound: a kept %v, weight %d, evictions %d", ok, c.Weight(), c.Evictions())
	}
	c.Remove("b") // the grown weight leaves with it
	if c.Weight() != 0 {
		t.Fatalf("after Remove: weight %d", c.Weight())
	}
}
