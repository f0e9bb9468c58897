package store

import "testing"

// NewTestStore is a Store over the package's test memcached, for the tests
// in package store_test.
func NewTestStore(t testing.TB) *Store { return newStore(t) }
