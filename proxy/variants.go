package proxy

import (
	"bytes"
	"errors"

	"go.uber.org/zap"

	"edgecache/cachepolicy"
	"edgecache/proxy/store"
)

// A URL whose responses vary (Vary) keeps one response per secondary key
// (RFC 9111 §4.1), so that a second variant does not replace the first.
// The entry under the URL's store.EntryKey is the last variant stored, and
// lists the others (store.Entry.Variants), each stored under its
// store.VariantKey. A variant is looked up only through that list: when
// the URL's entry is deleted (after a write whose invalidation failed, or a
// HEAD that contradicts it), every variant becomes unreachable, and the
// next fill starts a new list. Each variant is checked by its own groups,
// which a write moves as it moves the URL entry's (RFC 9111 §4.4: the
// invalidation applies to all of them).

// reachedVariants is what a fill's entry lists, given the URL's entry e as
// the lookup found it: the variants e lists and e's own.
func reachedVariants(e *entry) [][]byte {
	if len(e.Meta.Vary) == 0 {
		return nil
	}
	return append(append(make([][]byte, 0, len(e.Variants)+1), e.Variants...), e.VaryKey)
}

// lookupVariant looks, one more round trip, for the response stored for
// the request's values of the URL entry's Vary fields, if the URL's entry
// lists it. It reports whether one was found whose own Vary fields match
// the request; t.ent is then that response.
func (p *Proxy) lookupVariant(t *txn) bool {
	var buf [256]byte
	k := cachepolicy.AppendVaryKey(buf[:0], t.ent.Meta.Vary, func(name []byte) []byte { return t.ctx.Request.Header.PeekBytes(name) })
	listed := false
	for _, v := range t.ent.Variants {
		listed = listed || bytes.Equal(v, k)
	}
	if !listed {
		return false
	}
	key := store.VariantKey(string(t.primary), k)
	items, _ := p.store.GetMulti([]string{key})
	it := items[key]
	if it == nil {
		return false
	}
	var v entry
	if err := store.DecodeEntry(it.Value, &v); err != nil {
		if !errors.Is(err, store.ErrOtherFormat) {
			p.log.Warn("corrupt cache entry ignored", zap.ByteString("key", t.primary), zap.Error(err))
		}
		return false
	}
	if !p.varyMatches(&v, &t.ctx.Request.Header) {
		return false
	}
	t.ent = v
	return true
}

// otherVariants is the list a new entry with secondary key own keeps: the
// reached ones but own, each once, at most store.MaxVariants, the most
// recent kept.
func otherVariants(reached [][]byte, own []byte) [][]byte {
	var out [][]byte
	for i := len(reached) - 1; i >= 0 && len(out) < store.MaxVariants; i-- {
		v := reached[i]
		dup := bytes.Equal(v, own)
		for _, o := range out {
			dup = dup || bytes.Equal(o, v)
		}
		if !dup {
			out = append(out, v)
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}
