package bench

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"

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
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
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
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
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
	w, err := p.WriterTo(chartWidth, chartHeight, "png")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	_, err = w.WriteTo(&buf)
	return buf.Bytes(), err
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
