package proxy

// The world of the fault simulator (simulate_test.go): a simulated clock,
// an origin over a model of the database (rows, a lagging replica, the
// invalidation log its triggers fill), and a link that carries lease
// notifications between processes in-process. The proxies, the lease
// holders and notifiers, the invalidator's apply loop and memstore are the
// real code.

import (
	"net"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"

	"edgecache/proxy/invalidator"
	"edgecache/proxy/lease"
)

// simClock is the world's time. Sleep, which only movers call (a write
// waiting out a lease, the invalidator likewise), advances it and runs
// whatever falls due meanwhile: lease renewals, late notifications and
// the invalidator's rounds.
type simClock struct {
	mu  sync.Mutex
	now time.Time
	w   *simWorld
}

func (c *simClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *simClock) Sleep(d time.Duration) {
	if d > 0 {
		c.w.advance(d)
	}
}

func (c *simClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t
	}
}

// setRequestTime sets the time fasthttp reads before a handler runs
// (RequestCtx.Time), which the read path uses as the request's arrival:
// the simulator's requests arrive on its clock. fasthttp has no setter.
func setRequestTime(ctx *fasthttp.RequestCtx, t time.Time) {
	f := reflect.ValueOf(ctx).Elem().FieldByName("time")
	reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Set(reflect.ValueOf(t))
}

// simDB is the database: posts with versions, a list whose version moves
// with every change, the commits in order (a replica applies a prefix of
// them), and invalidation_log as the triggers fill it.
type simDB struct {
	mu      sync.Mutex
	commits []simCommit
	lag     int // commits the replica has not applied
	log     []invalidator.Row
	nextID  uint64
}

type simCommit struct {
	post    int
	version uint64 // the post's
	deleted bool
}

// versionAfter is post's version (or the list's, post -1) after the
// first n commits.
func (db *simDB) versionAfter(post, n int) uint64 {
	v, _ := db.stateAfter(post, n)
	return v
}

// stateAfter is post's version after the first n commits, and whether it
// exists. Every row starts at version 1, but simAbsent, which does not
// exist until a write creates it; a deleted post's version is its
// delete's.
func (db *simDB) stateAfter(post, n int) (version uint64, exists bool) {
	if post < 0 {
		return uint64(n) + 1, true
	}
	for i := n - 1; i >= 0; i-- {
		if c := db.commits[i]; c.post == post {
			return c.version, !c.deleted
		}
	}
	if post == simAbsent {
		return 0, false
	}
	return 1, true
}

// commit changes post (deletes it if delete is set): both rows' new
// versions, and their log rows.
func (db *simDB) commit(post int, delete bool) (pv, lv uint64) {
	db.mu.Lock()
	defer db.mu.Unlock()
	pv = db.versionAfter(post, len(db.commits)) + 1
	db.commits = append(db.commits, simCommit{post, pv, delete})
	lv = db.versionAfter(-1, len(db.commits))
	for _, r := range []invalidator.Row{{Group: "post/" + strconv.Itoa(post), Version: pv}, {Group: "list", Version: lv}} {
		db.nextID++
		r.ID = db.nextID
		db.log = append(db.log, r)
	}
	return pv, lv
}

// ReadBatch and DeleteRows make simDB the invalidator's Log.
func (db *simDB) ReadBatch(after uint64, n int) ([]invalidator.Row, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	var out []invalidator.Row
	for _, r := range db.log {
		if r.ID > after && len(out) < n {
			out = append(out, r)
		}
	}
	return out, nil
}

func (db *simDB) DeleteRows(ids []uint64) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	gone := map[uint64]bool{}
	for _, id := range ids {
		gone[id] = true
	}
	kept := db.log[:0]
	for _, r := range db.log {
		if !gone[r.ID] {
			kept = append(kept, r)
		}
	}
	db.log = kept
	return nil
}

func (db *simDB) backlog() int {
	db.mu.Lock()
	defer db.mu.Unlock()
	return len(db.log)
}

// simOrigin serves the database as the real origin's contract has it:
// GET /p/<n> (a post) and GET /l (the list), from the replica unless
// Edgecache-Fresh asks for the primary, naming their groups and versions;
// a post that does not exist is a 404 naming its group at version 0, and
// only the primary's (a replica that lacks the row is read again from the
// primary, as origin/db.go does); PUT /p/<n> commits and names what it
// changed, DELETE /p/<n> likewise, and POST /p creates simAbsent (not its
// own URL, as POST /v1/posts). A 404's body is the version of the delete
// (v0 if never created), for the checker only. dropNext makes the next
// write's answer vanish after its commit.
type simOrigin struct {
	db       *simDB
	ln       net.Listener
	srv      *fasthttp.Server
	mu       sync.Mutex
	dropNext bool
}

func newSimOrigin(db *simDB) (*simOrigin, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	o := &simOrigin{db: db, ln: ln}
	o.srv = &fasthttp.Server{Handler: o.serve, NoDefaultDate: true, NoDefaultContentType: true}
	go o.srv.Serve(ln)
	return o, nil
}

func (o *simOrigin) url() string { return "http://" + o.ln.Addr().String() }

func (o *simOrigin) serve(ctx *fasthttp.RequestCtx) {
	path := string(ctx.Path())
	if path == "/healthz" {
		return
	}
	post := -1
	if rest, ok := strings.CutPrefix(path, "/p/"); ok {
		post, _ = strconv.Atoi(rest)
	}
	if path == "/p" {
		post = simAbsent // POST /p creates it, as POST /v1/posts does: not its own URL
	}
	if !ctx.IsGet() && !ctx.IsHead() {
		pv, lv := o.db.commit(post, ctx.IsDelete())
		o.mu.Lock()
		drop := o.dropNext
		o.dropNext = false
		o.mu.Unlock()
		if drop {
			ctx.HijackSetNoResponse(true)
			ctx.Hijack(func(c net.Conn) { c.Close() })
			return
		}
		ctx.Response.Header.Set(hdrGroups, "post/"+strconv.Itoa(post)+"="+strconv.FormatUint(pv, 10)+" list="+strconv.FormatUint(lv, 10))
		ctx.SetBodyString("ok")
		return
	}
	o.db.mu.Lock()
	n := len(o.db.commits)
	if string(ctx.Request.Header.Peek(hdrFresh)) != "1" {
		n = max(0, n-o.db.lag)
	}
	v, exists := o.db.stateAfter(post, n)
	if !exists {
		v, exists = o.db.stateAfter(post, len(o.db.commits))
	}
	o.db.mu.Unlock()
	ctx.Response.Header.Set("Cache-Control", "public, s-maxage=3600")
	switch {
	case post < 0:
		ctx.Response.Header.Set(hdrGroups, "list="+strconv.FormatUint(v, 10))
	case !exists:
		ctx.SetStatusCode(fasthttp.StatusNotFound)
		ctx.Response.Header.Set(hdrGroups, "post/"+strconv.Itoa(post)+"=0")
	default:
		ctx.Response.Header.Set(hdrGroups, "post/"+strconv.Itoa(post)+"="+strconv.FormatUint(v, 10))
	}
	ctx.SetBodyString("v" + strconv.FormatUint(v, 10))
}

// simLink carries notifications in-process to whichever holder listens at
// the message's address now; per member, messages can be lost or arrive
// after the mover stopped waiting (then they are delivered at the next
// step of the clock).
type simLink struct {
	mu      sync.Mutex
	at      map[string]*lease.Holder // address -> the holder listening there
	lose    map[string]bool          // member id -> its messages are lost
	late    map[string]bool          // member id -> its messages arrive late
	delayed []lease.Message
}

var errSimLost = &net.OpError{Op: "post", Err: net.ErrClosed}

func (l *simLink) Send(m lease.Message, _ time.Time) error {
	l.mu.Lock()
	h := l.at[m.Addr]
	lose, late := l.lose[m.Member], l.late[m.Member]
	if late {
		l.delayed = append(l.delayed, m)
	}
	l.mu.Unlock()
	if h == nil || lose || late {
		return errSimLost
	}
	return h.Deliver(m)
}

// deliverLate delivers the messages that were late.
func (l *simLink) deliverLate() {
	l.mu.Lock()
	ms := l.delayed
	l.delayed = nil
	l.mu.Unlock()
	for _, m := range ms {
		l.mu.Lock()
		h := l.at[m.Addr]
		l.mu.Unlock()
		if h != nil {
			h.Deliver(m)
		}
	}
}
