package bench

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The Zipf sampler's top ranks get the shares Zipf's law predicts, within a
// tolerance from the sample size (five binomial standard deviations).
func TestZipfTopKeyShares(t *testing.T) {
	const (
		n     = 1000
		s     = 1.1
		draws = 200000
	)
	perm := rankPermutation(7, n)
	p, err := newPicker(rand.New(rand.NewPCG(7, 1)), PopularityZipf, s, n, perm)
	if err != nil {
		t.Fatal(err)
	}
	counts := make([]int, n)
	for range draws {
		counts[p.next()]++
	}
	for rank := range 10 {
		want := zipfShare(s, n, rank)
		got := float64(counts[perm[rank]]) / draws
		tol := 5 * math.Sqrt(want*(1-want)/draws)
		if math.Abs(got-want) > tol {
			t.Errorf("rank %d (key %d): share %.4f, want %.4f ± %.4f", rank, perm[rank], got, want, tol)
		}
	}
	// The hottest key under s=1.1 over 1000 keys gets about 1/6 of requests.
	if want := zipfShare(s, n, 0); want < 0.1 || want > 0.3 {
		t.Errorf("zipfShare(rank 0) = %.3f: formula off", want)
	}
}

func TestUniformShares(t *testing.T) {
	const n, draws = 20, 100000
	p, err := newPicker(rand.New(rand.NewPCG(1, 1)), PopularityUniform, 0, n, rankPermutation(1, n))
	if err != nil {
		t.Fatal(err)
	}
	counts := make([]int, n)
	for range draws {
		counts[p.next()]++
	}
	want := 1.0 / n
	tol := 5 * math.Sqrt(want*(1-want)/draws)
	for k, c := range counts {
		if got := float64(c) / draws; math.Abs(got-want) > tol {
			t.Errorf("key %d: share %.4f, want %.4f ± %.4f", k, got, want, tol)
		}
	}
}

// A fixed seed draws the same sequence; another seed does not.
func TestGeneratorRepeatable(t *testing.T) {
	cfg := DefaultRunConfig()
	draw := func(seed uint64) []int {
		cfg.Seed = seed
		g, err := newGenerator(cfg, 0, rankPermutation(seed, 500), rankPermutation(seed+1, 50))
		if err != nil {
			t.Fatal(err)
		}
		var out []int
		for range 1000 {
			op, key := g.next()
			out = append(out, op, key)
		}
		return out
	}
	a, b, c := draw(3), draw(3), draw(4)
	same := func(x, y []int) bool {
		for i := range x {
			if x[i] != y[i] {
				return false
			}
		}
		return true
	}
	if !same(a, b) {
		t.Error("same seed, different sequences")
	}
	if same(a, c) {
		t.Error("different seeds, same sequence")
	}
}

// The op mix follows the read:write ratio and the weights.
func TestGeneratorMix(t *testing.T) {
	cfg := DefaultRunConfig()
	cfg.Reads, cfg.Writes = 100, 1
	cfg.ReadMix = ReadMix{Post: 60, List: 20, Profile: 10, Bust: 6, Missing: 4}
	cfg.WriteMix = WriteMix{Edit: 1, Create: 1}
	g, err := newGenerator(cfg, 0, rankPermutation(1, 100), rankPermutation(2, 10))
	if err != nil {
		t.Fatal(err)
	}
	const draws = 404000
	var counts [numOps]int
	for range draws {
		op, _ := g.next()
		counts[op]++
	}
	want := [numOps]float64{opPost: 0.6 * 100 / 101, opList: 0.2 * 100 / 101, opProfile: 0.1 * 100 / 101,
		opBust: 0.06 * 100 / 101, opMissing: 0.04 * 100 / 101, opEdit: 0.5 / 101, opCreate: 0.5 / 101}
	for op, w := range want {
		got := float64(counts[op]) / draws
		if tol := 5 * math.Sqrt(w*(1-w)/draws); math.Abs(got-w) > tol {
			t.Errorf("%s: share %.5f, want %.5f ± %.5f", opNames[op], got, w, tol)
		}
	}
}

// topKeysFor agrees with a brute-force count, and harmonic's tail
// approximation with the exact sum.
func TestTopKeysAndHarmonic(t *testing.T) {
	const s, n = 1.1, 5000
	for _, share := range []float64{0.5, 0.8, 0.9, 0.99} {
		got := topKeysFor(s, n, share)
		total := harmonic(s, n)
		sum, k := 0.0, 0
		for sum/total < share {
			k++
			sum += math.Pow(float64(k), -s)
		}
		if got != k {
			t.Errorf("topKeysFor(%g) = %d, brute force %d", share, got, k)
		}
	}
	exact := 0.0
	for i := 1; i <= 200000; i++ {
		exact += math.Pow(float64(i), -s)
	}
	if got := harmonic(s, 200000); math.Abs(got-exact)/exact > 1e-9 {
		t.Errorf("harmonic(200000) = %.12f, exact %.12f", got, exact)
	}
	if _, err := newPicker(rand.New(rand.NewPCG(1, 1)), PopularityZipf, 1.0, 10, rankPermutation(1, 10)); err == nil {
		t.Error("zipf with s = 1 accepted (rand.NewZipf needs s > 1)")
	}
}
