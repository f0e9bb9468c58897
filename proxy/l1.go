package proxy

import (
	"slices"
	"unsafe"
)

// compactCopy returns a copy of e that owns its bytes, all in one buffer,
// and that buffer's capacity. A decoded entry aliases the whole buffer it
// was decoded from: a memcached item's value, or a fill's encoding, which
// has room to spare; an L1 copy keeps only what it uses, so that its
// weight (l1Weight) counts what it keeps. Every slice is made with
// slices.Grow, whose capacity is what the allocator really gave.
func compactCopy(e *entry) (c entry, bufCap int) {
	n := len(e.Meta.ETag) + len(e.Meta.LastModified) + len(e.Meta.Vary) + len(e.VaryKey) + len(e.Body)
	for _, g := range e.Groups {
		n += len(g.Key)
	}
	for _, v := range e.Variants {
		n += len(v)
	}
	for _, f := range e.Headers {
		n += len(f.Name) + len(f.Value)
	}
	buf := slices.Grow([]byte(nil), n)
	own := func(b []byte) []byte {
		if b == nil {
			return nil
		}
		buf = append(buf, b...)
		return buf[len(buf)-len(b) : len(buf) : len(buf)]
	}
	c.Meta = e.Meta
	c.Meta.ETag, c.Meta.LastModified, c.Meta.Vary = own(e.Meta.ETag), own(e.Meta.LastModified), own(e.Meta.Vary)
	c.VaryKey = own(e.VaryKey)
	c.Groups = slices.Grow([]recorded(nil), len(e.Groups))
	for _, g := range e.Groups {
		c.Groups = append(c.Groups, recorded{Key: own(g.Key), Incarnation: g.Incarnation, Epoch: g.Epoch})
	}
	if len(e.Variants) > 0 {
		c.Variants = slices.Grow([][]byte(nil), len(e.Variants))
		for _, v := range e.Variants {
			c.Variants = append(c.Variants, own(v))
		}
	}
	c.Headers = slices.Grow([]field(nil), len(e.Headers))
	for _, f := range e.Headers {
		c.Headers = append(c.Headers, field{Name: own(f.Name), Value: own(f.Value)})
	}
	c.Body = own(e.Body)
	return c, cap(buf)
}

// What an L1 copy costs the heap besides what l1Weight reads off its
// slices, as measured by TestL1CountsWhatEntriesCost: per copy, the
// l1Entry, the LRU's element, item and map slot; per string kept (the
// primary and lookup keys), what its allocation rounds up. And what the
// answer header kept for its hits costs (see wholeHeader: a
// fasthttp.ResponseHeader with its Date, Via, Age and Cache-Status), per
// copy and per field besides the field's bytes; counted from the copy's
// first whole answer (answerWeight), as most copies have one and some never.
const (
	l1EntryOverhead     = 400
	l1StringOverhead    = 8
	answerOverhead      = 580
	answerFieldOverhead = 64
)

// l1Weight is what an L1 copy costs the process when kept, in bytes: its
// primary key (the LRU's map key: a client picks its length), its lookup
// keys, its buffer (bufCap: the bytes of its body, fields, groups, Vary
// and validators), the arrays of its groups, variants, fields, lookup keys
// and lease buckets, and the overheads above. It grows with everything a
// client or the origin makes longer, so that PROXY_L1_BYTES bounds the
// heap.
func l1Weight(primary string, c *l1Entry, bufCap int) int64 {
	e := &c.ent
	w := len(primary) + bufCap + l1EntryOverhead +
		cap(e.Groups)*int(unsafe.Sizeof(recorded{})) + cap(e.Variants)*int(unsafe.Sizeof([]byte(nil))) +
		cap(e.Headers)*int(unsafe.Sizeof(field{})) + cap(c.keys)*int(unsafe.Sizeof("")) + cap(c.buckets)*4 +
		(1+len(c.keys))*l1StringOverhead
	for _, k := range c.keys {
		w += len(k)
	}
	return int64(w)
}

// answerWeight is what the answer header kept for the hits of a copy of e
// costs: its fields' bytes again, and the overheads above.
func answerWeight(e *entry) int64 {
	w := answerOverhead
	for _, f := range e.Headers {
		w += len(f.Name) + len(f.Value) + answerFieldOverhead
	}
	return int64(w)
}
