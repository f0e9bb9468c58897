package lease

import (
	"bytes"
	"errors"
	"hash/maphash"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"edgecache/proxy/clock"
	"edgecache/proxy/store"
)

// Path is where a member's peer listener takes invalidations: POST, one
// memcached group key per line, signed and named for the member (link.go).
const Path = "/lease/invalidate"

// HolderConfig is one member's identity and lease.
type HolderConfig struct {
	ID        string        // unique among the members (a random one per process is fine)
	Advertise string        // host:port where movers reach this member's peer listener
	Duration  time.Duration // D: how long one renewal lets this member trust its copies
	Secret    string        // shared by every mover and member
	Clock     clock.Clock   // nil: the machine's
}

// Holder keeps this process's lease and its record of what movers
// invalidated. A nil *Holder holds nothing: Free is always false.
//
// What it records: a sequence number that moves with every notification
// received, and per bucket of group keys (a hash) the sequence of the last
// notification that named one of them. An L1 entry remembers the sequence
// read before the memcached read that last found it current (Seq, before
// the read; then Checked); it may be served without asking memcached only
// while Free says so: the lease is held now, no notification named one of
// its groups since, and the lease has not lapsed since (floor).
type Holder struct {
	cfg    HolderConfig
	nodes  Nodes
	log    *zap.Logger
	clock  clock.Clock
	base   time.Time // monotonic origin of validUntil
	margin time.Duration

	validUntil atomic.Int64  // nanoseconds since base; the lease ends then
	floor      atomic.Uint64 // a check must have read Seq at or after this
	seq        atomic.Uint64
	buckets    []atomic.Uint64
	seed       maphash.Seed

	// The renewal loop's own state.
	rounds  uint64
	backoff time.Duration // before rejoining after the next revocation
	since   time.Time     // when the lease was last regained

	mu      sync.Mutex
	known   []sightedCopy // per copy: its state as the renewal loop (the only writer, which reads it unlocked) last read or wrote it
	knownAt []time.Time   // per copy: when known was first read or written (for movers: Notifier.firstSaw)
	copies  copies        // the copies as last read (readCopy)
	changed chan struct{}
	paused  chan struct{} // non-nil while renewals are paused (Pause)
	stop    chan struct{}
	done    chan struct{}

	m holderMetrics
}

// sightedCopy identifies a copy's state as movers count its age: its
// incarnation and how many members others took out of it.
type sightedCopy struct {
	incarnation, removals uint64
}

// gcAfter: a member's heartbeat expires this many of its durations after
// its last renewal; a member whose heartbeat is gone from a node is taken
// out of that node's copy by the next member that collects (every gcAfter
// rounds, one member in as many as the copy lists), and the copy's
// removals move (registry.go).
const gcAfter = 3

// maxBackoff bounds the wait before rejoining after repeated revocations,
// in lease durations: a member that movers cannot reach (a firewall, a
// wrong advertised address) would otherwise cost every write a lease
// duration, again and again.
const maxBackoff = 64

// bucketBits sets the number of buckets: collisions only cost a memcached
// check.
const bucketBits = 16

type holderMetrics struct {
	held                            *metrics.Gauge
	renewals, failures, lost, revok *metrics.Counter
	received, notifications         *metrics.Counter
	freeHits, checkedHits           *metrics.Counter
}

// NewHolder builds a member; Start begins renewing. Metrics go to set as
// prefix_lease_... (prefix "edgecache_proxy" for the proxy).
func NewHolder(cfg HolderConfig, nodes Nodes, log *zap.Logger, set *metrics.Set, prefix string) (*Holder, error) {
	switch {
	case !validToken(cfg.ID):
		return nil, errors.New("lease: member id must be 1 to 200 printable characters without spaces")
	case !validToken(cfg.Advertise):
		return nil, errors.New("lease: advertised address must be a host:port")
	case cfg.Duration < 10*time.Millisecond:
		return nil, errors.New("lease: duration must be at least 10ms")
	case cfg.Secret == "":
		return nil, errors.New("lease: no secret: leases are off")
	}
	n := store.MaxNodes // node indexes only grow (a followed memcached generation adds nodes)
	c := clock.Or(cfg.Clock)
	h := &Holder{cfg: cfg, nodes: nodes, log: log, clock: c, base: c.Now(), margin: cfg.Duration / 10,
		buckets: make([]atomic.Uint64, 1<<bucketBits), seed: maphash.MakeSeed(),
		known: make([]sightedCopy, n), knownAt: make([]time.Time, n),
		changed: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	h.seq.Store(1)
	h.floor.Store(1)
	h.m = holderMetrics{
		held:          set.NewGauge(prefix+"_lease_held", func() float64 { return b2f(h.Held()) }),
		renewals:      set.NewCounter(prefix + "_lease_renewals_total"),
		failures:      set.NewCounter(prefix + "_lease_renewal_failures_total"),
		lost:          set.NewCounter(prefix + `_lease_regained_total`),
		revok:         set.NewCounter(prefix + "_lease_revocations_seen_total"),
		received:      set.NewCounter(prefix + "_lease_invalidations_received_total"),
		notifications: set.NewCounter(prefix + "_lease_notifications_received_total"),
		freeHits:      set.NewCounter(prefix + `_l1_hits_by_check_total{check="lease"}`),
		checkedHits:   set.NewCounter(prefix + `_l1_hits_by_check_total{check="memcached"}`),
	}
	return h, nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// ID is this member's id.
func (h *Holder) ID() string { return h.cfg.ID }

func (h *Holder) now() int64 { return int64(h.clock.Now().Sub(h.base)) }

// Held reports whether the lease is held now.
func (h *Holder) Held() bool { return h != nil && h.now() < h.validUntil.Load() }

// Seq is the current sequence; read it before the memcached read that
// checks an entry, and pass it to Free afterwards. 0 for a nil Holder.
func (h *Holder) Seq() uint64 {
	if h == nil {
		return 0
	}
	return h.seq.Load()
}

// Bucket is the bucket of a group key, to keep with the entry.
func (h *Holder) Bucket(key string) uint32 {
	if h == nil {
		return 0
	}
	return uint32(maphash.String(h.seed, key)) & (1<<bucketBits - 1)
}

// Free reports whether an entry last found current by a memcached read
// that followed Seq() == checked, with groups in buckets, may answer a
// request received at without asking memcached again: the lease was held
// then, it has not lapsed since checked, and no notification has named any
// of its groups since (as of now). at is the time fasthttp read for the
// request, so that a hit reads no clock of its own. A request received
// before the lease ran out may be answered as of then: a write that waited
// out the lease was answered after it ran out, later than the request
// arrived, and the notifications that did arrive are seen.
func (h *Holder) Free(at time.Time, checked uint64, buckets []uint32) bool {
	if h == nil || checked < h.floor.Load() || int64(at.Sub(h.base)) >= h.validUntil.Load() {
		return false
	}
	return !h.Named(checked, buckets)
}

// Named reports whether a notification has named one of buckets since
// Seq() == checked: a copy last found current then has most likely
// changed (unless its bucket is shared with a group that moved), whether
// the lease is held or not.
func (h *Holder) Named(checked uint64, buckets []uint32) bool {
	if h == nil {
		return false
	}
	for _, b := range buckets {
		if h.buckets[b].Load() > checked {
			return true
		}
	}
	return false
}

// CountHit counts an L1 hit by how it was checked: free (the lease) or in
// memcached.
func (h *Holder) CountHit(free bool) {
	if h == nil {
		return
	}
	if free {
		h.m.freeHits.Inc()
	} else {
		h.m.checkedHits.Inc()
	}
}

// Hits returns the L1 hits counted so far, by how they were checked.
func (h *Holder) Hits() (free, checked uint64) {
	if h == nil {
		return 0, 0
	}
	return h.m.freeHits.Get(), h.m.checkedHits.Get()
}

// Renewals is the number of renewal rounds every copy took.
func (h *Holder) Renewals() uint64 { return h.m.renewals.Get() }

// Invalidate records that groups moved: no entry checked before now that
// names one of them is Free any more.
func (h *Holder) Invalidate(keys []string) {
	if h == nil {
		return
	}
	s := h.seq.Add(1)
	for _, k := range keys {
		raise(&h.buckets[h.Bucket(k)], s)
	}
	h.m.received.Add(len(keys))
}

func (h *Holder) invalidateBytes(body []byte) int {
	s := h.seq.Add(1)
	n := 0
	for len(body) > 0 {
		var line []byte
		line, body, _ = bytes.Cut(body, []byte{'\n'})
		if len(line) == 0 {
			continue
		}
		raise(&h.buckets[uint32(maphash.Bytes(h.seed, line))&(1<<bucketBits-1)], s)
		n++
	}
	h.m.received.Add(n)
	return n
}

// raise sets b to max(b, s): two notifications in flight may store out of
// order, and a bucket must never go back.
func raise(b *atomic.Uint64, s uint64) {
	for {
		old := b.Load()
		if old >= s || b.CompareAndSwap(old, s) {
			return
		}
	}
}

// ErrNotThisMember is Deliver's answer to a message for another member.
var ErrNotThisMember = errors.New("lease: the message is for another member")

// Deliver records a message's keys if it is for this member. It returns
// only after every key is recorded: its nil is the acknowledgement a
// mover waits for.
func (h *Holder) Deliver(m Message) error {
	if m.Member != h.cfg.ID {
		return ErrNotThisMember
	}
	h.Invalidate(m.Keys)
	h.m.notifications.Inc()
	return nil
}

// ServeInvalidate is the peer listener's handler of Path: a message
// signed with the secret (link.go) and named for this member. It answers
// 200 with a signed acknowledgement only after every named group is
// recorded.
func (h *Holder) ServeInvalidate(ctx *fasthttp.RequestCtx) {
	if !ctx.IsPost() {
		ctx.Error("use POST\n", fasthttp.StatusMethodNotAllowed)
		return
	}
	member, nonce := ctx.Request.Header.Peek(hdrMember), ctx.Request.Header.Peek(hdrNonce)
	if !validSignature(ctx.Request.Header.Peek(hdrSignature), h.cfg.Secret, []byte("invalidate"), member, nonce, ctx.PostBody()) {
		ctx.Error("missing or wrong signature\n", fasthttp.StatusUnauthorized)
		return
	}
	if string(member) != h.cfg.ID {
		// Another process at the address the registry lists for member
		// (a shared loopback address, a restarted process): not an ack.
		ctx.Error("not member "+string(member)+"\n", fasthttp.StatusMisdirectedRequest)
		return
	}
	h.invalidateBytes(ctx.PostBody())
	h.m.notifications.Inc()
	ctx.Response.Header.Set(hdrAck, sign(h.cfg.Secret, []byte("ack"), member, nonce))
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.SetBodyString("ok\n")
}

// sawCopy is when this member first read or wrote node n's copy in state
// c (false if its last renewal of n found another one). A nil Holder has
// seen nothing.
func (h *Holder) sawCopy(n int, c sightedCopy) (time.Time, bool) {
	if h == nil {
		return time.Time{}, false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if n >= len(h.known) || h.known[n] != c {
		return time.Time{}, false
	}
	return h.knownAt[n], true
}

// Changed returns a channel closed at the end of the next renewal round,
// so that a caller can wait for a change of Held without polling.
func (h *Holder) Changed() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.changed
}

// Pause stops renewing (a round in progress finishes) until resume is
// called: a drill or a test can make this member's memcached unreachable
// without stopping the process.
func (h *Holder) Pause() (resume func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.paused == nil {
		h.paused = make(chan struct{})
	}
	ch := h.paused
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.paused == ch {
			close(ch)
			h.paused = nil
		}
	}
}

func (h *Holder) gate() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.paused == nil {
		return closedChan
	}
	return h.paused
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Start renews every D/3 until Leave.
func (h *Holder) Start() {
	go func() {
		defer close(h.done)
		t := time.NewTicker(h.cfg.Duration / 3)
		defer t.Stop()
		for {
			select {
			case <-h.gate():
			case <-h.stop:
				return
			}
			h.round()
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	}()
}

// Leave stops renewing, stops trusting the lease, then takes this member
// out of every copy it can reach, so that movers stop waiting for it.
func (h *Holder) Leave() {
	close(h.stop)
	<-h.done
	h.validUntil.Store(0)
	for n := range h.nodes.Nodes() {
		for range casAttempts {
			reg, it, state, _ := readCopy(h.nodes, &h.copies, n)
			i := reg.find(h.cfg.ID)
			if state != copyOK || i < 0 {
				break
			}
			reg.members = append(reg.members[:i], reg.members[i+1:]...)
			if err := h.nodes.NodeCompareAndSwap(n, written(it, reg)); !errors.Is(err, store.ErrCASConflict) {
				break
			}
		}
	}
}

// round renews the lease on every copy. The lease is held from the
// round's start for D minus a margin (for clock rates), if every copy took
// the renewal. If any copy shows that a mover may have passed this member
// by (the copy was lost and re-created, the member was revoked or
// removed), or the lease had lapsed, every entry checked before is
// suspect: the floor rises, so each is checked in memcached once more.
func (h *Holder) round() {
	start := h.now()
	continuous := start < h.validUntil.Load()
	h.rounds++
	allOK, lost := true, false
	for n := range h.nodes.Nodes() {
		l, err := h.renewCopy(n, h.rounds%gcAfter == 0)
		lost = lost || l
		if err != nil {
			allOK = false
			h.log.Debug("lease renewal failed on a copy", zap.Int("node", n), zap.Error(err))
		}
	}
	switch {
	case !allOK:
		h.m.failures.Inc()
		if lost {
			h.validUntil.Store(0)
		}
	default:
		h.m.renewals.Inc()
		if lost || !continuous {
			h.validUntil.Store(0)
			h.floor.Store(h.seq.Add(1))
			h.m.lost.Inc()
			if !h.since.IsZero() && h.clock.Now().Sub(h.since) > maxBackoff*h.cfg.Duration {
				h.backoff = 0 // held for long: the last revocation was a one-off
			}
			h.since = h.clock.Now()
			h.log.Info("lease held: every L1 entry is checked in memcached once more", zap.Bool("lapsed", !continuous))
		}
		h.validUntil.Store(start + int64(h.cfg.Duration-h.margin))
	}
	h.mu.Lock()
	close(h.changed)
	h.changed = make(chan struct{})
	h.mu.Unlock()
}

var errBackingOff = errors.New("lease: revoked; waiting before rejoining")

// renewCopy renews this member on node n: it checks that node n's copy
// lists it live and sets its heartbeat there; the copy itself is written
// only when it must change (this member joins or rejoins, or, with gc,
// others whose heartbeats are gone are taken out). lost says the copy
// shows that movers may have passed this member by.
func (h *Holder) renewCopy(n int, gc bool) (lost bool, err error) {
	self := member{id: h.cfg.ID, addr: h.cfg.Advertise, duration: h.cfg.Duration}
	for range casAttempts {
		readAt := h.clock.Now()
		reg, it, state, err := readCopy(h.nodes, &h.copies, n)
		switch state {
		case copyAbsent:
			return false, nil
		case copyFailed:
			return false, err
		case copyLost:
			fresh := newRegistry()
			fresh.members = []member{self}
			if it == nil {
				err = h.nodes.NodeAdd(n, written(&store.Item{Key: RegistryKey}, fresh))
			} else { // garbage: replace it
				err = h.nodes.NodeCompareAndSwap(n, written(it, fresh))
			}
			if errors.Is(err, store.ErrNotStored) || errors.Is(err, store.ErrCASConflict) {
				continue
			}
			if err != nil {
				return true, err
			}
			h.setKnown(n, sightedCopy{fresh.incarnation, 0}, readAt)
			return true, h.heartbeat(n)
		}
		lost = reg.incarnation != h.known[n].incarnation
		changed := false
		switch i := reg.find(h.cfg.ID); {
		case i < 0:
			lost, changed = true, true
			reg.members = append(reg.members, self)
		case reg.members[i].revoked:
			lost = true
			if err := h.mayRejoin(); err != nil {
				return true, err
			}
			reg.members[i], changed = self, true
		}
		if gc && rand.IntN(len(reg.members)) == 0 {
			// One collector per period on average, not every member: the
			// heartbeat reads stay linear in the number of members.
			removed, err := h.collect(n, &reg)
			if err != nil {
				return lost, err
			}
			if removed > 0 {
				reg.removals++
				changed = true
			}
		}
		if changed {
			err = h.nodes.NodeCompareAndSwap(n, written(it, reg))
			if errors.Is(err, store.ErrNotStored) || errors.Is(err, store.ErrCASConflict) {
				continue
			}
			if err != nil {
				return lost, err
			}
		}
		h.setKnown(n, sightedCopy{reg.incarnation, reg.removals}, readAt)
		return lost, h.heartbeat(n)
	}
	return false, errContended
}

// heartbeat sets this member's heartbeat on node n, expiring gcAfter
// durations from now (memcached counts whole seconds: rounded up).
func (h *Holder) heartbeat(n int) error {
	ttl := int32((gcAfter*h.cfg.Duration + time.Second - 1) / time.Second)
	return h.nodes.NodeSet(n, &store.Item{Key: heartbeatKey(h.cfg.ID), Value: []byte{'1'}, Expiration: ttl})
}

// setKnown records that node n's copy is in state c, read (or created) at
// at: when it is new to this member, at is when movers in this process
// count it from (sawCopy).
func (h *Holder) setKnown(n int, c sightedCopy, at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.known[n] != c {
		h.known[n], h.knownAt[n] = c, at
	}
}

// mayRejoin decides, on finding this member revoked, whether to rejoin
// now: at once the first time, then after a backoff that doubles.
func (h *Holder) mayRejoin() error {
	h.m.revok.Inc()
	now := h.clock.Now()
	if h.backoff > 0 && now.Sub(h.since) < h.backoff {
		return errBackingOff
	}
	h.log.Warn("lease revoked: a mover could not reach this member's peer listener (check PROXY_PEER_ADVERTISE, the secret and the firewall)",
		zap.String("advertise", h.cfg.Advertise), zap.Duration("next_backoff", h.backoff))
	h.backoff = min(max(2*h.backoff, h.cfg.Duration), maxBackoff*h.cfg.Duration)
	return nil
}

// collect takes out of reg the other members whose heartbeat on node n is
// gone (expired: they stopped renewing gcAfter durations ago; or evicted:
// they are back at their next renewal, and the removal makes movers wait
// until every lease from before it has ended), and reports how many.
func (h *Holder) collect(n int, reg *registry) (int, error) {
	kept := reg.members[:0]
	removed := 0
	for _, m := range reg.members {
		if m.id != h.cfg.ID {
			_, err := h.nodes.NodeGet(n, heartbeatKey(m.id))
			if errors.Is(err, store.ErrCacheMiss) {
				removed++
				continue
			}
			if err != nil {
				return 0, err
			}
		}
		kept = append(kept, m)
	}
	reg.members = kept
	return removed, nil
}

// Renew runs one renewal round now, as Start's loop does every D/3: the
// fault simulator renews on its own clock instead of starting the loop.
func (h *Holder) Renew() { h.round() }
