package bench

import (
	"bytes"
	"encoding/base64"
	"html/template"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// page is what the HTML report shows: one run, or several compared.
type page struct {
	Title      string
	Generated  string
	Sweeps     []*SweepResult // rate sweeps: the capacity, shown first
	Runs       []*Result
	Comparison *Comparison
	Charts     []chart
	Texts      []string // the plain-text tables, as printed on stdout
	// Links are the reports of the runs and sweeps beside this page, by
	// name (the index links its parts).
	Links []string
}

var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"ms":  fmtMs,
	"dur": func(d time.Duration) string { return d.Round(time.Millisecond).String() },
	"pct": func(v float64) string { return fmtValue(100*v) + "%" },
	// "-" when no read carried a cache outcome (the target is not a cache),
	// as in the text report and the comparison.
	"hitRatio": func(c CacheStats) string {
		if c.judged() == 0 {
			return "-"
		}
		return fmtValue(100*c.HitRatio) + "%"
	},
	"value": fmtValue,
	"ratio": ratio,
	"dataURI": func(b []byte) template.URL {
		return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(b))
	},
	"join":  strings.Join,
	"steps": func(d time.Duration) string { return d.String() },
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{{.Title}}</title>
<style>
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 1100px; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f0f0f0; }
.warn { background: #fff3cd; border: 1px solid #e0c060; padding: 0.5em; margin: 0.3em 0; }
.stale { color: #b00; font-weight: bold; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
</style></head><body>
<h1>{{.Title}}</h1>
<p>Generated {{.Generated}} by edgecache bench. Latency counts from each request's scheduled send time (no coordinated omission), failed requests included.</p>
{{if .Links}}<p>Reports: {{range $i, $l := .Links}}{{if $i}} · {{end}}<a href="{{$l}}.html">{{$l}}</a>{{end}}</p>{{end}}
{{if .Sweeps}}
<h2>How much can it do?</h2>
<p>Rate sweeps: the same workload at rising open-loop rates, {{steps (index .Sweeps 0).Config.Step}} per step, each judged against the objective: {{(index .Sweeps 0).Objective}}. The sweep stops at the first step that misses it (the knee).</p>
<table><tr><th>target</th><th>highest rate within the objective</th><th>p99 there</th><th>hit ratio there</th><th>stale reads (of reads checked)</th><th>CPU cores used there (proxy / origin / load generator)</th><th>the knee</th><th>report</th></tr>
{{range .Sweeps}}<tr><td>{{.Name}}: {{join .Config.Run.Targets ", "}}</td>
{{with .BestStep}}<td><b>{{value .Throughput}} requests/s</b></td><td>{{ms .P99}}</td><td>{{if .HitRatio}}{{pct .HitRatio}}{{else}}-{{end}}</td>{{else}}<td>none</td><td>-</td><td>-</td>{{end}}
{{with .StaleReads}}<td{{if .Stale}} class="stale"{{end}}>{{.Stale}} (of {{.Checked}})</td>{{end}}
{{with .BestStep}}<td>{{value .Derived.ProxyCores}} / {{value .Derived.OriginCores}} / {{value .ClientCPU}}</td>{{else}}<td>-</td>{{end}}
<td>{{if .Knee}}{{with .Knee}}missed at {{value .Rate}}/s: {{.Why}}{{end}}{{else if .Missed}}{{with .Missed}}<span class="stale">the first step, {{value .Rate}}/s, missed: {{.Why}}</span>{{end}}{{else}}<span class="stale">not reached: the rate is a lower bound</span>{{end}}</td>
<td><a href="{{.Name}}.html">{{.Name}}.html</a></td></tr>
{{end}}</table>
{{range .Sweeps}}{{$name := .Name}}{{range .Warnings}}<div class="warn">⚠ {{$name}}: {{.}}</div>{{end}}{{end}}
{{end}}
{{if and .Comparison (gt (len .Runs) 1)}}
<h2>What the cache saves</h2>
<p>The same workload at the same rate through each target. Offload: how much of the client's reading reaches the origin and its database. Hit ratios count reads whose Cache-Status said hit; the steady one leaves out the warm-up ({{steps (index .Runs 0).Config.Warmup}}).</p>
<table><tr><th>run</th><th>origin requests per client read</th><th>DB queries per client request</th><th>hit ratio, steady</th><th>hit ratio, with the cold start</th><th>stale reads</th><th>p99</th></tr>
{{range .Runs}}<tr><td><a href="{{.Config.Name}}.html">{{.Config.Name}}</a></td>
<td>{{if ge .Derived.OriginRequestsPerRead 0.0}}{{value .Derived.OriginRequestsPerRead}}{{else}}-{{end}}</td>
<td>{{if .Derived.DBQueriesPerRequest}}{{value .Derived.DBQueriesPerRequest}}{{else}}-{{end}}</td>
<td>{{if .Cache.SteadyHitRatio}}{{pct .Cache.SteadyHitRatio}}{{else}}-{{end}}</td><td>{{hitRatio .Cache}}</td>
<td{{if .Derived.StaleReads}} class="stale"{{end}}>{{.Derived.StaleReads}}</td><td>{{ms .All.Latency.P99}}</td></tr>
{{end}}</table>
{{end}}
{{range .Charts}}<h3>{{.Title}}</h3><img alt="{{.Title}}" src="{{dataURI .PNG}}">
{{end}}
{{with .Comparison}}
<h2>Side by side</h2>
{{$names := .Names}}<p>Each ratio column divides a run's figure by the first run's ({{index $names 0}}): ×0.10 is a tenth of it, ×10 ten times it. For latency, load and errors lower is better; for throughput and hit ratio higher.</p>
<table><tr><th>figure</th><th>unit</th>{{range .Names}}<th>{{.}}</th>{{end}}{{range $i, $n := .Names}}{{if $i}}<th>{{$n}} ÷ {{index $names 0}}</th>{{end}}{{end}}</tr>
{{range .Rows}}{{$row := .}}<tr><td>{{.Label}}</td><td>{{.Unit}}</td>{{range $i, $v := .Values}}<td>{{if index $row.Missing $i}}-{{else}}{{value $v}}{{end}}</td>{{end}}{{range $i, $v := .Values}}{{if $i}}<td>{{ratio $v (index $row.Values 0) (or (index $row.Missing $i) (index $row.Missing 0))}}</td>{{end}}{{end}}</tr>
{{end}}</table>
{{end}}
{{range .Sweeps}}
<h2>Sweep “{{.Name}}” against {{join .Config.Run.Targets ", "}}</h2>
<p>Latency counts from each request's due time; the service time (send → answer) and the wait in the generator (due → sent) tell a target that slowed from a generator that did.</p>
<table><tr><th>scheduled/s</th><th>answered/s</th><th>p50</th><th>p99</th><th>p99.9</th><th>service p99</th><th>wait p99</th><th>errors</th><th>stale reads</th><th>hit ratio</th><th>proxy cores</th><th>origin cores</th><th>client cores</th><th>client µs/request</th><th>load average</th><th>verdict</th></tr>
{{range .Steps}}<tr><td>{{value .Rate}}</td><td>{{value .Throughput}}</td><td>{{ms .P50}}</td><td>{{ms .P99}}</td><td>{{ms .P999}}</td><td>{{ms .ServiceP99}}</td><td>{{ms .WaitP99}}</td><td>{{.Errors}}</td><td{{if .Stale}} class="stale"{{end}}>{{.Stale}}</td><td>{{if .HitRatio}}{{pct .HitRatio}}{{else}}-{{end}}</td><td>{{value .Derived.ProxyCores}}</td><td>{{value .Derived.OriginCores}}</td><td>{{value .ClientCPU}}</td><td>{{value .ClientMicros}}</td><td>{{value .Load}}</td><td>{{.Verdict}}</td></tr>
{{end}}</table>
<p>{{.Summary}}</p>
{{end}}
{{range $i, $r := .Runs}}
<h2>Run “{{.Config.Name}}”: {{.Mode}} against {{join .Config.Targets ", "}}</h2>
{{range .Warnings}}<div class="warn">⚠ {{.}}</div>{{end}}
<table>
<tr><th>requests</th><th>elapsed</th><th>throughput</th><th>errors</th><th>hit ratio</th><th>stale reads</th><th>origin reads / client read</th><th>client CPU</th></tr>
<tr><td>{{.Requests}}</td><td>{{dur .Elapsed}}</td><td>{{value .Throughput}}/s</td><td>{{.Errors}}</td><td>{{hitRatio .Cache}}</td>
<td{{if .Derived.StaleReads}} class="stale"{{end}}>{{.Derived.StaleReads}}</td>
<td>{{if ge .Derived.OriginRequestsPerRead 0.0}}{{value .Derived.OriginRequestsPerRead}}{{else}}-{{end}}</td><td>{{value .Client.Cores}} cores</td></tr>
</table>
<h3>Latency by operation</h3>
<table><tr><th>op</th><th>count</th><th>errors</th><th>per s</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th><th>mean body</th></tr>
{{range .Ops}}{{if .Count}}<tr><td>{{.Op}}</td><td>{{.Count}}</td><td>{{.Errors}}</td><td>{{value .PerSec}}</td><td>{{ms .Latency.P50}}</td><td>{{ms .Latency.P90}}</td><td>{{ms .Latency.P99}}</td><td>{{ms .Latency.P999}}</td><td>{{ms .Latency.Max}}</td><td>{{value .MeanBytes}} B</td></tr>{{end}}
{{end}}{{with .All}}<tr><th>all</th><th>{{.Count}}</th><th>{{.Errors}}</th><th>{{value .PerSec}}</th><th>{{ms .Latency.P50}}</th><th>{{ms .Latency.P90}}</th><th>{{ms .Latency.P99}}</th><th>{{ms .Latency.P999}}</th><th>{{ms .Latency.Max}}</th><th></th></tr>{{end}}
</table>
<p>Service time (send → answer): p50 {{ms .Service.P50}}, p99 {{ms .Service.P99}}. Time queued in the generator before sending: p99 {{ms .Wait.P99}}.</p>
<h3>Read-after-write check and cache outcomes</h3>
<table><tr><th>read kind</th><th>checked</th><th>stale</th></tr>
{{range .Stale}}<tr><td>{{.Kind}}</td><td>{{.Checked}}</td><td{{if .Stale}} class="stale"{{end}}>{{.Stale}}</td></tr>{{end}}</table>
{{with .Derived.Consistency}}<p>The proxy's consistency checks of sampled hits against the primary: ok {{value .OK}}, <span{{if .Stale}} class="stale"{{end}}>stale {{value .Stale}}</span>, error {{value .Error}}, skipped {{value .Skipped}}{{if or .OK .Stale}}: {{if .NinesAtLeast}}at least {{end}}{{printf "%.1f" .Nines}} nines{{end}}.</p>{{end}}
{{if .StaleExamples}}<p>Some of the stale reads:</p><ul>{{range .StaleExamples}}<li>{{.}}</li>{{end}}</ul>{{end}}
<table><tr><th>Cache-Status</th>{{range $k, $v := .Cache.Outcomes}}<th>{{$k}}</th>{{end}}</tr>
<tr><td>reads</td>{{range $k, $v := .Cache.Outcomes}}<td>{{$v}}</td>{{end}}</tr></table>
{{if .ErrorKinds}}<h3>Errors</h3><table><tr><th>op</th><th>kind</th><th>count</th></tr>
{{range .ErrorKinds}}<tr><td>{{.Op}}</td><td>{{.Kind}}</td><td>{{.Count}}</td></tr>{{end}}</table>{{end}}
{{range .Metrics}}<h3>Metrics of {{.Source.Name}} ({{.Source.URL}})</h3>
{{if .Error}}<div class="warn">{{.Error}}</div>{{else}}
<table><tr><th>metric (summed over labels)</th><th>recognised as</th><th>before</th><th>after</th><th>delta</th><th>per s</th></tr>
{{range .Metrics}}{{if .Known}}<tr><td>{{.Name}}</td><td>{{.Known}}</td><td>{{value .Before}}</td><td>{{value .After}}</td><td>{{value .Delta}}</td><td>{{value .PerSec}}</td></tr>{{end}}{{end}}
</table>
<details><summary>every metric</summary><table><tr><th>metric</th><th>before</th><th>after</th><th>delta</th><th>per s</th></tr>
{{range .Metrics}}<tr><td>{{.Name}}</td><td>{{value .Before}}</td><td>{{value .After}}</td><td>{{value .Delta}}</td><td>{{value .PerSec}}</td></tr>{{end}}
</table></details>{{end}}
{{end}}
<h3>Text report</h3><pre>{{index $.Texts $i}}</pre>
{{end}}
</body></html>
`))

// writeHTML renders the page to path.
func writeHTML(path string, p page) error {
	if p.Generated == "" {
		p.Generated = time.Now().UTC().Format(time.RFC3339)
	}
	for _, r := range p.Runs {
		var b bytes.Buffer
		r.WriteText(&b)
		p.Texts = append(p.Texts, b.String())
	}
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, p); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// Report files of one run: DIR/NAME.json, DIR/NAME.html, DIR/NAME-*.png.
// It returns the paths written.
func WriteReport(r *Result, dir string) ([]string, error) {
	base := filepath.Join(dir, r.Config.Name)
	if err := r.SaveJSON(base + ".json"); err != nil {
		return nil, err
	}
	cs, err := charts([]*Result{r})
	if err != nil {
		return nil, err
	}
	pngs, err := writeCharts(dir, r.Config.Name, cs)
	if err != nil {
		return nil, err
	}
	if err := writeHTML(base+".html", page{Title: "edgecache bench: " + r.Config.Name, Runs: []*Result{r}, Charts: cs}); err != nil {
		return nil, err
	}
	return append([]string{base + ".json", base + ".html"}, pngs...), nil
}

// WriteComparisonHTML writes one page with the sweeps' capacity first, the
// runs side by side, their charts overlaid, and each run's details, linking
// every report beside it.
func WriteComparisonHTML(path string, runs []*Result, sweeps []*SweepResult) error {
	var cs []chart
	var names, links []string
	if len(sweeps) > 0 {
		c, err := capacityChart(sweeps)
		if err != nil {
			return err
		}
		cs = append(cs, c)
		for _, s := range sweeps {
			names, links = append(names, s.Name()), append(links, s.Name())
		}
	}
	var comparison *Comparison
	if len(runs) > 0 {
		c := Compare(runs)
		comparison = &c
		if len(runs) > 1 {
			sc, err := staleChart(runs)
			if err != nil {
				return err
			}
			cs = append(cs, sc)
		}
		rc, err := charts(runs)
		if err != nil {
			return err
		}
		cs = append(cs, rc...)
		for _, r := range runs {
			names, links = append(names, r.Config.Name), append(links, r.Config.Name)
		}
	}
	return writeHTML(path, page{Title: "edgecache bench: " + strings.Join(names, ", "), Sweeps: sweeps, Runs: runs,
		Comparison: comparison, Charts: cs, Links: links})
}
