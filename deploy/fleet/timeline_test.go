package fleet

import (
	"slices"
	"testing"
	"time"
)

func TestRefetchesForNoWrite(t *testing.T) {
	p := &loadPost{lastWrite: time.Now().Add(-time.Hour)}
	l := &Load{posts: []*loadPost{p}}
	from := time.Now()
	read := func(key int, hit bool) { p.readAnswered(key, time.Now(), hit) }
	read(0, false) // first fill: not a refetch
	read(0, true)
	read(0, false) // refetched: a hit before, no write since
	read(0, false) // the same refetch's fill still missing: counted once
	read(1, true)
	p.writing(true)
	read(1, true)  // the old version, before the write commits
	read(1, false) // a write in flight explains it
	p.writing(false)
	read(1, true)
	read(1, false) // within PendingBound of the write: the durable path's
	if n, keys := l.refetched(from, time.Now().Add(time.Second)); n != 1 || keys != 2 {
		t.Errorf("refetched %d of %d keys, want 1 of 2", n, keys)
	}
	if n, _ := l.refetched(time.Now().Add(time.Second), time.Now().Add(2*time.Second)); n != 0 {
		t.Errorf("refetched %d keys after the refetch, want 0", n)
	}
}

func TestHitBackAfter(t *testing.T) {
	r := &ChangeResult{HitBefore: 90, Buckets: []ChangeBucket{{Hit: 88}, {Hit: 60}, {Hit: 84}, {Hit: 86}, {Hit: 91}}}
	// 84 is 6 points down: back for good from the bucket of 86, which ends at 20 s.
	if got := r.HitBackAfter(); got != 20*time.Second {
		t.Errorf("back after %s, want 20s", got)
	}
	r.Buckets = append(r.Buckets, ChangeBucket{Hit: 70})
	if got := r.HitBackAfter(); got >= 0 {
		t.Errorf("back after %s with the last bucket 20 points down", got)
	}
}

func TestOriginRate(t *testing.T) {
	t0 := time.Now()
	o := &originSamples{samples: []originSample{{t0, 0}, {t0.Add(time.Second), 10}, {t0.Add(2 * time.Second), 40}, {t0.Add(3 * time.Second), 40}}}
	for _, c := range []struct {
		from, to time.Duration
		want     float64
	}{
		{0, time.Second, 10},
		{time.Second, 2 * time.Second, 30},
		{500 * time.Millisecond, 1500 * time.Millisecond, 20}, // widened to the readings around
		{2 * time.Second, 10 * time.Second, 0},                // no reading after: the last one
	} {
		if got := o.rate(t0.Add(c.from), t0.Add(c.to)); got != c.want {
			t.Errorf("rate %s..%s = %v, want %v", c.from, c.to, got, c.want)
		}
	}
}

func TestLastPendingWithinTheChange(t *testing.T) {
	t0 := time.Now()
	p := &loadPost{}
	p.pending = []pendingAck{{1, t0.Add(time.Second)}, {2, t0.Add(3 * time.Second)}, {3, t0.Add(9 * time.Second)}}
	l := &Load{posts: []*loadPost{p}}
	if got := l.lastPending(t0.Add(5 * time.Second)); !got.Equal(t0.Add(3 * time.Second)) {
		t.Errorf("last pending before 5 s: %s after, want 3s (the one at 9 s is the undo's)", got.Sub(t0))
	}
}

func TestOriginReadings(t *testing.T) {
	t0 := time.Now()
	o := &originSamples{}
	o.add(t0, map[string]float64{"a": 10, "b": 5})
	o.add(t0.Add(time.Second), map[string]float64{"a": 12}) // b did not answer
	o.add(t0.Add(2*time.Second), map[string]float64{"a": 13, "b": 7})
	o.add(t0.Add(3*time.Second), map[string]float64{"a": 14, "b": 1}) // b restarted
	var got []float64
	for _, s := range o.samples {
		got = append(got, s.total)
	}
	if want := []float64{0, 2, 5, 7}; !slices.Equal(got, want) {
		t.Errorf("totals %v, want %v", got, want)
	}
}
