package bench

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The schedule is fixed intervals from the start, whatever the target does.
func TestDispatchKeepsFixedIntervals(t *testing.T) {
	cfg := testRunConfig("dispatch", []string{"http://127.0.0.1:1"}, 0)
	cfg.Rate = 1000
	cfg.Duration = 50 * time.Millisecond
	gen, err := newGenerator(cfg, 0, rankPermutation(1, 10), rankPermutation(2, 10))
	if err != nil {
		t.Fatal(err)
	}
	jobs := make(chan job, 100)
	start := time.Now()
	n := dispatch(context.Background(), cfg, gen, start, []chan job{jobs})
	close(jobs)
	if n != 50 {
		t.Fatalf("scheduled %d requests in 50 ms at 1000/s, want 50", n)
	}
	i := 0
	for j := range jobs {
		if want := start.Add(time.Duration(i) * time.Millisecond); !j.at.Equal(want) || j.n != int64(i) {
			t.Fatalf("request %d: due %v (n %d), want %v", i, j.at.Sub(start), j.n, want.Sub(start))
		}
		i++
	}
}

// A spike multiplies the rate for its length at the end of each period.
func TestScheduleWithSpike(t *testing.T) {
	sp, err := ParseSpike("1s@3x/4s")
	if err != nil {
		t.Fatal(err)
	}
	s := schedule{rate: 100, spike: sp}
	// Two periods of 3 s at 100/s and 1 s at 300/s; a step that straddles
	// a rate change may add one request per change.
	if got := s.count(8 * time.Second); got < 1200 || got > 1203 {
		t.Fatalf("8 s of 100/s with 1s@3x/4s: %d requests, want 1200 (+ at most 1 per rate change)", got)
	}
	for _, c := range []struct {
		at   time.Duration
		want float64
	}{{0, 100}, {2999 * time.Millisecond, 100}, {3 * time.Second, 300}, {4 * time.Second, 100}, {7500 * time.Millisecond, 300}} {
		if got := s.rateAt(c.at); got != c.want {
			t.Errorf("rate at %v = %g, want %g", c.at, got, c.want)
		}
	}
	for _, bad := range []string{"5s", "5s@3x", "5s@x/30s", "40s@3x/30s", "5s@0x/30s", "5s@3x/-1s"} {
		if _, err := ParseSpike(bad); err == nil {
			t.Errorf("ParseSpike(%q) accepted", bad)
		}
	}
	if sp.String() != "1s@3x/4s" {
		t.Errorf("String() = %q", sp.String())
	}
}

// stallingTarget answers post reads at once, except that when its stall
// channel fires it holds every request, including the ones already waiting,
// until release is closed.
type stallingTarget struct {
	served  atomic.Int64
	stallAt int64
	stalled chan struct{} // closed when the stall begins
	release chan struct{} // the test closes it to end the stall
	once    sync.Once
}

func (s *stallingTarget) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.served.Add(1) == s.stallAt {
		s.once.Do(func() { close(s.stalled) })
	}
	select {
	case <-s.stalled:
		<-s.release
	default:
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"id":1,"version":1}`))
}

// A target that stalls for a second while the open-loop schedule keeps
// going: every request due during the stall waits for it, and since latency
// counts from the due time the stall dominates the p99, although only the
// few requests in flight when it began were slow to be answered once sent.
func TestOpenLoopStallShowsInP99(t *testing.T) {
	target := &stallingTarget{stallAt: 100, stalled: make(chan struct{}), release: make(chan struct{})}
	srv := httptest.NewServer(target)
	defer srv.Close()

	const (
		rate        = 200
		requests    = 600
		connections = 4
		stall       = time.Second
	)
	cfg := testRunConfig("stall", []string{srv.URL}, requests)
	cfg.Rate = rate
	cfg.Duration = 0
	cfg.Connections = connections
	cfg.Reads, cfg.Writes = 1, 0
	cfg.ReadMix = ReadMix{Post: 1}
	seed := &Seed{Tag: "t", Users: []SeedUser{{ID: 1, Token: "x"}}, Posts: []SeedPost{{ID: 1, Version: 1}}}

	go func() {
		<-target.stalled
		time.Sleep(stall)
		close(target.release)
	}()
	res, err := Run(context.Background(), cfg, seed, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	if res.Scheduled != requests || res.Requests != requests || res.Errors != 0 {
		t.Fatalf("scheduled %d, done %d, errors %d (%v); want %d, %d, 0",
			res.Scheduled, res.Requests, res.Errors, res.ErrorKinds, requests, requests)
	}
	// About rate×stall = 200 of the 600 requests were due during the stall
	// and waited for its end: a third of the run, so the p99 sits near the
	// full stall. Half the stall is a safe floor.
	if p99 := res.All.Latency.P99; p99 < float64(stall/2/time.Millisecond) {
		t.Errorf("p99 %.1f ms does not show a %v stall", p99, stall)
	}
	// Measured from the send instead (coordinated omission), only the
	// requests in flight when the stall began — at most `connections` — were
	// slow: the rest waited in the generator, and that wait is in the p99.
	// (The service-time p99 is logged, not asserted: on a loaded machine
	// ordinary requests can be slow too.)
	if res.Wait.P99 < float64(stall/2/time.Millisecond) {
		t.Errorf("wait p99 %.1f ms: the requests due during the stall did not wait for it", res.Wait.P99)
	}
	t.Logf("p50 %.2f ms, p99 %.1f ms, max %.1f ms; service p99 %.2f ms", res.All.Latency.P50, res.All.Latency.P99, res.All.Latency.Max, res.Service.P99)
}

// Several targets share the load round-robin, like a load balancer.
func TestTargetsShareLoad(t *testing.T) {
	a := &stallingTarget{stallAt: -1, stalled: make(chan struct{}), release: make(chan struct{})}
	b := &stallingTarget{stallAt: -1, stalled: make(chan struct{}), release: make(chan struct{})}
	sa, sb := httptest.NewServer(a), httptest.NewServer(b)
	defer sa.Close()
	defer sb.Close()
	cfg := testRunConfig("two", []string{sa.URL, sb.URL}, 400)
	cfg.Rate = 2000
	cfg.Reads, cfg.Writes = 1, 0
	cfg.ReadMix = ReadMix{Post: 1}
	seed := &Seed{Tag: "t", Users: []SeedUser{{ID: 1, Token: "x"}}, Posts: []SeedPost{{ID: 1, Version: 1}}}
	res, err := Run(context.Background(), cfg, seed, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 0 || a.served.Load() != 200 || b.served.Load() != 200 {
		t.Fatalf("errors %d; served %d and %d, want 200 each", res.Errors, a.served.Load(), b.served.Load())
	}
}

// An attack runs on workers and connections of its own: while every one of
// its requests hangs at the target, the mix is still sent and answered, and
// each has its own rows.
func TestAttackDoesNotHoldUpTheMix(t *testing.T) {
	const posts = 200
	var served atomic.Int64
	release := make(chan struct{})
	var releaseOnce sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != postPath(1) { // the attack's missing posts hang
			<-release
			http.Error(w, `{"error":"not_found"}`, http.StatusNotFound)
			return
		}
		if served.Add(1) == posts {
			releaseOnce.Do(func() { close(release) })
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"id":1,"version":1}`))
	}))
	defer srv.Close()
	cfg := testRunConfig("attack", []string{srv.URL}, 0)
	cfg.Rate, cfg.Duration, cfg.Connections = posts, time.Second, 4
	cfg.Reads, cfg.Writes = 1, 0
	cfg.ReadMix = ReadMix{Post: 1}
	cfg.Attack = Attack{Kind: "missing", Rate: 100, Connections: 4}
	seed := &Seed{Tag: "t", Users: []SeedUser{{ID: 1, Token: "x"}}, Posts: []SeedPost{{ID: 1, Version: 1}}}
	done := make(chan *Result)
	go func() {
		res, err := Run(context.Background(), cfg, seed, testWriter{t})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	var res *Result
	select {
	case res = <-done:
	case <-time.After(30 * time.Second):
		releaseOnce.Do(func() { close(release) }) // so that the server can close
		<-done
		t.Fatalf("the mix got %d of %d posts answered while the attack hung: it waits behind the attack", served.Load(), posts)
	}
	ops := map[string]OpStats{}
	for _, s := range res.Ops {
		ops[s.Op] = s
	}
	if p, m := ops["post"], ops["missing"]; p.Count != posts || p.Errors != 0 || m.Count != 100 || m.Errors != 0 {
		t.Fatalf("post %d (%d errors), missing %d (%d errors): want %d, 100, no errors", p.Count, p.Errors, m.Count, m.Errors, posts)
	}
}

func TestParseAttack(t *testing.T) {
	if a, err := ParseAttack("missing=7500"); err != nil || a != (Attack{Kind: "missing", Rate: 7500}) || a.String() != "missing=7500" {
		t.Fatalf("ParseAttack(missing=7500) = %+v, %v", a, err)
	}
	for _, bad := range []string{"post=10", "bust", "bust=0", "bust=-1", "missing=x"} {
		if _, err := ParseAttack(bad); err == nil {
			t.Errorf("ParseAttack(%q) accepted", bad)
		}
	}
}

// The attack's connections come from -attack-from, the mix's from the
// system's choice: the target sees two clients, as per-client budgets need.
func TestAttackComesFromItsOwnAddress(t *testing.T) {
	var mu sync.Mutex
	from := map[string]map[string]bool{} // "mix" or "attack" -> remote IPs
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who := "attack"
		if r.URL.Path == postPath(1) {
			who = "mix"
		}
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		mu.Lock()
		if from[who] == nil {
			from[who] = map[string]bool{}
		}
		from[who][host] = true
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"id":1,"version":1}`))
	}))
	defer srv.Close()
	cfg := testRunConfig("attack-from", []string{srv.URL}, 0)
	cfg.Rate, cfg.Duration, cfg.Connections = 50, 200*time.Millisecond, 2
	cfg.Reads, cfg.Writes = 1, 0
	cfg.ReadMix = ReadMix{Post: 1}
	cfg.Attack = Attack{Kind: "missing", Rate: 50, Connections: 2, From: "127.0.0.2"}
	seed := &Seed{Tag: "t", Users: []SeedUser{{ID: 1, Token: "x"}}, Posts: []SeedPost{{ID: 1, Version: 1}}}
	if _, err := Run(context.Background(), cfg, seed, testWriter{t}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(from["attack"]) != 1 || !from["attack"]["127.0.0.2"] || len(from["mix"]) != 1 || from["mix"]["127.0.0.2"] {
		t.Fatalf("requests came from %v, want the attack from 127.0.0.2 alone and the mix from another address", from)
	}
}
