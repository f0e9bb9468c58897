package proxy

import "edgecache/cachepolicy"

// authorized answers a GET or HEAD with Authorization (RFC 9111 §3.5). It
// is never answered from the cache, whatever is stored: the origin may
// answer each user differently, and only the origin knows. Its answer is
// stored for later requests only when the response says that a shared
// cache may reuse it (public, s-maxage or must-revalidate:
// cachepolicy.Storable); any other answer is this user's alone, so the
// fill is its own: it neither joins nor leads another request's fill, in
// this process (no singleflight) or in the fleet (no fill lease), and
// nobody waits for its result. The lookup reads only the group values the
// store is checked against (L1 is not consulted: nothing is served from
// it).
func (p *Proxy) authorized(t *txn) string {
	kb := primaryKeys.Get().(*[]byte)
	defer primaryKeys.Put(kb)
	t.primary = p.primaryKey(t.ctx, (*kb)[:0])
	*kb = t.primary[:0]
	p.lookupMemcached(t)
	t.hasEnt = false // not revalidated, not served on error: fetched whole
	job := p.newFillJob(t, cachepolicy.Decision{Action: cachepolicy.Fetch, Fwd: cachepolicy.FwdBypass})
	job.creq.Authorization, job.alone = true, true
	if p.answer(t, p.safeFill(job)) == outcomeError {
		return outcomeError
	}
	return outcomePass
}
