// Package store owns memcached for edgecache: the node ring, its health and
// its membership (which nodes' contents may be trusted, membership.go),
// batched lookups, the group values that decide whether a cached entry is
// still current, moving them (invalidation), the moves a node missed and
// their replay, and the binary form of a stored entry (Entry). The proxy
// keeps its entries and fill leases here; the durable invalidator (package
// invalidator) moves groups through it. It knows nothing about HTTP.
// Package memstore keeps the same in memory, for tests.
//
// # Groups
//
// A group is a named set of rows (post/7, user/42/posts) or a URL's primary
// cache key ("url:" + key). Its value in memcached is a Group: a random
// incarnation chosen when the key is created, an epoch that moves by one
// per invalidation, and the newest origin version anyone reported. A cached
// entry records, per group, the (incarnation, epoch) read before its fill's
// origin fetch began; it is current only while each group still has that
// incarnation and an epoch not past the recorded one (Group.Validates).
//
// A write moves (Move) every group it changed before its answer leaves, so
// a fill that could have read data older than the write recorded an epoch
// that is now behind, on every proxy at once. A group key that was lost
// (evicted, node restarted) is created again with a new incarnation, so
// nothing recorded against the lost one validates, whatever any clock says:
// no clock is involved. See proxy/doc.go for the whole argument.
package store
