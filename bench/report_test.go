package bench

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// originRun is one short run against the real origin with its metrics
// scraped, shared by the report tests.
func originRun(t *testing.T, name string) *Result {
	t.Helper()
	seed := seedOrigin(t, 10, 40)
	cfg := testRunConfig(name, []string{originURL}, 500)
	cfg.Metrics = []MetricsSource{{Name: "origin", URL: originURL + "/metrics"}}
	res, err := Run(context.Background(), cfg, seed, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// The JSON report holds every figure and the configuration, and reads back
// identical.
func TestJSONReportRoundTrips(t *testing.T) {
	res := originRun(t, "roundtrip")
	if len(res.Metrics) != 1 || res.Metrics[0].Error != "" || len(res.Metrics[0].Metrics) == 0 {
		t.Fatalf("origin metrics not scraped: %+v", res.Metrics)
	}
	if res.Derived.OriginRequestsPerRead < 0.9 {
		t.Errorf("against the origin itself, %.3f origin reads per client read; want about 1", res.Derived.OriginRequestsPerRead)
	}
	if res.Derived.DBQueriesPerSec <= 0 {
		t.Error("no DB queries recognised in the origin's metrics")
	}
	path := filepath.Join(t.TempDir(), "r.json")
	if err := res.SaveJSON(path); err != nil {
		t.Fatal(err)
	}
	back, err := LoadResult(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res, back) {
		a, _ := os.ReadFile(path)
		back.SaveJSON(path + ".2")
		b, _ := os.ReadFile(path + ".2")
		t.Fatalf("report changed in a JSON round trip:\n%s\n---\n%s", a, b)
	}
	if back.Config.Requests != 500 || back.Config.Targets[0] != originURL || back.Config.ZipfS != 1.1 {
		t.Errorf("configuration not kept: %+v", back.Config)
	}
	b, _ := os.ReadFile(path)
	b = bytes.Replace(b, []byte(`"report_version": 1`), []byte(`"report_version": 99`), 1)
	os.WriteFile(path, b, 0o644)
	if _, err := LoadResult(path); err == nil {
		t.Error("a report of another version was accepted")
	}
}

// WriteReport writes JSON, decodable PNG charts and one HTML page that embeds
// them and loads nothing from elsewhere.
func TestReportFiles(t *testing.T) {
	res := originRun(t, "files")
	dir := t.TempDir()
	paths, err := WriteReport(res, dir)
	if err != nil {
		t.Fatal(err)
	}
	var pngs int
	for _, p := range paths {
		if strings.HasSuffix(p, ".png") {
			pngs++
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(f)
			f.Close()
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			if b := img.Bounds(); b.Dx() < 400 || b.Dy() < 200 {
				t.Errorf("%s: %v, too small", p, b)
			}
		}
	}
	// Throughput, latency, distribution; no hit ratio against a non-cache.
	if pngs != 3 {
		t.Errorf("%d charts, want 3: %v", pngs, paths)
	}
	html, err := os.ReadFile(filepath.Join(dir, "files.html"))
	if err != nil {
		t.Fatal(err)
	}
	page := string(html)
	if n := strings.Count(page, `src="data:image/png;base64,`); n != 3 {
		t.Errorf("%d embedded charts in the HTML, want 3", n)
	}
	for _, external := range []string{"<script", "http://cdn", "https://"} {
		if strings.Contains(page, external) {
			t.Errorf("HTML contains %q: not viewable offline", external)
		}
	}
	for _, want := range []string{"Latency by operation", "Read-after-write", "origin_http_requests_total", "p99"} {
		if !strings.Contains(page, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
}

// compare lines runs up with ratios; plan prints every section with its
// basis.
func TestCompareAndPlanTables(t *testing.T) {
	a := originRun(t, "a")
	b := originRun(t, "b")
	var out bytes.Buffer
	Compare([]*Result{a, b}).WriteText(&out)
	text := out.String()
	for _, want := range []string{"throughput", "all p99", "post p50", "stale reads", "origin requests per client read", "b ÷ a", "×"} {
		if !strings.Contains(text, want) {
			t.Errorf("compare table lacks %q:\n%s", want, text)
		}
	}
	html := filepath.Join(t.TempDir(), "cmp.html")
	if err := WriteComparisonHTML(html, []*Result{a, b}, nil); err != nil {
		t.Fatal(err)
	}
	if page, _ := os.ReadFile(html); !strings.Contains(string(page), "Side by side") {
		t.Error("comparison page lacks its table")
	}

	p, err := MakePlan(a, b, DefaultPlanConfig())
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	p.WriteText(&out)
	text = out.String()
	for _, want := range []string{"proxy instances", "origin instances", "read replicas", "memory for the hot set", "memcached nodes", "peak factor 3", "assumed"} {
		if !strings.Contains(text, want) {
			t.Errorf("plan lacks %q:\n%s", want, text)
		}
	}
	t.Logf("\n%s", text)
}

// The plan's arithmetic on figures set by hand.
func TestPlanArithmetic(t *testing.T) {
	r := &Result{Config: DefaultRunConfig(), Ops: make([]OpStats, numOps)}
	r.Config.ReadMix = ReadMix{Post: 1}
	r.Ops[opPost].MeanBytes = 1000
	r.Cache.HitRatio = 0.9
	r.Derived = Derived{OriginRequestsPerRead: 0.1, ProxyRequestsPerCPUSec: 10000, OriginRequestsPerCPUSec: 1000, DBQueriesPerOriginReq: 2}
	cfg := DefaultPlanConfig()
	cfg.Posts = 5000
	cfg.ProxyRPSPerCore, cfg.OriginRPSPerCore = 10000, 1000
	p, err := MakePlan(r, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, l := range p.Lines {
		got[l.What] = l.Value
	}
	// Peak: 120,000 reads/s + 1,200 writes/s. Proxy: 121,200 / (10,000 ×
	// 2 cores × 0.6) = 10.1 → 11, × 3/2 AZ headroom = 16.5 → 17.
	// Origin: 12,000 + 1,200 = 13,200 / 1,200 = 11, × 1.5 = 16.5 → 17.
	// Replicas: 12,000 × 2 queries / (10,000 × 0.6) = 4.
	for what, want := range map[string]string{
		"proxy instances":           "17",
		"origin instances":          "17",
		"read replicas":             "4",
		"origin requests/s at peak": "13.2 k",
	} {
		if got[what] != want {
			t.Errorf("%s = %q, want %q", what, got[what], want)
		}
	}
	if k := topKeysFor(1.1, 5000, 0.9); !strings.HasPrefix(got["hot posts"], fmtCount(float64(k))+" items") {
		t.Errorf("hot posts = %q, want %d items", got["hot posts"], k)
	}

	// A capacity measured at saturation, and the plan says where it came
	// from.
	cfg.ProxyRPSPerCore, cfg.ProxyRPSBasis = 20000, `sweep "proxy-sweep": saturating`
	p, err = MakePlan(r, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range p.Lines {
		if l.What == "proxy requests/s per core" && (l.Value != "20.0 k" || l.Basis != cfg.ProxyRPSBasis) {
			t.Errorf("proxy capacity line %q %q, want 20.0 k from %q", l.Value, l.Basis, cfg.ProxyRPSBasis)
		}
		if l.What == "proxy instances" && l.Value != "9" { // 121,200 / 24,000 = 5.05 → 6, × 1.5
			t.Errorf("proxy instances = %q at 20 k/core, want 9", l.Value)
		}
	}

	// A fleet runs warm: the steady-state hit ratio, when measured, sizes
	// the miss traffic and memcached rather than the cold start's.
	r.Cache.SteadyHitRatio = 0.95
	p, err = MakePlan(r, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range p.Lines {
		switch l.What {
		case "origin reads per client read":
			if l.Value != "0.0500" || !strings.Contains(l.Basis, "steady-state") {
				t.Errorf("origin reads per client read %q (%s), want 0.0500 from the steady hit ratio", l.Value, l.Basis)
			}
		case "hit ratio to keep":
			if l.Value != "95.0%" {
				t.Errorf("hit ratio to keep %q, want the steady 95.0%%", l.Value)
			}
		}
	}
}

// A run that measured nothing still draws its charts (log axes need a
// positive range).
func TestChartsOfAnEmptyRun(t *testing.T) {
	r := &Result{Config: DefaultRunConfig(), Timeline: []Second{{T: 0}}}
	cs, err := charts([]*Result{r})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if _, err := png.Decode(bytes.NewReader(c.PNG)); err != nil {
			t.Errorf("%s: %v", c.Name, err)
		}
	}
}
