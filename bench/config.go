package bench

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// RunConfig is everything that shapes a run. It is stored in the JSON report
// in full, so two reports can be diffed and a run repeated.
type RunConfig struct {
	Name        string        `json:"name"`        // names the report files
	Targets     []string      `json:"targets"`     // base URLs; requests go round-robin
	Rate        float64       `json:"rate"`        // open loop: scheduled requests/s; 0 = closed loop
	Connections int           `json:"connections"` // per target; one worker each
	Duration    time.Duration `json:"duration"`
	Requests    int64         `json:"requests"` // stop after this many; 0 = only Duration
	Spike       Spike         `json:"spike"`
	// Attack is a flood of one attack kind beside the mix, on a schedule
	// and connections of its own (issue 20's drills).
	Attack  Attack        `json:"attack,omitempty"`
	Timeout time.Duration `json:"timeout"` // per request
	Drain   time.Duration `json:"drain"`   // after the schedule ends, how long the backlog may take
	// Warmup is the start of the run left out of the steady-state hit
	// ratio (the cache fills then).
	Warmup time.Duration `json:"warmup"`

	Reads     int      `json:"reads"`  // read:write ratio, reads part
	Writes    int      `json:"writes"` // read:write ratio, writes part
	ReadMix   ReadMix  `json:"read_mix"`
	WriteMix  WriteMix `json:"write_mix"`
	BodyBytes int      `json:"body_bytes"` // of the body text of edits and new posts
	ListLimit int      `json:"list_limit"` // ?limit= of list reads

	Popularity string  `json:"popularity"` // zipf or uniform
	ZipfS      float64 `json:"zipf_s"`
	Seed       uint64  `json:"seed"` // fixes the request sequence

	Metrics  []MetricsSource `json:"metrics"`
	SeedFile string          `json:"seed_file"`
	OutDir   string          `json:"out_dir"`
}

// ReadMix weighs the read kinds against each other.
type ReadMix struct {
	Post    float64 `json:"post"`
	List    float64 `json:"list"`
	Profile float64 `json:"profile"`
	// The attacks of issue 20 beside the normal mix: a post with a random
	// query string (a new cache key each time, unless the edge drops the
	// parameter), and posts that do not exist, in increasing ids (a scan).
	Bust    float64 `json:"bust,omitempty"`
	Missing float64 `json:"missing,omitempty"`
}

// Attack is a flood of one read kind, bust or missing, at Rate requests/s,
// scheduled apart from the mix and sent over connections of its own, so
// that its requests never hold up the mix's in the generator: the mix's
// latencies are the target's alone. Its requests have their own rows.
// Connections is its own pool per target: a flood whose answers are slow
// needs many (at 7,500/s and 20 ms, 150), and an attacker opens them.
// From is the address its connections come from ("": the system's
// choice): another client than the mix's, as the target sees it, so that
// per-client budgets can tell the two apart (on loopback, any 127.0.0.0/8
// address).
type Attack struct {
	Kind        string  `json:"kind,omitempty"`
	Rate        float64 `json:"rate,omitempty"`
	Connections int     `json:"connections,omitempty"`
	From        string  `json:"from,omitempty"`
}

// ParseAttack reads "bust=7500" or "missing=7500", without connections;
// "" is no attack.
func ParseAttack(s string) (Attack, error) {
	if s == "" {
		return Attack{}, nil
	}
	kind, rate, ok := strings.Cut(s, "=")
	r, err := strconv.ParseFloat(rate, 64)
	if !ok || err != nil || r <= 0 || (kind != "bust" && kind != "missing") {
		return Attack{}, fmt.Errorf("attack %q: want bust=RATE or missing=RATE, RATE > 0 requests/s", s)
	}
	return Attack{Kind: kind, Rate: r}, nil
}

func (a Attack) String() string {
	if a.Rate == 0 {
		return ""
	}
	return fmt.Sprintf("%s=%g", a.Kind, a.Rate)
}

// sum is the weights' total.
func (m ReadMix) sum() float64 { return m.Post + m.List + m.Profile + m.Bust + m.Missing }

// WriteMix weighs the write kinds against each other.
type WriteMix struct {
	Edit   float64 `json:"edit"`
	Create float64 `json:"create"`
}

// DefaultRunConfig is a short, sane run against the one-box proxy.
func DefaultRunConfig() RunConfig {
	return RunConfig{
		Name:        "run",
		Targets:     []string{"http://127.0.0.1:8080"},
		Rate:        1000,
		Connections: 64,
		Duration:    30 * time.Second,
		Timeout:     5 * time.Second,
		Drain:       10 * time.Second,
		Warmup:      5 * time.Second,
		Reads:       100,
		Writes:      1,
		ReadMix:     ReadMix{Post: 70, List: 20, Profile: 10},
		WriteMix:    WriteMix{Edit: 50, Create: 50},
		BodyBytes:   1024,
		ListLimit:   20,
		Popularity:  PopularityZipf,
		ZipfS:       1.1,
		Seed:        1,
		SeedFile:    "bench/out/seed.json",
		OutDir:      "bench/out",
	}
}

// Validate rejects settings that would make a run meaningless, with the flag
// name in the message.
func (c RunConfig) Validate() error {
	var errs []error
	check := func(ok bool, msg string) {
		if !ok {
			errs = append(errs, errors.New(msg))
		}
	}
	check(c.Name != "" && !strings.ContainsAny(c.Name, `/\`), "-name must be a plain file name")
	check(len(c.Targets) > 0, "-target: at least one base URL")
	check(c.Rate >= 0, "-rate must be ≥ 0 (0 = closed loop)")
	check(c.Connections >= 1, "-connections must be ≥ 1")
	check(c.Duration > 0 || c.Requests > 0, "-duration or -requests must be > 0")
	check(c.Requests >= 0, "-requests must be ≥ 0")
	check(c.Spike.Every == 0 || c.Rate > 0, "-spike needs an open-loop run (-rate > 0)")
	check(c.Attack.Rate == 0 || c.Rate > 0, "-attack needs an open-loop run (-rate > 0)")
	check(c.Attack.Rate == 0 || c.Attack.Connections >= 1, "-attack-connections must be ≥ 1")
	check(c.Attack.From == "" || net.ParseIP(c.Attack.From) != nil, "-attack-from must be an IP address")
	check(c.Timeout > 0, "-timeout must be > 0")
	check(c.Drain >= 0, "-drain must be ≥ 0")
	check(c.Warmup >= 0, "-warmup must be ≥ 0")
	check(c.Reads >= 0 && c.Writes >= 0 && c.Reads+c.Writes > 0, "-mix: reads:writes, not both 0")
	check(c.ReadMix.Post >= 0 && c.ReadMix.List >= 0 && c.ReadMix.Profile >= 0 && c.ReadMix.Bust >= 0 && c.ReadMix.Missing >= 0 &&
		(c.Reads == 0 || c.ReadMix.sum() > 0), "-read-mix: weights ≥ 0, not all 0")
	check(c.WriteMix.Edit >= 0 && c.WriteMix.Create >= 0 &&
		(c.Writes == 0 || c.WriteMix.Edit+c.WriteMix.Create > 0), "-write-mix: weights ≥ 0, not all 0")
	check(c.BodyBytes >= 64 && c.BodyBytes <= 1024, "-body-bytes must be in [64, 1024]")
	check(c.ListLimit >= 1 && c.ListLimit <= 100, "-list-limit must be in [1, 100]")
	check(c.Popularity == PopularityZipf || c.Popularity == PopularityUniform, "-popularity: zipf or uniform")
	check(c.Popularity != PopularityZipf || c.ZipfS > 1, "-zipf-s must be > 1 (Go's Zipf sampler needs s > 1)")
	for _, t := range c.Targets {
		check(strings.HasPrefix(t, "http://") || strings.HasPrefix(t, "https://"), "-target "+t+": want http://host:port")
	}
	return errors.Join(errs...)
}

// ParseMix reads "100:1" as reads and writes parts.
func ParseMix(s string) (reads, writes int, err error) {
	r, w, ok := strings.Cut(s, ":")
	if ok {
		reads, err = strconv.Atoi(strings.TrimSpace(r))
		if err == nil {
			writes, err = strconv.Atoi(strings.TrimSpace(w))
		}
	}
	if !ok || err != nil || reads < 0 || writes < 0 || reads+writes == 0 {
		return 0, 0, fmt.Errorf("mix %q: want READS:WRITES, e.g. 100:1", s)
	}
	return reads, writes, nil
}

// ParseWeights reads "a=1,b=2" for exactly the given names (others are an
// error; missing ones are 0).
func ParseWeights(s string, names ...string) (map[string]float64, error) {
	out := make(map[string]float64, len(names))
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		f, err := strconv.ParseFloat(v, 64)
		known := false
		for _, n := range names {
			known = known || n == k
		}
		if !ok || err != nil || f < 0 || !known {
			return nil, fmt.Errorf("weights %q: want %s=N,… with N ≥ 0", s, strings.Join(names, "=N,"))
		}
		out[k] = f
	}
	return out, nil
}

// String forms for -h defaults and the report.
func (m ReadMix) String() string {
	s := fmt.Sprintf("post=%g,list=%g,profile=%g", m.Post, m.List, m.Profile)
	if m.Bust > 0 || m.Missing > 0 {
		s += fmt.Sprintf(",bust=%g,missing=%g", m.Bust, m.Missing)
	}
	return s
}

func (m WriteMix) String() string {
	return fmt.Sprintf("edit=%g,create=%g", m.Edit, m.Create)
}
