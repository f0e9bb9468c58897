package proxy

import (
	"encoding/binary"
	"errors"

	"edgecache/cachepolicy"
)

// entry is a stored response as kept in memcached: the caching metadata
// (cachepolicy.Meta), the group epochs it was filled under (see
// invalidate.go), the secondary (Vary) key of the request that filled it,
// the stored header fields, and the body.
//
// Binary form, after the magic byte and format version:
//
//	meta (cachepolicy binary form, self-delimiting)
//	uvarint nGroups, then per group: uvarint len, memcached group key, uvarint incarnation, uvarint epoch
//	uvarint len, vary key
//	uvarint nHeaders, then per field: uvarint len, name, uvarint len, value
//	body (the rest)
//
// Decoding aliases the input; an entry never outlives the memcached item
// (or the buffer) it came from.
type entry struct {
	meta    cachepolicy.Meta
	groups  []recorded
	varyKey []byte
	headers []field
	body    []byte
}

// recorded is a group's value as a fill saw it before its origin fetch.
type recorded struct {
	key         []byte // memcached key of the group
	incarnation uint64
	epoch       uint64
}

type field struct{ name, value []byte }

const (
	entryMagic   = 'E'
	entryVersion = 2 // 2: groups carry an incarnation
	// limits a decoder enforces so that corrupt input cannot make it
	// allocate without bound.
	maxEntryGroups  = maxGroups + 1 // the origin's groups and the URL group
	maxEntryHeaders = 128
)

var (
	errCorruptEntry = errors.New("corrupt cache entry")
	// errOtherFormat is an entry written by a proxy of another format
	// version (during a rolling deploy): a plain miss, not worth a warning.
	errOtherFormat = errors.New("cache entry of another format version")
)

func (e *entry) appendBinary(b []byte) ([]byte, error) {
	b = append(b, entryMagic, entryVersion)
	b, err := e.meta.AppendBinary(b)
	if err != nil {
		return nil, err
	}
	if len(e.groups) > maxEntryGroups || len(e.headers) > maxEntryHeaders {
		return nil, errors.New("entry has too many groups or header fields")
	}
	b = binary.AppendUvarint(b, uint64(len(e.groups)))
	for _, g := range e.groups {
		b = appendBytes(b, g.key)
		b = binary.AppendUvarint(b, g.incarnation)
		b = binary.AppendUvarint(b, g.epoch)
	}
	b = appendBytes(b, e.varyKey)
	b = binary.AppendUvarint(b, uint64(len(e.headers)))
	for _, h := range e.headers {
		b = appendBytes(b, h.name)
		b = appendBytes(b, h.value)
	}
	return append(b, e.body...), nil
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// decodeEntry parses b into e, reusing e's slices.
func decodeEntry(b []byte, e *entry) error {
	if len(b) < 2 || b[0] != entryMagic {
		return errCorruptEntry
	}
	if b[1] != entryVersion {
		return errOtherFormat
	}
	m, n, err := cachepolicy.ReadMeta(b[2:])
	if err != nil {
		return errCorruptEntry
	}
	e.meta = m
	r := entryReader{b: b, i: 2 + n}
	ng := r.uvarint(maxEntryGroups)
	e.groups = e.groups[:0]
	for k := uint64(0); k < ng && !r.bad; k++ {
		key := r.bytes()
		inc := r.uvarint(1<<64 - 1)
		e.groups = append(e.groups, recorded{key: key, incarnation: inc, epoch: r.uvarint(1<<64 - 1)})
	}
	e.varyKey = r.bytes()
	nh := r.uvarint(maxEntryHeaders)
	e.headers = e.headers[:0]
	for k := uint64(0); k < nh && !r.bad; k++ {
		name := r.bytes()
		e.headers = append(e.headers, field{name: name, value: r.bytes()})
	}
	if r.bad {
		return errCorruptEntry
	}
	for _, g := range e.groups {
		if len(g.key) == 0 || g.incarnation == 0 || g.epoch == 0 {
			return errCorruptEntry
		}
	}
	for _, h := range e.headers {
		if !validFieldName(h.name) || !validFieldValue(h.value) {
			return errCorruptEntry
		}
	}
	e.body = b[r.i:]
	return nil
}

type entryReader struct {
	b   []byte
	i   int
	bad bool
}

func (r *entryReader) uvarint(limit uint64) uint64 {
	if r.bad {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.i:])
	if n <= 0 || v > limit {
		r.bad = true
		return 0
	}
	r.i += n
	return v
}

func (r *entryReader) bytes() []byte {
	n := r.uvarint(uint64(len(r.b)))
	if r.bad || n > uint64(len(r.b)-r.i) {
		r.bad = true
		return nil
	}
	v := r.b[r.i : r.i+int(n) : r.i+int(n)]
	r.i += int(n)
	return v
}

// validFieldName and validFieldValue keep a corrupt entry from injecting
// header lines into a response.
func validFieldName(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f || c == ':' {
			return false
		}
	}
	return true
}

func validFieldValue(b []byte) bool {
	for _, c := range b {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
