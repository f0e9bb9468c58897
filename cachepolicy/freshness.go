package cachepolicy

import "time"

// CurrentAge is the entry's age at now, in seconds (RFC 9111 §4.2.3):
//
//	apparent_age = max(0, response_time - date_value)
//	corrected_age_value = age_value + (response_time - request_time)
//	current_age = max(apparent_age, corrected_age_value) + (now - response_time)
//
// saturating at MaxDelta. A clock that moved backwards adds nothing.
func (m *Meta) CurrentAge(now time.Time) int64 {
	apparent := max(0, m.ResponseTime-m.Date)
	delay := max(0, m.ResponseTime-m.RequestTime)
	initial := max(apparent, m.AgeValue+delay)
	resident := max(0, clampTime(now.Unix())-m.ResponseTime)
	return min(initial+resident, MaxDelta)
}

// TTL is the freshness left at now, in seconds: Lifetime − CurrentAge,
// negative once stale (the Cache-Status ttl parameter).
func (m *Meta) TTL(now time.Time) int64 { return m.Lifetime - m.CurrentAge(now) }

// Action is what the proxy does with a request, given what it has stored.
type Action uint8

const (
	// Serve answers from the stored entry.
	Serve Action = iota
	// ServeStale answers from the stale entry now and revalidates it in the
	// background (stale-while-revalidate, or a client's max-stale).
	ServeStale
	// Validate sends a conditional request built from the entry
	// (Meta.Conditional); a 304 refreshes it, anything else replaces it.
	Validate
	// Fetch sends the request on, unconditionally (no entry, or an entry
	// without validators).
	Fetch
	// GatewayTimeout answers 504: the client sent only-if-cached and nothing
	// stored may be used without the origin (RFC 9111 §5.2.1.7).
	GatewayTimeout
)

var actionNames = [...]string{"serve", "serve-stale", "validate", "fetch", "gateway-timeout"}

func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return "unknown"
}

// Decision is the outcome of Decide.
type Decision struct {
	Action Action
	// Fwd is the Cache-Status fwd value when Action goes to the origin:
	// FwdMiss (nothing stored), FwdStale (stored entry stale or no-cache),
	// FwdRequest (a fresh entry the request's directives refused).
	Fwd Fwd
	Age int64 // CurrentAge of the entry: the Age field of an answer from it
	TTL int64 // Lifetime − Age, negative when stale: the Cache-Status ttl
	// StaleIfError: if going to the origin fails (error, timeout, 5xx) the
	// stored entry may be served instead (Meta.ServeOnError with
	// ErrorResponse; Disconnected may allow more).
	StaleIfError bool
}

// Decide chooses how to answer req (GET or HEAD) given the stored entry m
// (nil when nothing is stored) at now. It does not allocate.
//
// In order:
//   - nothing stored: Fetch (fwd=miss), or GatewayTimeout for only-if-cached;
//   - the request refuses an unvalidated answer — no-cache, Pragma: no-cache,
//     max-age=0, an age above its max-age, less freshness left than its
//     min-fresh — unless the entry is fresh and immutable: Validate;
//   - the entry has no-cache: Validate;
//   - the entry is fresh (TTL > 0): Serve;
//   - stale by at most its stale-while-revalidate: ServeStale;
//   - stale by at most the request's max-stale, unless MustRevalidate:
//     ServeStale;
//   - otherwise Validate.
//
// Validate becomes Fetch when the entry has no validator, and either becomes
// GatewayTimeout under only-if-cached.
//
// Request max-age=0 always validates (a reload), although a 0-second-old
// entry would meet it literally: ages are whole seconds, so "0 seconds old"
// covers a whole second of other clients' traffic.
func Decide(req *Request, m *Meta, now time.Time) Decision {
	rc := &req.CacheControl
	if m == nil {
		if rc.Has(OnlyIfCached) {
			return Decision{Action: GatewayTimeout}
		}
		return Decision{Action: Fetch, Fwd: FwdMiss}
	}
	age := m.CurrentAge(now)
	d := Decision{Age: age, TTL: m.Lifetime - age}
	fresh := d.TTL > 0
	staleness := max(0, -d.TTL)
	d.StaleIfError = m.staleIfError(req, fresh, staleness)

	refused := !(fresh && m.Immutable) && (req.PragmaNoCache || rc.Has(NoCache) ||
		(rc.Has(HasMaxAge) && (rc.MaxAge == 0 || age > rc.MaxAge)) ||
		(rc.Has(HasMinFresh) && d.TTL < rc.MinFresh))
	switch {
	case refused && fresh && !m.NoCache:
		d.Fwd = FwdRequest
	case refused || m.NoCache:
		d.Fwd = FwdStale
	case fresh:
		d.Action = Serve
		return d
	case m.StaleWhileRevalidate > 0 && staleness <= m.StaleWhileRevalidate,
		!m.MustRevalidate && rc.Has(HasMaxStale) && staleness <= rc.MaxStale:
		d.Action = ServeStale
		return d
	default:
		d.Fwd = FwdStale
	}
	switch {
	case rc.Has(OnlyIfCached):
		d.Action = GatewayTimeout
	case len(m.ETag) > 0 || len(m.LastModified) > 0:
		d.Action = Validate
	default:
		d.Action = Fetch
	}
	return d
}

// Failure is how going to the origin failed, for Meta.ServeOnError.
type Failure uint8

const (
	// ErrorResponse: the origin answered 500, 502, 503 or 504
	// (ErrorStatus).
	ErrorResponse Failure = iota
	// Disconnected: no answer at all. The connection was refused, reset or
	// closed before a response came, or the origin did not answer in time.
	Disconnected
)

// ServeOnError reports whether, when going to the origin for req failed
// (f), the stored entry may be served instead, at now.
//
// A fresh entry without no-cache may always be served. A stale one: within
// the response's stale-if-error (RFC 5861 §4; granted by the response, so
// it also covers no-cache), or, unless MustRevalidate, within the
// request's stale-if-error or max-stale. When Disconnected, a stale entry
// may also be served at any staleness unless MustRevalidate or NoCache:
// RFC 9111 §4.2.4 lets a disconnected cache serve stale responses, and
// what forbids it is must-revalidate, proxy-revalidate and, for a shared
// cache, s-maxage (§5.2.2.2, §5.2.2.8, §5.2.2.10) or no-cache (§5.2.2.4).
// How stale that can be is bounded by how long the caller keeps entries.
func (m *Meta) ServeOnError(req *Request, now time.Time, f Failure) bool {
	ttl := m.TTL(now)
	if m.staleIfError(req, ttl > 0, max(0, -ttl)) {
		return true
	}
	return f == Disconnected && !m.MustRevalidate && !m.NoCache
}

func (m *Meta) staleIfError(req *Request, fresh bool, staleness int64) bool {
	if fresh && !m.NoCache {
		return true
	}
	if m.StaleIfError > 0 && staleness <= m.StaleIfError {
		return true
	}
	if m.MustRevalidate {
		return false
	}
	rc := &req.CacheControl
	return (rc.Has(HasStaleIfError) && staleness <= rc.StaleIfError) ||
		(rc.Has(HasMaxStale) && staleness <= rc.MaxStale)
}

// ErrorStatus reports whether an origin status counts as an error for
// stale-if-error (RFC 5861 §4: 500, 502, 503, 504).
func ErrorStatus(status int) bool {
	return status == 500 || status == 502 || status == 503 || status == 504
}
