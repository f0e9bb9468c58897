package proxy

import (
	"errors"
	"runtime/debug"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"edgecache/cachepolicy"
)

// fillJob is everything a fill needs, copied out of the client's
// RequestCtx: a fill may run in another goroutine and outlive the request
// that started it (singleflight, background refresh).
type fillJob struct {
	primary string
	path    string
	ekey    string
	ukey    string
	lkey    string
	keys    []string // lookup keys: entry, URL group, known groups
	req     *fasthttp.Request
	creq    cachepolicy.Request
	d       cachepolicy.Decision
	stale   *entry // the stored entry, if valid by its groups (for validation and stale-if-error)
	// snap holds the group states read by the lookup, i.e. before this
	// fill's origin fetch.
	snap        map[string]groupState
	unavailable bool // a key's node was down during lookup: do not store
}

// fillResult is what a fill produced.
type fillResult struct {
	job          *fillJob
	ent          *entry             // a storable response (stored or not), or the stale entry on error
	resp         *fasthttp.Response // a response that must not be stored or shared
	err          error              // the origin failed and nothing could be served
	fwd          cachepolicy.Fwd
	fwdStatus    int
	stored       bool
	shareable    bool // waiters may use ent (subject to their own validation)
	collapsed    bool // ent came from another proxy's fill
	revalidated  bool
	staleOnError bool
	detail       string
	// started is when the fill began, before it read any group version;
	// zero for an entry another proxy stored.
	started time.Time
}

func (p *Proxy) newFillJob(t *txn, d cachepolicy.Decision) *fillJob {
	job := &fillJob{
		primary: string(t.primary), path: string(t.ctx.URI().PathOriginal()),
		ekey: t.ekey, ukey: t.ukey, lkey: leaseKey(string(t.primary)),
		keys: t.keys, req: new(fasthttp.Request), d: d,
		snap: make(map[string]groupState, len(t.items)), unavailable: t.unavailable,
	}
	p.originRequest(t.ctx, job.req, true)
	job.req.Header.SetMethod(fasthttp.MethodGet) // HEAD misses fill with GET
	// The request directives alias the client's header buffer: parse them
	// again from a copy.
	h := &t.ctx.Request.Header
	job.creq = cachepolicy.NewRequest([]byte(fasthttp.MethodGet), append([]byte(nil), h.Peek("Cache-Control")...),
		append([]byte(nil), h.Peek("Pragma")...), false)
	for k, it := range t.items {
		if k == t.ekey {
			continue
		}
		if st, ok := parseGroupState(it.Value); ok {
			job.snap[k] = st
		}
	}
	if t.hasEnt {
		e := t.ent
		job.stale = &e
	}
	return job
}

// errFillPanic is a fill's result when it panicked: the process keeps
// serving, the request gets a 500.
var errFillPanic = errors.New("internal error during fill")

// safeFill runs fill, turning a panic into an error result: fills run in
// singleflight and background goroutines, where a panic would end the
// process.
func (p *Proxy) safeFill(job *fillJob) (res *fillResult) {
	defer func() {
		if r := recover(); r != nil {
			p.m.panics.Inc()
			p.log.Error("panic in fill", zap.Any("panic", r), zap.String("path", job.path), zap.ByteString("stack", debug.Stack()))
			res = &fillResult{job: job, fwd: job.d.Fwd, err: errFillPanic}
		}
	}()
	return p.fill(job)
}

// fill gets a response for job from the origin and stores it if allowed.
// Across the fleet, one fill per key runs at a time: the lease in memcached.
func (p *Proxy) fill(job *fillJob) *fillResult {
	res := &fillResult{job: job, fwd: job.d.Fwd, started: time.Now()}
	err := p.l2.add(&memcache.Item{Key: job.lkey, Value: []byte{'1'}, Expiration: int32(p.cfg.LeaseTTL / time.Second)})
	switch {
	case err == nil:
		defer p.l2.del(job.lkey)
	case errors.Is(err, memcache.ErrNotStored):
		if r := p.waitForFleetFill(job); r != nil {
			return r
		}
	}

	// Snapshot, before fetching: the URL group must exist (its epoch is
	// all that protects a response without origin versions), and so must
	// the groups already known for this key. A group that had to be created
	// was unknown: answer from the primary. Nothing known at all (a cold
	// key): the primary as well.
	fresh := len(job.keys) <= 2
	noStore := job.unavailable
	for _, k := range job.keys[1:] {
		if _, ok := job.snap[k]; ok {
			continue
		}
		st, created, err := ensureGroup(p.l2, k, 0)
		if err != nil {
			// Unknown: nothing can tell a lagging replica's answer from a
			// current one, so ask the primary; and store nothing.
			noStore, fresh = true, true
			continue
		}
		job.snap[k] = st
		fresh = fresh || created
	}

	deadline := time.Now().Add(p.cfg.OriginTimeout)
	conditional := job.stale != nil && job.d.Action == cachepolicy.Validate
	for attempt := 0; ; attempt++ {
		req := job.req
		req.Header.Del("If-None-Match")
		req.Header.Del("If-Modified-Since")
		req.Header.Del(hdrFresh)
		if conditional {
			inm, ims := job.stale.meta.Conditional()
			if len(inm) > 0 {
				req.Header.SetBytesV("If-None-Match", inm)
			}
			if len(ims) > 0 {
				req.Header.SetBytesV("If-Modified-Since", ims)
			}
		}
		if fresh {
			req.Header.Set(hdrFresh, "1")
		}
		resp := new(fasthttp.Response)
		reqTime := time.Now()
		err := p.origins.do(req, resp, true, deadline)
		respTime := time.Now()
		if err != nil || cachepolicy.ErrorStatus(resp.StatusCode()) {
			if job.stale != nil && job.stale.meta.ServeOnError(&job.creq, respTime) {
				res.ent, res.staleOnError, res.shareable = job.stale, true, true
				if err == nil {
					res.fwdStatus = resp.StatusCode()
				}
				res.detail = "stale-if-error"
				return res
			}
			if err != nil {
				res.err = err
				return res
			}
			res.resp, res.detail = resp, "origin-error"
			return res
		}
		res.fwdStatus = resp.StatusCode()

		if resp.StatusCode() == fasthttp.StatusNotModified && conditional {
			conditional = false
			if !job.stale.meta.Selects304(resp.Header.Peek("ETag"), resp.Header.Peek("Last-Modified")) {
				continue // the 304 is for another representation: fetch in full
			}
			ent := p.freshen(job.stale, resp, reqTime, respTime)
			res.revalidated = true
			p.store(job, res, ent, job.stale.groups, noStore)
			return res
		}

		cresp := p.responseRules(resp)
		ok, reason := cachepolicy.Storable(&job.creq, &cresp)
		groups, gerr := parseGroups(resp.Header.Peek(hdrGroups))
		switch {
		case !ok:
		case gerr != nil:
			ok, reason = false, "bad-groups"
			p.log.Warn("origin sent a malformed Edgecache-Groups; response not stored",
				zap.String("path", job.path), zap.ByteString("value", resp.Header.Peek(hdrGroups)))
		case len(resp.Body()) > p.cfg.MaxObjectBytes:
			ok, reason = false, "too-large"
			p.m.tooLarge.Inc()
		case resp.StatusCode() == fasthttp.StatusNotModified:
			ok, reason = false, "status"
		}
		if !ok {
			res.resp, res.detail = resp, reason
			return res
		}

		// Groups the snapshot lacks are read now, after the fetch. That is
		// safe for groups with origin versions: any write the response
		// misses either moved the group after this read (the entry fails
		// validation) or before it (its version shows the response is
		// older, below). A group missing in memcached is unknown: created
		// from this response if it came from the primary, else refetched
		// from the primary.
		needFresh := false
		var post []string
		for _, g := range groups {
			if _, ok := job.snap[groupKey(g.name)]; !ok {
				post = append(post, groupKey(g.name))
			}
		}
		if len(post) > 0 {
			items, unavailable := p.l2.getMulti(post)
			if len(unavailable) > 0 {
				noStore = true
			}
			for _, g := range groups {
				k := groupKey(g.name)
				if _, ok := job.snap[k]; ok {
					continue
				}
				if it := items[k]; it != nil {
					if st, ok := parseGroupState(it.Value); ok {
						job.snap[k] = st
						continue
					}
				}
				if !fresh {
					needFresh = true
					continue
				}
				st, _, err := ensureGroup(p.l2, k, g.version)
				if err != nil {
					noStore = true
					continue
				}
				job.snap[k] = st
			}
		}
		for _, g := range groups {
			if st, ok := job.snap[groupKey(g.name)]; ok && st.origin > g.version {
				needFresh = true // a replica behind a write this proxy fleet already saw
			}
		}
		if needFresh {
			if !fresh && attempt == 0 {
				p.m.lagRefetch.Inc()
				fresh = true
				continue
			}
			// The primary's answer predates a write that raced it: give it
			// to this request, store nothing.
			noStore = true
		}
		rec := make([]recorded, 0, len(groups)+1)
		rec = append(rec, recorded{key: []byte(job.ukey), epoch: job.snap[job.ukey].epoch})
		for _, g := range groups {
			k := groupKey(g.name)
			if k == job.ukey {
				continue
			}
			st, ok := job.snap[k]
			if !ok {
				noStore = true
				continue
			}
			rec = append(rec, recorded{key: []byte(k), epoch: st.epoch})
		}
		if job.snap[job.ukey].epoch == 0 {
			noStore = true
		}
		ent := p.newEntry(job, resp, &cresp, reqTime, respTime)
		p.store(job, res, ent, rec, noStore)
		return res
	}
}

// responseRules extracts what cachepolicy needs from an origin response.
func (p *Proxy) responseRules(resp *fasthttp.Response) cachepolicy.Response {
	h := &resp.Header
	return cachepolicy.Response{
		Status:       resp.StatusCode(),
		CacheControl: cachepolicy.ResponseDirectives(h.Peek(p.cfg.TargetedField), h.Peek("CDN-Cache-Control"), h.Peek("Cache-Control")),
		Expires:      h.Peek("Expires"),
		Date:         h.Peek("Date"),
		LastModified: h.Peek("Last-Modified"),
		Age:          h.Peek("Age"),
		ETag:         h.Peek("ETag"),
		Vary:         h.Peek("Vary"),
		SetCookie:    len(h.Peek("Set-Cookie")) > 0,
	}
}

// newEntry builds the entry for a storable response.
func (p *Proxy) newEntry(job *fillJob, resp *fasthttp.Response, cresp *cachepolicy.Response, reqTime, respTime time.Time) *entry {
	e := &entry{meta: cachepolicy.NewMeta(cresp, reqTime, respTime), body: resp.Body()}
	if len(e.meta.Vary) > 0 {
		e.varyKey = cachepolicy.AppendVaryKey(nil, e.meta.Vary, func(name []byte) []byte { return job.req.Header.PeekBytes(name) })
	}
	conn := resp.Header.Peek("Connection")
	for k, v := range resp.Header.All() {
		if p.rules.Store(k, conn, &cresp.CacheControl) && !eqFold(k, "Content-Length") {
			e.headers = append(e.headers, field{name: append([]byte(nil), k...), value: append([]byte(nil), v...)})
		}
	}
	return e
}

// freshen applies a 304 to a stored entry (RFC 9111 §4.3.4): the 304's
// storable fields replace the stored ones, and the metadata is computed
// again over the merged fields, with the stored status and the new times.
func (p *Proxy) freshen(old *entry, resp *fasthttp.Response, reqTime, respTime time.Time) *entry {
	conn := resp.Header.Peek("Connection")
	cc := cachepolicy.ResponseDirectives(resp.Header.Peek(p.cfg.TargetedField), resp.Header.Peek("CDN-Cache-Control"), resp.Header.Peek("Cache-Control"))
	merged := &fasthttp.Response{}
	for _, f := range old.headers {
		merged.Header.AddBytesKV(f.name, f.value)
	}
	for k, v := range resp.Header.All() {
		if p.rules.Update(k, conn, &cc) {
			merged.Header.SetBytesKV(k, v)
		}
	}
	merged.SetStatusCode(old.meta.Status)
	merged.SetBodyRaw(old.body)
	cresp := p.responseRules(merged)
	e := &entry{meta: cachepolicy.NewMeta(&cresp, reqTime, respTime), varyKey: old.varyKey, body: old.body}
	for k, v := range merged.Header.All() {
		if p.rules.Store(k, nil, &cresp.CacheControl) && !eqFold(k, "Content-Length") {
			e.headers = append(e.headers, field{name: append([]byte(nil), k...), value: append([]byte(nil), v...)})
		}
	}
	return e
}

// store records the group epochs in e, encodes it, stores it (unless
// noStore) and fills res. Whether stored or not, res.ent is the decoded
// entry, self-contained, for this request and the waiters.
func (p *Proxy) store(job *fillJob, res *fillResult, e *entry, groups []recorded, noStore bool) {
	e.groups = make([]recorded, 0, len(groups))
	for _, g := range groups {
		st, ok := job.snap[string(g.key)]
		if !ok {
			noStore = true
			continue
		}
		e.groups = append(e.groups, recorded{key: g.key, epoch: st.epoch})
	}
	b, err := e.appendBinary(make([]byte, 0, len(e.body)+512))
	var dec entry
	if err == nil {
		err = decodeEntry(b, &dec)
	}
	if err != nil {
		p.log.Warn("response cannot be encoded as an entry; not stored", zap.String("path", job.path), zap.Error(err))
		res.ent, res.shareable = e, false
		return
	}
	res.ent, res.shareable = &dec, true
	if noStore {
		res.detail = "not-stored"
		return
	}
	ttl := e.meta.Lifetime - e.meta.CurrentAge(time.Now()) + max(e.meta.StaleWhileRevalidate, e.meta.StaleIfError)
	if len(e.meta.ETag) > 0 || len(e.meta.LastModified) > 0 {
		ttl += 300 // worth keeping for revalidation
	}
	if ttl <= 0 {
		res.detail = "expired"
		return
	}
	ttl = min(ttl, int64(p.cfg.MaxTTL/time.Second))
	if h := p.hooks.Load(); h != nil && h.beforeStore != nil {
		h.beforeStore(job.path)
	}
	if err := p.l2.set(&memcache.Item{Key: job.ekey, Value: b, Expiration: int32(ttl)}); err != nil {
		p.m.storeErrors.Inc()
		p.log.Info("entry not stored", zap.String("path", job.path), zap.Error(err))
		return
	}
	p.m.stores.Inc()
	res.stored = true
	p.keepL1(job.ekey, &dec)
	keys := make([]string, len(e.groups))
	for i, g := range e.groups {
		keys[i] = string(g.key)
	}
	p.groupsOf.set(job.primary, keys)
}

// waitForFleetFill waits while another proxy holds the key's lease,
// polling memcached, and returns its entry once it is stored and valid.
// It returns nil when the lease goes away without a usable entry or the
// wait exceeds PROXY_COALESCE_WAIT: the caller then fetches itself.
func (p *Proxy) waitForFleetFill(job *fillJob) *fillResult {
	p.m.coalescedFleet.Inc()
	if h := p.hooks.Load(); h != nil && h.onWait != nil {
		h.onWait("fleet")
	}
	keys := append([]string{job.lkey}, job.keys...)
	deadline := time.Now().Add(p.cfg.CoalesceWait)
	for time.Now().Before(deadline) {
		time.Sleep(p.cfg.LeasePoll)
		items, _ := p.l2.getMulti(keys)
		if it := items[job.ekey]; it != nil {
			var e entry
			if decodeEntry(it.Value, &e) == nil && p.varyMatches(&e, &job.req.Header) &&
				p.validGroups(&e, items, []byte(job.primary), nil) {
				d := cachepolicy.Decide(&job.creq, &e.meta, time.Now())
				if d.Action == cachepolicy.Serve {
					return &fillResult{job: job, ent: &e, fwd: job.d.Fwd, shareable: true, collapsed: true}
				}
			}
		}
		if items[job.lkey] == nil {
			return nil // the other fill finished (or died) without a usable entry
		}
	}
	p.m.coalesceTimeout.Inc()
	return nil
}
