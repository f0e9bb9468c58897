package bench

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// ttlCache is the cache the read-after-write check must catch: it keeps every
// successful GET for ttl and forwards writes without invalidating anything,
// as a cache that only honours TTLs does.
type ttlCache struct {
	origin string
	ttl    time.Duration
	client *http.Client

	mu      sync.Mutex
	entries map[string]ttlEntry
}

type ttlEntry struct {
	header  http.Header
	body    []byte
	expires time.Time
}

func (c *ttlCache) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := r.URL.RequestURI()
	if r.Method == http.MethodGet {
		c.mu.Lock()
		e, ok := c.entries[key]
		c.mu.Unlock()
		if ok && time.Now().Before(e.expires) {
			for k, v := range e.header {
				w.Header()[k] = v
			}
			w.Header().Set("Cache-Status", "ttlcache; hit")
			w.Write(e.body)
			return
		}
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, c.origin+key, r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	req.Header = r.Header.Clone()
	resp, err := c.client.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if r.Method == http.MethodGet && resp.StatusCode == http.StatusOK {
		c.mu.Lock()
		c.entries[key] = ttlEntry{header: resp.Header.Clone(), body: body, expires: time.Now().Add(c.ttl)}
		c.mu.Unlock()
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	if r.Method == http.MethodGet {
		w.Header().Set("Cache-Status", "ttlcache; fwd=miss; stored")
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, bytes.NewReader(body))
}

// The check reports no stale read against the origin itself, and catches
// stale reads of every kind through a TTL-only cache in front of it.
func TestStaleReadsOriginVersusTTLCache(t *testing.T) {
	seed := seedOrigin(t, 20, 100)

	direct, err := Run(context.Background(), testRunConfig("origin", []string{originURL}, 3000), seed, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	checkErrors(t, "direct run", direct)
	for _, s := range direct.Stale {
		if s.Checked == 0 {
			t.Errorf("direct run: no %s read was checked", s.Kind)
		}
		if s.Stale != 0 {
			t.Errorf("direct run: %d stale %s reads from the origin itself", s.Stale, s.Kind)
		}
	}
	if direct.Derived.Writes == 0 {
		t.Fatal("direct run made no writes")
	}

	cache := httptest.NewServer(&ttlCache{origin: originURL, ttl: time.Hour,
		client: &http.Client{Timeout: 10 * time.Second}, entries: map[string]ttlEntry{}})
	defer cache.Close()
	cached, err := Run(context.Background(), testRunConfig("ttl-cache", []string{cache.URL}, 3000), seed, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	checkErrors(t, "cached run", cached)
	for _, s := range cached.Stale {
		if s.Stale == 0 {
			t.Errorf("TTL-only cache: no stale %s read detected (%d checked)", s.Kind, s.Checked)
		}
	}
	if len(cached.StaleExamples) == 0 || len(direct.StaleExamples) != 0 {
		t.Errorf("stale examples: %d through the cache, %d direct; want some, none", len(cached.StaleExamples), len(direct.StaleExamples))
	} else {
		t.Logf("e.g. %s", cached.StaleExamples[0])
	}
	if cached.Cache.HitRatio == 0 {
		t.Error("TTL-only cache: hit ratio 0, Cache-Status not read")
	}
	if n := direct.Cache.judged(); n != 0 || direct.Cache.Outcomes["none"] == 0 {
		t.Errorf("direct run: cache outcomes %v, want every read without Cache-Status", direct.Cache.Outcomes)
	}
	t.Logf("stale reads: origin %d, TTL cache %+v", direct.Derived.StaleReads, cached.Stale)
}

// checkErrors fails on any error the bench itself could have caused (a 4xx,
// an answer it cannot read) and on more than 1% of requests failing. A few
// 503s or timeouts from an origin starved of CPU on a shared machine are
// reported, not failed: the stale-read check only judges answered reads.
func checkErrors(t *testing.T, what string, r *Result) {
	t.Helper()
	for _, e := range r.ErrorKinds {
		if e.Kind != "http 503" && e.Kind != "http 504" && e.Kind != "timeout" {
			t.Errorf("%s: %d × %s on %s", what, e.Count, e.Kind, e.Op)
		}
	}
	if r.Errors*100 > r.Requests {
		t.Errorf("%s: %d of %d requests failed: %+v", what, r.Errors, r.Requests, r.ErrorKinds)
	} else if r.Errors > 0 {
		t.Logf("%s: %d of %d requests failed under load: %+v", what, r.Errors, r.Requests, r.ErrorKinds)
	}
}

// The attack reads against the real origin: a post with a random query
// string is a post like any other (checked for staleness), and the id
// scan of missing posts gets 404s, none of them an error.
func TestBustAndMissingReads(t *testing.T) {
	seed := seedOrigin(t, 5, 20)
	cfg := testRunConfig("attacks", []string{originURL}, 400)
	cfg.ReadMix = ReadMix{Post: 40, Bust: 30, Missing: 30}
	res, err := Run(context.Background(), cfg, seed, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	checkErrors(t, "attacks", res)
	for _, op := range []int{opBust, opMissing} {
		if s := res.Ops[op]; s.Op != opNames[op] || s.Count == 0 || s.Errors != 0 {
			t.Errorf("%s: %+v, want some requests and no errors", opNames[op], s)
		}
	}
}
