package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// job is one scheduled request: what to do, to which key, and when it was due.
type job struct {
	n   int64 // sequence number; picks the target round-robin
	op  int
	key int // post index (post, edit) or user index (list, profile, create)
	at  time.Time
}

// generator draws the next operation and key. A run with a fixed seed draws
// the same sequence: open loop uses one generator for the whole schedule,
// closed loop one per worker, seeded by the worker's number.
type generator struct {
	rng   *rand.Rand
	cum   [numOps]float64 // cumulative operation weights, last = 1
	posts *picker
	users *picker
}

func newGenerator(cfg RunConfig, stream uint64, postPerm, userPerm []int32) (*generator, error) {
	rng := rand.New(rand.NewPCG(cfg.Seed, stream))
	g := &generator{rng: rng}
	var err error
	if g.posts, err = newPicker(rng, cfg.Popularity, cfg.ZipfS, len(postPerm), postPerm); err != nil {
		return nil, err
	}
	if g.users, err = newPicker(rng, cfg.Popularity, cfg.ZipfS, len(userPerm), userPerm); err != nil {
		return nil, err
	}
	total := float64(cfg.Reads + cfg.Writes)
	readShare, writeShare := float64(cfg.Reads)/total, float64(cfg.Writes)/total
	rm, wm := cfg.ReadMix, cfg.WriteMix
	rsum, wsum := max(rm.sum(), 1e-300), max(wm.Edit+wm.Create, 1e-300)
	weights := [numOps]float64{
		opPost:    readShare * rm.Post / rsum,
		opList:    readShare * rm.List / rsum,
		opProfile: readShare * rm.Profile / rsum,
		opBust:    readShare * rm.Bust / rsum,
		opMissing: readShare * rm.Missing / rsum,
		opEdit:    writeShare * wm.Edit / wsum,
		opCreate:  writeShare * wm.Create / wsum,
	}
	sum := 0.0
	for i, w := range weights {
		sum += w
		g.cum[i] = sum
	}
	for i := range g.cum {
		g.cum[i] /= sum
	}
	return g, nil
}

func (g *generator) next() (op, key int) {
	x := g.rng.Float64()
	op = numOps - 1
	for i, c := range g.cum {
		if x < c {
			op = i
			break
		}
	}
	switch op {
	case opPost, opEdit, opBust:
		return op, g.posts.next()
	case opMissing:
		return op, 0 // the id comes from the run's scan (worker.do)
	default:
		return op, g.users.next()
	}
}

// missingPostBase is where the id scan of missing posts starts.
const missingPostBase = 1 << 40

// runState is what the workers of one run share.
type runState struct {
	cfg     RunConfig
	seed    *Seed
	targets []*target
	// attackTargets are the attack's own connection pools to the targets.
	attackTargets []*target
	// auth is each user's Authorization value, made once rather than at
	// every write.
	auth    []string
	acks    *acks
	tl      *timeline
	retries atomic.Int64
	bodies  atomic.Int64 // numbers write bodies so they differ
	scan    atomic.Int64 // the id scan of missing posts: the next offset
	started atomic.Int64 // closed loop: requests started, for -requests
}

// Run seeds nothing: it drives the workload against cfg.Targets using seed,
// and returns every figure it measured. Progress goes to progress (stderr).
// Cancelling ctx ends the run early; the result still counts what was
// scheduled and not sent.
func Run(ctx context.Context, cfg RunConfig, seed *Seed, progress io.Writer) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	st := &runState{cfg: cfg, seed: seed, acks: newAcks(seed)}
	for _, u := range seed.Users {
		st.auth = append(st.auth, "Bearer "+u.Token)
	}
	for _, base := range cfg.Targets {
		t, err := newTarget(base, cfg.Connections, cfg.Timeout, &st.retries)
		if err != nil {
			return nil, err
		}
		st.targets = append(st.targets, t)
	}
	postPerm := rankPermutation(cfg.Seed, len(seed.Posts))
	userPerm := rankPermutation(cfg.Seed+1, len(seed.Users))
	var err error
	if _, err = newGenerator(cfg, 0, postPerm, userPerm); err != nil {
		return nil, err
	}

	if cfg.Attack.Rate > 0 {
		if err = st.attackPools(); err != nil {
			return nil, err
		}
	}
	// Everything is allocated before the start: the first requests are
	// due then.
	st.tl = newTimeline(time.Time{})
	rec := newRecorder(st.tl)
	before := scrapeAll(cfg.Metrics, cfg.Timeout)
	cpuBefore := processCPU()
	start := time.Now()
	st.tl.start = start
	stopProgress := startProgressLine(progress, st.tl, cfg)
	var scheduled int64
	if cfg.Rate > 0 {
		scheduled = st.openLoop(ctx, rec, start, postPerm, userPerm)
	} else {
		st.closedLoop(ctx, rec, start, postPerm, userPerm)
	}
	end := time.Now()
	rec.flush()
	stopProgress()
	cpuAfter := processCPU()
	after := scrapeAll(cfg.Metrics, cfg.Timeout)

	res := assemble(st, rec, start, end, scheduled)
	res.Client = cpuAfter.since(cpuBefore, end.Sub(start), res.Requests)
	res.Metrics = metricsReports(cfg.Metrics, before, after, end.Sub(start))
	res.derive()
	st.acks.lowerBounds(seed)
	return res, nil
}

// openLoop sends the schedule from start through one worker per
// connection, and returns how many requests it scheduled once every worker
// is done. With an attack, the attack's schedule goes to workers of its
// own, over connections of its own (st.attackTargets).
func (st *runState) openLoop(ctx context.Context, rec *recorder, start time.Time, postPerm, userPerm []int32) int64 {
	// drainCtx ends when the run is interrupted, or Drain after the schedule
	// ends: requests still queued then are counted as not sent.
	drainCtx, cancelDrain := context.WithCancel(ctx)
	defer cancelDrain()
	var wg sync.WaitGroup
	// Each target has a queue of its own and conns workers taking from it.
	startWorkers := func(conns int, targets []*target) []chan job {
		queues := make([]chan job, len(targets))
		for i, t := range targets {
			jobs := make(chan job, 1<<16)
			queues[i] = jobs
			for range conns {
				w := newWorker(st, rec, t)
				wg.Go(func() {
					defer w.release()
					for j := range jobs {
						if drainCtx.Err() != nil {
							w.notSent(j, ctx)
							continue
						}
						w.do(j)
					}
				})
			}
		}
		return queues
	}
	var scheduled atomic.Int64
	var dispatchers sync.WaitGroup
	schedule := func(cfg RunConfig, stream uint64, queues []chan job) {
		dispatchers.Go(func() {
			gen, _ := newGenerator(cfg, stream, postPerm, userPerm)
			scheduled.Add(dispatch(ctx, cfg, gen, start, queues))
			for _, q := range queues {
				close(q)
			}
		})
	}
	schedule(st.cfg, 0, startWorkers(st.cfg.Connections, st.targets))
	if st.cfg.Attack.Rate > 0 {
		schedule(st.cfg.attackConfig(), 1, startWorkers(st.cfg.Attack.Connections, st.attackTargets))
	}
	dispatchers.Wait()
	if ctx.Err() == nil {
		time.AfterFunc(st.cfg.Drain, cancelDrain)
	}
	wg.Wait()
	return scheduled.Load()
}

// attackConfig is the run's configuration for the attack's schedule: its
// rate, steady, every request of its kind.
func (c RunConfig) attackConfig() RunConfig {
	a := c
	a.Rate, a.Spike, a.Requests = c.Attack.Rate, Spike{}, 0
	a.Reads, a.Writes = 1, 0
	a.ReadMix = ReadMix{}
	switch c.Attack.Kind {
	case "bust":
		a.ReadMix.Bust = 1
	case "missing":
		a.ReadMix.Missing = 1
	}
	return a
}

// attackPools makes the attack's connection pools.
func (st *runState) attackPools() error {
	cfg := st.cfg
	for _, base := range cfg.Targets {
		t, err := newTarget(base, cfg.Attack.Connections, cfg.Timeout, &st.retries)
		if err != nil {
			return err
		}
		if cfg.Attack.From != "" {
			t.dialFrom(cfg.Attack.From)
		}
		st.attackTargets = append(st.attackTargets, t)
	}
	return nil
}

// closedLoop has one worker per connection send its next request as soon
// as the last one is answered, until the run's duration or request count
// is reached, and returns when every worker is done.
func (st *runState) closedLoop(ctx context.Context, rec *recorder, start time.Time, postPerm, userPerm []int32) {
	cfg := st.cfg
	deadline := start.Add(cfg.Duration)
	var wg sync.WaitGroup
	for i := range cfg.Connections * len(st.targets) {
		w := newWorker(st, rec, st.targets[i%len(st.targets)])
		gen, _ := newGenerator(cfg, uint64(i)+1, postPerm, userPerm)
		wg.Go(func() {
			defer w.release()
			for ctx.Err() == nil {
				now := time.Now()
				if cfg.Duration > 0 && !now.Before(deadline) {
					return
				}
				n := st.started.Add(1)
				if cfg.Requests > 0 && n > cfg.Requests {
					return
				}
				op, key := gen.next()
				w.do(job{n: n, op: op, key: key, at: now})
			}
		})
	}
	wg.Wait()
}

// metricsReports is what each source's counters did between the scrapes
// before and after the run.
func metricsReports(sources []MetricsSource, before, after []scrapeResult, elapsed time.Duration) []MetricsReport {
	var out []MetricsReport
	for i, src := range sources {
		m := MetricsReport{Source: src}
		switch {
		case before[i].err != nil:
			m.Error = "before: " + before[i].err.Error()
		case after[i].err != nil:
			m.Error = "after: " + after[i].err.Error()
		default:
			m.Metrics = diffMetrics(before[i].values, after[i].values, elapsed)
		}
		out = append(out, m)
	}
	return out
}

// dispatch hands out the open-loop schedule: request i is due at a fixed
// offset from start whatever happened before it, and carries that due time,
// from which its latency counts. When the dispatcher wakes up late (or the
// queue is full because every connection is stuck) it sends the overdue
// requests at once, still stamped with their due times. It returns how many
// requests it scheduled. Request i goes to queue i mod len(queues): one
// queue per target, round-robin as a load balancer spreads them.
func dispatch(ctx context.Context, cfg RunConfig, gen *generator, start time.Time, queues []chan job) int64 {
	sched := schedule{rate: cfg.Rate, spike: cfg.Spike}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var n int64
	for off := time.Duration(0); ; off = sched.next(off) {
		if (cfg.Duration > 0 && off >= cfg.Duration) || (cfg.Requests > 0 && n >= cfg.Requests) {
			return n
		}
		at := start.Add(off)
		if d := time.Until(at); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				return n
			case <-timer.C:
			}
		}
		op, key := gen.next()
		select {
		case queues[n%int64(len(queues))] <- job{n: n, op: op, key: key, at: at}:
		case <-ctx.Done():
			return n
		}
		n++
	}
}

// worker sends requests to one target over a connection of its own, one
// at a time.
type worker struct {
	st   *runState
	conn httpConn
	rec  *recorder
	uri  []byte       // the request's path and query, reused
	page []listedPost // the last list page read, reused
}

func newWorker(st *runState, rec *recorder, t *target) *worker {
	return &worker{st: st, conn: httpConn{t: t}, rec: rec}
}

func (w *worker) release() { w.conn.closeConn() }

// notSent records a scheduled request that was never sent: its latency is at
// least the time it waited, and it counts as an error of its kind.
func (w *worker) notSent(j job, ctx context.Context) {
	why := "not sent: backlog at end of run"
	if ctx.Err() != nil {
		why = "not sent: run interrupted"
	}
	now := time.Now()
	w.rec.record(&result{op: j.op, scheduled: j.at, sent: now, done: now, errKind: why, check: -1})
}

// do sends one request, judges the answer and records it.
func (w *worker) do(j job) {
	st := w.st
	c := &w.conn
	t := c.t
	res := result{op: j.op, scheduled: j.at, check: -1}
	want := 200
	method, auth, body := "GET", "", []byte(nil)
	// The path is appended to a reused buffer: nothing is allocated for
	// a read.
	uri := append(w.uri[:0], t.prefix...)
	switch j.op {
	case opPost:
		uri = appendID(append(uri, "/v1/posts/"...), st.seed.Posts[j.key].ID)
	case opList:
		uri = appendID(append(uri, "/v1/users/"...), st.seed.Users[j.key].ID)
		uri = appendID(append(uri, "/posts?limit="...), int64(st.cfg.ListLimit))
	case opProfile:
		uri = appendID(append(uri, "/v1/users/"...), st.seed.Users[j.key].ID)
	case opBust:
		uri = appendID(append(uri, "/v1/posts/"...), st.seed.Posts[j.key].ID)
		uri = strconv.AppendUint(append(uri, "?cb="...), rand.Uint64(), 36)
	case opMissing:
		// Far above every seeded or created id: each request a post
		// never read before, as a crawler over deleted posts.
		uri = appendID(append(uri, "/v1/posts/"...), missingPostBase+st.scan.Add(1))
		want = 404
	case opEdit:
		p := st.seed.Posts[j.key]
		uri = appendID(append(uri, "/v1/posts/"...), p.ID)
		method, auth, body = "PUT", st.auth[p.User], w.body()
	case opCreate:
		uri = appendID(append(uri, "/v1/users/"...), st.seed.Users[j.key].ID)
		uri = append(uri, "/posts"...)
		method, auth, body = "POST", st.auth[j.key], w.body()
		want = 201
	}
	w.uri = uri
	// The read-after-write check judges a read by what was acknowledged
	// before it was sent.
	seq := st.acks.now()
	res.sent = time.Now()
	err := c.exchange(method, uri, auth, body, st.cfg.Timeout, &st.retries)
	res.done = time.Now()
	switch {
	case err != nil:
		res.errKind = errorKind(err, 0)
	case c.head.status != want:
		res.errKind = errorKind(nil, c.head.status)
	default:
		res.bytes = len(c.body)
		if isRead(j.op) {
			res.outcome = cacheOutcome(c.head.cacheStatus, c.head.otherCache())
		}
		res.errKind = w.judge(j, seq, c.body, &res)
	}
	w.rec.record(&res)
}

// otherCache is the X-Cache-Status or X-Cache header other caches send.
func (h *responseHead) otherCache() []byte {
	if len(h.xCacheStatus) > 0 {
		return h.xCacheStatus
	}
	return h.xCache
}

// appendID appends a decimal id.
func appendID(b []byte, id int64) []byte { return strconv.AppendInt(b, id, 10) }

// judge decodes a successful answer: a write's acknowledgement is logged, a
// read is checked against the log. It returns an error kind for an answer
// the bench cannot understand.
func (w *worker) judge(j job, seq int64, body []byte, res *result) string {
	st := w.st
	switch j.op {
	case opPost, opBust:
		p, ok := parsePost(body)
		if !ok || p.version <= 0 {
			return "bad answer: post without version"
		}
		res.check = checkItem
		id := st.seed.Posts[j.key].ID
		var want int64
		if res.stale, want = st.acks.staleItem(seq, id, p.version); res.stale {
			res.staleWhy = fmt.Sprintf("GET %s showed version %d, version %d was acknowledged before it was sent", postPath(id), p.version, want)
		}
	case opMissing: // a 404 has nothing to check
	case opList:
		var ok bool
		if w.page, ok = parseList(body, w.page[:0]); !ok {
			return "bad answer: list"
		}
		res.check = checkList
		var why string
		if res.stale, why = st.acks.staleList(seq, j.key, w.page, st.cfg.ListLimit); res.stale {
			res.staleWhy = "GET " + userPostsPath(st.seed.Users[j.key].ID) + ": " + why
		}
	case opProfile:
		u, ok := parsePost(body)
		if !ok || u.postCount < 0 {
			return "bad answer: user without post_count"
		}
		res.check = checkProfile
		var want int64
		if res.stale, want = st.acks.staleProfile(seq, j.key, u.postCount); res.stale {
			res.staleWhy = fmt.Sprintf("GET %s showed post_count %d, creates acknowledged before it was sent imply %d", userPath(st.seed.Users[j.key].ID), u.postCount, want)
		}
	case opEdit:
		p, ok := parsePost(body)
		if !ok || p.version <= 0 {
			return "bad answer: edited post without version"
		}
		st.acks.edited(st.seed.Posts[j.key].ID, p.version)
	case opCreate:
		p, ok := parsePost(body)
		if !ok || p.id <= 0 || p.version <= 0 {
			return "bad answer: new post without id or version"
		}
		st.acks.createdBy(j.key, p.id, p.version)
	}
	return ""
}

// body is a fresh write body of the configured size; it keeps the seed's tag
// so the seed file stays verifiable.
func (w *worker) body() []byte {
	return postBody(w.st.seed.Tag+" w", w.st.bodies.Add(1), w.st.cfg.BodyBytes)
}

// scrapeResult is one source's scrape, or why it failed.
type scrapeResult struct {
	values map[string]float64
	err    error
}

func scrapeAll(sources []MetricsSource, timeout time.Duration) []scrapeResult {
	out := make([]scrapeResult, len(sources))
	var wg sync.WaitGroup
	for i, s := range sources {
		wg.Go(func() {
			out[i].values, out[i].err = scrape(s.URL, timeout)
		})
	}
	wg.Wait()
	return out
}

// startProgressLine prints, once a second until the returned stop is
// called, what the last second did (answers per second, its p99) beside the
// run so far (answers, errors, p99 of every answer so far), labelled:
//
//	proxy 12s  last 1s: 1000/s p99 2.1ms  |  so far: 12000 answered, 0 errors, p99 1.9ms
//
// On a terminal it rewrites one line; elsewhere (a log, CI) it writes one
// line every 5 s and never a carriage return.
func startProgressLine(w io.Writer, tl *timeline, cfg RunConfig) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	tty := isTerminal(w)
	wg.Go(func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		var last int64
		lastAt := tl.start
		for i := 1; ; i++ {
			select {
			case <-done:
				if tty {
					fmt.Fprintln(w)
				}
				return
			case now := <-tick.C:
				n := tl.done.Load()
				rate := float64(n-last) / now.Sub(lastAt).Seconds()
				last, lastAt = n, now
				if !tty && i%5 != 0 {
					continue
				}
				line := fmt.Sprintf("%s %3.0fs  last 1s: %.0f/s p99 %s  |  so far: %d answered, %d errors, p99 %s",
					cfg.Name, now.Sub(tl.start).Seconds(), rate, fmtDur(tl.p99LastSecond(now)), n, tl.errors.Load(), fmtDur(tl.p99SoFar()))
				if tty {
					fmt.Fprintf(w, "\r%s\x1b[K", line)
				} else {
					fmt.Fprintln(w, line)
				}
			}
		}
	})
	return func() { close(done); wg.Wait() }
}
