package cachepolicy

import "strconv"

// Fwd is the Cache-Status fwd parameter (RFC 9211 §2.2): why the request
// went to the next hop.
type Fwd uint8

const (
	FwdNone     Fwd = iota // not forwarded: no fwd parameter
	FwdBypass              // the cache was configured to not handle this request
	FwdMethod              // the request method's semantics require it
	FwdURIMiss             // nothing stored for the target URI
	FwdVaryMiss            // stored responses for the URI, none matching the Vary'd fields
	FwdMiss                // no stored response usable (when uri-miss / vary-miss is not known)
	FwdRequest             // a fresh stored response, refused by the request's directives
	FwdStale               // the stored response was stale (or no-cache) and needed validation
	FwdPartial             // only part of the response was stored
)

var fwdNames = [...]string{"", "bypass", "method", "uri-miss", "vary-miss", "miss", "request", "stale", "partial"}

// String returns the fwd token ("" for FwdNone).
func (f Fwd) String() string {
	if int(f) < len(fwdNames) {
		return fwdNames[f]
	}
	return ""
}

// CacheStatus is one member of a Cache-Status field (RFC 9211): what this
// cache did with a request.
type CacheStatus struct {
	Cache     string // this cache's name; a token, or sent as a string
	Hit       bool   // answered from the cache without going forward
	Fwd       Fwd    // why it went forward (FwdNone: it did not)
	FwdStatus int    // the status the next hop answered; 0 to omit
	TTL       int64  // freshness left, negative when stale; sent when HasTTL
	HasTTL    bool
	Stored    bool   // the forwarded response was stored
	Collapsed bool   // the request was collapsed with another one
	Detail    string // extra detail (e.g. a Storable reason); a token, or sent as a string
}

// Append appends the member in Structured Fields syntax (RFC 8941), e.g.
// `edgecache; fwd=miss; fwd-status=200; stored`. Names and details that are
// not sf-tokens are sent as sf-strings, with '"' and '\' escaped and bytes
// outside printable ASCII percent-encoded. fwd-status, stored and
// collapsed are only sent with fwd. It does not allocate when dst has room.
func (s *CacheStatus) Append(dst []byte) []byte {
	dst = appendTokenOrString(dst, s.Cache)
	if s.Hit {
		dst = append(dst, "; hit"...)
	}
	if s.Fwd != FwdNone && int(s.Fwd) < len(fwdNames) {
		dst = append(dst, "; fwd="...)
		dst = append(dst, fwdNames[s.Fwd]...)
		if s.FwdStatus > 0 {
			dst = append(dst, "; fwd-status="...)
			dst = strconv.AppendInt(dst, int64(s.FwdStatus), 10)
		}
	}
	if s.HasTTL {
		dst = append(dst, "; ttl="...)
		dst = strconv.AppendInt(dst, s.TTL, 10)
	}
	if s.Fwd != FwdNone {
		if s.Stored {
			dst = append(dst, "; stored"...)
		}
		if s.Collapsed {
			dst = append(dst, "; collapsed"...)
		}
	}
	if s.Detail != "" {
		dst = append(dst, "; detail="...)
		dst = appendTokenOrString(dst, s.Detail)
	}
	return dst
}

// appendTokenOrString appends s as an sf-token if it is one, else as an
// sf-string.
func appendTokenOrString(dst []byte, s string) []byte {
	if isSFToken(s) {
		return append(dst, s...)
	}
	return appendSFString(dst, s)
}

// isSFToken: ( ALPHA / "*" ) *( tchar / ":" / "/" ) (RFC 8941 §3.3.4).
func isSFToken(s string) bool {
	if len(s) == 0 || !(isAlpha(s[0]) || s[0] == '*') {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isTchar(c) && c != ':' && c != '/' {
			return false
		}
	}
	return true
}

func appendSFString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20 || c > 0x7e:
			dst = appendPct(dst, c)
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}
