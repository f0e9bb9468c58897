package proxy

import (
	"bytes"
	"net/netip"
	"unsafe"

	"github.com/valyala/fasthttp"

	"edgecache/proxy/lease"
)

// trustedProxies are the networks of PROXY_TRUSTED_PROXIES: load balancers
// and proxies whose X-Forwarded-For this proxy believes.
type trustedProxies []netip.Prefix

func (t trustedProxies) contains(a netip.Addr) bool {
	for _, n := range t {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// peerAddr is the request's TCP peer, or, with PROXY_PROXY_PROTOCOL, the
// client the peer's PROXY header named (package proxyproto makes it the
// connection's RemoteAddr).
func peerAddr(ctx *fasthttp.RequestCtx) netip.Addr {
	a, _ := netip.AddrFromSlice(ctx.RemoteIP())
	return a.Unmap()
}

// clientAddr is the address the request came from as far as this proxy can
// tell, for the access log and the per-client budgets: its TCP peer, or,
// when the peer is a trusted proxy, the rightmost X-Forwarded-For address
// (over all its lines, in order) that is not itself trusted. Everything to
// the left of that address was written by the client or by hops nobody
// vouches for, so it is never read: a client cannot choose its own
// address by sending X-Forwarded-For. When every listed address is
// trusted, the leftmost one is the client; an entry that is not an
// address (a trusted hop wrote "unknown") ends the walk at the hop to
// its right.
//
// With PROXY_PROXY_PROTOCOL, the address a trusted load balancer's PROXY
// header names takes the TCP peer's place in this rule, and the balancer
// itself drops out of it: it relays bytes and wrote none of them, so
// X-Forwarded-For is believed only if the header's address is trusted in
// turn (a proxy of ours behind the balancer, which did write the field).
// An untrusted client behind an NLB therefore cannot choose its address
// by sending X-Forwarded-For either.
func (t trustedProxies) clientAddr(ctx *fasthttp.RequestCtx) netip.Addr {
	client := peerAddr(ctx)
	if len(t) == 0 || !t.contains(client) {
		return client
	}
	lines := ctx.Request.Header.PeekAll("X-Forwarded-For")
	for i := len(lines) - 1; i >= 0; i-- {
		v := lines[i]
		for len(v) > 0 {
			j := bytes.LastIndexByte(v, ',')
			item := bytes.TrimSpace(v[j+1:])
			v = v[:max(j, 0)]
			if len(item) == 0 {
				continue
			}
			// ParseAddr keeps nothing of its argument (a zone is
			// copied by unique.Make): no copy of the header needed.
			a, err := netip.ParseAddr(unsafe.String(&item[0], len(item)))
			if err != nil {
				return client
			}
			a = a.Unmap()
			if !t.contains(a) {
				return a
			}
			client = a
		}
	}
	return client
}

// parseTrustedProxies parses PROXY_TRUSTED_PROXIES; none is fine.
func parseTrustedProxies(cidrs []string) (trustedProxies, error) {
	if len(cidrs) == 0 {
		return nil, nil
	}
	nets, err := lease.ParseNetworks(cidrs)
	return trustedProxies(nets), err
}
