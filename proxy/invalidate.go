package proxy

import (
	"errors"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"edgecache/cachepolicy"
	"edgecache/proxy/store"
)

// How a write is invalidated (proxy/doc.go has the whole argument).
//
// The synchronous path: before a write's answer leaves, the proxy moves the
// target URI's group (RFC 9111 §4.4), on a 2xx the groups of Location and
// Content-Location, and every group the origin's Edgecache-Groups names.
// Every fill that could have read data older than the write took its
// snapshot before the move, so its entry fails validation on every proxy
// from then on. A move that fails is retried at once on a new connection;
// one that still fails is queued for the node's next answer
// (store.MoveOrQueue) and the answer says "Edgecache-Invalidation: pending".
//
// The durable path: the database's triggers log every committed change's
// groups in the same transaction, and the invalidator (package
// invalidator) moves them from that log whatever happens to this process —
// a lost answer, a stall, a crash with moves queued, a partition between
// this proxy and one node. "pending" means that path finishes the job.
//
// Leases (package lease): after the moves, both paths tell every proxy
// that holds an invalidation lease which group keys moved, and wait for
// its acknowledgement or the end of its lease, so that no L1 copy served
// without a memcached check outlives the write's answer. The moves come
// first, then the registry read: a proxy that registers after the read
// checks its copies in memcached and finds the moves.

// invalidateWrite makes the synchronous moves of a write the origin
// answered with a non-error status. The error, if any, means the answer must
// say "pending".
func (p *Proxy) invalidateWrite(ctx *fasthttp.RequestCtx, resp *fasthttp.Response) error {
	primaries := []string{string(p.primaryKey(ctx, nil))}
	// Location and Content-Location only when the write really changed
	// something (2xx): a redirect's Location is anyone's to choose, and
	// invalidating it would let any client purge any URL.
	if resp.StatusCode() < 300 {
		host, path := ctx.Request.Header.Host(), ctx.URI().PathOriginal()
		for _, h := range []string{"Location", "Content-Location"} {
			if v := resp.Header.Peek(h); len(v) > 0 {
				if k, ok := cachepolicy.AppendLocationKey(nil, scheme(ctx), host, path, v); ok {
					primaries = append(primaries, string(k))
				}
			}
		}
	}
	groups, perr := parseGroups(resp.Header.Peek(hdrGroups))
	if perr != nil {
		p.log.Warn("write response has a malformed Edgecache-Groups; moving the groups that parse",
			zap.ByteString("uri", ctx.RequestURI()), zap.ByteString("value", resp.Header.Peek(hdrGroups)))
	}
	moves := make([]store.GroupMove, 0, len(primaries)+len(groups))
	for _, pk := range primaries {
		p.flights.Forget(pk)
		moves = append(moves, store.GroupMove{Name: store.URLGroup(pk)})
	}
	for _, g := range groups {
		moves = append(moves, store.GroupMove{Name: g.name, Origin: g.version})
	}
	var errs []error
	keys := make([]string, len(moves))
	for i, err := range p.store.MoveAllOrQueue(moves) {
		if err != nil {
			errs = append(errs, errors.New("group "+moves[i].Name+": "+err.Error()))
		}
		keys[i] = store.GroupKey(moves[i].Name)
	}
	if h := p.hooks.Load(); h != nil && h.betweenMovesAndNotify != nil {
		h.betweenMovesAndNotify(string(ctx.Path()))
	}
	errs = append(errs, p.notify(keys))
	err := errors.Join(errs...)
	if err != nil {
		// Belt and braces: entries of the target URIs go too, so that a
		// proxy reading them finds nothing rather than something whose
		// group it cannot check.
		for _, pk := range primaries {
			p.store.Delete(store.EntryKey(pk))
		}
	}
	return errors.Join(err, perr)
}

// invalidateUnknown moves the target URI's group after a write whose
// outcome is unknown (the answer was lost, or a 5xx): it may have
// committed. The groups of the data it changed are not known here; the
// durable invalidator moves them from the database's log.
func (p *Proxy) invalidateUnknown(ctx *fasthttp.RequestCtx) {
	pk := string(p.primaryKey(ctx, nil))
	err := p.moveURL(pk)
	err = errors.Join(err, p.notify([]string{store.GroupKey(store.URLGroup(pk))}))
	if err != nil {
		p.log.Warn("invalidation after a failed write pending", zap.String("url", pk), zap.Error(err))
	}
}

// notify tells every proxy holding an invalidation lease (package lease)
// that the groups under keys moved, after the moves: each drops them from
// its L1's unchecked hits, or its lease runs out, before this returns. An
// error means the holders could not be known (no copy of the registry
// answered): the write's answer says "pending", and the durable
// invalidator tells them.
func (p *Proxy) notify(keys []string) error {
	if err := p.notifier.Notify(keys); err != nil {
		return errors.New("lease holders not told: " + err.Error())
	}
	return nil
}

// moveURL moves a URL's group and drops this process's flight for it.
func (p *Proxy) moveURL(primary string) error {
	p.flights.Forget(primary)
	if err := p.store.MoveOrQueue(store.URLGroup(primary), 0); err != nil {
		return errors.New("url " + primary + ": " + err.Error())
	}
	return nil
}

// purgeURL and purgeGroup serve the admin listener's POST /purge. A soft
// purge (soft) moves the group as store.Store.SoftPurge does: its entries
// become stale, served while one refresh per key runs, instead of invalid.
// It is the operator's tool only: no write uses it, because a write's
// answer promises that nothing older is served (proxy/PROTOCOL.md). The
// lease holders are told either way, so that no L1 copy is served as
// fresh after the purge.
func (p *Proxy) purgeURL(primary string, soft bool) error {
	p.m.purges.Inc()
	if !soft {
		return errors.Join(p.moveURL(primary), p.notify([]string{store.GroupKey(store.URLGroup(primary))}))
	}
	p.flights.Forget(primary)
	return errors.Join(p.store.SoftPurge(store.URLGroup(primary)), p.notify([]string{store.GroupKey(store.URLGroup(primary))}))
}

func (p *Proxy) purgeGroup(name string, soft bool) error {
	p.m.purges.Inc()
	var err error
	if soft {
		err = p.store.SoftPurge(name)
	} else {
		err = p.store.MoveOrQueue(name, 0)
	}
	return errors.Join(err, p.notify([]string{store.GroupKey(name)}))
}
