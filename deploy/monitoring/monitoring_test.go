package monitoring

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"go.uber.org/zap"

	"edgecache/deploy/envconfig"
	"edgecache/deploy/localstack"
	"edgecache/origin"
	"edgecache/proxy"
	"edgecache/proxy/invalidator"
)

const (
	rulesFile     = "edgecache-rules.yml"
	rulesTestFile = "edgecache-rules.test.yml"
	dashboardFile = "edgecache-dashboard.json"
)

// notYetExported are metrics the assets name before the binaries export
// them. Each is checked like every other once it is exported.
var notYetExported = map[string]bool{
	// The proxy's consistency checker is being added in parallel (issue
	// 22); the dashboard and the StaleConsistencyCheck alert are ready.
	"edgecache_proxy_consistency_checks_total": true,
}

// metricName matches the names of edgecache's metrics (the proxy's and the
// invalidator's edgecache_*, the origin's origin_*) in PromQL and in the
// rules' text; label names and values never start so.
var metricName = regexp.MustCompile(`\b(?:edgecache|origin)_[a-z0-9_]*[a-z0-9]\b`)

// baseName is a series' metric family: a histogram's _bucket, _sum and
// _count series are its name's.
func baseName(name string) string {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if b, ok := strings.CutSuffix(name, suffix); ok {
			return b
		}
	}
	return name
}

// The rules are valid (promtool check rules), and each alert fires on the
// series its unit tests give it, and not earlier (promtool test rules).
func TestRulesPassPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: deploy/install-deps.sh installs it (Debian package prometheus)")
	}
	for _, args := range [][]string{{"check", "rules", rulesFile}, {"test", "rules", rulesTestFile}} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "SUCCESS") {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// dashboard is the part of Grafana's dashboard JSON model that an import
// needs, and the panels' queries.
type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
}

type panel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	GridPos struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// The dashboard imports into Grafana: a uid, a title, a schema version,
// and panels each with a unique id, a place on the grid and, but for rows,
// Prometheus queries.
func TestDashboardImports(t *testing.T) {
	d := readDashboard(t)
	if d.UID == "" || d.Title == "" || d.SchemaVersion < 30 {
		t.Errorf("uid %q, title %q, schemaVersion %d: Grafana needs all three (schemaVersion of Grafana 8 or later)", d.UID, d.Title, d.SchemaVersion)
	}
	if len(d.Panels) == 0 {
		t.Fatal("no panels")
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if p.ID == 0 || ids[p.ID] {
			t.Errorf("panel %q: id %d missing or repeated", p.Title, p.ID)
		}
		ids[p.ID] = true
		if p.Title == "" || p.Type == "" || p.GridPos.W == 0 || p.GridPos.H == 0 {
			t.Errorf("panel %d: title %q, type %q, gridPos %+v", p.ID, p.Title, p.Type, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no queries", p.Title)
		}
		for _, q := range p.Targets {
			if q.RefID == "" || len(metricName.FindAllString(q.Expr, -1)) == 0 {
				t.Errorf("panel %q: query %q (refId %q) names no edgecache metric", p.Title, q.Expr, q.RefID)
			}
		}
	}
}

// Every metric the rules and the dashboard name is exported by a running
// proxy, origin or invalidator.
func TestAssetsNameExportedMetrics(t *testing.T) {
	exported := scrapeStack(t)
	rules, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	named := map[string]string{} // metric: where
	for _, m := range metricName.FindAllString(string(rules), -1) {
		named[baseName(m)] = rulesFile
	}
	for _, p := range readDashboard(t).Panels {
		for _, q := range p.Targets {
			for _, m := range metricName.FindAllString(q.Expr, -1) {
				named[baseName(m)] = fmt.Sprintf("%s panel %q", dashboardFile, p.Title)
			}
		}
	}
	if len(named) < 20 {
		t.Fatalf("only %d metrics named: the pattern misses them", len(named))
	}
	for m, where := range named {
		switch {
		case exported[m] && notYetExported[m]:
			t.Logf("%s is exported now: drop it from notYetExported", m)
		case !exported[m] && !notYetExported[m]:
			t.Errorf("%s names %s, which no running part exports", where, m)
		}
	}
}

// scrapeStack starts MariaDB, memcached, the origin, the invalidator and
// the proxy (with invalidation leases on), makes a write and two reads
// through the proxy so that every histogram has observations, waits for the
// invalidator to apply the write's log rows, and returns the metric
// families the three /metrics pages list.
func scrapeStack(t *testing.T) map[string]bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	db, err := localstack.StartMariaDB(ctx, localstack.MariaDBOptions{Dir: dir + "/mariadb"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Stop)
	mc, err := localstack.StartMemcached(ctx, 16)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mc.Stop)
	for _, v := range []string{"PROXY_LISTEN", "PROXY_ADMIN_LISTEN", "ORIGIN_LISTEN"} {
		t.Setenv(v, "127.0.0.1:0")
	}
	t.Setenv("ORIGIN_ACCESS_LOG", "off")
	t.Setenv("PROXY_ACCESS_LOG", "off")
	const secret = "monitoring-test-peer-secret"

	ocfg, err := envconfig.Load[origin.Config]()
	if err != nil {
		t.Fatal(err)
	}
	ocfg.MySQLDSN, ocfg.DrainDelay = db.DSN("edgecache"), 0
	osrv, err := origin.Start(ocfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { osrv.Shutdown(context.Background()) })

	icfg, err := envconfig.Load[invalidator.Config]()
	if err != nil {
		t.Fatal(err)
	}
	icfg.MySQLDSN, icfg.Memcached, icfg.PeerSecret = db.DSN("edgecache"), []string{mc.Addr}, secret
	// As bin/invalidator does: the store's metrics are process-wide.
	storeMetrics := metrics.NewSet()
	metrics.RegisterSet(storeMetrics)
	t.Cleanup(func() { metrics.UnregisterSet(storeMetrics, true) })
	inv, err := invalidator.StartBackground(icfg, zap.NewNop(), storeMetrics)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(inv.Stop)
	invAdmin := httptest.NewServer(inv.Handler())
	t.Cleanup(invAdmin.Close)

	pcfg, err := envconfig.Load[proxy.Config]()
	if err != nil {
		t.Fatal(err)
	}
	pcfg.Origins, pcfg.Memcached = []string{"http://" + osrv.Addr()}, []string{mc.Addr}
	pcfg.PeerSecret, pcfg.DrainDelay = secret, 0
	psrv, err := proxy.Start(pcfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { psrv.Shutdown(context.Background()) })

	base := "http://" + psrv.Addr()
	resp, err := http.Post(base+"/v1/users", "application/json", strings.NewReader(`{"name":"ada","email":"ada@example.com"}`))
	if err != nil {
		t.Fatal(err)
	}
	var user struct{ ID int64 }
	json.NewDecoder(resp.Body).Decode(&user)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || user.ID == 0 {
		t.Fatalf("POST /v1/users: %s, id %d", resp.Status, user.ID)
	}
	for range 2 { // a miss, then a hit
		resp, err := http.Get(fmt.Sprintf("%s/v1/users/%d", base, user.ID))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}

	invMetrics := invAdmin.URL + "/metrics"
	deadline := time.Now().Add(30 * time.Second)
	for scrape(t, invMetrics)["edgecache_invalidator_rows_applied_total"] == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the invalidator applied no log row in 30 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	exported := map[string]bool{}
	for _, url := range []string{"http://" + psrv.AdminAddr() + "/metrics", "http://" + osrv.Addr() + "/metrics", invMetrics} {
		for series := range scrape(t, url) {
			exported[baseName(series)] = true
		}
	}
	names := make([]string, 0, len(exported))
	for n := range exported {
		names = append(names, n)
	}
	sort.Strings(names)
	t.Logf("%d metric families exported: %s", len(names), strings.Join(names, " "))
	return exported
}

// scrape reads url's Prometheus text: each series' metric name (without
// labels) and its value, the last one seen for a name.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	values := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, _ := strings.Cut(line, " ")
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name = name[:i]
			_, rest, _ = strings.Cut(line[strings.LastIndexByte(line, '}'):], " ")
		}
		var v float64
		fmt.Sscan(rest, &v)
		values[name] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return values
}
