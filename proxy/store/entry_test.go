package store

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"edgecache/cachepolicy"
)

func sampleEntry() *Entry {
	resp := cachepolicy.Response{Status: 200,
		CacheControl: cachepolicy.ParseCacheControl([]byte("public, s-maxage=60, stale-while-revalidate=30")),
		ETag:         []byte(`"3"`), LastModified: []byte("Sun, 06 Nov 1994 08:49:37 GMT"), Vary: []byte("Accept-Encoding")}
	now := time.Unix(1_700_000_000, 0)
	return &Entry{
		Meta:     cachepolicy.NewMeta(&resp, now, now),
		Groups:   []Recorded{{[]byte(GroupKey("post/7")), 99, 12}, {[]byte(GroupKey("url:http://a/v1/posts/7")), 1<<63 + 5, 1 << 50}},
		VaryKey:  []byte("\x00accept-encoding\x00\x00\x00\x00\x04gzip"),
		Variants: [][]byte{[]byte("\x00accept-encoding\x00\x00\x00\x00\x02br"), []byte("\x00accept-encoding\x00\x00\x00\x00\x00")},
		Headers:  []Field{{[]byte("Content-Type"), []byte("application/json")}, {[]byte("Etag"), []byte(`"3"`)}},
		Body:     []byte(`{"id":7}`),
	}
}

func TestEntryRoundTrip(t *testing.T) {
	e := sampleEntry()
	b, err := e.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	var got Entry
	if err := DecodeEntry(b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Groups, e.Groups) || !reflect.DeepEqual(got.Headers, e.Headers) || !reflect.DeepEqual(got.Variants, e.Variants) ||
		!bytes.Equal(got.Body, e.Body) || !bytes.Equal(got.VaryKey, e.VaryKey) ||
		got.Meta.Lifetime != 60 || got.Meta.StaleWhileRevalidate != 30 || string(got.Meta.ETag) != `"3"` {
		t.Fatalf("round trip mismatch:\n got %+v\nwant %+v", got, *e)
	}
	for i := 0; i < len(b); i++ {
		var x Entry
		if DecodeEntry(b[:i], &x) == nil && i < len(b)-len(e.Body) {
			t.Fatalf("truncated entry (%d of %d bytes) decoded without error", i, len(b))
		}
	}
}

func FuzzDecodeEntry(f *testing.F) {
	b, _ := sampleEntry().AppendBinary(nil)
	f.Add(b)
	f.Add([]byte{entryMagic, entryVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		var e Entry
		if DecodeEntry(b, &e) != nil {
			return
		}
		// Whatever decodes must encode and decode to the same thing.
		again, err := e.AppendBinary(nil)
		if err != nil {
			return
		}
		var e2 Entry
		if err := DecodeEntry(again, &e2); err != nil {
			t.Fatalf("re-encoded entry does not decode: %v", err)
		}
		for _, h := range e2.Headers {
			if !validFieldName(h.Name) || !ValidFieldValue(h.Value) {
				t.Fatalf("invalid header decoded: %q: %q", h.Name, h.Value)
			}
		}
	})
}
