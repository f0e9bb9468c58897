// Package lru is a least-recently-used cache bounded by the total weight
// (bytes) of its values, safe for concurrent use. The proxy keeps its
// in-process copy of hot entries (L1) in one.
//
// It is exact: Add is visible to the next Get, Remove is final. A cache that
// drops or delays writes (as some concurrent caches do for speed) would be
// a poor fit where an entry's validity is decided elsewhere and must never
// be guessed.
package lru

import (
	"container/list"
	"sync"
)

// Cache maps keys to values of a known weight, evicting the least recently
// used when the total weight passes the bound.
type Cache[V comparable] struct {
	mu        sync.Mutex
	max, now  int64
	ll        *list.List // front: most recently used
	items     map[string]*list.Element
	evictions uint64
}

type item[V comparable] struct {
	key    string
	value  V
	weight int64
}

// New returns a cache holding at most maxWeight; values heavier than that are
// not kept.
func New[V comparable](maxWeight int64) *Cache[V] {
	return &Cache[V]{max: maxWeight, ll: list.New(), items: make(map[string]*list.Element)}
}

// Get returns the value for key and marks it recently used.
func (c *Cache[V]) Get(key string) (v V, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return v, false
	}
	c.ll.MoveToFront(el)
	return el.Value.(*item[V]).value, true
}

// GetBytes is Get with the key as bytes, without copying it.
func (c *Cache[V]) GetBytes(key []byte) (v V, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[string(key)]
	if !ok {
		return v, false
	}
	if c.ll.Front() != el {
		c.ll.MoveToFront(el)
	}
	return el.Value.(*item[V]).value, true
}

// Add stores value under key, replacing any value there, and evicts the
// least recently used values until the total weight fits.
func (c *Cache[V]) Add(key string, value V, weight int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.removeElement(el)
	}
	if weight > c.max {
		return
	}
	c.items[key] = c.ll.PushFront(&item[V]{key: key, value: value, weight: weight})
	c.now += weight
	for c.now > c.max {
		c.removeElement(c.ll.Back())
		c.evictions++
	}
}

// Grow adds delta to the weight of value under key, if value is still
// there (not replaced, removed or evicted since), for what the value has
// grown by since it was added, and evicts the least recently used values
// until the total weight fits.
func (c *Cache[V]) Grow(key string, value V, delta int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok || el.Value.(*item[V]).value != value {
		return
	}
	el.Value.(*item[V]).weight += delta
	c.now += delta
	for c.now > c.max {
		c.removeElement(c.ll.Back())
		c.evictions++
	}
}

// Remove drops key.
func (c *Cache[V]) Remove(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.removeElement(el)
	}
}

// Len and Weight report the number of values and their total weight.
func (c *Cache[V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items)
}

func (c *Cache[V]) Weight() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Evictions counts the values removed to make room (not by Remove or
// replacement).
func (c *Cache[V]) Evictions() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.evictions
}

func (c *Cache[V]) removeElement(el *list.Element) {
	it := c.ll.Remove(el).(*item[V])
	delete(c.items, it.key)
	c.now -= it.weight
}
