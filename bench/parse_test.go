package bench

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

func TestParsePromText(t *testing.T) {
	text := `# HELP origin_http_requests_total Requests.
# TYPE origin_http_requests_total counter
origin_http_requests_total{route="GET /v1/posts/{id}",status="200"} 10
origin_http_requests_total{route="weird \"}\" label",status="404"} 2.5
origin_http_request_duration_seconds_bucket{le="0.1"} 7
origin_http_request_duration_seconds_sum 1.5
process_cpu_seconds_total 3
edgecache_proxy_memcached_ops_total{op="get"} 4 1700000000000
garbage line without value
bad_value{a="b"} NaN
no_close{a="b" 5
`
	got, err := parsePromText(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"origin_http_requests_total":               12.5,
		"origin_http_request_duration_seconds_sum": 1.5,
		"process_cpu_seconds_total":                3,
		"edgecache_proxy_memcached_ops_total":      4,
	}
	if len(got) != len(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %g, want %g", k, got[k], v)
		}
	}
}

func FuzzParsePromText(f *testing.F) {
	f.Add("a_total{x=\"y\"} 1\n# c\nb 2 3\n")
	f.Add("a{x=\"\\\"}\"} 1")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parsePromText(strings.NewReader(s))
		if err == nil {
			for k := range m {
				if name, _, series := strings.Cut(k, "{"); series && strings.HasSuffix(name, consistencyChecks) {
					k = name
				}
				if !validMetricName(k) {
					t.Fatalf("invalid name %q reported", k)
				}
			}
		}
	})
}

// A proxy's consistency checks are kept by result as well, and make the
// run's nines.
func TestConsistencyChecksOfTheProxy(t *testing.T) {
	scrape := func(ok, stale float64) map[string]float64 {
		m, err := parsePromText(strings.NewReader(fmt.Sprintf(`edgecache_proxy_consistency_checks_total{result="ok"} %g
edgecache_proxy_consistency_checks_total{result="stale"} %g
edgecache_proxy_consistency_checks_total{result="error"} 1
edgecache_proxy_consistency_checks_total{result="skipped"} 5
edgecache_proxy_requests_total{outcome="hit"} 100
`, ok, stale)))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	before := scrape(10, 0)
	if before["edgecache_proxy_consistency_checks_total"] != 16 || before[`edgecache_proxy_consistency_checks_total{result="ok"}`] != 10 ||
		before[`edgecache_proxy_requests_total{outcome="hit"}`] != 0 {
		t.Fatalf("parsed %v", before)
	}
	m := MetricsReport{Metrics: diffMetrics(before, scrape(1009, 1), time.Second)}
	c := consistencyOf(m)
	if c == nil || c.OK != 999 || c.Stale != 1 || c.Error != 0 || c.Skipped != 0 || c.NinesAtLeast || math.Abs(c.Nines-3) > 1e-9 {
		t.Fatalf("consistencyOf = %+v, want 999 ok, 1 stale, 3 nines", c)
	}
	m = MetricsReport{Metrics: diffMetrics(before, scrape(110, 0), time.Second)}
	if c := consistencyOf(m); c == nil || !c.NinesAtLeast || math.Abs(c.Nines-2) > 1e-9 {
		t.Fatalf("consistencyOf = %+v, want at least 2 nines", c)
	}
	if c := consistencyOf(MetricsReport{Metrics: diffMetrics(map[string]float64{"x_total": 1}, nil, time.Second)}); c != nil {
		t.Fatalf("consistencyOf a source without checks = %+v", c)
	}
}

func TestRecognise(t *testing.T) {
	for name, want := range map[string]string{
		"origin_http_requests_total":                 knownRequests,
		"edgecache_proxy_requests_total":             knownRequests,
		"edgecache_proxy_origin_requests_total":      knownOriginFetches,
		"origin_db_queries_total":                    knownDBQueries,
		"edgecache_proxy_memcached_ops_total":        knownMemcached,
		"edgecache_proxy_memcached_errors_total":     "",
		"process_cpu_seconds_total":                  knownCPU,
		"origin_http_request_duration_seconds_count": "",
		"origin_db_pool_open":                        "",
	} {
		if got := recognise(name); got != want {
			t.Errorf("recognise(%s) = %q, want %q", name, got, want)
		}
	}
	d := diffMetrics(map[string]float64{"origin_db_queries_total": 10, "x": 1}, map[string]float64{"origin_db_queries_total": 30, "y": 2}, 2*time.Second)
	if d[0].Name != "origin_db_queries_total" || d[0].Delta != 20 || d[0].PerSec != 10 || len(d) != 3 {
		t.Errorf("diffMetrics = %+v", d)
	}
}

func TestCacheOutcome(t *testing.T) {
	for _, c := range []struct {
		cs, x string
		want  int
	}{
		{"", "", outcomeNone},
		{"edgecache; hit", "", outcomeHit},
		{"edgecache; hit; ttl=30", "", outcomeHit},
		{"edgecache; fwd=miss; stored", "", outcomeMiss},
		{"edgecache; fwd=uri-miss", "", outcomeMiss},
		{"edgecache; fwd=stale; fwd-status=304", "", outcomeStale},
		{"edgecache; fwd=bypass", "", outcomeBypass},
		{"edgecache; fwd=method", "", outcomeBypass},
		{"origin-cache; hit, edgecache; fwd=miss", "", outcomeMiss},
		{"edgecache; fwd=miss, cdn; hit", "", outcomeHit},
		{"edgecache", "", outcomeMiss},
		{"", "HIT", outcomeHit},
		{"", "MISS", outcomeMiss},
		{"", "STALE", outcomeStale},
		{"", "BYPASS", outcomeBypass},
	} {
		if got := cacheOutcome([]byte(c.cs), []byte(c.x)); got != c.want {
			t.Errorf("cacheOutcome(%q, %q) = %s, want %s", c.cs, c.x, outcomeNames[got], outcomeNames[c.want])
		}
	}
}

func FuzzCacheOutcome(f *testing.F) {
	f.Add("edgecache; fwd=miss; stored", "")
	f.Add(",;=;", "HIT")
	f.Fuzz(func(t *testing.T, cs, x string) {
		if o := cacheOutcome([]byte(cs), []byte(x)); o < 0 || o >= numOutcomes {
			t.Fatalf("outcome %d out of range", o)
		}
	})
}

// The check's bookkeeping: acknowledgements count only for reads sent after
// them.
func TestAcks(t *testing.T) {
	seed := &Seed{Users: []SeedUser{{ID: 1, PostCount: 2}}, Posts: []SeedPost{{ID: 10, Version: 1}, {ID: 11, Version: 3}}}
	a := newAcks(seed)
	before := a.now()
	a.edited(10, 2)
	after := a.now()
	if stale, _ := a.staleItem(before, 10, 1); stale {
		t.Error("a read sent before the edit was judged by it")
	}
	if stale, want := a.staleItem(after, 10, 1); !stale || want != 2 {
		t.Errorf("version 1 after an acknowledged 2: stale %v want %d", stale, want)
	}
	if stale, _ := a.staleItem(after, 11, 2); !stale {
		t.Error("version 2 below the seed's acknowledged 3 not stale")
	}
	a.edited(10, 5)
	a.edited(10, 4) // acknowledged out of order: the bound stays 5
	if stale, want := a.staleItem(a.now(), 10, 4); !stale || want != 5 {
		t.Errorf("out-of-order acks: stale %v want %d", stale, want)
	}

	beforeCreate := a.now()
	a.createdBy(0, 20, 1)
	seq := a.now()
	if stale, want := a.staleProfile(seq, 0, 2); !stale || want != 3 {
		t.Errorf("post_count 2 after a create on 2: stale %v want %d", stale, want)
	}
	if stale, _ := a.staleProfile(beforeCreate, 0, 2); stale {
		t.Error("profile read sent before the create judged by it")
	}
	full := []listedPost{{ID: 11, Version: 3}, {ID: 10, Version: 5}}
	if stale, why := a.staleList(seq, 0, full, 20); !stale || !strings.Contains(why, "20") {
		t.Errorf("page without the new post 20: stale %v (%s)", stale, why)
	}
	if stale, why := a.staleList(seq, 0, append([]listedPost{{ID: 20, Version: 1}}, full...), 20); stale {
		t.Errorf("complete page judged stale: %s", why)
	}
	if stale, _ := a.staleList(seq, 0, []listedPost{{ID: 20, Version: 1}, {ID: 11, Version: 3}, {ID: 10, Version: 1}}, 20); !stale {
		t.Error("list showing post 10 at version 1 after 5 acknowledged not stale")
	}
	// A full page of newer posts may rightly leave an older new post out.
	if stale, why := a.staleList(seq, 0, []listedPost{{ID: 30, Version: 1}}, 1); stale {
		t.Errorf("full page of newer posts judged stale: %s", why)
	}
	if stale, _ := a.staleList(beforeCreate, 0, full, 20); stale {
		t.Error("list read sent before the create judged by it")
	}
	a.lowerBounds(seed)
	if seed.Posts[0].Version != 5 || seed.Users[0].PostCount != 3 {
		t.Errorf("lower bounds not carried to the seed: %+v", seed)
	}
}

func TestConfigParsing(t *testing.T) {
	if r, w, err := ParseMix("100:1"); err != nil || r != 100 || w != 1 {
		t.Errorf("ParseMix = %d %d %v", r, w, err)
	}
	for _, bad := range []string{"100", "0:0", "-1:2", "a:b"} {
		if _, _, err := ParseMix(bad); err == nil {
			t.Errorf("ParseMix(%q) accepted", bad)
		}
	}
	if m, err := ParseWeights("post=2,list=1", "post", "list", "profile"); err != nil || m["post"] != 2 || m["profile"] != 0 {
		t.Errorf("ParseWeights = %v %v", m, err)
	}
	if _, err := ParseWeights("pots=2", "post"); err == nil {
		t.Error("unknown weight name accepted")
	}
	src, err := ParseMetricsSources("origin=http://a/metrics, http://b/metrics")
	if err != nil || len(src) != 2 || src[0].Name != "origin" || src[1].Name != "m2" {
		t.Errorf("ParseMetricsSources = %+v %v", src, err)
	}
	if err := DefaultRunConfig().Validate(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
	c := DefaultRunConfig()
	c.ZipfS = 1
	c.Connections = 0
	c.Spike = Spike{Length: 1, Factor: 2, Every: 2}
	c.Rate = 0
	err = c.Validate()
	for _, want := range []string{"-zipf-s", "-connections", "-spike"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v, want a complaint about %s", err, want)
		}
	}
}
