package proxy

// The seeded fault simulator of the read-after-write guarantee
// (proxy/PROTOCOL.md): several real proxies over one memstore, with their
// lease holders and notifiers, the invalidator's apply loop, and the
// origin of simworld_test.go, driven by a schedule drawn from a seed:
// reads, writes, time passing, and faults. After every read it checks the
// invariant against the history of acknowledged writes. A failing seed
// prints its schedule; `make simulate SEED=<n>` replays it.
//
// Steps run one at a time on the test's goroutine, so a seed replays the
// same schedule; interleavings come from the faults themselves (a write
// landed inside a fill, at the store's hook) and from what falls due while
// a mover waits on the simulated clock.

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"edgecache/proxy/invalidator"
	"edgecache/proxy/lease"
	"edgecache/proxy/store"
	"edgecache/proxy/store/memstore"
)

var (
	simSeed  = flag.Uint64("sim.seed", 0, "simulate only this seed, printing its schedule (make simulate SEED=n)")
	simSeeds = flag.Int("sim.seeds", 30, "seeds TestSimulate explores (make test's budget)")
	simFor   = flag.Duration("sim.for", 0, "explore seeds for this long instead (make simulate SIMTIME=30m)")
	simSteps = flag.Int("sim.steps", 400, "steps of one schedule")
)

// The protocol's constants, as deployed by default.
const (
	simLease       = time.Second            // PROXY_LEASE_DURATION, INVALIDATOR_LEASE_DURATION
	simPeerTimeout = 200 * time.Millisecond // PROXY_PEER_TIMEOUT
	simPoll        = 10 * time.Millisecond  // INVALIDATOR_POLL_INTERVAL
	// simBound is what "Edgecache-Invalidation: pending" promises: the
	// durable path has moved the write's groups and every lease holder has
	// been told or has lost its lease, this long after the answer, or
	// after memcached is whole again, whichever is later.
	simBound  = simPoll + simPeerTimeout + simLease
	simNodes  = 3
	simPosts  = 4
	simAbsent = simPosts - 1 // the post that does not exist until created, and is deleted and created again
)

func TestSimulate(t *testing.T) {
	if *simSeed != 0 {
		if v := simulate(t, *simSeed, *simSteps, true); v != "" {
			t.Fatal(v)
		}
		return
	}
	start := time.Now()
	seeds, steps := 0, 0
	for seed := uint64(1); ; seed++ {
		if *simFor > 0 && time.Since(start) > *simFor || *simFor == 0 && seeds == *simSeeds {
			break
		}
		if v := simulate(t, seed, *simSteps, false); v != "" {
			t.Fatalf("seed %d: %s\nreplay: make simulate SEED=%d", seed, v, seed)
		}
		seeds++
		steps += *simSteps
	}
	el := time.Since(start)
	t.Logf("%d schedules of %d steps in %s: %.1f schedules/s, %.0f steps/s", seeds, *simSteps, el.Round(time.Millisecond),
		float64(seeds)/el.Seconds(), float64(steps)/el.Seconds())
}

// simProc is one proxy process: its holder advertises addr.
type simProc struct {
	p      *Proxy
	h      *lease.Holder
	id     string
	addr   string
	paused bool      // stopped (SIGSTOP): no renewals, no requests
	renew  time.Time // its next renewal
}

type simWorld struct {
	t     testing.TB
	rng   *rand.Rand
	clock *simClock
	st    *memstore.Store
	db    *simDB
	o     *simOrigin
	link  *simLink
	inv   *invalidator.Applier
	invN  *lease.Notifier // the invalidator's
	procs []*simProc
	gen   int // processes started, for ids

	nextRound time.Time // the invalidator's next round
	inRound   bool
	invDown   bool // the invalidator is not running (failover)
	depth     int  // steps running inside another one (a write inside a fill)
	down      [simNodes]bool
	upAt      [simNodes]time.Time // a node down comes back then (a stall, a restart with its contents)
	whole     time.Time           // when memcached last became whole (every node up)

	acked   map[int][]simAck // per resource (post n, the list -1): acknowledged writes
	entries map[string]int   // memcached entry key -> resource
	seq     int              // events of the history so far (answers to writes, starts of reads)
	trace   []string
	verbose bool
	failure string
}

type simAck struct {
	version uint64
	at      time.Time
	seq     int // the history's order: a read whose seq is lower began before the answer
	pending bool
}

func simulate(t testing.TB, seed uint64, steps int, verbose bool) string {
	w := newSimWorld(t, seed, verbose)
	defer w.close()
	n := 2 + w.rng.IntN(3)
	for range n {
		w.startProc(len(w.procs), "")
	}
	for i := 0; i < steps && w.failure == ""; i++ {
		w.step()
	}
	if verbose {
		for _, sp := range w.procs {
			free, checked := sp.h.Hits()
			w.t.Logf("%s: L1 hits free %d, checked %d, held %v, renewals %d", sp.id, free, checked, sp.h.Held(), sp.h.Renewals())
		}
	}
	if w.failure != "" {
		return w.failure + "\nschedule:\n  " + strings.Join(w.trace, "\n  ")
	}
	return ""
}

func newSimWorld(t testing.TB, seed uint64, verbose bool) *simWorld {
	w := &simWorld{t: t, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), st: memstore.New(simNodes),
		db: &simDB{}, link: &simLink{at: map[string]*lease.Holder{}, lose: map[string]bool{}, late: map[string]bool{}},
		acked: map[int][]simAck{}, entries: map[string]int{}, verbose: verbose}
	w.clock = &simClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), w: w}
	w.whole = w.clock.Now()
	var err error
	if w.o, err = newSimOrigin(w.db); err != nil {
		t.Fatal(err)
	}
	for r := -1; r < simPosts; r++ {
		w.entries[store.EntryKey(w.primary(r))] = r
		if r >= 0 {
			w.entries[store.GroupKey("post/"+strconv.Itoa(r))] = r
		}
	}
	icfg := invalidator.Config{Batch: 1000, MoveConcurrency: 1, PollInterval: simPoll, RetryMax: 2 * time.Second}
	w.inv = invalidator.NewApplier(icfg, memMover{w.st}, w.notifyAll, w.clock, zap.NewNop())
	w.st.Before(w.hook)
	return w
}

func (w *simWorld) close() {
	for _, p := range w.procs {
		w.stopProc(p)
	}
	w.o.srv.Shutdown()
}

// memMover moves groups in memstore as *store.Store does for the invalidator.
type memMover struct{ st *memstore.Store }

func (m memMover) Move(group string, version uint64) error {
	return m.st.Move(group, version)
}

func (m memMover) FlushAll() error {
	for n := range m.st.Nodes() {
		if !m.st.NodeUp(n) {
			return store.ErrUnavailable
		}
		m.st.Flush(n)
	}
	return nil
}

// notifyAll is the invalidator's notifier: a process of its own (no
// holder), reading the registry and telling the holders over the link.
func (w *simWorld) notifyAll(groups []string) error {
	keys := make([]string, len(groups))
	for i, g := range groups {
		keys[i] = store.GroupKey(g)
	}
	return w.invNotifier().Notify(keys)
}

func (w *simWorld) invNotifier() *lease.Notifier {
	if w.invN == nil {
		w.invN = lease.NewNotifier(lease.NotifierConfig{Secret: "sim", Duration: simLease, Timeout: simPeerTimeout, Link: w.link, Clock: w.clock},
			w.st, zap.NewNop(), metrics.NewSet(), "sim")
	}
	return w.invN
}

func (w *simWorld) logf(format string, args ...any) {
	line := fmt.Sprintf("%8.3fs ", w.clock.Now().Sub(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)).Seconds()) +
		strings.Repeat("  ", w.depth) + fmt.Sprintf(format, args...)
	w.trace = append(w.trace, line)
	if w.verbose {
		w.t.Log(line)
	}
}

func (w *simWorld) primary(resource int) string {
	if resource < 0 {
		return "http://edge.test/l"
	}
	return "http://edge.test/p/" + strconv.Itoa(resource)
}

func (w *simWorld) path(resource int) string {
	return strings.TrimPrefix(w.primary(resource), "http://edge.test")
}

// startProc starts a proxy process in slot i; addr "" gives it an address
// of its own.
func (w *simWorld) startProc(i int, addr string) {
	w.gen++
	id := "p" + strconv.Itoa(w.gen)
	if addr == "" {
		addr = "10.0.0." + strconv.Itoa(w.gen) + ":8082"
	}
	cfg := memConfig(w.o.url())
	cfg.PeerSecret = "" // the simulator wires the lease itself, on its clock
	cfg.CoalesceWait, cfg.LeasePoll = time.Millisecond, time.Millisecond
	cfg.OriginTimeout, cfg.OriginReadTimeout = 5*time.Second, 2*time.Second
	log := zap.NewNop()
	if w.verbose {
		log = zaptest.NewLogger(w.t, zaptest.Level(zap.WarnLevel))
	}
	p, err := start(cfg, log, newMetricSet(cfg.CacheName), w.st)
	if err != nil {
		w.t.Fatal(err)
	}
	h, err := lease.NewHolder(lease.HolderConfig{ID: id, Advertise: addr, Duration: simLease, Secret: "sim", Clock: w.clock},
		w.st, zap.NewNop(), metrics.NewSet(), "sim")
	if err != nil {
		w.t.Fatal(err)
	}
	p.lease = h
	p.notifier = lease.NewNotifier(lease.NotifierConfig{Secret: "sim", Duration: simLease, Timeout: simPeerTimeout,
		Self: h, Link: w.link, Clock: w.clock}, w.st, zap.NewNop(), metrics.NewSet(), "sim")
	sp := &simProc{p: p, h: h, id: id, addr: addr, renew: w.clock.Now()}
	if i == len(w.procs) {
		w.procs = append(w.procs, sp)
	} else {
		w.procs[i] = sp
	}
	w.link.mu.Lock()
	w.link.at[addr] = h
	w.link.mu.Unlock()
	w.logf("start %s at %s", id, addr)
}

func (w *simWorld) stopProc(sp *simProc) {
	w.link.mu.Lock()
	if w.link.at[sp.addr] == sp.h {
		delete(w.link.at, sp.addr)
	}
	w.link.mu.Unlock()
	// Killed: it leaves nothing behind on purpose (no Leave from the
	// registry, no replay of queued moves), and waits for nothing.
	sp.p.stopOnce.Do(func() { close(sp.p.stop) })
	sp.p.ln.Close()
	sp.p.adminLn.Close()
}

// advance lets d pass, running what falls due on the way in time order.
func (w *simWorld) advance(d time.Duration) {
	end := w.clock.Now().Add(d)
	for {
		at, run := w.nextDue(end)
		if run == nil {
			break
		}
		w.clock.set(at)
		run()
	}
	w.clock.set(end)
}

// nextDue is the earliest thing due by end: a renewal, a late message, an
// invalidator round.
func (w *simWorld) nextDue(end time.Time) (time.Time, func()) {
	var at time.Time
	var run func()
	consider := func(t time.Time, f func()) {
		if !t.After(end) && (run == nil || t.Before(at)) {
			at, run = t, f
		}
	}
	for _, sp := range w.procs {
		if !sp.paused {
			consider(sp.renew, func() {
				sp.renew = w.clock.Now().Add(simLease / 3)
				sp.h.Renew()
			})
		}
	}
	for n := range w.down {
		if w.down[n] {
			consider(w.upAt[n], func() { w.setDown(n, false) })
		}
	}
	if len(w.link.delayed) > 0 {
		consider(w.clock.Now(), w.link.deliverLate)
	}
	if !w.inRound && !w.invDown {
		consider(w.nextRound, w.round)
	}
	return at, run
}

func (w *simWorld) round() {
	w.inRound = true
	defer func() { w.inRound = false }()
	w.nextRound = w.clock.Now().Add(simPoll)
	if w.db.backlog() > 0 {
		w.inv.Round(w.db)
	}
}

// hook is memstore's: a write landed at an exact point of a fill (its
// lease taken, a group of its taken, before or after the fetch, its entry
// about to be stored), on the step's goroutine.
func (w *simWorld) hook(op, key string) {
	if w.depth > 0 || (op != "Set" && op != "Add" && op != "Ensure") {
		return
	}
	r, ok := w.entries[key]
	if !ok && op == "Add" {
		return
	}
	if !ok || w.rng.IntN(8) != 0 {
		return
	}
	w.depth++
	defer func() { w.depth-- }()
	w.write(w.rng.IntN(len(w.procs)), r)
}

// step draws one step of the schedule.
func (w *simWorld) step() {
	i := w.rng.IntN(len(w.procs))
	sp := w.procs[i]
	r := w.rng.IntN(simPosts+1) - 1
	switch x := w.rng.IntN(100); {
	case x < 55:
		if !sp.paused {
			w.read(i, r)
		}
	case x < 67:
		if !sp.paused {
			w.write(i, r)
		}
	case x < 90:
		d := time.Duration(1+w.rng.IntN(150)) * time.Millisecond
		w.logf("time passes %s", d)
		w.advance(d)
	default:
		w.fault(i)
	}
}

func (w *simWorld) fault(i int) {
	sp := w.procs[i]
	switch x := w.rng.IntN(15); x {
	case 6, 7:
		if w.rng.IntN(3) != 0 && !w.anyDown() { // processes die less often than caches hiccup, but a death during an outage is the case that matters
			return
		}
		w.kill(i, x == 7)
	case 0: // memcached's LRU drops any key: entries, groups, fill leases, the registry's copy
		n := w.rng.IntN(simNodes)
		if keys := w.st.Keys(n); len(keys) > 0 {
			k := keys[w.rng.IntN(len(keys))]
			w.logf("evict %q from node %d", k, n)
			w.st.Evict(n, k)
		}
	case 1: // a node restarted empty
		n := w.rng.IntN(simNodes)
		w.logf("flush node %d", n)
		w.st.Flush(n)
	case 2: // flush_all on every node (an operator, a tier restarted)
		w.logf("flush every node")
		for n := range simNodes {
			w.st.Flush(n)
		}
	case 3, 4, 5: // a node stalls or is unreachable, then comes back with its contents
		n := w.rng.IntN(simNodes)
		w.setDown(n, true)
		d := time.Duration(50+w.rng.IntN(1500)) * time.Millisecond
		if w.rng.IntN(3) == 0 { // out long enough for retries to back off
			d = time.Duration(2000+w.rng.IntN(4000)) * time.Millisecond
		}
		w.upAt[n] = w.clock.Now().Add(d)
	case 8:
		sp.paused = !sp.paused
		w.logf("%s paused=%v", sp.id, sp.paused)
		if !sp.paused && sp.renew.Before(w.clock.Now()) {
			sp.renew = w.clock.Now()
		}
	case 9:
		w.link.mu.Lock()
		w.link.lose[sp.id] = !w.link.lose[sp.id]
		w.logf("notifications to %s lost=%v", sp.id, w.link.lose[sp.id])
		w.link.mu.Unlock()
	case 10:
		w.link.mu.Lock()
		w.link.late[sp.id] = !w.link.late[sp.id]
		w.logf("notifications to %s late=%v", sp.id, w.link.late[sp.id])
		w.link.mu.Unlock()
	case 11:
		w.db.mu.Lock()
		w.db.lag = w.rng.IntN(4)
		w.logf("replica lag %d commits", w.db.lag)
		w.db.mu.Unlock()
	case 12:
		w.o.mu.Lock()
		w.o.dropNext = true
		w.o.mu.Unlock()
		w.logf("the next write's answer is lost after its commit")
	case 13:
		w.invDown = !w.invDown
		w.logf("invalidator down=%v", w.invDown)
		if !w.invDown {
			w.whole = later(w.whole, w.clock.Now())
		}
	case 14: // time passes past a lease, with nothing else happening
		w.logf("time passes %s", simLease+simPeerTimeout)
		w.advance(simLease + simPeerTimeout)
	}
}

// kill kills proc i and starts another in its slot: on the same address
// or a new one, or (shared) behind another process's address.
func (w *simWorld) kill(i int, shared bool) {
	sp := w.procs[i]
	addr := ""
	switch j := w.rng.IntN(len(w.procs)); {
	case shared && j != i:
		addr = w.procs[j].addr
	case w.rng.IntN(2) == 0:
		addr = sp.addr
	}
	w.logf("kill %s (moves it queued are lost)", sp.id)
	w.stopProc(sp)
	w.st.ForgetMissed()
	w.startProc(i, addr)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func (w *simWorld) anyDown() bool {
	for _, d := range w.down {
		if d {
			return true
		}
	}
	return false
}

func (w *simWorld) setDown(n int, down bool) {
	if w.down[n] == down {
		return
	}
	w.down[n] = down
	w.logf("node %d down=%v", n, down)
	w.st.SetDown(n, down)
	if !down {
		w.whole = w.clock.Now()
	}
}

// request runs one request through proc i's handler, arriving now.
func (w *simWorld) request(i int, method, path string) *fasthttp.Response {
	var req fasthttp.Request
	req.SetRequestURI(path)
	req.Header.SetHost("edge.test")
	req.Header.SetMethod(method)
	if method != "GET" {
		req.Header.SetContentType("application/json")
		req.SetBodyString("{}")
	}
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(10, 1, 0, 1), Port: 40000}, nil)
	setRequestTime(&ctx, w.clock.Now())
	w.procs[i].p.serve(&ctx)
	var resp fasthttp.Response
	ctx.Response.CopyTo(&resp)
	return &resp
}

func (w *simWorld) write(i, resource int) {
	method, path := "PUT", w.path(resource)
	w.db.mu.Lock()
	_, exists := w.db.stateAfter(resource, len(w.db.commits))
	w.db.mu.Unlock()
	switch {
	case !exists:
		method, path = "POST", "/p" // created: the write's URL is not the post's
	case resource == simAbsent && w.rng.IntN(3) == 0:
		method = "DELETE"
	}
	w.writeAs(i, resource, method, path)
}

// writeAs sends proc i a write of resource as method to path, and records
// its acknowledgement.
func (w *simWorld) writeAs(i, resource int, method, path string) {
	sp := w.procs[i]
	w.logf("%s %s %s", sp.id, method, path)
	w.depth++
	resp := w.request(i, method, path)
	w.depth--
	pending := string(resp.Header.Peek(hdrInvalidation)) == "pending"
	w.logf("%s %s %s -> %d pending=%v", sp.id, method, path, resp.StatusCode(), pending)
	if resp.StatusCode() != 200 {
		return
	}
	// The groups field is internal (stripped from the answer): what this
	// write committed is the database's last commit, as no other write
	// runs inside a write.
	w.db.mu.Lock()
	c := len(w.db.commits)
	pv, lv := w.db.versionAfter(resource, c), w.db.versionAfter(-1, c)
	w.db.mu.Unlock()
	now := w.clock.Now()
	w.seq++
	if resource >= 0 {
		w.acked[resource] = append(w.acked[resource], simAck{pv, now, w.seq, pending})
	}
	w.acked[-1] = append(w.acked[-1], simAck{lv, now, w.seq, pending})
}

func (w *simWorld) read(i, resource int) {
	sp := w.procs[i]
	began := w.clock.Now()
	w.seq++
	seq := w.seq
	resp := w.request(i, "GET", w.path(resource))
	got, _ := strconv.ParseUint(strings.TrimPrefix(string(resp.Body()), "v"), 10, 64)
	w.logf("%s GET %s -> %d v%d %q", sp.id, w.path(resource), resp.StatusCode(), got, resp.Header.Peek("Cache-Status"))
	if resp.StatusCode() != 200 && resp.StatusCode() != 404 { // a 404 is v0: the post not created yet
		return
	}
	if want, ack := w.required(resource, began, seq); got < want {
		w.failure = fmt.Sprintf("STALE: %s GET %s began at %s got v%d, but v%d was acknowledged at %s (pending=%v)%s",
			sp.id, w.path(resource), began.Format("05.000"), got, want, ack.at.Format("05.000"), ack.pending,
			" Cache-Status "+string(resp.Header.Peek("Cache-Status")))
	}
}

// required is the least version a read of resource that began at began
// (seq in the history) may return: every write acknowledged before it,
// and every write answered "pending" whose bound has passed since
// memcached and the invalidator were last whole.
func (w *simWorld) required(resource int, began time.Time, seq int) (uint64, simAck) {
	var want uint64
	var why simAck
	whole := !w.invDown
	for _, d := range w.down {
		whole = whole && !d
	}
	for _, a := range w.acked[resource] {
		if a.seq > seq {
			continue // answered while the read was in flight: concurrent
		}
		due := a.at
		if a.pending {
			if !whole {
				continue
			}
			due = later(a.at, w.whole).Add(simBound)
		}
		if !due.After(began) && a.version > want {
			want, why = a.version, a
		}
	}
	return want, why
}
