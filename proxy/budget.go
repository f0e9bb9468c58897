package proxy

import (
	"hash/maphash"
	"math"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// clientBudget is one kind of per-client budget (misses, writes): a token
// bucket per client address (client.go: the TCP peer, or what trusted
// load balancers report), refilled at rate tokens a second up to burst.
//
// Memory is bounded: a fixed-size map, at most budgetClients buckets in
// budgetShards maps (a lock each). A full shard forgets one bucket per new
// client (evict), preferring a full one: an idle client's bucket is full,
// and a full bucket is exactly what a new one would be, so forgetting it
// changes nothing. About 100 bytes a bucket: some 6.5 MiB per kind when
// full.
type clientBudget struct {
	rate, burst float64
	seed        maphash.Seed // spreads clients over the shards, unpredictably
	shards      [budgetShards]budgetShard
}

// The kinds of budgets, in metrics.
const (
	budgetMiss  = "miss"
	budgetWrite = "write"
)

const (
	budgetShards      = 64
	budgetClients     = 65536
	budgetEvictSample = 8
)

type budgetShard struct {
	mu      sync.Mutex
	buckets map[netip.Addr]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time // when tokens was right
}

// newClientBudget is nil (no limit) when rate is 0.
func newClientBudget(rate float64, burst int) *clientBudget {
	if rate <= 0 {
		return nil
	}
	b := &clientBudget{rate: rate, burst: float64(burst), seed: maphash.MakeSeed()}
	for i := range b.shards {
		b.shards[i].buckets = make(map[netip.Addr]*bucket)
	}
	return b
}

// take spends one of client's tokens at now. When there is none it
// reports false and how long until there is one. An IPv6 client is its
// /64: one subscriber's or host's network, where it picks addresses at
// will.
func (b *clientBudget) take(client netip.Addr, now time.Time) (bool, time.Duration) {
	if client.Is6() {
		net, _ := client.Prefix(64)
		client = net.Addr()
	}
	s := &b.shards[maphash.Comparable(b.seed, client)%budgetShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.buckets[client]
	if k == nil {
		if len(s.buckets) >= budgetClients/budgetShards {
			s.evict(b, now)
		}
		k = &bucket{tokens: b.burst, at: now}
		s.buckets[client] = k
	}
	k.refill(b, now)
	if k.tokens < 1 {
		return false, time.Duration((1 - k.tokens) / b.rate * float64(time.Second))
	}
	k.tokens--
	return true, 0
}

func (k *bucket) refill(b *clientBudget, now time.Time) {
	if d := now.Sub(k.at); d > 0 {
		k.tokens = math.Min(b.burst, k.tokens+d.Seconds()*b.rate)
		k.at = now
	}
}

// evict forgets one bucket: of budgetEvictSample buckets (a map's
// iteration starts at a random place), the one with the most tokens,
// whose client loses least by starting over with a full burst (nothing,
// if it is full: an idle client). A client in the middle of its budget is
// forgotten only when every sampled one is as deep in its own. Bounded
// work, whatever the number of clients.
func (s *budgetShard) evict(b *clientBudget, now time.Time) {
	var victim netip.Addr
	most, n := -1.0, 0
	for a, k := range s.buckets {
		if k.refill(b, now); k.tokens > most {
			victim, most = a, k.tokens
		}
		if n++; n == budgetEvictSample || most >= b.burst {
			break
		}
	}
	delete(s.buckets, victim)
}

// overBudget spends one of the request's client's tokens in budget (nil:
// no limit). When there is none it answers 429 with Retry-After (whole
// seconds, at least 1), counts it, and reports true.
func (p *Proxy) overBudget(ctx *fasthttp.RequestCtx, budget *clientBudget, kind, plural string) bool {
	if budget == nil {
		return false
	}
	ok, wait := budget.take(p.trusted.clientAddr(ctx), time.Now())
	if ok {
		return false
	}
	p.m.clientLimited[kind].Inc()
	p.errorJSON(ctx, fasthttp.StatusTooManyRequests, "too_many_requests",
		"this client's budget of "+plural+" is spent; retry after Retry-After seconds")
	ctx.Response.Header.Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
	return true
}
