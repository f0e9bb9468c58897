package bench

import (
	"sync/atomic"
	"testing"
	"time"
)

// A target dials the URL's host at its port, or the scheme's when it names
// none.
func TestTargetAddress(t *testing.T) {
	var retries atomic.Int64
	for base, want := range map[string]struct{ addr, prefix string }{
		"http://127.0.0.1":          {"127.0.0.1:80", ""},
		"https://example.com":       {"example.com:443", ""},
		"http://127.0.0.1:8080/v2/": {"127.0.0.1:8080", "/v2"},
		"http://[::1]":              {"[::1]:80", ""},
		"https://[::1]:8443":        {"[::1]:8443", ""},
	} {
		tg, err := newTarget(base, 1, time.Second, &retries)
		if err != nil {
			t.Errorf("%s: %v", base, err)
			continue
		}
		if tg.client.Addr != want.addr || tg.prefix != want.prefix || tg.client.IsTLS != (base[4] == 's') {
			t.Errorf("%s: addr %q prefix %q TLS %v, want %q %q", base, tg.client.Addr, tg.prefix, tg.client.IsTLS, want.addr, want.prefix)
		}
	}
	for _, bad := range []string{"ftp://example.com", "http://", "127.0.0.1:8080"} {
		if _, err := newTarget(bad, 1, time.Second, &retries); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
