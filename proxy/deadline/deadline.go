// Package deadline is a net.Listener whose connections keep their read and
// write deadlines without a runtime timer per change.
//
// fasthttp sets a deadline on the connection up to three times per
// keep-alive request (the idle time before waiting, ReadTimeout after the
// first byte, WriteTimeout before answering). Each one moves a timer in the
// runtime's heap (internal/poll.setDeadlineImpl → runtime_pollSetDeadline),
// 150-250 ns on the proxy's VM, and together they cost about 3 % of the
// proxy's CPU when it serves cache hits (profiled under wrk). Nearly none
// of them ever fires: the next request, or the answer, comes first.
//
// A connection accepted here only records the deadline it is given (one
// atomic operation, about a fifth of a real Set: BenchmarkSetDeadline).
// One sweeper goroutine per listener looks at every connection once per
// granularity and, for a deadline that has passed, sets the real
// connection's deadline in the past, so that the blocked Read or Write
// fails with the runtime's own error (os.ErrDeadlineExceeded in a
// *net.OpError, Timeout() true): fasthttp's error handler and idle-close
// logic, and the proxy's serverError, see what they saw before. The price
// is precision: a deadline fires between 0 and one granularity late, never
// early.
//
// Only the net.Conn methods are passed through: an accepted connection is
// not a *net.TCPConn, so its ReadFrom (sendfile) is not used by a
// bufio.Writer above it. The proxy answers from memory and does not need it.
package deadline

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Recorded deadlines count nanoseconds since epoch on the monotonic clock,
// the clock the runtime's own deadlines run on.
var epoch = time.Now()

func sinceEpoch() int64 { return int64(time.Since(epoch)) }

// forced is the low bit of a recorded deadline: the sweeper has set the
// real connection's deadline in the past, or is doing so.
const forced = 1

// farAway bounds a recorded deadline so that it fits, shifted, in an int64.
const farAway = 100 * 365 * 24 * time.Hour

// longAgo, as the real connection's deadline, fails its blocked and future
// calls at once.
var longAgo = time.Unix(1, 0)

// A Listener accepts connections whose deadlines a sweeper enforces.
type Listener struct {
	net.Listener
	granularity time.Duration

	mu     sync.Mutex
	conns  []*conn // each knows its index, for a swap-remove on Close
	closed bool    // no more conns are registered

	stop        chan struct{} // closed by Close
	stopOnce    sync.Once
	sweeperDone chan struct{}
	expired     []expiry // the sweeper's, reused from sweep to sweep
}

// NewListener wraps ln. Its sweeper looks at every connection once per
// granularity, so a deadline fires up to that much late.
//
// The proxy should use 500 ms. Its client timeouts are 30 s (read, write)
// and 75 s (idle), so a timeout fires at most 1.7 % late, which no client
// or load balancer can tell from a slow network. A sweep over 20,000
// connections takes 0.1-0.3 ms (BenchmarkSweep, 5-15 ns a connection),
// 0.02-0.06 % of a core at 500 ms, and holds up Accept and Close as long.
// 250 ms would double that for precision nobody needs; seconds would make
// the proxy's short timeouts in tests, and a shutdown's last wait, sloppy.
//
// Close stops accepting at once; the sweeper ends when the last accepted
// connection is closed too, because a graceful shutdown (fasthttp's closes
// the listener, then waits for the connections) still needs their
// timeouts to fire.
func NewListener(ln net.Listener, granularity time.Duration) *Listener {
	if granularity <= 0 {
		panic("deadline: granularity must be positive")
	}
	l := &Listener{
		Listener:    ln,
		granularity: granularity,
		stop:        make(chan struct{}),
		sweeperDone: make(chan struct{}),
	}
	go l.sweeper()
	return l
}

// Accept registers the accepted connection with the sweeper.
func (l *Listener) Accept() (net.Conn, error) {
	inner, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c := &conn{Conn: inner, l: l}
	if !l.register(c) {
		// Accepted just as Close ran: the sweeper may have ended already,
		// and nothing would enforce this conn's deadlines.
		inner.Close()
		return nil, &net.OpError{Op: "accept", Net: l.Addr().Network(), Addr: l.Addr(), Err: net.ErrClosed}
	}
	return c, nil
}

func (l *Listener) register(c *conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	c.index = len(l.conns)
	l.conns = append(l.conns, c)
	return true
}

// Close closes the listener. Connections already accepted keep working,
// their deadlines enforced, until they are closed.
func (l *Listener) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.stopOnce.Do(func() { close(l.stop) }) // an idle sweeper ends now, not a tick later
	return l.Listener.Close()
}

func (l *Listener) remove(c *conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	last := l.conns[len(l.conns)-1]
	l.conns[c.index], last.index = last, c.index
	l.conns[len(l.conns)-1] = nil
	l.conns = l.conns[:len(l.conns)-1]
}

func (l *Listener) sweeper() {
	defer close(l.sweeperDone)
	tick := time.NewTicker(l.granularity)
	defer tick.Stop()
	stop := l.stop
	for {
		select {
		case <-tick.C:
		case <-stop:
			stop = nil
		}
		if !l.sweep(sinceEpoch()) {
			return
		}
	}
}

// An expiry is a deadline the sweeper found passed, with the state it read.
type expiry struct {
	c     *conn
	d     *deadline
	state int64
}

// sweep forces every deadline passed at now (since epoch). It reports
// whether there is anything left to sweep.
func (l *Listener) sweep(now int64) bool {
	var more bool
	l.expired, more = l.collect(now, l.expired[:0])
	for _, e := range l.expired {
		e.c.force(e.d, e.state)
	}
	clear(l.expired) // no pointers kept to conns that may close
	return more
}

// collect appends the deadlines passed at now to into. It holds l.mu only
// while it reads, never while the real connections are called, so that
// Accept and Close wait for at most a scan.
func (l *Listener) collect(now int64, into []expiry) ([]expiry, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		for _, d := range [2]*deadline{&c.read, &c.write} {
			if s := d.state.Load(); s != 0 && s&forced == 0 && s>>1 <= now {
				into = append(into, expiry{c, d, s})
			}
		}
	}
	return into, !l.closed || len(l.conns) > 0
}

// A deadline is what one direction of a conn was last told.
//
// The real connection's deadline is only ever none or longAgo, and the
// forced bit says which: it is set only by the sweeper, under mu, together
// with the real call that forces; it is cleared only by a Set, under mu,
// after the real call that clears. A Set that records a deadline keeps
// the bit as it finds it (a CAS), so:
//
//   - a Set that finds the bit clear knows the real deadline is none, and
//     returns after its one CAS. The sweeper decided on the state it read
//     and forces only by a CAS from exactly that state, so it cannot force
//     the new deadline unless that one has passed too;
//   - a Set that finds the bit set (the sweeper forced, or is forcing, the
//     deadline being replaced) takes mu, so it waits for the forcing call
//     to finish, clears the real deadline and then the bit. The new
//     deadline, zero or not, is left for the next sweep to judge, and
//     another Set racing with this one also finds the bit and waits.
//
// Hence a Read or Write that starts after a Set returned fails with a
// timeout only if a deadline recorded since has passed.
type deadline struct {
	state atomic.Int64 // nanoseconds since epoch << 1 | forced; 0: no deadline
	mu    sync.Mutex   // held around every call that sets the real deadline
}

func encode(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	var n time.Duration
	if t == t.Round(0) {
		// Only a wall clock reading: the runtime would count it from
		// now on the wall clock, which may have been set since epoch.
		n = time.Since(epoch) + min(time.Until(t), farAway)
	} else {
		n = min(t.Sub(epoch), farAway)
	}
	return int64(max(n, 1)) << 1 // 1: any deadline before epoch has passed
}

type conn struct {
	net.Conn
	l           *Listener
	read, write deadline
	closed      atomic.Bool
	index       int // in l.conns, under l.mu
}

func (c *conn) SetReadDeadline(t time.Time) error  { return c.set(&c.read, t) }
func (c *conn) SetWriteDeadline(t time.Time) error { return c.set(&c.write, t) }

func (c *conn) SetDeadline(t time.Time) error {
	return errors.Join(c.set(&c.read, t), c.set(&c.write, t))
}

func (c *conn) set(d *deadline, t time.Time) error {
	if c.closed.Load() {
		return c.setReal(d, t) // the real connection's error for a closed one
	}
	want := encode(t)
	for {
		old := d.state.Load()
		if !d.state.CompareAndSwap(old, want|old&forced) {
			continue
		}
		if old&forced == 0 {
			return nil
		}
		break
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	err := c.setReal(d, time.Time{})
	d.state.And(^forced)
	return err
}

// force sets the real deadline in the past if d still holds state, which
// the sweeper found passed.
func (c *conn) force(d *deadline, state int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.state.CompareAndSwap(state, state|forced) {
		c.setReal(d, longAgo) // fails only on a closed conn: nothing to wake
	}
}

func (c *conn) setReal(d *deadline, t time.Time) error {
	if d == &c.read {
		return c.Conn.SetReadDeadline(t)
	}
	return c.Conn.SetWriteDeadline(t)
}

// Close closes the connection and forgets its deadlines. A second Close
// returns the real connection's error, as a *net.TCPConn's does.
func (c *conn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.l.remove(c)
	}
	return c.Conn.Close()
}
