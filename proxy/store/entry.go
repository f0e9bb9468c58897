package store

import (
	"encoding/binary"
	"errors"
	"slices"

	"edgecache/cachepolicy"
)

// Entry is a stored response as kept in memcached: the caching metadata
// (cachepolicy.Meta), the group values it was filled under (see Group),
// the secondary (Vary) key of the request that filled it, the secondary
// keys of the URL's other variants (see Variants), the stored header
// fields, and the body.
//
// Binary form, after the magic byte and format version:
//
//	meta (cachepolicy binary form, self-delimiting)
//	uvarint nGroups, then per group: uvarint len, memcached group key, uvarint incarnation, uvarint epoch
//	uvarint len, vary key
//	uvarint nVariants, then per variant: uvarint len, vary key
//	uvarint nHeaders, then per field: uvarint len, name, uvarint len, value
//	body (the rest)
//
// Decoding aliases the input; an entry never outlives the memcached item
// (or the buffer) it came from.
type Entry struct {
	Meta    cachepolicy.Meta
	Groups  []Recorded
	VaryKey []byte
	// Variants are the secondary keys of the other responses of the same
	// URL (other values of its Vary fields) stored before this one, each
	// under VariantKey. Only the entry under the URL's EntryKey lists
	// them, so deleting it makes them unreachable; each is checked by its
	// own groups like any entry.
	Variants [][]byte
	Headers  []Field
	Body     []byte
}

// Recorded is a group's value as a fill saw it before its origin fetch.
type Recorded struct {
	Key         []byte // memcached key of the group
	Incarnation uint64
	Epoch       uint64
}

// Field is a stored header field.
type Field struct{ Name, Value []byte }

const (
	entryMagic   = 'E'
	entryVersion = 3 // 2: groups carry an incarnation; 3: variants
	// MaxEntryGroups bounds the groups of an entry: the origin's (the
	// proxy takes at most 64 from Edgecache-Groups) and the URL's own.
	// It and maxEntryHeaders keep a decoder of corrupt input from
	// allocating without bound.
	MaxEntryGroups  = 65
	maxEntryHeaders = 128
	// MaxVariants bounds the other variants an entry lists: beyond it the
	// oldest are forgotten (and refilled when asked for).
	MaxVariants = 8
)

var (
	// ErrCorruptEntry is an entry that does not decode: a miss, and a warning.
	ErrCorruptEntry = errors.New("corrupt cache entry")
	// ErrOtherFormat is an entry written by a proxy of another format
	// version (during a rolling deploy): a plain miss, not worth a warning.
	ErrOtherFormat = errors.New("cache entry of another format version")
)

// AppendBinary appends e's binary form to b.
func (e *Entry) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, entryMagic, entryVersion)
	b, err := e.Meta.AppendBinary(b)
	if err != nil {
		return nil, err
	}
	if len(e.Groups) > MaxEntryGroups || len(e.Headers) > maxEntryHeaders || len(e.Variants) > MaxVariants {
		return nil, errors.New("entry has too many groups, variants or header fields")
	}
	b = binary.AppendUvarint(b, uint64(len(e.Groups)))
	for _, g := range e.Groups {
		b = appendBytes(b, g.Key)
		b = binary.AppendUvarint(b, g.Incarnation)
		b = binary.AppendUvarint(b, g.Epoch)
	}
	b = appendBytes(b, e.VaryKey)
	b = binary.AppendUvarint(b, uint64(len(e.Variants)))
	for _, v := range e.Variants {
		b = appendBytes(b, v)
	}
	b = binary.AppendUvarint(b, uint64(len(e.Headers)))
	for _, h := range e.Headers {
		b = appendBytes(b, h.Name)
		b = appendBytes(b, h.Value)
	}
	return append(b, e.Body...), nil
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// DecodeEntry parses b into e, reusing e's slices. e aliases b.
func DecodeEntry(b []byte, e *Entry) error {
	if len(b) < 2 || b[0] != entryMagic {
		return ErrCorruptEntry
	}
	if b[1] != entryVersion {
		return ErrOtherFormat
	}
	m, n, err := cachepolicy.ReadMeta(b[2:])
	if err != nil {
		return ErrCorruptEntry
	}
	e.Meta = m
	r := entryReader{b: b, i: 2 + n}
	ng := r.uvarint(MaxEntryGroups)
	// Sized once: the counts are bounded (MaxEntryGroups, maxEntryHeaders).
	e.Groups = slices.Grow(e.Groups[:0], int(ng))
	for k := uint64(0); k < ng && !r.bad; k++ {
		key := r.bytes()
		inc := r.uvarint(1<<64 - 1)
		e.Groups = append(e.Groups, Recorded{Key: key, Incarnation: inc, Epoch: r.uvarint(1<<64 - 1)})
	}
	e.VaryKey = r.bytes()
	nv := r.uvarint(MaxVariants)
	e.Variants = e.Variants[:0]
	for k := uint64(0); k < nv && !r.bad; k++ {
		e.Variants = append(e.Variants, r.bytes())
	}
	nh := r.uvarint(maxEntryHeaders)
	e.Headers = slices.Grow(e.Headers[:0], int(nh))
	for k := uint64(0); k < nh && !r.bad; k++ {
		name := r.bytes()
		e.Headers = append(e.Headers, Field{Name: name, Value: r.bytes()})
	}
	if r.bad {
		return ErrCorruptEntry
	}
	for _, g := range e.Groups {
		if len(g.Key) == 0 || g.Incarnation == 0 || g.Epoch == 0 {
			return ErrCorruptEntry
		}
	}
	for _, h := range e.Headers {
		if !validFieldName(h.Name) || !ValidFieldValue(h.Value) {
			return ErrCorruptEntry
		}
	}
	e.Body = b[r.i:]
	return nil
}

// entryReader reads the parts after the metadata: a cursor that stays bad
// after the first malformed read, so that DecodeEntry checks once. It is
// cachepolicy's metaReader again, on purpose: that one reads cachepolicy's
// own format with its own bounds (fields of at most maxMetaField bytes,
// times in range), and sharing a cursor would make cachepolicy, which
// knows only caching rules, export a byte reader for this package's format
// (or need a package of its own for twenty lines).
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

// validFieldName and ValidFieldValue keep a corrupt entry from injecting
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

func ValidFieldValue(b []byte) bool {
	for _, c := range b {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
