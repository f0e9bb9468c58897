package proxy

import (
	"edgecache/proxy/lease"
	"edgecache/proxy/store"
)

// storage is the shared cache as the proxy's logic uses it: entries and
// fill leases by key, the group values that decide whether an entry is
// current, and their moves. Each method means what *store.Store's says
// (memcached); package memstore keeps the same in memory, so that tests can
// script a write at an exact point of a fill.
type storage interface {
	// Lookup reads keys in a round trip sent after the call began (shared
	// with concurrent callers) and reports whether a key's node was
	// unavailable; keys not found are absent from items.
	Lookup(keys []string) (items map[string]*store.Item, unavailable bool)
	// GetMulti reads keys now, in a round trip of their own.
	GetMulti(keys []string) (items map[string]*store.Item, unavailable []string)
	Add(it *store.Item) error // store.ErrNotStored if the key is taken
	// CompareAndSwap replaces an item read by Lookup or GetMulti if it
	// has not changed since (store.ErrCASConflict; store.ErrNotStored
	// when it is gone).
	CompareAndSwap(it *store.Item) error
	Set(it *store.Item) error
	Delete(key string) error // a missing key is not an error
	// AddThenGet adds it and, if that succeeded, reads keys after the add
	// took effect and creates the groups of create that are missing (one
	// round trip when they share a node; else it may create none).
	AddThenGet(it *store.Item, keys, create []string) (got store.Got, added error)
	// SetThenDelete stores items and then deletes key del (none if ""),
	// after every set took effect (one round trip when they share a node);
	// errs[i] is items[i]'s.
	SetThenDelete(items []*store.Item, del string) (errs []error)
	Ensure(key string, origin uint64) (g store.Group, created bool, err error)
	Learn(key string, origin uint64) error
	// MoveOrQueue moves group name; a move that fails is kept and replayed
	// once its node answers, and the error says the write is "pending".
	MoveOrQueue(name string, origin uint64) error
	// MoveAllOrQueue is MoveOrQueue of every move (a write's groups) at
	// once; errs[i] is moves[i]'s.
	MoveAllOrQueue(moves []store.GroupMove) (errs []error)
	// SoftPurge moves group name as a soft purge: its entries become
	// stale, not invalid (store.Group.Hard). The admin purge's option
	// only: a write never uses it.
	SoftPurge(name string) error
	storageNodes
}

// storageNodes is the storage's nodes themselves: their health for
// /readyz and /metrics, the lease registry's copy on each (package lease),
// and the loop that replays what a node missed.
type storageNodes interface {
	lease.Nodes
	NodeMember(n int) bool
	NodeUp(n int) bool
	NodeAddr(n int) string
	NodeStats(n int) (map[string]uint64, error)
	Run(stop <-chan struct{})
}

var _ storage = (*store.Store)(nil)
