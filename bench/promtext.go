package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// MetricsSource is a Prometheus text endpoint scraped before and after a run,
// named for the report ("origin", "proxy").
type MetricsSource struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

// ParseMetricsSources reads "name=url,name=url"; a bare URL is named by its
// position ("m1", "m2"…).
func ParseMetricsSources(s string) ([]MetricsSource, error) {
	var out []MetricsSource
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, url, ok := strings.Cut(part, "=")
		if !ok || strings.Contains(name, "/") {
			name, url = "m"+strconv.Itoa(i+1), part
		}
		if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
			return nil, fmt.Errorf("metrics %q: want name=http://host:port/metrics", part)
		}
		out = append(out, MetricsSource{Name: name, URL: url})
	}
	return out, nil
}

// parsePromText sums the samples of a Prometheus text exposition by metric
// name, across all label sets (and keeps a proxy's consistency checks by
// result as well, under their series names). Comments, histogram buckets (too many, and
// their sums are in _sum/_count) and malformed lines are skipped: the bench
// reports whatever a target exposes without knowing its metric names.
func parsePromText(r io.Reader) (map[string]float64, error) {
	sums := make(map[string]float64)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest := line, ""
		if i := strings.IndexAny(line, "{ \t"); i >= 0 {
			name, rest = line[:i], line[i:]
		} else {
			continue
		}
		if strings.HasSuffix(name, "_bucket") || !validMetricName(name) {
			continue
		}
		labels := ""
		if strings.HasPrefix(rest, "{") {
			end := labelsEnd(rest)
			if end < 0 {
				continue
			}
			labels, rest = rest[:end+1], rest[end+1:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		sums[name] += v
		if labels != "" && strings.HasSuffix(name, consistencyChecks) {
			sums[name+labels] += v // the results apart: their ratio is the figure
		}
	}
	return sums, sc.Err()
}

// labelsEnd is the index of the '}' closing the label set at s[0], honouring
// quoted values with escapes; -1 if there is none.
func labelsEnd(s string) int {
	inQuote := false
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case inQuote && c == '\\':
			i++
		case c == '"':
			inQuote = !inQuote
		case !inQuote && c == '}':
			return i
		}
	}
	return -1
}

func validMetricName(s string) bool {
	for i, c := range s {
		ok := c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9')
		if !ok {
			return false
		}
	}
	return s != ""
}

// scrape fetches and parses one endpoint.
func scrape(url string, timeout time.Duration) (map[string]float64, error) {
	client := &http.Client{Timeout: timeout}
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	return parsePromText(bytes.NewReader(body))
}

// MetricDelta is one metric's change over the run.
type MetricDelta struct {
	Name   string  `json:"name"`
	Before float64 `json:"before"`
	After  float64 `json:"after"`
	Delta  float64 `json:"delta"`
	PerSec float64 `json:"per_sec"`
	Known  string  `json:"known,omitempty"` // what the bench recognises it as, if anything
}

// MetricsReport is one source's scrape results.
type MetricsReport struct {
	Source  MetricsSource `json:"source"`
	Error   string        `json:"error,omitempty"`
	Metrics []MetricDelta `json:"metrics"`
}

// Recognised metric meanings, matched on names by pattern so that the bench
// keeps working when a service renames a counter slightly. Samples are
// summed over labels, so only whole counters are recognised.
const (
	knownRequests      = "requests"       // requests a service answered
	knownOriginFetches = "origin fetches" // a proxy's requests to its origin
	knownDBQueries     = "db queries"
	knownMemcached     = "memcached ops"
	knownCPU           = "cpu seconds"
)

// recognise says what a metric name is, for highlighting; "" for the rest.
func recognise(name string) string {
	n := strings.ToLower(name)
	switch {
	case n == "process_cpu_seconds_total":
		return knownCPU
	case !strings.HasSuffix(n, "_total"):
		return ""
	case strings.Contains(n, "memcache") &&
		(strings.HasSuffix(n, "_ops_total") || strings.HasSuffix(n, "_operations_total") || strings.HasSuffix(n, "_commands_total")):
		return knownMemcached
	case strings.Contains(n, "quer") && (strings.Contains(n, "db") || strings.Contains(n, "sql") || strings.Contains(n, "database")):
		return knownDBQueries
	case strings.HasSuffix(n, "_origin_requests_total") || strings.HasSuffix(n, "_upstream_requests_total"):
		return knownOriginFetches
	case strings.HasSuffix(n, "_requests_total") && !strings.Contains(n, "memcache"):
		return knownRequests
	}
	return ""
}

// diffMetrics turns two scrapes into deltas sorted with recognised metrics
// first. Every metric present in either scrape is reported.
func diffMetrics(before, after map[string]float64, elapsed time.Duration) []MetricDelta {
	names := make(map[string]bool)
	for n := range before {
		names[n] = true
	}
	for n := range after {
		names[n] = true
	}
	out := make([]MetricDelta, 0, len(names))
	for n := range names {
		d := MetricDelta{Name: n, Before: before[n], After: after[n], Known: recognise(n)}
		d.Delta = d.After - d.Before
		if elapsed > 0 {
			d.PerSec = d.Delta / elapsed.Seconds()
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool {
		if (out[i].Known != "") != (out[j].Known != "") {
			return out[i].Known != ""
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// sumKnown adds up the deltas of a source's metrics recognised as kind.
func (m MetricsReport) sumKnown(kind string) (float64, bool) {
	sum, found := 0.0, false
	for _, d := range m.Metrics {
		if d.Known == kind {
			sum += d.Delta
			found = true
		}
	}
	return sum, found
}
