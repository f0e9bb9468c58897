package store

import (
	"github.com/bradfitz/gomemcache/memcache"

	"edgecache/cachepolicy"
	"edgecache/proxy/ring"
)

// memcached keys. User input never reaches the memcached protocol raw:
// every key is a prefix and a hash (memcached keys are at most 250 bytes
// without spaces or control characters).
func mcKey(prefix, s string) string {
	var buf [64]byte
	return string(cachepolicy.AppendMemcacheKey(buf[:0], prefix, []byte(s)))
}

// EntryKey is the memcached key of the entry stored under a primary cache key.
func EntryKey(primary string) string { return mcKey("e:", primary) }

// VariantKey is the memcached key of the response stored for a primary
// cache key and one secondary (Vary) key; the URL's entry lists the
// variants it can reach (Entry.Variants).
func VariantKey(primary string, varyKey []byte) string {
	return mcKey("v:", primary+"\x00"+string(varyKey))
}

// LeaseKey is the memcached key of the fleet-wide fill lease of a primary cache key.
func LeaseKey(primary string) string { return mcKey("l:", primary) }

// GroupKey is the memcached key of a group's value.
func GroupKey(name string) string { return mcKey("g:", name) }

// URLGroup is the group name of a URL's primary cache key: moved by RFC 9111
// §4.4 invalidation of that URL and by purges.
func URLGroup(primary string) string { return "url:" + primary }

// Item is a memcached item (key, value, expiry, CAS id): gomemcache's, named
// here so that the store's users need not import the client library.
type Item = memcache.Item

// MaxNodes bounds the memcached nodes one process ever knows; node indexes
// run below it.
const MaxNodes = ring.MaxNodes

// The protocol answers the store's users tell apart.
var (
	ErrCacheMiss   = memcache.ErrCacheMiss   // no such key
	ErrNotStored   = memcache.ErrNotStored   // add: the key exists; CAS: it vanished
	ErrCASConflict = memcache.ErrCASConflict // CAS: the item changed since it was read
)
