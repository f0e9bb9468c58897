package bench

import (
	"strings"
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
// send, are accepted too so the same run can measure them.
func cacheOutcome(cacheStatus, xCache string) int {
	if cacheStatus == "" {
		switch x := strings.ToUpper(xCache); {
		case x == "":
			return outcomeNone
		case strings.HasPrefix(x, "HIT"):
			return outcomeHit
		case strings.HasPrefix(x, "MISS"), strings.HasPrefix(x, "EXPIRED"):
			return outcomeMiss
		case strings.HasPrefix(x, "STALE"), strings.HasPrefix(x, "REVALIDATED"), strings.HasPrefix(x, "UPDATING"):
			return outcomeStale
		default:
			return outcomeBypass
		}
	}
	member := cacheStatus
	if i := strings.LastIndexByte(member, ','); i >= 0 {
		member = member[i+1:]
	}
	params := strings.Split(member, ";")
	for _, p := range params[1:] {
		key, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		switch strings.ToLower(key) {
		case "hit":
			if val == "" || val == "?1" {
				return outcomeHit
			}
		case "fwd":
			switch strings.ToLower(strings.Trim(val, `"`)) {
			case "miss", "uri-miss", "vary-miss":
				return outcomeMiss
			case "stale":
				return outcomeStale
			default:
				return outcomeBypass
			}
		}
	}
	// A member that neither hit nor says why it forwarded is a miss.
	return outcomeMiss
}
