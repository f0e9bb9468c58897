package bench

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Spike is a repeating burst in an open-loop rate profile: for Length at the
// end of every Every, the rate is Factor times the base rate. "5s@3x/30s"
// means 25 s at the base rate, then 5 s at three times it, and again.
// The burst sits at the end of each period so that a run starts warm.
type Spike struct {
	Length time.Duration `json:"length"`
	Factor float64       `json:"factor"`
	Every  time.Duration `json:"every"`
}

// ParseSpike reads "LENGTH@FACTORx/EVERY"; the empty string is no spike.
func ParseSpike(s string) (Spike, error) {
	if s == "" {
		return Spike{}, nil
	}
	bad := func(why string) (Spike, error) {
		return Spike{}, fmt.Errorf("spike %q: %s (want e.g. 5s@3x/30s)", s, why)
	}
	length, rest, ok := strings.Cut(s, "@")
	if !ok {
		return bad("missing @")
	}
	factor, every, ok := strings.Cut(rest, "/")
	if !ok {
		return bad("missing /")
	}
	var sp Spike
	var err error
	if sp.Length, err = time.ParseDuration(length); err != nil {
		return bad(err.Error())
	}
	if sp.Factor, err = strconv.ParseFloat(strings.TrimSuffix(factor, "x"), 64); err != nil {
		return bad(err.Error())
	}
	if sp.Every, err = time.ParseDuration(every); err != nil {
		return bad(err.Error())
	}
	if sp.Length <= 0 || sp.Every <= 0 || sp.Length > sp.Every || !(sp.Factor > 0) {
		return bad("need 0 < length ≤ every and factor > 0")
	}
	return sp, nil
}

// String is the flag form of the spike, "" for none.
func (sp Spike) String() string {
	if sp.Every == 0 {
		return ""
	}
	return fmt.Sprintf("%s@%gx/%s", sp.Length, sp.Factor, sp.Every)
}

// schedule is the open-loop arrival plan: request i is due at a fixed offset
// from the start, whatever happened to request i-1.
type schedule struct {
	rate  float64 // requests per second outside spikes
	spike Spike
}

// rateAt is the scheduled rate at offset t from the start.
func (s schedule) rateAt(t time.Duration) float64 {
	if s.spike.Every > 0 && t%s.spike.Every >= s.spike.Every-s.spike.Length {
		return s.rate * s.spike.Factor
	}
	return s.rate
}

// next is the offset of the request after one due at t.
func (s schedule) next(t time.Duration) time.Duration {
	step := time.Duration(float64(time.Second) / s.rateAt(t))
	if step <= 0 {
		step = 1
	}
	return t + step
}

// count is how many requests the schedule holds in d.
func (s schedule) count(d time.Duration) int64 {
	var n int64
	for t := time.Duration(0); t < d; t = s.next(t) {
		n++
	}
	return n
}

// secondsDur converts seconds to a Duration.
func secondsDur(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
