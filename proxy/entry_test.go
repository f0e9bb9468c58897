package proxy

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"edgecache/cachepolicy"
	"edgecache/proxy/store"
)

func sampleEntry() *entry {
	resp := cachepolicy.Response{Status: 200,
		CacheControl: cachepolicy.ParseCacheControl([]byte("public, s-maxage=60, stale-while-revalidate=30")),
		ETag:         []byte(`"3"`), LastModified: []byte("Sun, 06 Nov 1994 08:49:37 GMT"), Vary: []byte("Accept-Encoding")}
	now := time.Unix(1_700_000_000, 0)
	return &entry{
		meta:    cachepolicy.NewMeta(&resp, now, now),
		groups:  []recorded{{[]byte(store.GroupKey("post/7")), 99, 12}, {[]byte(store.GroupKey("url:http://a/v1/posts/7")), 1<<63 + 5, 1 << 50}},
		varyKey: []byte("\x00accept-encoding\x00\x00\x00\x00\x04gzip"),
		headers: []field{{[]byte("Content-Type"), []byte("application/json")}, {[]byte("Etag"), []byte(`"3"`)}},
		body:    []byte(`{"id":7}`),
	}
}

func TestEntryRoundTrip(t *testing.T) {
	e := sampleEntry()
	b, err := e.appendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	var got entry
	if err := decodeEntry(b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.groups, e.groups) || !reflect.DeepEqual(got.headers, e.headers) ||
		!bytes.Equal(got.body, e.body) || !bytes.Equal(got.varyKey, e.varyKey) ||
		got.meta.Lifetime != 60 || got.meta.StaleWhileRevalidate != 30 || string(got.meta.ETag) != `"3"` {
		t.Fatalf("round trip mismatch:\n got %+v\nwant %+v", got, *e)
	}
	for i := 0; i < len(b); i++ {
		var x entry
		if decodeEntry(b[:i], &x) == nil && i < len(b)-len(e.body) {
			t.Fatalf("truncated entry (%d of %d bytes) decoded without error", i, len(b))
		}
	}
}

func FuzzDecodeEntry(f *testing.F) {
	b, _ := sampleEntry().appendBinary(nil)
	f.Add(b)
	f.Add([]byte{entryMagic, entryVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		var e entry
		if decodeEntry(b, &e) != nil {
			return
		}
		// Whatever decodes must encode and decode to the same thing.
		again, err := e.appendBinary(nil)
		if err != nil {
			return
		}
		var e2 entry
		if err := decodeEntry(again, &e2); err != nil {
			t.Fatalf("re-encoded entry does not decode: %v", err)
		}
		for _, h := range e2.headers {
			if !validFieldName(h.name) || !validFieldValue(h.value) {
				t.Fatalf("invalid header decoded: %q: %q", h.name, h.value)
			}
		}
	})
}
