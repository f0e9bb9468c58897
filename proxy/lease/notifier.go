package lease

import (
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"go.uber.org/zap"

	"edgecache/proxy/clock"
)

// NotifierConfig is a mover's side of leases.
type NotifierConfig struct {
	// Secret is the peer secret. A mover without one still reads the
	// registry: it revokes every member it finds and waits out their
	// leases (safe, slow), so that a fleet half-way through turning leases
	// on never serves stale copies.
	Secret string
	// Duration is how long to wait when every copy of the registry is lost
	// (its holders are unknown): at least any member's lease duration.
	Duration time.Duration
	// Timeout is how long a member has to acknowledge, from the send.
	Timeout time.Duration
	// Self is this process's own member, told in-process (may be nil).
	Self *Holder
	// Link carries the messages to members (nil: signed HTTP posts to
	// members inside Networks).
	Link Link
	// Networks are where members may be (nil: PrivateNetworks).
	Networks []netip.Prefix
	// Clock is the time (nil: the machine's).
	Clock clock.Clock
}

// Notifier tells the lease holders which groups moved, and waits for each
// one's acknowledgement or for its lease to end. Safe for concurrent use:
// concurrent notifications to one member share its messages.
type Notifier struct {
	cfg   NotifierConfig
	nodes Nodes
	log   *zap.Logger
	clock clock.Clock

	mu    sync.Mutex
	peers map[[2]string]*peer // by member id and address
	saw   map[int]sighted     // per node: the copy's incarnation, and when this mover first read it

	warned atomic.Int64 // unix seconds of the last warning that this mover has no secret

	acks, revocations, expiries, lostWaits, youngWaits *metrics.Counter
	wait                                               *metrics.PrometheusHistogram
}

// sighted is a copy's state and when it was first read.
type sighted struct {
	copy sightedCopy
	at   time.Time
}

// ErrRegistryUnavailable is returned by Notify when no copy of the
// registry could be read: who holds leases is not known, so the moves are
// not yet safe to acknowledge.
var ErrRegistryUnavailable = errors.New("lease: no copy of the registry answered")

// NewNotifier builds a mover's notifier; metrics go to set as
// prefix_lease_... .
func NewNotifier(cfg NotifierConfig, nodes Nodes, log *zap.Logger, set *metrics.Set, prefix string) *Notifier {
	if cfg.Networks == nil {
		cfg.Networks = PrivateNetworks
	}
	if cfg.Link == nil {
		cfg.Link = newHTTPLink(cfg.Secret, cfg.Networks, cfg.Timeout)
	}
	return &Notifier{cfg: cfg, nodes: nodes, log: log, clock: clock.Or(cfg.Clock),
		peers: map[[2]string]*peer{}, saw: map[int]sighted{},
		acks:        set.NewCounter(prefix + `_lease_notifications_total{result="ack"}`),
		revocations: set.NewCounter(prefix + `_lease_notifications_total{result="revoked"}`),
		expiries:    set.NewCounter(prefix + `_lease_notifications_total{result="waited"}`),
		lostWaits:   set.NewCounter(prefix + `_lease_registry_lost_waits_total`),
		youngWaits:  set.NewCounter(prefix + `_lease_registry_young_waits_total`),
		wait:        set.NewPrometheusHistogramExt(prefix+`_lease_notify_duration_seconds`, metrics.ExponentialBuckets(0.0001, 2, 18)),
	}
}

// located is a member as found in one copy.
type located struct {
	member
	copy int
}

// Notify tells every lease holder that the groups under keys (memcached
// group keys) moved, and returns once each has acknowledged or its lease
// has surely ended. Call it after the moves succeeded in memcached: a
// member that registers after the registry is read here checks its
// entries in memcached first, and sees the moves.
//
// A member that does not acknowledge within Timeout is revoked in the
// registry (its later renewals then fail), and Notify waits until every
// lease it could still hold has ended: D after the revocation (revoke).
// Only durations on this process's monotonic clock are compared, never two
// machines' clocks.
//
// A copy lists every holder only once it is older than any lease: a copy
// lost and re-created (eviction, flush_all, a restarted node) lists only
// those that renewed since, while a holder whose last round went into the
// lost copy still holds its lease for up to D. So when no copy that read
// well is known to this mover for at least Duration, Notify also waits
// until the oldest one is: every lease from before it has ended by then.
func (n *Notifier) Notify(keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	start := n.clock.Now()
	defer func() { n.wait.Update(n.clock.Now().Sub(start).Seconds()) }()
	if n.cfg.Self != nil {
		n.cfg.Self.Invalidate(keys)
	}
	members, trusted, state, err := n.readRegistry()
	read := n.clock.Now()
	switch state {
	case copyFailed:
		return err
	case copyLost:
		if n.cfg.Secret == "" {
			return nil // leases are off here and there is no registry: no holder
		}
		n.lostWaits.Inc()
		n.clock.Sleep(read.Add(n.cfg.Duration).Sub(n.clock.Now()))
		return nil
	}
	type pending struct {
		m located
		s *send
	}
	var ps []pending
	deadline := read.Add(n.cfg.Timeout)
	for _, m := range members {
		if n.cfg.Self != nil && m.id == n.cfg.Self.ID() {
			continue
		}
		var s *send
		if n.cfg.Secret != "" {
			s = n.peer(m.id, m.addr).enqueue(keys, deadline)
		}
		ps = append(ps, pending{m, s})
	}
	if n.cfg.Secret == "" && len(ps) > 0 {
		n.warnNoSecret(len(ps))
	}
	until := read // when the revoked members' leases have surely ended
	var errs []error
	for _, p := range ps {
		if p.s != nil && p.s.wait(n.clock, deadline) {
			n.acks.Inc()
			continue
		}
		t, err := n.revoke(p.m, read)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if t.After(until) {
			until = t
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	now := n.clock.Now()
	if until.After(now) {
		n.expiries.Inc()
	}
	if trusted.After(now) {
		n.youngWaits.Inc()
		until = later(until, trusted)
	}
	if d := until.Sub(now); d > 0 {
		n.clock.Sleep(d)
	}
	return nil
}

// warnNoSecret says, at most once a minute, why this mover's writes are
// slow: without the secret it cannot tell holders what moved, so every
// write waits out their leases. It is a fleet half-way through turning
// leases on, or a proxy whose PROXY_PEER_SECRET did not reach it.
func (n *Notifier) warnNoSecret(holders int) {
	now := n.clock.Now().Unix()
	last := n.warned.Load()
	if now-last < 60 || !n.warned.CompareAndSwap(last, now) {
		return
	}
	n.log.Warn("no peer secret here, but other members hold leases: every write waits out their leases; set the same PROXY_PEER_SECRET (INVALIDATOR_PEER_SECRET) everywhere",
		zap.Int("holders", holders), zap.Duration("wait", n.cfg.Duration))
}

// readRegistry reads every copy and returns the members of those that
// read well. state is copyOK if at least one did (a lease needs every
// copy, so any one that is old enough lists every holder), copyLost if
// none did but one was missing or garbled (its holders see that at their
// next renewal), and copyFailed if no node answered. trusted is when the
// oldest copy that read well will be older than any lease, as far as this
// mover knows (see Notify).
func (n *Notifier) readRegistry() (members []located, trusted time.Time, state copyState, err error) {
	type result struct {
		reg   registry
		state copyState
		err   error
	}
	res := make([]result, n.nodes.Nodes())
	var wg sync.WaitGroup
	for i := range res {
		wg.Go(func() {
			reg, _, state, err := readCopy(n.nodes, i)
			res[i] = result{reg, state, err}
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	state = copyFailed
	var errs []error
	for i, r := range res {
		switch r.state {
		case copyOK:
			state = copyOK
			t := n.firstSaw(i, sightedCopy{r.reg.incarnation, r.reg.removals}).Add(n.cfg.Duration)
			if trusted.IsZero() || t.Before(trusted) {
				trusted = t
			}
			for _, m := range r.reg.members {
				if !seen[m.id] {
					seen[m.id] = true
					members = append(members, located{m, i})
				}
			}
		case copyLost:
			if state == copyFailed {
				state = copyLost
			}
		case copyAbsent:
		default:
			errs = append(errs, r.err)
		}
	}
	if state == copyFailed {
		return nil, trusted, state, errors.Join(append([]error{ErrRegistryUnavailable}, errs...)...)
	}
	return members, trusted, state, nil
}

// firstSaw is when this process first saw node i's copy in state c: by
// this mover's reads, or by its own member's renewals, whichever was
// first.
func (n *Notifier) firstSaw(i int, c sightedCopy) time.Time {
	now := n.clock.Now()
	n.mu.Lock()
	s, ok := n.saw[i]
	if !ok || s.copy != c {
		s = sighted{c, now}
		n.saw[i] = s
	}
	n.mu.Unlock()
	if t, ok := n.cfg.Self.sawCopy(i, c); ok && t.Before(s.at) {
		return t
	}
	return s.at
}

// revoke marks m revoked in the copy it was read from, and returns when
// every lease m could hold has ended. read is when the registry was read.
// Members renew without writing the copy (registry.go), so a revocation
// does not fail a renewal in flight: a lease it extends began before the
// revocation, and ends within a duration of it.
func (n *Notifier) revoke(m located, read time.Time) (time.Time, error) {
	if m.revoked {
		// Revoked before the read: renewals that began after it fail, and
		// what it held then ends within its duration.
		n.revocations.Inc()
		return read.Add(m.duration), nil
	}
	for range casAttempts {
		reg, it, state, err := readCopy(n.nodes, m.copy)
		seen := n.clock.Now()
		switch state {
		case copyFailed:
			return time.Time{}, err
		case copyLost, copyAbsent:
			return seen.Add(max(m.duration, n.cfg.Duration)), nil
		}
		i := reg.find(m.id)
		if i < 0 {
			return seen.Add(m.duration), nil // gone (left, or collected): at most one more duration
		}
		d := max(m.duration, reg.members[i].duration)
		if reg.members[i].revoked {
			return seen.Add(d), nil // revoked by another mover since the read
		}
		reg.members[i].revoked = true
		it.Value = reg.bytes()
		err = n.nodes.NodeCompareAndSwap(m.copy, it)
		if err != nil {
			if isConflict(err) {
				continue
			}
			return time.Time{}, err
		}
		n.revocations.Inc()
		n.log.Warn("lease holder did not acknowledge an invalidation: revoked", zap.String("member", m.id), zap.String("addr", m.addr))
		return n.clock.Now().Add(d), nil
	}
	return time.Time{}, errContended
}

// peer batches the notifications to one member: one message in flight at a
// time, carrying every notification that arrived meanwhile.
type peer struct {
	n  *Notifier
	to Message // member and address

	mu      sync.Mutex
	pending []*send
	running bool
}

type send struct {
	keys     []string
	deadline time.Time
	done     chan struct{}
	err      error
}

func (s *send) wait(c clock.Clock, deadline time.Time) bool {
	select { // answered already (while an earlier member was waited for): a ready timer must not win the select below
	case <-s.done:
		return s.err == nil
	default:
	}
	t := time.NewTimer(deadline.Sub(c.Now()))
	defer t.Stop()
	select {
	case <-s.done:
		return s.err == nil
	case <-t.C:
		return false
	}
}

func (n *Notifier) peer(id, addr string) *peer {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.peers[[2]string{id, addr}]
	if p == nil {
		p = &peer{n: n, to: Message{Member: id, Addr: addr}}
		n.peers[[2]string{id, addr}] = p
	}
	return p
}

func (p *peer) enqueue(keys []string, deadline time.Time) *send {
	s := &send{keys: keys, deadline: deadline, done: make(chan struct{})}
	p.mu.Lock()
	p.pending = append(p.pending, s)
	lead := !p.running
	p.running = true
	p.mu.Unlock()
	if lead {
		go p.run()
	}
	return s
}

var errGaveUp = errors.New("lease: the mover stopped waiting")

func (p *peer) run() {
	for {
		p.mu.Lock()
		batch := p.pending
		p.pending = nil
		if len(batch) == 0 {
			p.running = false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		now := p.n.clock.Now()
		var live []*send
		var deadline time.Time
		for _, s := range batch {
			if s.deadline.After(now) {
				live = append(live, s)
				deadline = later(deadline, s.deadline)
			} else {
				s.err = errGaveUp
				close(s.done)
			}
		}
		if len(live) == 0 {
			continue
		}
		m := p.to
		seen := map[string]bool{}
		for _, s := range live {
			for _, k := range s.keys {
				if !seen[k] {
					seen[k] = true
					m.Keys = append(m.Keys, k)
				}
			}
		}
		err := p.n.cfg.Link.Send(m, deadline)
		for _, s := range live {
			s.err = err
			close(s.done)
		}
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
