package bench

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestJudgeStep(t *testing.T) {
	cfg := SweepConfig{P99: 50 * time.Millisecond, MinDelivered: 0.95}
	step := func(rate, throughput, p99 float64, errors int64) *Result {
		r := &Result{Config: RunConfig{Rate: rate}, Throughput: throughput, Requests: 1000, Errors: errors}
		r.All.Latency.P99 = p99
		return r
	}
	for _, tc := range []struct {
		r      *Result
		within bool
		why    string
	}{
		{step(1000, 999, 3, 0), true, ""},
		{step(1000, 999, 51, 0), false, "p99 51.0ms > 50.0ms"},
		{step(1000, 999, 3, 1), false, "1 errors"},
		{step(1000, 800, 3, 0), false, "answered 800/s of 1000/s"},
	} {
		st := judgeStep(cfg, tc.r)
		if st.Within != tc.within || st.Why != tc.why {
			t.Errorf("rate %.0f, answered %.0f, p99 %.0f ms, %d errors: within %v (%q), want %v (%q)",
				tc.r.Config.Rate, tc.r.Throughput, tc.r.All.Latency.P99, tc.r.Errors, st.Within, st.Why, tc.within, tc.why)
		}
	}
}

// The capacity table has one line per target: its highest rate within the
// objective with the hit ratio there, its stale reads over every step, and
// its knee, or why there is none.
func TestCapacityTable(t *testing.T) {
	cfg := func(name string) SweepConfig {
		return SweepConfig{Run: RunConfig{Name: name}, Rates: []float64{1000, 2000}, Step: 8 * time.Second, P99: 50 * time.Millisecond, MinDelivered: 0.95}
	}
	sweeps := []*SweepResult{
		{Config: cfg("proxy-sweep"), Best: 0, Saturated: true, Steps: []SweepStep{
			{Rate: 1000, Throughput: 998, P99: 4.2, HitRatio: 0.973, Checked: 7000, Within: true, ClientCPU: 0.03},
			{Rate: 2000, Throughput: 1400, P99: 80, HitRatio: 0.95, Checked: 9000, Why: "p99 80.0ms > 50.0ms"}}},
		{Config: cfg("nginx-sweep"), Best: 1, Steps: []SweepStep{
			{Rate: 1000, Throughput: 999, P99: 2, HitRatio: 0.9, Stale: 12, Checked: 7000, Within: true},
			{Rate: 2000, Throughput: 1999, P99: 3, HitRatio: 0.91, Stale: 30, Checked: 14000, Within: true}}},
		{Config: cfg("origin-sweep"), Best: -1, Steps: []SweepStep{{Rate: 1000, Throughput: 500, P99: 900, Why: "answered 500/s of 1000/s"}}},
	}
	var b strings.Builder
	WriteCapacityTable(&b, sweeps)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 5 {
		t.Fatalf("want a title, a header and 3 rows:\n%s", b.String())
	}
	for i, want := range [][]string{
		{"proxy-sweep", "998 requests/s", "4.2ms", "97.3%", "0 (of 16000)", "2000/s: p99 80.0ms > 50.0ms"},
		{"nginx-sweep", "1999 requests/s", "91.0%", "42 (of 21000)", "not reached"},
		{"origin-sweep", "none", "the first step, 1000/s, missed: answered 500/s of 1000/s"},
	} {
		for _, cell := range want {
			if !strings.Contains(lines[i+2], cell) {
				t.Errorf("row %d lacks %q: %s", i+1, cell, lines[i+2])
			}
		}
	}
}

// The plan takes a capacity only from a sweep that found its knee.
func TestSweepCapacityNeedsTheKnee(t *testing.T) {
	s := &SweepResult{Config: SweepConfig{Run: RunConfig{Name: "proxy-sweep"}, Rates: []float64{1000, 2000, 4000}, P99: 50 * time.Millisecond, MinDelivered: 0.95},
		Steps: []SweepStep{
			{Rate: 1000, Throughput: 1000, Within: true, Derived: Derived{ProxyRequestsPerCPUSec: 9000}},
			{Rate: 2000, Throughput: 2000, Within: true, Derived: Derived{ProxyRequestsPerCPUSec: 12000}},
		}, Best: 1}
	if _, why, ok := SweepCapacity(s, "proxy"); ok || !strings.Contains(why, "did not reach its knee") {
		t.Errorf("unsaturated sweep used (%q)", why)
	}
	s.Steps = append(s.Steps, SweepStep{Rate: 4000, Throughput: 3100, Why: "answered 3100/s of 4000/s"})
	s.Saturated = true
	perCore, basis, ok := SweepCapacity(s, "proxy")
	if !ok || perCore != 12000 || !strings.Contains(basis, "2000/s") || !strings.Contains(basis, "the knee: 4000/s") {
		t.Errorf("saturated sweep: %v %q %v, want 12000 from the 2000/s step", perCore, basis, ok)
	}
	if _, why, ok := SweepCapacity(s, "origin"); ok || !strings.Contains(why, "no origin CPU") {
		t.Errorf("a sweep without the origin's CPU gave a capacity (%q)", why)
	}

	// The plan says when it had no saturating figure.
	r := &Result{Config: DefaultRunConfig(), Ops: make([]OpStats, numOps)}
	r.Derived = Derived{OriginRequestsPerRead: 0.1, ProxyRequestsPerCPUSec: 5000}
	p, err := MakePlan(r, nil, DefaultPlanConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range p.Lines {
		if l.What == "proxy requests/s per core" && (!strings.Contains(l.Basis, "not measured at saturation") || !strings.Contains(l.Basis, "not a capacity")) {
			t.Errorf("proxy capacity basis %q: want it to say it is assumed, and why the run's figure is not used", l.Basis)
		}
	}
}

// A short sweep against the real origin: every step within a generous
// objective, so the report says the knee was not reached; the HTML page
// shows the capacity first and stays offline.
func TestSweepReport(t *testing.T) {
	seed := seedOrigin(t, 5, 20)
	run := testRunConfig("tiny-sweep", []string{originURL}, 0)
	run.Metrics = []MetricsSource{{Name: "origin", URL: originURL + "/metrics"}}
	cfg := SweepConfig{Run: run, Rates: []float64{20, 40}, Step: time.Second, P99: 5 * time.Second, MinDelivered: 0.5}
	s, err := Sweep(context.Background(), cfg, seed, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Steps) != 2 || s.Best != 1 || s.Saturated || len(s.Warnings) == 0 || !strings.Contains(s.Summary(), "did not reach the knee") {
		t.Fatalf("steps %d, best %d, saturated %v, warnings %q, summary %q", len(s.Steps), s.Best, s.Saturated, s.Warnings, s.Summary())
	}
	if s.Steps[0].Derived.OriginCores <= 0 {
		t.Errorf("the origin's CPU was not measured per step: %+v", s.Steps[0].Derived)
	}
	dir := t.TempDir()
	if _, err := WriteSweepReport(s, dir); err != nil {
		t.Fatal(err)
	}
	back, err := LoadSweep(filepath.Join(dir, "tiny-sweep.json"))
	if err != nil || len(back.Steps) != 2 {
		t.Fatalf("load: %v", err)
	}
	index := filepath.Join(dir, "index.html")
	if err := WriteComparisonHTML(index, nil, []*SweepResult{back}); err != nil {
		t.Fatal(err)
	}
	page, _ := os.ReadFile(index)
	for _, want := range []string{"How much can it do?", `href="tiny-sweep.html"`, "not reached: the rate is a lower bound", "Throughput against latency", "stale reads (of reads checked)"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("index lacks %q", want)
		}
	}
	if strings.Contains(string(page), "<script") {
		t.Error("index has scripts")
	}
}
