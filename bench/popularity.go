package bench

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Popularity names how keys are chosen: "zipf" (a few hot keys get most
// requests, as on real sites) or "uniform".
const (
	PopularityZipf    = "zipf"
	PopularityUniform = "uniform"
)

// picker draws key indexes in [0, n). Rank 0 is the most popular key under
// Zipf; ranks are mapped to indexes through a fixed permutation so that the
// hot keys are spread over the key space (not all the oldest posts).
type picker struct {
	n    int
	zipf *rand.Zipf // nil for uniform
	rng  *rand.Rand
	perm []int32
}

// newPicker builds a picker over n keys. perm must come from rankPermutation
// with the same n, shared by every picker of one run so that all workers agree
// on which keys are hot.
func newPicker(rng *rand.Rand, popularity string, s float64, n int, perm []int32) (*picker, error) {
	if n <= 0 {
		return nil, fmt.Errorf("no keys to pick from")
	}
	p := &picker{n: n, rng: rng, perm: perm}
	switch popularity {
	case PopularityUniform:
	case PopularityZipf:
		// rand.NewZipf returns nil unless s > 1: P(k) ∝ (1+k)^-s.
		if !(s > 1) {
			return nil, fmt.Errorf("zipf exponent must be > 1, got %g", s)
		}
		p.zipf = rand.NewZipf(rng, s, 1, uint64(n-1))
	default:
		return nil, fmt.Errorf("popularity %q: want %q or %q", popularity, PopularityZipf, PopularityUniform)
	}
	return p, nil
}

// rank draws a popularity rank: 0 is the hottest key.
func (p *picker) rank() int {
	if p.zipf == nil {
		return p.rng.IntN(p.n)
	}
	return int(p.zipf.Uint64())
}

// next draws a key index.
func (p *picker) next() int {
	return int(p.perm[p.rank()])
}

// rankPermutation maps popularity ranks to key indexes, fixed by seed.
func rankPermutation(seed uint64, n int) []int32 {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	perm := make([]int32, n)
	for i := range perm {
		perm[i] = int32(i)
	}
	rng.Shuffle(n, func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
	return perm
}

// zipfShare is the expected share of requests that go to rank k (0-based)
// among n keys under the sampler above: (1+k)^-s / Σ_{i<n} (1+i)^-s.
func zipfShare(s float64, n, k int) float64 {
	return math.Pow(float64(1+k), -s) / harmonic(s, n)
}

// harmonic is the generalised harmonic number H(n, s) = Σ_{i=1..n} i^-s.
// Exact for small n; beyond that the tail is the Euler–Maclaurin
// approximation, accurate to far better than the figures it feeds.
func harmonic(s float64, n int) float64 {
	const exact = 10000
	sum := 0.0
	for i := 1; i <= n && i <= exact; i++ {
		sum += math.Pow(float64(i), -s)
	}
	if n <= exact {
		return sum
	}
	// Σ_{i=a+1..b} i^-s ≈ ∫_a^b x^-s dx + (b^-s − a^-s)/2
	a, b := float64(exact), float64(n)
	integral := 0.0
	if s == 1 {
		integral = math.Log(b / a)
	} else {
		integral = (math.Pow(b, 1-s) - math.Pow(a, 1-s)) / (1 - s)
	}
	return sum + integral + (math.Pow(b, -s)-math.Pow(a, -s))/2
}

// topKeysFor is the smallest number of hottest keys that receive at least the
// share (0..1) of requests among n keys under Zipf(s), found by bisection on
// the harmonic numbers.
func topKeysFor(s float64, n int, share float64) int {
	if share >= 1 {
		return n
	}
	total := harmonic(s, n)
	lo, hi := 1, n
	for lo < hi {
		mid := lo + (hi-lo)/2
		if harmonic(s, mid)/total >= share {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}
