package proxy

import (
	"errors"
	"runtime/debug"
	"slices"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"edgecache/cachepolicy"
	"edgecache/proxy/store"
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
	snap        map[string]store.Group
	unavailable bool // a key's node was down during lookup: do not store
	// head: the request goes on as HEAD (see newFillJob); its answer has
	// no body and is never stored as an entry, only applied to the stored
	// one (headAnswer).
	head bool
	// alone: the fill answers one request with Authorization and no
	// other (authorized.go): it takes no fleet fill lease, so that no
	// other proxy waits for it, and waits for nobody's.
	alone bool
	// variants: the secondary keys the URL's entry reached at lookup,
	// which this fill's entry lists (variants.go).
	variants [][]byte
	// endLease stops the beat of the fleet fill lease this fill holds
	// (nil: none, or given back): save gives the lease back in the round
	// trip that stores the entry.
	endLease func()
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
	// cookies are the Set-Cookie values of the response, for the request
	// that ran the fill only, when the entry does not keep them
	// (PROXY_STRIP_SET_COOKIE, or a 304's); never shared with waiters.
	cookies [][]byte
}

func (p *Proxy) newFillJob(t *txn, d cachepolicy.Decision) *fillJob {
	p.mcKeys(t)
	job := &fillJob{
		primary: string(t.primary), path: string(t.ctx.URI().PathOriginal()),
		ekey: t.ekey, ukey: t.ukey, lkey: store.LeaseKey(string(t.primary)),
		keys: t.keys, req: new(fasthttp.Request), d: d,
		snap: make(map[string]store.Group, len(t.items)), unavailable: t.unavailable,
		variants: t.variants,
	}
	p.originRequest(t.ctx, job.req, true)
	// A HEAD goes on as HEAD when it revalidates a stored entry (the answer
	// updates or invalidates it, RFC 9111 §4.3.5, without a body to
	// transfer) or when nothing will be stored (request no-store). A HEAD
	// with nothing stored fills with GET, so that the GETs after it hit;
	// so does a background refresh.
	job.head = t.ctx.IsHead() && d.Action != cachepolicy.ServeStale &&
		((t.hasEnt && d.Action == cachepolicy.Validate) || t.creq.CacheControl.Has(cachepolicy.NoStore))
	if !job.head {
		job.req.Header.SetMethod(fasthttp.MethodGet)
	}
	// The request directives alias the client's header buffer: parse them
	// again from a copy.
	h := &t.ctx.Request.Header
	job.creq = cachepolicy.NewRequest([]byte(fasthttp.MethodGet), append([]byte(nil), requestList(h, "Cache-Control")...),
		append([]byte(nil), requestList(h, "Pragma")...), false)
	for k, it := range t.items {
		if k == t.ekey {
			continue
		}
		if st, ok := store.ParseGroup(it.Value); ok {
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

// fill gets a response for job from the origin and stores it if allowed,
// in the steps of a fetch (after Varnish's fetch states): take the lease,
// snapshot the groups, fetch, revalidate on 304, resolve the response's
// groups, store. Across the fleet, one fill per key runs at a time: the
// lease in memcached.
func (p *Proxy) fill(job *fillJob) *fillResult {
	res := &fillResult{job: job, fwd: job.d.Fwd}
	if p.origins.limit.reached() {
		// Refused before the lease and the groups: a flood of misses
		// beyond the limit costs the proxy its lookups only (the lease,
		// the groups' snapshot and the lease's release were five more
		// memcached round trips for each 503).
		return p.fetchFailed(job, res, nil, errOriginOverloaded, time.Now())
	}
	if !job.alone {
		held, other := p.takeLease(job)
		if other != nil {
			return other
		}
		if held {
			stop := p.beat(job.lkey)
			job.endLease = stop
			defer func() {
				stop()
				if job.endLease != nil { // save did not give it back
					p.store.Delete(job.lkey)
				}
			}()
		}
	}
	f := p.snapshot(job)
	deadline := time.Now().Add(p.cfg.OriginTimeout)
	for attempt := 0; ; attempt++ {
		resp, reqTime, respTime, err := p.fetch(job, &f, deadline)
		if err != nil || cachepolicy.ErrorStatus(resp.StatusCode()) {
			if r := p.fetchFailed(job, res, resp, err, respTime); r != nil {
				return r
			}
			// An error answer that no stored entry stands in for is an
			// answer like any other: stored if its directives allow it
			// (RFC 9111 §3).
		}
		res.fwdStatus = resp.StatusCode()
		if resp.StatusCode() == fasthttp.StatusNotModified && f.conditional {
			f.conditional = false
			if !job.stale.Meta.Selects304(resp.Header.Peek("ETag"), resp.Header.Peek("Last-Modified")) {
				continue // the 304 is for another representation: fetch in full
			}
			ent := p.freshen(job.stale, resp, reqTime, respTime)
			res.revalidated = true
			res.cookies = setCookies(resp)
			// Request no-store: the 304 answers this request from the
			// entry, and nothing of it is stored (RFC 9111 §5.2.1.5).
			p.save(job, res, ent, p.record(job, groupKeys(job.stale), &f), f.noStore || job.creq.CacheControl.Has(cachepolicy.NoStore))
			return res
		}
		if job.head {
			return p.headAnswer(job, res, resp, &f, reqTime, respTime)
		}
		fields := responseFields(resp)
		cresp := p.fieldRules(resp.StatusCode(), fields)
		groups, reason := p.storable(job, resp, &cresp)
		if reason != "" {
			res.resp, res.detail = resp, reason
			return res
		}
		gkeys := make([]string, len(groups))
		for i, g := range groups {
			gkeys[i] = store.GroupKey(g.name)
		}
		if p.resolveGroups(job, groups, gkeys, &f) {
			if !f.fresh && attempt == 0 {
				p.m.lagRefetch.Inc()
				f.fresh = true
				f.unchecked = nil // read before this fetch: its snapshot now
				continue
			}
			// The primary's answer predates a write that raced it: give it
			// to this request, store nothing.
			f.noStore = true
		}
		p.learn(job, groups, gkeys)
		keys := make([]string, 0, len(groups)+1)
		keys = append(keys, job.ukey)
		for _, k := range gkeys {
			if k != job.ukey {
				keys = append(keys, k)
			}
		}
		ent := p.newEntry(job, resp, fields, &cresp, reqTime, respTime)
		if p.rules.StripSetCookie {
			res.cookies = setCookies(resp)
		}
		p.save(job, res, ent, p.record(job, keys, &f), f.noStore)
		return res
	}
}

// groupKeys is the memcached keys of e's groups.
func groupKeys(e *entry) []string {
	keys := make([]string, len(e.Groups))
	for i, g := range e.Groups {
		keys[i] = string(g.Key)
	}
	return keys
}

// setCookies copies the Set-Cookie values of resp.
func setCookies(resp *fasthttp.Response) [][]byte {
	var c [][]byte
	for k, v := range resp.Header.All() {
		if cachepolicy.EqualFold(k, "Set-Cookie") {
			c = append(c, append([]byte(nil), v...))
		}
	}
	return c
}

// fetchState is what the steps of one fill decide between them.
type fetchState struct {
	fresh       bool // ask the primary (Edgecache-Fresh): a replica's answer could not be checked
	noStore     bool // answer, but store nothing
	conditional bool // revalidate the stale entry (If-None-Match / If-Modified-Since)
	// unchecked are the groups at version 0 first read after the fetch
	// (resolveGroups): recorded so that the entry is never current.
	unchecked []string
}

// snapshot makes sure the URL group and the groups already known for this
// key exist, before the fetch: their values, recorded in the entry, are what
// later writes move. A known group that had to be created, or whose origin
// version is unknown (0: re-created after its key was lost), cannot show
// that a replica's answer is behind: ask the primary. The URL group never
// carries an origin version, and a cold key (no groups known yet) goes to
// a replica like any other: resolveGroups checks its answer against the
// groups it names, read after the fetch, and fetches again from the
// primary when one is missing or its version unknown. So a query string
// never seen before costs a replica read, not a primary one.
//
// Every group in the snapshot counts, not only the known ones (job.keys):
// the lookup also read the groups of an entry it found no longer current,
// which this process did not remember, and one of those at origin version
// 0, trusted for a replica's answer, stored a post as it was before its
// acknowledged delete (TestSimUnknownGroupOfAnEntryNotCurrentSendsTheFillToThePrimary).
func (p *Proxy) snapshot(job *fillJob) fetchState {
	f := fetchState{noStore: job.unavailable, conditional: job.stale != nil && job.d.Action == cachepolicy.Validate}
	for k, g := range job.snap {
		f.fresh = f.fresh || (k != job.ukey && g.Origin == 0)
	}
	for _, k := range job.keys[1:] {
		if _, ok := job.snap[k]; ok {
			continue
		}
		g, created, err := p.store.Ensure(k, 0)
		if err != nil {
			// Unknown: nothing can tell a lagging replica's answer from a
			// current one, so ask the primary; and store nothing.
			f.noStore, f.fresh = true, true
			continue
		}
		job.snap[k] = g
		f.fresh = f.fresh || (k != job.ukey && (created || g.Origin == 0))
	}
	return f
}

// fetch sends the fill's request to the origin: conditional when
// revalidating, to the primary when f.fresh.
func (p *Proxy) fetch(job *fillJob, f *fetchState, deadline time.Time) (resp *fasthttp.Response, reqTime, respTime time.Time, err error) {
	req := job.req
	req.Header.Del("If-None-Match")
	req.Header.Del("If-Modified-Since")
	req.Header.Del(hdrFresh)
	if f.conditional {
		inm, ims := job.stale.Meta.Conditional()
		if len(inm) > 0 {
			req.Header.SetBytesV("If-None-Match", inm)
		}
		if len(ims) > 0 {
			req.Header.SetBytesV("If-Modified-Since", ims)
		}
	}
	if f.fresh {
		req.Header.Set(hdrFresh, "1")
	}
	resp = new(fasthttp.Response)
	reqTime = time.Now()
	err = p.origins.do(req, resp, true, deadline)
	return resp, reqTime, time.Now(), err
}

// fetchFailed is the fill's result when the origin failed (err) or
// answered with an error status: the stale entry where its directives
// allow it (stale-if-error, RFC 5861 §4), or where the origin could not be
// reached at all and nothing forbids serving stale (RFC 9111 §4.2.4: a
// disconnected cache; see cachepolicy.Meta.ServeOnError); else the failure.
// For an error status with no entry to serve it returns nil: the caller
// treats the answer as any other.
func (p *Proxy) fetchFailed(job *fillJob, res *fillResult, resp *fasthttp.Response, err error, at time.Time) *fillResult {
	if job.stale != nil {
		m := &job.stale.Meta
		switch {
		case m.ServeOnError(&job.creq, at, cachepolicy.ErrorResponse):
			res.detail = "stale-if-error"
		case errors.Is(err, errOriginOverloaded) && m.ServeOnError(&job.creq, at, cachepolicy.Disconnected):
			res.detail = "origin-overloaded" // not sent: served stale as if disconnected
		case err != nil && m.ServeOnError(&job.creq, at, cachepolicy.Disconnected):
			res.detail = "disconnected"
		}
		if res.detail != "" {
			res.ent, res.staleOnError, res.shareable = job.stale, true, true
			if err == nil {
				res.fwdStatus = resp.StatusCode()
			}
			return res
		}
	}
	if err != nil {
		res.err = err
		return res
	}
	return nil
}

// storable parses the response's groups and says why it must not be
// stored ("" if it may be).
func (p *Proxy) storable(job *fillJob, resp *fasthttp.Response, cresp *cachepolicy.Response) ([]group, string) {
	if ok, reason := cachepolicy.Storable(&job.creq, cresp); !ok {
		return nil, reason
	}
	groups, err := parseGroups(resp.Header.Peek(hdrGroups))
	switch {
	case err != nil:
		p.log.Warn("origin sent a malformed Edgecache-Groups; response not stored",
			zap.String("path", job.path), zap.ByteString("value", resp.Header.Peek(hdrGroups)))
		return nil, "bad-groups"
	case len(resp.Body()) > p.cfg.MaxObjectBytes:
		p.m.tooLarge.Inc()
		return nil, "too-large"
	case resp.StatusCode() == fasthttp.StatusNotModified:
		return nil, "status"
	}
	return groups, ""
}

// resolveGroups reads the values of the response's groups (keys[i] is
// groups[i]'s memcached key) that the snapshot lacks, after the fetch, and reports whether the response may
// come from a lagging replica. Reading them after the fetch is safe for
// groups with known origin versions: a write the response misses either
// moved the group after this read (the entry fails validation) or before it
// (its version shows the response is older). A group that is missing, or
// whose origin version is unknown, cannot show that, not even for the
// primary's answer (a write may have moved it after the fetch, and it then
// been lost and created again): it is taken now, and the response counts
// as lagging, so that the next fetch has it in its snapshot.
//
// A group at version 0 says the row does not exist (the origin's 404 of a
// post or user, always the primary's word: origin/GUIDE.md). Its group's
// version says nothing about that answer (a deleted post's is its last
// version + 1), so it is not compared; what keeps a stored 404 honest is
// the epoch recorded before the fetch, which the row's creation moves. A
// group read only after the fetch cannot give that, yet the answer is
// still the primary's, good for this request: the group is taken now and
// listed in f.unchecked, and the entry is stored as a witness of its
// groups (record: never current), so that the next fill of the key, on
// any proxy, has the group in its snapshot and stores an entry that is.
// Fetching again at once would double what an id scan of missing rows
// costs the origin.
func (p *Proxy) resolveGroups(job *fillJob, groups []group, keys []string, f *fetchState) (lagging bool) {
	var post []string
	for _, k := range keys {
		if _, ok := job.snap[k]; !ok {
			post = append(post, k)
		}
	}
	if len(post) > 0 {
		items, unavailable := p.store.GetMulti(post)
		if len(unavailable) > 0 {
			f.noStore = true
		}
		for i, g := range groups {
			k := keys[i]
			if _, ok := job.snap[k]; ok {
				continue
			}
			if g.version == 0 {
				st, _, err := p.store.Ensure(k, 0)
				if err != nil {
					f.noStore = true
					continue
				}
				job.snap[k] = st
				f.unchecked = append(f.unchecked, k)
				continue
			}
			if it := items[k]; it != nil {
				if st, ok := store.ParseGroup(it.Value); ok && st.Origin > 0 {
					job.snap[k] = st
					continue
				}
			}
			// Missing, garbled or without a version (see above;
			// TestMemstoreVersionlessGroupReadAfterTheFetchIsNotTrusted).
			lagging = true
			st, _, err := p.store.Ensure(k, 0)
			if err != nil {
				f.noStore = true // its node is down: the primary's answer, not stored
				continue
			}
			job.snap[k] = st
		}
	}
	for i, g := range groups {
		if st, ok := job.snap[keys[i]]; ok && g.version > 0 && st.Origin > g.version {
			lagging = true // a replica behind a write the fleet already saw
		}
	}
	return lagging
}

// learn raises the origin version of groups whose value does not know the
// response's version yet (typically re-created ones, at 0), so that the
// next fill can tell a lagging replica's answer without asking the primary.
// The version is committed (a database returned it), so this never claims
// more than is true; it does not move epochs.
func (p *Proxy) learn(job *fillJob, groups []group, keys []string) {
	for i, g := range groups {
		k := keys[i]
		if st, ok := job.snap[k]; ok && st.Origin < g.version {
			if err := p.store.Learn(k, g.version); err != nil {
				p.log.Debug("group version not learned", zap.String("group", g.name), zap.Error(err))
			}
		}
	}
}

// record is the snapshot's value of each group key, as the entry keeps it.
// A group without a snapshot value (its node failed) means the entry could
// not be checked later: f.noStore.
func (p *Proxy) record(job *fillJob, keys []string, f *fetchState) []recorded {
	rec := make([]recorded, 0, len(keys))
	for _, k := range keys {
		st, ok := job.snap[k]
		if !ok {
			f.noStore = true
			continue
		}
		if slices.Contains(f.unchecked, k) {
			st = store.NeverCurrent
		}
		rec = append(rec, recorded{Key: []byte(k), Incarnation: st.Incarnation, Epoch: st.Epoch})
	}
	return rec
}

// newEntry builds the entry for a storable response: its fields
// (responseFields) as storedFields keeps them (Transfer-Encoding, a hop-by-hop field, is not
// among them: the body is stored de-chunked, and answered with a
// Content-Length).
func (p *Proxy) newEntry(job *fillJob, resp *fasthttp.Response, fields []field, cresp *cachepolicy.Response, reqTime, respTime time.Time) *entry {
	e := &entry{Meta: cachepolicy.NewMeta(cresp, reqTime, respTime), Body: resp.Body()}
	if len(e.Meta.Vary) > 0 {
		e.VaryKey = cachepolicy.AppendVaryKey(nil, e.Meta.Vary, func(name []byte) []byte { return job.req.Header.PeekBytes(name) })
	}
	e.Headers = p.storedFields(fields, &cresp.CacheControl, respTime)
	return e
}

// freshen applies a 304 or a HEAD response to a stored entry (RFC 9111
// §4.3.4, §4.3.5): its fields replace the stored ones of the same name
// (mergeFields), and the metadata is computed again over the merged
// fields, with the stored status and the new times.
func (p *Proxy) freshen(old *entry, resp *fasthttp.Response, reqTime, respTime time.Time) *entry {
	update := responseFields(resp)
	cc := p.fieldRules(resp.StatusCode(), update).CacheControl
	merged := p.mergeFields(old.Headers, update, &cc)
	cresp := p.fieldRules(old.Meta.Status, merged)
	return &entry{Meta: cachepolicy.NewMeta(&cresp, reqTime, respTime), VaryKey: old.VaryKey, Body: old.Body,
		Headers: p.storedFields(merged, &cresp.CacheControl, respTime)}
}

// save encodes e with the recorded groups and stores it (unless noStore),
// and fills res. Whether stored or not, res.ent is the decoded entry,
// self-contained, for this request and the waiters.
func (p *Proxy) save(job *fillJob, res *fillResult, e *entry, groups []recorded, noStore bool) {
	e.Groups = groups
	if len(e.Meta.Vary) > 0 {
		e.Variants = otherVariants(job.variants, e.VaryKey)
	}
	b, err := e.AppendBinary(make([]byte, 0, len(e.Body)+512))
	var dec entry
	if err == nil {
		err = store.DecodeEntry(b, &dec)
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
	ttl := e.Meta.Lifetime - e.Meta.CurrentAge(time.Now()) + max(e.Meta.StaleWhileRevalidate, e.Meta.StaleIfError)
	if len(e.Meta.ETag) > 0 || len(e.Meta.LastModified) > 0 {
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
	items := []*store.Item{{Key: job.ekey, Value: b, Expiration: int32(ttl)}}
	if len(e.Meta.Vary) > 0 {
		items = append(items, &store.Item{Key: store.VariantKey(job.primary, e.VaryKey), Value: b, Expiration: int32(ttl)})
	}
	// The lease is given back after the entry is stored, in the same
	// round trip: a waiter that finds it gone finds the entry. No beat
	// may write it again after that.
	var release string
	if job.endLease != nil {
		job.endLease()
		job.endLease, release = nil, job.lkey
	}
	errs := p.store.SetThenDelete(items, release)
	if errs[0] != nil {
		p.m.storeErrors.Inc()
		p.log.Info("entry not stored", zap.String("path", job.path), zap.Error(errs[0]))
		return
	}
	if len(errs) > 1 && errs[1] != nil {
		p.m.storeErrors.Inc()
		p.log.Info("variant not stored", zap.String("path", job.path), zap.Error(errs[1]))
	}
	p.m.stores.Inc()
	res.stored = true
	if slices.ContainsFunc(groups, func(g recorded) bool { return g.Incarnation == store.NeverCurrent.Incarnation }) {
		// A witness of its groups (resolveGroups): never current, so
		// never a copy worth keeping here.
		res.detail = "unchecked"
	} else {
		p.keepL1(job.primary, job.ekey, &dec, 0)
	}
	keys := make([]string, len(e.Groups))
	for i, g := range e.Groups {
		keys[i] = string(g.Key)
	}
	p.groupsOf.set(job.primary, keys)
}
