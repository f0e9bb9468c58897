package proxy

import "edgecache/proxy/store"

// The proxy's names for the stored forms (package store has the binary
// form): an entry is a stored response, a field one of its header fields,
// recorded a group's value as the entry's fill saw it.
type (
	entry    = store.Entry
	field    = store.Field
	recorded = store.Recorded
)
