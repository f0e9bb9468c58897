package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// SweepConfig is a rate sweep: the workload of Run at rising open-loop
// rates, one step each, until a step misses the latency objective. It
// answers "how much can this do?": the highest rate whose p99 stays within
// the objective with no errors, and where the knee is.
type SweepConfig struct {
	Run   RunConfig     `json:"run"`   // the workload; Rate and Duration are set per step
	Rates []float64     `json:"rates"` // the steps' rates, rising
	Step  time.Duration `json:"step"`  // how long each step schedules requests
	// The objective a step must meet: p99 at most P99, errors at most
	// MaxErrorRatio of its requests, and at least MinDelivered of the
	// scheduled rate answered.
	P99           time.Duration `json:"p99"`
	MaxErrorRatio float64       `json:"max_error_ratio"`
	MinDelivered  float64       `json:"min_delivered"`
	// Retries is how many more times a step that missed is run before it
	// counts as the knee: on a shared machine one stall of another
	// process can push a step's p99 over the bound at any rate, while past
	// the knee every attempt misses.
	Retries int `json:"retries"`
}

// DefaultSweepRates are 500 requests/s up to 128,000, each step 1.5 times
// the last.
func DefaultSweepRates() []float64 { return GeometricRates(500, 1.5, 128000) }

// GeometricRates are from, from×factor, … up to at most to.
func GeometricRates(from, factor, to float64) []float64 {
	var out []float64
	for r := from; r <= to && factor > 1 && from > 0; r *= factor {
		out = append(out, math.Round(r))
	}
	return out
}

// Validate rejects a sweep that cannot find anything.
func (c SweepConfig) Validate() error {
	var errs []error
	if len(c.Rates) == 0 {
		errs = append(errs, errors.New("sweep: no rates"))
	}
	for i, r := range c.Rates {
		if r <= 0 || (i > 0 && r <= c.Rates[i-1]) {
			errs = append(errs, errors.New("sweep: -rates must be positive and rising"))
			break
		}
	}
	if c.Step <= 0 {
		errs = append(errs, errors.New("sweep: -step must be > 0"))
	}
	if c.P99 <= 0 {
		errs = append(errs, errors.New("sweep: -p99 must be > 0"))
	}
	if c.Retries < 0 {
		errs = append(errs, errors.New("sweep: -retries must be ≥ 0"))
	}
	if c.MaxErrorRatio < 0 || c.MinDelivered <= 0 || c.MinDelivered > 1 {
		errs = append(errs, errors.New("sweep: -max-errors must be ≥ 0 and -min-delivered in (0, 1]"))
	}
	if len(c.Rates) > 0 {
		run := c.Run
		run.Rate, run.Duration = c.Rates[0], c.Step
		errs = append(errs, run.Validate())
	}
	return errors.Join(errs...)
}

// SweepStep is one rate of a sweep.
type SweepStep struct {
	Rate       float64 `json:"rate"`       // scheduled requests/s
	Throughput float64 `json:"throughput"` // answered requests/s
	Requests   int64   `json:"requests"`
	Errors     int64   `json:"errors"`
	P50        float64 `json:"p50_ms"`
	P99        float64 `json:"p99_ms"`
	P999       float64 `json:"p999_ms"`
	// ServiceP99 (send → answer) and WaitP99 (due → sent, queued in the
	// generator) tell a target that slowed from a generator that did.
	ServiceP99 float64 `json:"service_p99_ms"`
	WaitP99    float64 `json:"wait_p99_ms"`
	Stale      int64   `json:"stale_reads"`
	Checked    int64   `json:"checked_reads"` // reads the read-after-write check judged
	HitRatio   float64 `json:"hit_ratio"`     // of the step; 0 for a target that is not a cache
	Derived    Derived `json:"derived"`       // the service figures of the step (CPU, offload)
	ClientCPU  float64 `json:"client_cores"`
	// ClientMicros is the generator's CPU per request of the step.
	ClientMicros float64 `json:"client_micros_per_request"`
	Load         float64 `json:"load_average"` // the machine's, at the end of the step
	Within       bool    `json:"within_objective"`
	Why          string  `json:"why,omitempty"` // what missed the objective
	// Missed lists earlier attempts at this rate that missed the objective
	// (SweepConfig.Retries), what each missed by.
	Missed []string `json:"missed,omitempty"`
}

// SweepResult is a sweep's JSON report.
type SweepResult struct {
	ReportVersion int         `json:"report_version"`
	Config        SweepConfig `json:"config"`
	Start         time.Time   `json:"start"`
	Steps         []SweepStep `json:"steps"`
	// Best is the index of the highest rate within the objective; -1 when
	// even the first step missed it.
	Best int `json:"best"`
	// Saturated says a step above Best missed the objective: the sweep
	// found the knee. Without it the highest rate is only a lower bound.
	Saturated bool     `json:"saturated"`
	Warnings  []string `json:"warnings"`
}

// Name is the sweep's report name.
func (s *SweepResult) Name() string { return s.Config.Run.Name }

// BestStep is the highest step within the objective, or nil.
func (s *SweepResult) BestStep() *SweepStep {
	if s.Best < 0 || s.Best >= len(s.Steps) {
		return nil
	}
	return &s.Steps[s.Best]
}

// Knee is the first step that missed the objective after Best, or nil.
func (s *SweepResult) Knee() *SweepStep {
	if !s.Saturated || s.Best+1 >= len(s.Steps) {
		return nil
	}
	return &s.Steps[s.Best+1]
}

// Missed is the step that ended the sweep by missing the objective (the
// knee, or a first step that already missed), or nil when none did.
func (s *SweepResult) Missed() *SweepStep {
	if n := len(s.Steps); n > 0 && !s.Steps[n-1].Within {
		return &s.Steps[n-1]
	}
	return nil
}

// Objective says the objective in words.
func (s *SweepResult) Objective() string {
	c := s.Config
	errs := "no errors"
	if c.MaxErrorRatio > 0 {
		errs = fmt.Sprintf("errors ≤ %g%%", 100*c.MaxErrorRatio)
	}
	return fmt.Sprintf("p99 ≤ %s, %s, ≥ %.0f%% of the scheduled rate answered", fmtDur(c.P99), errs, 100*c.MinDelivered)
}

// Sweep runs the steps in order against seed and stops after the first step
// that misses the objective (past the knee) or when ctx ends. The seed's
// acknowledged state carries from step to step, so the read-after-write
// check holds across the sweep.
func Sweep(ctx context.Context, cfg SweepConfig, seed *Seed, progress io.Writer) (*SweepResult, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	res := &SweepResult{ReportVersion: ReportVersion, Config: cfg, Start: time.Now().UTC(), Best: -1}
	for i, rate := range cfg.Rates {
		run := cfg.Run
		run.Name = fmt.Sprintf("%s@%.0f", cfg.Run.Name, rate)
		run.Rate, run.Duration, run.Requests = rate, cfg.Step, 0
		// An overloaded step's backlog is its failure: do not wait long.
		run.Drain = min(run.Drain, max(cfg.Step/2, time.Second))
		var st SweepStep
		var missed []string
		for attempt := 0; attempt <= cfg.Retries && ctx.Err() == nil; attempt++ {
			fmt.Fprintf(progress, "sweep %s: step %d, %.0f requests/s for %s\n", cfg.Run.Name, i+1, rate, cfg.Step)
			r, err := Run(ctx, run, seed, progress)
			if err != nil {
				return nil, err
			}
			st = judgeStep(cfg, r)
			fmt.Fprintf(progress, "  %.0f/s answered, p99 %s, %d errors: %s\n", st.Throughput, fmtMs(st.P99), st.Errors, verdict(st))
			if st.Within {
				break
			}
			missed = append(missed, st.Why)
		}
		if st.Within {
			st.Missed = missed
		} else {
			st.Missed = missed[:len(missed)-1]
		}
		res.Steps = append(res.Steps, st)
		if ctx.Err() != nil {
			res.Warnings = append(res.Warnings, "interrupted: the sweep stopped early")
			break
		}
		if !st.Within {
			res.Saturated = res.Best >= 0
			break
		}
		res.Best = i
	}
	busiest, cores := 0.0, runtime.NumCPU()
	for _, st := range res.Steps {
		busiest = max(busiest, st.Load)
	}
	if busyMachine(busiest, cores) {
		res.Warnings = append(res.Warnings, fmt.Sprintf(
			"the machine's load average reached %.1f on %d cores: other processes competed for CPU, so the knee here is lower than on a quiet machine", busiest, cores))
	}
	if res.Best < 0 && len(res.Steps) > 0 {
		res.Warnings = append(res.Warnings, "even the first step missed the objective: start lower (-rates)")
	} else if !res.Saturated && ctx.Err() == nil {
		res.Warnings = append(res.Warnings, fmt.Sprintf(
			"every step met the objective up to %.0f/s: the knee is above it, so that rate is a lower bound, not a capacity (add higher -rates)",
			cfg.Rates[len(cfg.Rates)-1]))
	}
	return res, nil
}

// judgeStep sums a step's run and checks it against the objective.
func judgeStep(cfg SweepConfig, r *Result) SweepStep {
	st := SweepStep{
		Rate: r.Config.Rate, Throughput: r.Throughput, Requests: r.Requests, Errors: r.Errors,
		P50: r.All.Latency.P50, P99: r.All.Latency.P99, P999: r.All.Latency.P999,
		ServiceP99: r.Service.P99, WaitP99: r.Wait.P99,
		Stale: r.Derived.StaleReads, HitRatio: r.Cache.HitRatio, Derived: r.Derived, ClientCPU: r.Client.Cores,
		ClientMicros: r.Client.MicrosPerRequest, Load: r.Client.LoadAverage,
	}
	for _, c := range r.Stale {
		st.Checked += c.Checked
	}
	var why []string
	if p99 := time.Duration(st.P99 * float64(time.Millisecond)); p99 > cfg.P99 {
		why = append(why, fmt.Sprintf("p99 %s > %s", fmtDur(p99), fmtDur(cfg.P99)))
	}
	if r.Requests > 0 && float64(r.Errors) > cfg.MaxErrorRatio*float64(r.Requests) {
		why = append(why, fmt.Sprintf("%d errors", r.Errors))
	}
	if st.Throughput < cfg.MinDelivered*st.Rate {
		why = append(why, fmt.Sprintf("answered %.0f/s of %.0f/s", st.Throughput, st.Rate))
	}
	st.Within, st.Why = len(why) == 0, strings.Join(why, ", ")
	return st
}

func verdict(st SweepStep) string { return st.Verdict() }

// Verdict says whether the step met the objective, and what missed.
func (st SweepStep) Verdict() string {
	v := "missed: " + st.Why
	if st.Within {
		v = "within the objective"
	}
	if len(st.Missed) > 0 {
		v += " (an attempt before missed: " + strings.Join(st.Missed, "; ") + ")"
	}
	return v
}

// Summary is the sweep's answer in one line.
func (s *SweepResult) Summary() string {
	b := s.BestStep()
	switch {
	case b == nil:
		return fmt.Sprintf("%s: no rate met the objective (%s)", s.Name(), s.Objective())
	case s.Saturated:
		next := *s.Knee()
		return fmt.Sprintf("%s: %.0f requests/s within the objective (p99 %s); at %.0f/s it missed (%s)",
			s.Name(), b.Throughput, fmtMs(b.P99), next.Rate, next.Why)
	default:
		return fmt.Sprintf("%s: at least %.0f requests/s within the objective (p99 %s): the sweep did not reach the knee",
			s.Name(), b.Throughput, fmtMs(b.P99))
	}
}

// StaleReads is the stale reads of every step of the sweep, and the reads
// the check judged.
func (s *SweepResult) StaleReads() StaleCount {
	c := StaleCount{Kind: "all"}
	for _, st := range s.Steps {
		c.Stale += st.Stale
		c.Checked += st.Checked
	}
	return c
}

// KneeText says where the sweep's knee is, in a few words.
func (s *SweepResult) KneeText() string {
	switch {
	case s.Knee() != nil:
		k := s.Knee()
		return fmt.Sprintf("%.0f/s: %s", k.Rate, k.Why)
	case s.Missed() != nil:
		m := s.Missed()
		return fmt.Sprintf("the first step, %.0f/s, missed: %s", m.Rate, m.Why)
	default:
		return "not reached: the highest rate is a lower bound"
	}
}

// WriteCapacityTable prints the sweeps side by side, one line each: how
// much each target can do within the objective, what its cache hit there,
// the stale reads it served, and where its knee is.
func WriteCapacityTable(w io.Writer, sweeps []*SweepResult) {
	if len(sweeps) == 0 {
		return
	}
	s0 := sweeps[0]
	fmt.Fprintf(w, "How much can it do? open-loop steps of %s at rising rates, objective %s\n", s0.Config.Step, s0.Objective())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "target\thighest rate within the objective\tp99 there\thit ratio there\tstale reads (of reads checked)\tgenerator cores there\tthe knee (first rate that missed)")
	for _, s := range sweeps {
		stale := s.StaleReads()
		cells := []string{s.Name(), "none", "-", "-", fmt.Sprintf("%d (of %d)", stale.Stale, stale.Checked), "-", s.KneeText()}
		if b := s.BestStep(); b != nil {
			cells[1], cells[2], cells[5] = fmt.Sprintf("%.0f requests/s", b.Throughput), fmtMs(b.P99), fmt.Sprintf("%.2f", b.ClientCPU)
			if b.HitRatio > 0 {
				cells[3] = fmt.Sprintf("%.1f%%", 100*b.HitRatio)
			}
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	tw.Flush()
}

// WriteText prints the sweep's steps for a person.
func (s *SweepResult) WriteText(w io.Writer) {
	fmt.Fprintf(w, "sweep %q against %s: open-loop steps of %s, objective %s\n", s.Name(), strings.Join(s.Config.Run.Targets, ", "),
		s.Config.Step, s.Objective())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scheduled/s\tanswered/s\tp50\tp99\tp99.9\tservice p99\twait p99\terrors\tstale\thit ratio\tproxy cores\torigin cores\tclient cores\tclient µs/req\tload avg\tverdict\t")
	for _, st := range s.Steps {
		hit := "-"
		if st.HitRatio > 0 {
			hit = fmt.Sprintf("%.1f%%", 100*st.HitRatio)
		}
		fmt.Fprintf(tw, "%.0f\t%.0f\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%.2f\t%.2f\t%.2f\t%.0f\t%.1f\t%s\t\n", st.Rate, st.Throughput, fmtMs(st.P50), fmtMs(st.P99), fmtMs(st.P999),
			fmtMs(st.ServiceP99), fmtMs(st.WaitP99), st.Errors, st.Stale, hit, st.Derived.ProxyCores, st.Derived.OriginCores, st.ClientCPU, st.ClientMicros, st.Load, verdict(st))
	}
	tw.Flush()
	fmt.Fprintln(w, s.Summary())
	for _, warn := range s.Warnings {
		fmt.Fprintf(w, "WARNING: %s\n", warn)
	}
}

// SaveJSON writes the report to path.
func (s *SweepResult) SaveJSON(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// LoadSweep reads a sweep's JSON report.
func LoadSweep(path string) (*SweepResult, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s SweepResult
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if s.ReportVersion != ReportVersion || len(s.Config.Rates) == 0 {
		return nil, fmt.Errorf("%s: not a sweep report of this bench", path)
	}
	return &s, nil
}

// WriteSweepReport writes DIR/NAME.json, DIR/NAME.html and the chart
// DIR/NAME-capacity.png, and returns the paths.
func WriteSweepReport(s *SweepResult, dir string) ([]string, error) {
	base := filepath.Join(dir, s.Name())
	if err := s.SaveJSON(base + ".json"); err != nil {
		return nil, err
	}
	c, err := capacityChart([]*SweepResult{s})
	if err != nil {
		return nil, err
	}
	pngs, err := writeCharts(dir, s.Name(), []chart{c})
	if err != nil {
		return nil, err
	}
	if err := writeHTML(base+".html", page{Title: "edgecache bench: sweep " + s.Name(), Sweeps: []*SweepResult{s}, Charts: []chart{c}}); err != nil {
		return nil, err
	}
	return append([]string{base + ".json", base + ".html"}, pngs...), nil
}
