package bench

import (
	"bytes"
)

// Cache outcomes of a read, from the Cache-Status response header (RFC 9211).
const (
	outcomeNone   = iota // no Cache-Status: the target is not a cache, or did not say
	outcomeHit           // answered from the cache
	outcomeMiss          // forwarded: no usable stored response (miss, uri-miss, vary-miss)
	outcomeStale         // forwarded to validate a stored response (fwd=stale)
	outcomeBypass        // forwarded without looking (bypass, method, request, uncacheable…)
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"none", "hit", "miss", "stale", "bypass"}

// cacheOutcome classifies a Cache-Status value. The header is a list with the
// cache closest to the client last; that member is the one the client's
// answer came from. X-Cache-style values ("HIT", "MISS"), as other caches
// send, are accepted too so the same run can measure them. It reads the
// header's bytes in place: it runs for every read the bench makes.
func cacheOutcome(cacheStatus, xCache []byte) int {
	if len(cacheStatus) == 0 {
		switch x := xCache; {
		case len(x) == 0:
			return outcomeNone
		case hasPrefixFold(x, "HIT"):
			return outcomeHit
		case hasPrefixFold(x, "MISS"), hasPrefixFold(x, "EXPIRED"):
			return outcomeMiss
		case hasPrefixFold(x, "STALE"), hasPrefixFold(x, "REVALIDATED"), hasPrefixFold(x, "UPDATING"):
			return outcomeStale
		default:
			return outcomeBypass
		}
	}
	member := cacheStatus
	if i := bytes.LastIndexByte(member, ','); i >= 0 {
		member = member[i+1:]
	}
	_, params, _ := bytes.Cut(member, []byte{';'}) // the cache's name first
	for len(params) > 0 {
		var p []byte
		p, params, _ = bytes.Cut(params, []byte{';'})
		key, val, _ := bytes.Cut(bytes.TrimSpace(p), []byte{'='})
		switch {
		case bytes.EqualFold(key, []byte("hit")):
			if len(val) == 0 || string(val) == "?1" {
				return outcomeHit
			}
		case bytes.EqualFold(key, []byte("fwd")):
			switch v := bytes.Trim(val, `"`); {
			case bytes.EqualFold(v, []byte("miss")), bytes.EqualFold(v, []byte("uri-miss")), bytes.EqualFold(v, []byte("vary-miss")):
				return outcomeMiss
			case bytes.EqualFold(v, []byte("stale")):
				return outcomeStale
			default:
				return outcomeBypass
			}
		}
	}
	// A member that neither hit nor says why it forwarded is a miss.
	return outcomeMiss
}

// hasPrefixFold is bytes.HasPrefix ignoring ASCII case.
func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && bytes.EqualFold(b[:len(prefix)], []byte(prefix))
}
