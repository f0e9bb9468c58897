package main

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// The stack starts in order, serves through the proxy, says where in its
// banner, and stops all it started.
func TestStackStartsServesAndStops(t *testing.T) {
	for _, v := range []string{"PROXY_LISTEN", "PROXY_ADMIN_LISTEN", "ORIGIN_LISTEN", "INVALIDATOR_ADMIN_LISTEN"} {
		t.Setenv(v, "127.0.0.1:0")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := &stack{}
	defer s.stop()
	if err := s.start(ctx, zap.NewNop(), options{dir: t.TempDir(), memcachedMB: 16}); err != nil {
		t.Fatal(err)
	}
	if len(s.stops) != 5 {
		t.Errorf("%d parts to stop, want 5 (MariaDB, memcached, origin, invalidator, proxy)", len(s.stops))
	}
	var banner bytes.Buffer
	s.printReady(&banner, time.Second)
	if want := "proxy     http://" + s.proxyAddr + " "; !strings.Contains(banner.String(), want) {
		t.Errorf("banner lacks %q:\n%s", want, banner.String())
	}
	body := strings.NewReader(`{"name":"ada","email":"ada@example.com"}`)
	resp, err := http.Post("http://"+s.proxyAddr+"/v1/users", "application/json", body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/users through the proxy: %s", resp.Status)
	}
	s.stop()
	s.stops = nil
	if _, err := http.Get("http://" + s.proxyAddr + "/v1/users/1"); err == nil {
		t.Error("the proxy still answers after stop")
	}
}

// The benchmark's steps run in the order runBench documents: each target's
// sweep right after its run (which warms its cache), the origin's counters
// for the competitors, every sweep in the comparison; the reports list the
// comparison first.
func TestBenchSteps(t *testing.T) {
	o := benchOptions{out: "out", rate: 1000, duration: time.Second, step: time.Second, p99: 50 * time.Millisecond}
	steps, reports := benchSteps(o, "http://origin", "http://proxy", "admin", []*competitor{{name: "nginx", addr: "nginx"}})
	var got []string
	for _, st := range steps {
		name := st.args[0]
		if i := slices.Index(st.args, "-name"); i >= 0 {
			name += " " + st.args[i+1] + " " + st.args[slices.Index(st.args, "-metrics")+1]
		}
		got = append(got, name)
	}
	m := "origin=http://origin/metrics,proxy=http://admin/metrics"
	want := []string{"seed", "run proxy " + m, "sweep proxy-sweep " + m, "run origin " + m, "sweep origin-sweep " + m,
		"run nginx origin=http://origin/metrics", "sweep nginx-sweep origin=http://origin/metrics", "compare", "plan"}
	if !slices.Equal(got, want) {
		t.Errorf("steps\n%q\nwant\n%q", got, want)
	}
	compare := steps[len(steps)-2].args
	if sweeps := compare[slices.Index(compare, "-sweeps")+1]; sweeps != "out/proxy-sweep.json,out/origin-sweep.json,out/nginx-sweep.json" {
		t.Errorf("compare -sweeps %s", sweeps)
	}
	if last := steps[len(steps)-1]; last.save != filepath.Join("out", "plan.txt") {
		t.Errorf("plan saved to %q", last.save)
	}
	wantReports := []string{"index.html", "proxy-sweep.html", "origin-sweep.html", "nginx-sweep.html", "origin.html", "proxy.html", "nginx.html",
		"origin.json", "proxy.json", "nginx.json", "proxy-sweep.json", "origin-sweep.json", "nginx-sweep.json", "plan.txt"}
	for i := range wantReports {
		wantReports[i] = filepath.Join("out", wantReports[i])
	}
	if !slices.Equal(reports, wantReports) {
		t.Errorf("reports %q, want %q", reports, wantReports)
	}
}
