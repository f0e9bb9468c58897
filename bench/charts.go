package bench

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// A chart is a named PNG. gonum/plot draws with the Liberation fonts it
// embeds, so charts render offline with no system fonts.
type chart struct {
	Name  string // file suffix: throughput, latency, hitratio, distribution
	Title string
	PNG   []byte
}

// series is one line of a chart.
type series struct {
	label string
	xys   plotter.XYs
}

const (
	chartWidth  = 9 * vg.Inch
	chartHeight = 3.6 * vg.Inch
)

// lineChart draws series as lines; logY puts the y axis on a log scale
// (latencies span microseconds to seconds when a target stalls). A linear
// axis starts at zero, so that small wobbles do not look like collapses;
// maxY > 0 fixes its top (a percentage), and the legend then goes to the
// bottom right, else the axis leaves room above the lines for the legend in
// the top left.
func lineChart(title, xLabel, yLabel string, logY bool, maxY float64, ss []series) ([]byte, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	p.Add(plotter.NewGrid())
	p.Legend.Top = maxY <= 0
	p.Legend.Left = maxY <= 0
	if logY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = msTicks{}
	}
	lines := 0
	for i, s := range ss {
		if len(s.xys) == 0 {
			continue
		}
		xys := s.xys
		if logY {
			xys = make(plotter.XYs, len(s.xys))
			for j, xy := range s.xys {
				xys[j] = plotter.XY{X: xy.X, Y: math.Max(xy.Y, 0.001)}
			}
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", title, err)
		}
		l.Color = plotutil.Color(i)
		l.Width = vg.Points(1.5)
		l.Dashes = plotutil.Dashes(i / len(plotutil.DefaultColors))
		p.Add(l)
		p.Legend.Add(s.label, l)
		lines++
	}
	switch {
	case logY && !hasPoints(ss):
		// A log axis needs a positive range even with nothing to draw.
		p.Y.Min, p.Y.Max = 0.1, 10
	case maxY > 0:
		p.Y.Min, p.Y.Max = 0, math.Max(maxY, p.Y.Max)
	default:
		if !logY {
			p.Y.Min = 0
		}
		roomForLegend(p, logY, lines)
	}
	return pngOf(p)
}

// roomForLegend raises the top of the y axis so that the legend, drawn in
// the top left corner of the data area, sits above the lines instead of
// over them.
func roomForLegend(p *plot.Plot, logY bool, n int) {
	if n == 0 || !(p.Y.Max > p.Y.Min) {
		return
	}
	// The data area is the chart less the title and the x axis (about 4
	// lines of text); the legend takes n lines.
	line := p.Legend.TextStyle.FontExtents().Height + p.Legend.Padding
	share := math.Min(float64(vg.Length(n)*line)/float64(chartHeight-4*line), 0.5)
	if logY {
		lo, hi := math.Log10(p.Y.Min), math.Log10(p.Y.Max)
		p.Y.Max = math.Pow(10, hi+(hi-lo)*share/(1-share))
		return
	}
	p.Y.Max += (p.Y.Max - p.Y.Min) * share / (1 - share)
}

// The charts of one run or of several runs side by side; runs are labelled
// with their names when there is more than one.
func charts(runs []*Result) ([]chart, error) {
	label := func(r *Result, what string) string {
		if len(runs) == 1 {
			return what
		}
		return r.Config.Name + " " + what
	}
	var thr, lat, hit, dist []series
	for _, r := range runs {
		var done, errs, sched, p50, p99, ratio plotter.XYs
		sc := schedule{rate: r.Config.Rate, spike: r.Config.Spike}
		for i, s := range r.Timeline {
			if i > 0 && float64(s.T)+0.5 > r.Elapsed.Seconds() {
				break // the last, mostly empty second would look like a collapse
			}
			x := float64(s.T)
			done = append(done, plotter.XY{X: x, Y: float64(s.Requests)})
			errs = append(errs, plotter.XY{X: x, Y: float64(s.Errors)})
			if r.Config.Rate > 0 {
				sched = append(sched, plotter.XY{X: x, Y: sc.rateAt(secondsDur(x))})
			}
			if s.Requests > 0 {
				p50 = append(p50, plotter.XY{X: x, Y: s.P50})
				p99 = append(p99, plotter.XY{X: x, Y: s.P99})
			}
			if n := s.Hits + s.Forwarded; n > 0 {
				ratio = append(ratio, plotter.XY{X: x, Y: 100 * float64(s.Hits) / float64(n)})
			}
		}
		// Several runs: answered/s of each; errors are in the tables.
		thr = append(thr, series{label(r, "answered/s"), done})
		if len(runs) == 1 {
			thr = append(thr, series{"errors/s", errs})
			if sched != nil {
				thr = append(thr, series{"scheduled/s", sched})
			}
		}
		lat = append(lat, series{label(r, "p50"), p50}, series{label(r, "p99"), p99})
		hit = append(hit, series{label(r, "hit ratio"), ratio})
		for _, op := range append(append([]OpStats{}, r.Ops...), r.All) {
			if len(op.Spectrum) == 0 || (len(runs) > 1 && op.Op != "all") {
				continue
			}
			var xys plotter.XYs
			for _, pt := range op.Spectrum {
				xys = append(xys, plotter.XY{X: nines(pt.Percentile, len(op.Spectrum)), Y: pt.Ms})
			}
			dist = append(dist, series{label(r, op.Op), xys})
		}
	}
	var out []chart
	add := func(name, title string, b []byte, err error) error {
		if err != nil {
			return err
		}
		out = append(out, chart{Name: name, Title: title, PNG: b})
		return nil
	}
	b, err := lineChart("Throughput", "seconds", "requests per second", false, 0, thr)
	if err := add("throughput", "Throughput over time", b, err); err != nil {
		return nil, err
	}
	b, err = lineChart("Latency from the scheduled time", "seconds", "ms (log scale)", true, 0, lat)
	if err := add("latency", "p50 and p99 latency over time", b, err); err != nil {
		return nil, err
	}
	if hasPoints(hit) {
		b, err = lineChart("Cache hit ratio (Cache-Status)", "seconds", "% of reads", false, 100, hit)
		if err := add("hitratio", "Hit ratio over time", b, err); err != nil {
			return nil, err
		}
	}
	b, err = distributionChart(dist)
	if err := add("distribution", "Latency distribution", b, err); err != nil {
		return nil, err
	}
	return out, nil
}

// nines maps a percentile to "how many nines" (p90 → 1, p99 → 2), the x axis
// of an HDR latency-by-percentile plot; 100 is drawn one step past the last
// sampled point.
func nines(percentile float64, n int) float64 {
	if percentile >= 100 {
		return 0.05 * float64(n-1)
	}
	return -math.Log10(1 - percentile/100)
}

func distributionChart(ss []series) ([]byte, error) {
	maxX := 1.0
	for _, s := range ss {
		for _, xy := range s.xys {
			maxX = math.Max(maxX, xy.X)
		}
	}
	var ticks []plot.Tick
	for i, lbl := range []string{"0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%"} {
		if float64(i) <= maxX+0.01 {
			ticks = append(ticks, plot.Tick{Value: float64(i), Label: lbl})
		}
	}
	p := plot.New()
	p.Title.Text = "Latency by percentile (last point: max)"
	p.X.Label.Text = "percentile"
	p.Y.Label.Text = "ms (log scale)"
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = msTicks{}
	p.Add(plotter.NewGrid())
	// Bottom right: the curves rise to the right, so that corner is empty.
	p.Legend.Top = false
	p.Legend.Left = false
	for i, s := range ss {
		xys := make(plotter.XYs, len(s.xys))
		for j, xy := range s.xys {
			xys[j] = plotter.XY{X: xy.X, Y: math.Max(xy.Y, 0.001)}
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return nil, err
		}
		l.Color = plotutil.Color(i)
		if s.label == "all" {
			l.Color = color.Black // plotutil's sixth colour is hard to tell from the first (post)
		}
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(s.label, l)
	}
	if len(ss) == 0 {
		p.Add(plotter.NewFunction(func(float64) float64 { return 1 }))
		p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0.1, 10
	}
	p.BackgroundColor = color.White
	return pngOf(p)
}

// msTicks labels a log-scale axis of milliseconds at 1, 2 and 5 of every
// decade, in the unit a person reads ("200µs", "5ms", "1s"), with unlabelled
// ticks between: plot.LogTicks labels only powers of ten, which leaves a
// latency axis with two or three numbers on it.
type msTicks struct{}

func (msTicks) Ticks(lo, hi float64) []plot.Tick {
	var out []plot.Tick
	for dec := math.Floor(math.Log10(lo)); dec <= math.Ceil(math.Log10(hi)); dec++ {
		base := math.Pow(10, dec)
		for m := 1; m <= 9; m++ {
			v := float64(m) * base
			if v < lo*0.999 || v > hi*1.001 {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || m == 2 || m == 5 {
				t.Label = fmtMs(v)
			}
			out = append(out, t)
		}
	}
	return out
}

// rateTicks labels a linear axis of requests per second every 1, 2 or 5 ×
// 10^k, about six labels across ("500", "1000", "1.5 k" read better than
// plot's two or three).
type rateTicks struct{}

func (rateTicks) Ticks(lo, hi float64) []plot.Tick {
	span := hi - lo
	if !(span > 0) {
		return []plot.Tick{{Value: lo, Label: fmtCount(lo)}}
	}
	step := math.Pow(10, math.Floor(math.Log10(span/6)))
	for _, m := range []float64{1, 2, 5, 10} {
		if span/(m*step) <= 7 {
			step *= m
			break
		}
	}
	var out []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi+step/1e6; v += step {
		out = append(out, plot.Tick{Value: v, Label: fmtCount(v)})
	}
	return out
}

// capacityChart is throughput against latency, one line per sweep (each
// point a step), with the objective drawn across: where a line crosses it
// is the most the target can do within the objective.
func capacityChart(sweeps []*SweepResult) (chart, error) {
	p := plot.New()
	p.Title.Text = "Rate sweep: latency against answered requests per second"
	p.X.Label.Text = "answered requests per second"
	p.X.Tick.Marker = rateTicks{}
	p.Y.Label.Text = "latency (log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = msTicks{}
	p.Add(plotter.NewGrid())
	p.Legend.Top, p.Legend.Left = true, true
	objective, maxX := 0.0, 1.0
	minY, maxY := math.Inf(1), 0.0
	for i, s := range sweeps {
		var p50, p99 plotter.XYs
		for _, st := range s.Steps {
			p50 = append(p50, plotter.XY{X: st.Throughput, Y: math.Max(st.P50, 0.001)})
			p99 = append(p99, plotter.XY{X: st.Throughput, Y: math.Max(st.P99, 0.001)})
			maxX = math.Max(maxX, st.Throughput)
			minY, maxY = math.Min(minY, math.Max(st.P50, 0.001)), math.Max(maxY, st.P99)
		}
		objective = math.Max(objective, float64(s.Config.P99)/float64(time.Millisecond))
		for j, line := range []struct {
			label string
			xys   plotter.XYs
		}{{s.Name() + " p99", p99}, {s.Name() + " p50", p50}} {
			if len(line.xys) == 0 {
				continue
			}
			l, pts, err := plotter.NewLinePoints(line.xys)
			if err != nil {
				return chart{}, err
			}
			l.Color, pts.Color = plotutil.Color(i), plotutil.Color(i)
			l.Width = vg.Points(1.5)
			if j == 1 {
				l.Dashes = plotutil.Dashes(1)
			}
			p.Add(l, pts)
			p.Legend.Add(line.label, l, pts)
		}
	}
	if objective > 0 {
		obj, err := plotter.NewLine(plotter.XYs{{X: 0, Y: objective}, {X: maxX * 1.05, Y: objective}})
		if err != nil {
			return chart{}, err
		}
		obj.Color = color.RGBA{R: 200, A: 255}
		obj.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
		p.Add(obj)
		p.Legend.Add(fmt.Sprintf("objective: p99 %s", fmtMs(objective)), obj)
		maxY = math.Max(maxY, objective)
	}
	if math.IsInf(minY, 1) {
		minY, maxY = 0.1, 10
	}
	p.X.Min, p.X.Max = 0, maxX*1.05
	p.Y.Min, p.Y.Max = minY/2, maxY*4 // room above for the legend
	png, err := pngOf(p)
	return chart{Name: "capacity", Title: "Throughput against latency (rate sweep)", PNG: png}, err
}

// staleChart is each run's stale reads, as bars: the read-after-write check
// on the same workload through each target. A cache that cannot see the
// writes (nginx, Varnish) serves some; edgecache must serve none.
func staleChart(runs []*Result) (chart, error) {
	p := plot.New()
	p.Title.Text = "Stale reads: reads older than a write acknowledged before they were sent"
	p.Y.Label.Text = "stale reads per 10,000 reads"
	p.Add(plotter.NewGrid())
	var vals plotter.Values
	var names []string
	maxV := 0.0
	for _, r := range runs {
		checked := int64(0)
		for _, s := range r.Stale {
			checked += s.Checked
		}
		v := 0.0
		if checked > 0 {
			v = 1e4 * float64(r.Derived.StaleReads) / float64(checked)
		}
		vals = append(vals, v)
		names = append(names, fmt.Sprintf("%s (%d of %d)", r.Config.Name, r.Derived.StaleReads, checked))
		maxV = math.Max(maxV, v)
	}
	bars, err := plotter.NewBarChart(vals, vg.Points(40))
	if err != nil {
		return chart{}, err
	}
	bars.Color = color.RGBA{R: 190, G: 40, B: 40, A: 255}
	p.Add(bars)
	p.NominalX(names...)
	p.Y.Min, p.Y.Max = 0, math.Max(maxV*1.15, 1)
	png, err := pngOf(p)
	return chart{Name: "stale", Title: "Stale reads by target, same workload", PNG: png}, err
}

// pngOf draws p as a chart-sized PNG.
func pngOf(p *plot.Plot) ([]byte, error) {
	w, err := p.WriterTo(chartWidth, chartHeight, "png")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func hasPoints(ss []series) bool {
	for _, s := range ss {
		if len(s.xys) > 0 {
			return true
		}
	}
	return false
}

// writeCharts saves the charts as DIR/PREFIX-NAME.png.
func writeCharts(dir, prefix string, cs []chart) ([]string, error) {
	var paths []string
	for _, c := range cs {
		p := filepath.Join(dir, prefix+"-"+c.Name+".png")
		if err := os.WriteFile(p, c.PNG, 0o644); err != nil {
			return nil, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}
