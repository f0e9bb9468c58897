package proxy

import (
	"bytes"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"edgecache/cachepolicy"
	"edgecache/proxy/store"
)

// The read path, after Varnish: recv → hash → lookup → hit | miss | pass →
// fetch → deliver, one function per state. A txn carries one read request
// through them.
type txn struct {
	ctx     *fasthttp.RequestCtx
	now     time.Time
	creq    cachepolicy.Request
	primary []byte // primary cache key (scheme://host/path?query); hash: built in read, kept on its stack
	ekey    string // memcached key of the entry
	ukey    string // memcached key of the URL's own group
	keys    []string

	// lookup results: the memcached items read (entry and group versions),
	// whether any key's node was unavailable, and the entry if it could be
	// decoded and its groups are current.
	items       map[string]*store.Item
	unavailable bool
	ent         entry
	hasEnt      bool
	l1          *l1Entry        // the process's copy the entry came from, if it did
	softPurged  bool            // the entry was soft-purged since it was stored: stale until refreshed
	fwd         cachepolicy.Fwd // why a miss goes forward: uri-miss, vary-miss, miss
	detail      string
	// variants are the secondary keys of the responses the URL's entry
	// reaches (its own and those it lists), which a fill's entry lists in
	// turn (store.Entry.Variants).
	variants [][]byte
}

// read serves GET and HEAD received at now, and returns the outcome for
// metrics and logs.
func (p *Proxy) read(ctx *fasthttp.RequestCtx, now time.Time) string {
	t := txn{ctx: ctx, now: now}
	if !p.recv(&t) {
		if p.overBudget(ctx, p.missBudget, budgetMiss, "misses") {
			return outcomeError
		}
		return p.authorized(&t)
	}
	kb := primaryKeys.Get().(*[]byte)
	defer primaryKeys.Put(kb)
	t.primary = p.primaryKey(ctx, (*kb)[:0])
	*kb = t.primary[:0] // keep a grown buffer
	if len(t.primary) > p.cfg.MaxKeyBytes {
		p.errorJSON(ctx, fasthttp.StatusRequestURITooLong, "uri_too_long",
			"the request's cache key (scheme, host, path and query) exceeds "+strconv.Itoa(p.cfg.MaxKeyBytes)+" bytes")
		return outcomeError
	}
	p.lookup(&t)
	var meta *cachepolicy.Meta
	if t.hasEnt {
		meta = &t.ent.Meta
	}
	d := cachepolicy.Decide(&t.creq, meta, t.now)
	if t.softPurged && d.Action == cachepolicy.Serve {
		d.Action = cachepolicy.ServeStale // stale allowed until refreshed: the operator's soft purge
	}
	switch d.Action {
	case cachepolicy.Serve:
		return p.hit(&t, d)
	case cachepolicy.ServeStale:
		p.refreshInBackground(&t, d)
		return p.hit(&t, d)
	case cachepolicy.GatewayTimeout:
		p.errorJSON(ctx, fasthttp.StatusGatewayTimeout, "only_if_cached", "not in cache (only-if-cached)")
		p.setCacheStatus(ctx, cachepolicy.CacheStatus{Detail: "only-if-cached"})
		return outcomeError
	}
	if p.overBudget(ctx, p.missBudget, budgetMiss, "misses") {
		return outcomeError
	}
	if d.Fwd == cachepolicy.FwdMiss && t.fwd != cachepolicy.FwdNone {
		d.Fwd = t.fwd
	}
	return p.miss(&t, d)
}

// recv parses the request's cache directives. It reports false for
// requests with Authorization on any of its lines, even an empty one (an
// empty first line followed by "Authorization: Bearer …" is still an
// authorized request, whichever line the origin reads): never answered
// from the cache, their responses stored only as RFC 9111 §3.5 allows
// (authorized.go). The internal fields a client must not send
// (Edgecache-Fresh, Edgecache-Groups) are left where they are: nothing
// reads them from a client, and originRequest never forwards them
// (cachepolicy.FieldRules.Forward); deleting them here cost a hit more than
// its whole lookup.
func (p *Proxy) recv(t *txn) bool {
	h := &t.ctx.Request.Header
	auth := len(h.PeekAll("Authorization")) > 0
	t.creq = cachepolicy.NewRequest(h.Method(), requestList(h, "Cache-Control"), requestList(h, "Pragma"), auth)
	return !auth
}

// requestList is a request list field's value over all its lines (RFC
// 9110 §5.3: "Cache-Control: max-age=60" and "Cache-Control: no-cache" are
// one field), without allocating in the usual one-line case.
func requestList(h *fasthttp.RequestHeader, name string) []byte {
	vs := h.PeekAll(name)
	switch len(vs) {
	case 0:
		return nil
	case 1:
		return vs[0]
	}
	return bytes.Join(vs, []byte(", "))
}

// primaryKeys are the buffers of the primary keys of requests being read.
// A buffer on read's stack would escape with the transaction (its entry's
// body goes into the response), costing an allocation per hit; nothing
// keeps t.primary past read, everything that does copies it.
var primaryKeys = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// mcKeys sets the memcached keys of the entry and of the URL group: every
// lookup but an L1 hit needs them.
func (p *Proxy) mcKeys(t *txn) {
	if t.ukey != "" {
		return
	}
	pk := string(t.primary)
	t.ekey = store.EntryKey(pk)
	t.ukey = store.GroupKey(store.URLGroup(pk))
}

// primaryKey appends the request's primary cache key to dst, with only the
// query parameters PROXY_QUERY_ALLOW keeps for its path (query.go).
func (p *Proxy) primaryKey(ctx *fasthttp.RequestCtx, dst []byte) []byte {
	var qbuf [256]byte
	q := p.query.keep(qbuf[:0], ctx.Path(), ctx.URI().QueryString())
	return cachepolicy.AppendKey(dst, scheme(ctx), ctx.Request.Header.Host(), ctx.URI().PathOriginal(), q)
}

var schemeHTTP, schemeHTTPS = []byte("http"), []byte("https")

func scheme(ctx *fasthttp.RequestCtx) []byte {
	if ctx.IsTLS() {
		return schemeHTTPS
	}
	return schemeHTTP
}

// lookup reads the entry and the current values of its groups in one
// round trip shared with the other requests in flight (Store.Lookup; the
// groups remembered for this key, a second round trip only for groups not
// remembered), and keeps the entry only if it is current.
func (p *Proxy) lookup(t *txn) {
	if p.lookupL1(t) {
		return
	}
	p.lookupMemcached(t)
}

// lookupMemcached is lookup without this process's copy (L1).
func (p *Proxy) lookupMemcached(t *txn) {
	p.mcKeys(t)
	remembered := p.groupsOf.get(t.primary)
	t.keys = append(make([]string, 0, 2+len(remembered)), t.ekey, t.ukey)
	for _, k := range remembered {
		if k != t.ukey {
			t.keys = append(t.keys, k)
		}
	}
	checked := p.lease.Seq() // before the read: see lookupL1
	t.items, t.unavailable = p.store.Lookup(t.keys)
	it := t.items[t.ekey]
	if it == nil {
		t.fwd = cachepolicy.FwdURIMiss
		return
	}
	if err := store.DecodeEntry(it.Value, &t.ent); err != nil {
		if !errors.Is(err, store.ErrOtherFormat) {
			p.log.Warn("corrupt cache entry ignored", zap.ByteString("key", t.primary), zap.Error(err))
		}
		t.fwd = cachepolicy.FwdMiss
		return
	}
	t.variants = reachedVariants(&t.ent)
	if !p.varyMatches(&t.ent, &t.ctx.Request.Header) && !p.lookupVariant(t) {
		t.fwd, t.detail = cachepolicy.FwdVaryMiss, ""
		return
	}
	if p.fetchGroups(&t.ent, t.items, t.primary) {
		t.unavailable = true
	}
	switch {
	case p.current(&t.ent, t.items):
		t.hasEnt = true
		if p.cfg.L1Bytes > 0 { // else not even the key's string
			p.keepL1(string(t.primary), t.ekey, &t.ent, checked)
		}
	case p.softPurged(&t.ent, t.items):
		t.hasEnt, t.softPurged = true, true // not kept in L1: it is to be refreshed
	}
}

// lookupL1 answers the lookup from this process's copy of the entry, if
// it has one and it is still current. While this proxy holds its
// invalidation lease (package lease) and no mover has named one of the
// entry's groups since the copy was last found current, that is known
// without asking anyone: every mover tells the lease holders before its
// write is answered, or waits until their leases have run out. Otherwise
// the entry's group values are read from memcached, in a round trip shared
// with the other requests in flight, as exact as an L2 hit's check and
// cheaper; the sequence read before that read is what the next hits
// compare against. It reports false when there is no copy, or the copy is
// no longer current (then dropped): the caller looks in memcached as usual.
func (p *Proxy) lookupL1(t *txn) bool {
	c, ok := p.l1.GetBytes(t.primary)
	if !ok {
		return false
	}
	if !p.varyMatches(&c.ent, &t.ctx.Request.Header) {
		return false
	}
	last := c.checked.Load()
	free := p.lease.Free(t.now, last, c.buckets)
	if !free && p.lease.Named(last, c.buckets) {
		// A mover named one of its groups since the copy was found
		// current: it most likely moved, and checking the groups first
		// would cost a round trip before lookupMemcached's, which reads
		// the entry and the groups together (the read after a write: 3
		// round trips and the fetch, not 4).
		p.l1.Remove(string(t.primary))
		return false
	}
	if !free {
		checked := p.lease.Seq()
		items, unavailable := p.store.Lookup(c.keys[1:])
		if unavailable || !p.current(&c.ent, items) {
			p.l1.Remove(string(t.primary))
			return false
		}
		c.checked.Store(checked)
		t.items = items
	}
	p.m.l1Hits.Inc()
	p.lease.CountHit(free)
	t.ekey, t.keys, t.ent, t.hasEnt, t.l1 = c.keys[0], c.keys, c.ent, true, c
	return true
}

// l1Entry is an entry kept in this process, with its lookup keys (the
// entry's, then its groups') and its groups' lease buckets, built once
// rather than on every hit: read-only, shared by every request that finds
// it. checked is the lease sequence read before the last memcached read
// that found it current (0: none yet). answer is the header of the last
// whole answer made from it (see deliver).
type l1Entry struct {
	primary string // its key in the L1
	ent     entry
	keys    []string
	buckets []uint32
	checked atomic.Uint64
	answer  atomic.Pointer[answer]
}

// answer is the response header of a whole answer made from an L1 copy:
// status, the origin's Date, the stored fields, Via, and the Age and
// Cache-Status of that answer. Building a header is most of a hit's own
// work (fasthttp normalises every field name added, and the origin's Date
// goes in only through a parse, see startResponse); copying one is a few
// moves. Age counts whole seconds, so every hit of the same second sends
// the same header as it is. An entry hit every second keeps a new answer
// each second (the first hit of a second copies it, with Age and
// Cache-Status set anew); one hit less often sets the two over its copy
// of the last answer (found in place, no allocation): keeping a new
// answer for each of those hits cost a header's worth of allocations,
// half of the proxy's on the 100:1 mix (10.0 → 5.6 a request at
// 5,000/s), where most entries are hit less than once a second, and
// setting the two fields on every hit of a hot entry cost 7% of its hits
// a second (one URL under wrk).
type answer struct {
	age    int64
	status cachepolicy.CacheStatus
	header fasthttp.ResponseHeader
}

// keepL1 keeps a copy of a current entry in this process, under its
// primary key: a compact one (compactCopy), so e may be changed afterwards.
// checked is the lease sequence read before the memcached read that found
// it current, or 0 (a fill: the first hit checks it).
func (p *Proxy) keepL1(primary, ekey string, e *entry, checked uint64) {
	if p.cfg.L1Bytes == 0 {
		return // L1 off: the copy would be dropped at once
	}
	ent, bufCap := compactCopy(e)
	c := &l1Entry{primary: primary, ent: ent, keys: make([]string, 1, 1+len(e.Groups)), buckets: make([]uint32, 0, len(e.Groups))}
	c.keys[0] = ekey
	for _, g := range e.Groups {
		k := string(g.Key)
		c.keys = append(c.keys, k)
		c.buckets = append(c.buckets, p.lease.Bucket(k))
	}
	c.checked.Store(checked)
	p.l1.Add(primary, c, l1Weight(primary, c, bufCap))
}

// fetchGroups reads the values of e's groups that items lacks (one more
// round trip, sent now) into items, and remembers the key's group list so
// that the next lookup reads them with the entry. It reports whether a
// group's node was unavailable.
func (p *Proxy) fetchGroups(e *entry, items map[string]*store.Item, primary []byte) (unavailable bool) {
	var missing []string
	for _, g := range e.Groups {
		if _, ok := items[string(g.Key)]; !ok {
			missing = append(missing, string(g.Key))
		}
	}
	if len(missing) == 0 {
		return false
	}
	more, down := p.store.GetMulti(missing)
	for k, it := range more {
		items[k] = it
	}
	keys := make([]string, len(e.Groups))
	for i, g := range e.Groups {
		keys[i] = string(g.Key)
	}
	p.groupsOf.set(string(primary), keys)
	return len(down) > 0
}

// current reports whether every group of e still has the incarnation e
// recorded and an epoch not past it, by the values in items. A group
// missing from items (evicted, or its node unavailable) is unknown, and
// unknown is not current.
func (p *Proxy) current(e *entry, items map[string]*store.Item) bool {
	for _, g := range e.Groups {
		it := items[string(g.Key)]
		if it == nil {
			p.m.groupUnknown.Inc()
			return false
		}
		cur, ok := store.ParseGroup(it.Value)
		if !ok || !cur.Validates(g.Incarnation, g.Epoch) {
			return false
		}
	}
	return true
}

// softPurged reports whether e, no longer current, was only soft-purged
// since its groups were recorded: each group has the incarnation e recorded
// and no hard move (a write, the durable invalidator, a hard purge) since
// (store.Group.Hard).
func (p *Proxy) softPurged(e *entry, items map[string]*store.Item) bool {
	for _, g := range e.Groups {
		it := items[string(g.Key)]
		if it == nil {
			return false
		}
		cur, ok := store.ParseGroup(it.Value)
		if !ok || !(cur.Validates(g.Incarnation, g.Epoch) || cur.SoftPurged(g.Incarnation, g.Epoch)) {
			return false
		}
	}
	return true
}

func (p *Proxy) varyMatches(e *entry, h *fasthttp.RequestHeader) bool {
	if len(e.Meta.Vary) == 0 {
		return true
	}
	var buf [256]byte
	k := cachepolicy.AppendVaryKey(buf[:0], e.Meta.Vary, func(name []byte) []byte { return h.PeekBytes(name) })
	return bytes.Equal(k, e.VaryKey)
}

// hit answers from the stored entry (fresh, or stale within
// stale-while-revalidate / max-stale).
func (p *Proxy) hit(t *txn, d cachepolicy.Decision) string {
	cs := cachepolicy.CacheStatus{Cache: p.cfg.CacheName, Hit: true, TTL: d.TTL, HasTTL: true}
	if t.softPurged {
		cs.Detail = "soft-purged"
	}
	p.deliver(t.ctx, &t.ent, t.l1, d.Age, &cs)
	p.sampleHit(t, d.Age)
	if d.Action == cachepolicy.ServeStale {
		return outcomeStale
	}
	return outcomeHit
}

// deliver writes a stored entry to the client: 304 if the client's
// validators match; else, for a GET with Range, the part asked for
// (answerRange: 206, or 416); else the stored status, fields and body. The
// stored Date is sent as the origin gave it (RFC 9110 §6.6.1); Age,
// Cache-Status and Via are added. HEAD gets the fields only. c is the L1
// copy e came from, or nil; a whole answer from it copies a header kept
// with it (wholeHeader).
func (p *Proxy) deliver(ctx *fasthttp.RequestCtx, e *entry, c *l1Entry, age int64, cs *cachepolicy.CacheStatus) {
	h := &ctx.Request.Header
	out := &ctx.Response
	notModified := e.Meta.NotModified(h.PeekCanonical(hdrIfNoneMatch), h.PeekCanonical(hdrIfModifiedSince))
	var rbuf [cachepolicy.MaxRanges]cachepolicy.ByteRange
	ranges, ra := rbuf[:0], cachepolicy.RangeFull
	if !notModified {
		ranges, ra = rangeOf(ctx, e, rbuf[:0])
	}
	if ra == cachepolicy.RangeUnsatisfiable {
		p.unsatisfiable(ctx, e, cs)
		return
	}
	whole := !notModified && ra == cachepolicy.RangeFull
	if !whole || c == nil {
		p.storedHeader(&out.Header, e, notModified, ra, len(ranges))
		setAgeAndStatus(&out.Header, age, cs)
	} else {
		c.wholeHeader(p, &out.Header, e, age, cs)
	}
	switch {
	case notModified:
		return
	case ra == cachepolicy.RangePartial:
		answerRange(ctx, e, ranges)
	default:
		out.SetBodyRaw(e.Body)
	}
	if ctx.IsHead() {
		out.SkipBody = true
	}
}

// wholeHeader sets out to the header of a whole answer from c with this
// age and cache status: a copy of c's answer, with Age and Cache-Status
// set anew if they differ (kept as c's answer when the last one is from
// the second before); the first time, the stored header, kept as c's
// answer (which adds its weight to the copy's in the L1). It is built in
// out, the server's own response header, and copied from there: only
// those carry fasthttp's unexported NoDefaultDate that keeps the origin's
// Date (startResponse), and a copy carries it along.
func (c *l1Entry) wholeHeader(p *Proxy, out *fasthttp.ResponseHeader, e *entry, age int64, cs *cachepolicy.CacheStatus) {
	if a := c.answer.Load(); a != nil {
		a.header.CopyTo(out)
		if a.age == age && a.status == *cs {
			return
		}
		setAgeAndStatus(out, age, cs)
		if a.age == age-1 {
			// Hit the second before too: hot, so the copy that keeping
			// this answer takes is paid back by this second's hits.
			next := &answer{age: age, status: *cs}
			out.CopyTo(&next.header)
			c.answer.Store(next)
		}
		return
	}
	p.storedHeader(out, e, false, cachepolicy.RangeFull, 0)
	setAgeAndStatus(out, age, cs)
	a := &answer{age: age, status: *cs}
	out.CopyTo(&a.header)
	if c.answer.CompareAndSwap(nil, a) {
		p.l1.Grow(c.primary, c, answerWeight(e)) // the copy's first answer: it weighs that much more from now on
	}
}

func setAgeAndStatus(h *fasthttp.ResponseHeader, age int64, cs *cachepolicy.CacheStatus) {
	var buf [160]byte
	h.SetCanonical(hdrAge, strconv.AppendInt(buf[:0], age, 10))
	h.SetCanonical(hdrCacheStatus, cs.Append(buf[:0]))
}

// storedHeader sets out to the stored response's status line and fields
// for this answer (304, 206 or the stored status; no Content-Type on a
// multipart 206, whose parts carry it), with Via.
func (p *Proxy) storedHeader(out *fasthttp.ResponseHeader, e *entry, notModified bool, ra cachepolicy.RangeAnswer, parts int) {
	startResponse(out, firstValue(e.Headers, "Date"))
	switch {
	case notModified:
		out.SetStatusCode(fasthttp.StatusNotModified)
	case ra == cachepolicy.RangePartial:
		out.SetStatusCode(fasthttp.StatusPartialContent)
	default:
		out.SetStatusCode(e.Meta.Status)
	}
	multipart := ra == cachepolicy.RangePartial && parts > 1
	for _, f := range e.Headers {
		if cachepolicy.EqualFold(f.Name, "Content-Length") || cachepolicy.EqualFold(f.Name, "Date") || (multipart && cachepolicy.EqualFold(f.Name, "Content-Type")) {
			continue
		}
		out.AddBytesKV(f.Name, f.Value)
	}
	out.SetBytesV("Via", p.via)
}

func (p *Proxy) setCacheStatus(ctx *fasthttp.RequestCtx, cs cachepolicy.CacheStatus) {
	cs.Cache = p.cfg.CacheName
	ctx.Response.Header.SetBytesV("Cache-Status", cs.Append(nil))
}

// miss coalesces: the first request for a key in this process runs the
// fill; the others wait for its result (until their own deadline) and use
// it if it is valid for them (see usable). A request that cannot use the
// result joins the next flight for the key, whose fetch starts after it
// arrived; failing that (a rare second miss), it fills alone.
func (p *Proxy) miss(t *txn, d cachepolicy.Decision) string {
	for round := 0; ; round++ {
		job := p.newFillJob(t, d)
		ch := p.flights.DoChan(job.primary, func() (any, error) { return p.safeFill(job), nil })
		if h := p.hooks.Load(); h != nil && h.onWait != nil {
			h.onWait("process")
		}
		timer := time.NewTimer(p.cfg.OriginTimeout + p.cfg.CoalesceWait)
		var res *fillResult
		select {
		case r := <-ch:
			res = r.Val.(*fillResult)
		case <-timer.C:
			p.errorJSON(t.ctx, fasthttp.StatusGatewayTimeout, "origin_timeout", "the origin did not answer in time")
			return outcomeError
		}
		timer.Stop()
		if res.job == job {
			return p.answer(t, res)
		}
		p.m.coalescedLocal.Inc()
		if p.usable(t, res) {
			shared := *res // the result is shared: mark a copy
			shared.collapsed = true
			return p.answer(t, &shared)
		}
		if round == 1 {
			return p.answer(t, p.safeFill(p.newFillJob(t, d)))
		}
	}
}

// usable reports whether another request's fill result may answer t.
//   - An origin failure carries no data: sharing it keeps a failing origin
//     from getting every waiter's retry.
//   - A response that must not be stored is not shared (nor is an origin
//     5xx passed through: it is the leader's to deliver).
//   - Anything else is checked like a stored entry, against the group values
//     t's own lookup read after t arrived. Trusting a flight because it
//     started after t arrived is not enough: its snapshot may be an older
//     lookup's (the leader's), taken before a write t's client saw
//     acknowledged, and with a lagging replica its fetch may miss that write.
func (p *Proxy) usable(t *txn, res *fillResult) bool {
	switch {
	case res.err != nil:
		return true
	case res.ent == nil || !res.shareable || res.staleOnError:
		return false
	case !p.varyMatches(res.ent, &t.ctx.Request.Header):
		return false
	}
	if t.items == nil {
		t.items = map[string]*store.Item{}
	}
	p.fetchGroups(res.ent, t.items, t.primary)
	if !p.current(res.ent, t.items) {
		return false
	}
	return cachepolicy.Decide(&t.creq, &res.ent.Meta, time.Now()).Action == cachepolicy.Serve
}

// answer writes a fill's result for the request that ran it.
func (p *Proxy) answer(t *txn, res *fillResult) string {
	switch {
	case res.ent != nil:
		cs := cachepolicy.CacheStatus{Cache: p.cfg.CacheName, Fwd: res.fwd, FwdStatus: res.fwdStatus,
			Stored: res.stored, Collapsed: res.collapsed, Detail: res.detail}
		if res.staleOnError {
			cs.Hit, cs.Fwd, cs.Stored = false, cachepolicy.FwdStale, false
		}
		age := res.ent.Meta.CurrentAge(time.Now())
		cs.TTL, cs.HasTTL = res.ent.Meta.Lifetime-age, true
		p.deliver(t.ctx, res.ent, nil, age, &cs)
		if !res.collapsed {
			for _, c := range res.cookies {
				t.ctx.Response.Header.AddBytesKV(hdrSetCookie, c)
			}
		}
		switch {
		case res.staleOnError:
			return outcomeStale
		case res.collapsed:
			return outcomeCollapsed
		case res.revalidated:
			return outcomeRevalidated
		}
		return outcomeMiss
	case res.resp != nil:
		p.copyResponse(t.ctx, res.resp)
		p.setCacheStatus(t.ctx, cachepolicy.CacheStatus{Fwd: res.fwd, FwdStatus: res.resp.StatusCode(), Detail: res.detail})
		return outcomeMiss
	default:
		p.originFailed(t.ctx, res.err)
		p.setCacheStatus(t.ctx, cachepolicy.CacheStatus{Fwd: res.fwd, Detail: "origin-error"})
		return outcomeError
	}
}

// refreshInBackground revalidates a stale entry after it was served
// (stale-while-revalidate), coalesced with any fill of the same key.
func (p *Proxy) refreshInBackground(t *txn, d cachepolicy.Decision) {
	d.Fwd = cachepolicy.FwdStale
	job := p.newFillJob(t, d)
	select {
	case <-p.stop:
		return
	default:
	}
	p.bg.Add(1)
	go func() {
		defer p.bg.Done()
		<-p.flights.DoChan(job.primary, func() (any, error) { return p.safeFill(job), nil })
	}()
}
