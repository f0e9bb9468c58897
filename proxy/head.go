package proxy

import (
	"time"

	"github.com/valyala/fasthttp"

	"edgecache/cachepolicy"
	"edgecache/proxy/store"
)

// headAnswer is the fill's step for the origin's answer to a HEAD sent on
// (fillJob.head), other than a 304 to its conditions (which freshens the
// entry as for a GET). A HEAD answer has no body, so it is never stored as
// an entry; RFC 9111 §4.3.5 says what it does to the stored one:
//   - a 200 whose validators match the entry (Meta.SelectsHead) updates
//     its fields (freshen) and the client is answered from the updated
//     entry, unless the request said no-store (nothing of the answer may
//     be stored then);
//   - a 200 that contradicts the entry (another ETag, Last-Modified or
//     length) means the entry no longer describes the resource: it is
//     deleted, so the next GET fetches the new one;
//   - anything else is relayed as it is.
func (p *Proxy) headAnswer(job *fillJob, res *fillResult, resp *fasthttp.Response, f *fetchState, reqTime, respTime time.Time) *fillResult {
	res.resp, res.detail = resp, "head"
	if job.stale == nil || resp.StatusCode() != fasthttp.StatusOK {
		return res
	}
	h := &resp.Header
	if !job.stale.Meta.SelectsHead(h.Peek("ETag"), h.Peek("Last-Modified"), h.Peek("Content-Length"), int64(len(job.stale.Body))) {
		p.store.Delete(job.ekey) // and with it every variant it lists (variants.go)
		if len(job.stale.Meta.Vary) > 0 {
			p.store.Delete(store.VariantKey(job.primary, job.stale.VaryKey))
		}
		p.l1.Remove(job.primary)
		res.detail = "outdated"
		return res
	}
	if job.creq.CacheControl.Has(cachepolicy.NoStore) {
		return res
	}
	ent := p.freshen(job.stale, resp, reqTime, respTime)
	res.resp, res.detail, res.revalidated = nil, "", true
	p.save(job, res, ent, p.record(job, groupKeys(job.stale), f), f.noStore)
	return res
}
