package cachepolicy

import (
	"testing"
	"time"
)

func TestCurrentAge(t *testing.T) {
	base := t0.Unix()
	tests := []struct {
		name                      string
		req, resp, date, ageValue int64
		now                       int64
		want                      int64
	}{
		{"just received", base, base, base, 0, base, 0},
		{"resident time", base, base, base, 0, base + 10, 10},
		{"apparent age from date", base, base, base - 5, 0, base + 10, 15},
		{"date in the future", base, base, base + 100, 0, base + 10, 10},
		{"age header plus response delay", base - 2, base, base, 7, base, 9},
		{"age beats apparent", base - 1, base, base - 3, 10, base, 11},
		{"apparent beats age", base, base, base - 30, 10, base, 30},
		{"clock went backwards", base, base, base, 0, base - 100, 0},
		{"request after response (clock skew)", base + 5, base, base, 3, base, 3},
		{"saturates", base, base, base, MaxDelta, base + 1000, MaxDelta},
	}
	for _, tt := range tests {
		m := Meta{RequestTime: tt.req, ResponseTime: tt.resp, Date: tt.date, AgeValue: tt.ageValue}
		if got := m.CurrentAge(time.Unix(tt.now, 0)); got != tt.want {
			t.Errorf("%s: CurrentAge = %d, want %d", tt.name, got, tt.want)
		}
	}
	m := Meta{RequestTime: base, ResponseTime: base, Date: base, Lifetime: 60}
	if got := m.TTL(time.Unix(base+70, 0)); got != -10 {
		t.Errorf("TTL = %d, want -10", got)
	}
	if got := m.CurrentAge(time.Unix(1<<62, 0)); got != MaxDelta {
		t.Errorf("CurrentAge far in the future = %d", got)
	}
}

// metaAt returns an entry received at t0 with the given response directives.
func metaAt(cc string, validators bool) Meta {
	resp := Response{Status: 200, CacheControl: ParseCacheControl([]byte(cc))}
	if validators {
		resp.ETag = []byte(`"v1"`)
	}
	return NewMeta(&resp, t0, t0)
}

func TestDecide(t *testing.T) {
	const contract = "public, max-age=0, s-maxage=60, stale-while-revalidate=30, stale-if-error=300"
	tests := []struct {
		name       string
		cc         string // response; "-" = nothing stored
		noVal      bool   // entry without validators
		reqCC      string
		pragma     string
		after      int64 // seconds since the response was received
		action     Action
		fwd        Fwd
		staleOnErr bool
	}{
		{name: "nothing stored", cc: "-", action: Fetch, fwd: FwdMiss},
		{name: "nothing stored, only-if-cached", cc: "-", reqCC: "only-if-cached", action: GatewayTimeout},
		{name: "fresh", cc: "max-age=60", after: 10, action: Serve, staleOnErr: true},
		{name: "fresh until the last second", cc: "max-age=60", after: 59, action: Serve, staleOnErr: true},
		{name: "stale at lifetime", cc: "max-age=60", after: 60, action: Validate, fwd: FwdStale},
		{name: "stale without validators", cc: "max-age=60", noVal: true, after: 61, action: Fetch, fwd: FwdStale},
		{name: "contract fresh", cc: contract, after: 30, action: Serve, staleOnErr: true},
		{name: "contract within swr", cc: contract, after: 90, action: ServeStale, staleOnErr: true},
		{name: "contract past swr, within sie", cc: contract, after: 91, action: Validate, fwd: FwdStale, staleOnErr: true},
		{name: "contract past sie", cc: contract, after: 361, action: Validate, fwd: FwdStale},
		{name: "contract ignores client max-stale (s-maxage)", cc: contract, reqCC: "max-stale=1000", after: 100, action: Validate, fwd: FwdStale, staleOnErr: true},
		{name: "client max-stale allows stale", cc: "max-age=60", reqCC: "max-stale=10", after: 70, action: ServeStale, staleOnErr: true},
		{name: "client max-stale exceeded", cc: "max-age=60", reqCC: "max-stale=10", after: 71, action: Validate, fwd: FwdStale},
		{name: "client max-stale without value", cc: "max-age=60", reqCC: "max-stale", after: 100000, action: ServeStale, staleOnErr: true},
		{name: "must-revalidate forbids max-stale", cc: "max-age=60, must-revalidate", reqCC: "max-stale", after: 61, action: Validate, fwd: FwdStale},
		{name: "must-revalidate zeroes swr", cc: "max-age=60, must-revalidate, stale-while-revalidate=30", after: 61, action: Validate, fwd: FwdStale},
		{name: "proxy-revalidate zeroes sie", cc: "max-age=60, proxy-revalidate, stale-if-error=300", after: 61, action: Validate, fwd: FwdStale},
		{name: "request no-cache on fresh", cc: "max-age=60", reqCC: "no-cache", after: 1, action: Validate, fwd: FwdRequest, staleOnErr: true},
		{name: "pragma no-cache on fresh", cc: "max-age=60", pragma: "no-cache", after: 1, action: Validate, fwd: FwdRequest, staleOnErr: true},
		{name: "request max-age=0", cc: "max-age=60", reqCC: "max-age=0", after: 0, action: Validate, fwd: FwdRequest, staleOnErr: true},
		{name: "request max-age met", cc: "max-age=60", reqCC: "max-age=10", after: 10, action: Serve, staleOnErr: true},
		{name: "request max-age exceeded", cc: "max-age=60", reqCC: "max-age=10", after: 11, action: Validate, fwd: FwdRequest, staleOnErr: true},
		{name: "request max-age exceeded, stale entry", cc: "max-age=5", reqCC: "max-age=10, max-stale", after: 11, action: Validate, fwd: FwdStale, staleOnErr: true},
		{name: "request min-fresh met", cc: "max-age=60", reqCC: "min-fresh=20", after: 40, action: Serve, staleOnErr: true},
		{name: "request min-fresh not met", cc: "max-age=60", reqCC: "min-fresh=20", after: 41, action: Validate, fwd: FwdRequest, staleOnErr: true},
		{name: "immutable fresh ignores request no-cache", cc: "max-age=60, immutable", reqCC: "no-cache", after: 1, action: Serve, staleOnErr: true},
		{name: "immutable stale validates", cc: "max-age=60, immutable", after: 61, action: Validate, fwd: FwdStale},
		{name: "response no-cache always validates", cc: "no-cache, max-age=60", after: 1, action: Validate, fwd: FwdStale},
		{name: "response no-cache with sie serves on error", cc: "no-cache, stale-if-error=60", after: 1, action: Validate, fwd: FwdStale, staleOnErr: true},
		{name: "only-if-cached with fresh entry", cc: "max-age=60", reqCC: "only-if-cached", after: 1, action: Serve, staleOnErr: true},
		{name: "only-if-cached with stale entry", cc: "max-age=60", reqCC: "only-if-cached", after: 61, action: GatewayTimeout, fwd: FwdStale},
		{name: "only-if-cached within swr", cc: "max-age=60, stale-while-revalidate=10", reqCC: "only-if-cached", after: 61, action: ServeStale, staleOnErr: false},
		{name: "request stale-if-error", cc: "max-age=60", reqCC: "stale-if-error=100", after: 100, action: Validate, fwd: FwdStale, staleOnErr: true},
		{name: "request stale-if-error exceeded", cc: "max-age=60", reqCC: "stale-if-error=10", after: 100, action: Validate, fwd: FwdStale},
		{name: "request stale-if-error under s-maxage", cc: "s-maxage=60", reqCC: "stale-if-error=100", after: 100, action: Validate, fwd: FwdStale},
		{name: "zero lifetime, no swr", cc: "max-age=0", after: 0, action: Validate, fwd: FwdStale},
		{name: "zero lifetime with swr", cc: "max-age=0, stale-while-revalidate=5", after: 0, action: ServeStale},
	}
	for _, tt := range tests {
		req := NewRequest([]byte("GET"), bytesOrNil(tt.reqCC), bytesOrNil(tt.pragma), false)
		var m *Meta
		if tt.cc != "-" {
			e := metaAt(tt.cc, !tt.noVal)
			m = &e
		}
		now := t0.Add(time.Duration(tt.after) * time.Second)
		d := Decide(&req, m, now)
		if d.Action != tt.action || d.Fwd != tt.fwd || d.StaleIfError != tt.staleOnErr {
			t.Errorf("%s: Decide = %v fwd=%v staleIfError=%v; want %v fwd=%v staleIfError=%v",
				tt.name, d.Action, d.Fwd, d.StaleIfError, tt.action, tt.fwd, tt.staleOnErr)
		}
		if m != nil {
			if d.Age != tt.after || d.TTL != m.Lifetime-tt.after {
				t.Errorf("%s: Age %d TTL %d; want %d %d", tt.name, d.Age, d.TTL, tt.after, m.Lifetime-tt.after)
			}
			if got := m.ServeOnError(&req, now, ErrorResponse); got != d.StaleIfError {
				t.Errorf("%s: ServeOnError = %v, Decision.StaleIfError = %v", tt.name, got, d.StaleIfError)
			}
		}
	}
}

// TestServeOnErrorDisconnected: RFC 9111 §4.2.4 lets a cache that cannot
// reach the origin serve a stale response; must-revalidate,
// proxy-revalidate, s-maxage (§5.2.2.2, §5.2.2.8, §5.2.2.10) and no-cache
// (§5.2.2.4) forbid it. An error response (5xx) allows only what the
// directives grant (RFC 5861 §4).
func TestServeOnErrorDisconnected(t *testing.T) {
	tests := []struct {
		cc, reqCC        string
		after            int64
		onError, offline bool
	}{
		{cc: "max-age=60", after: 10, onError: true, offline: true},
		{cc: "max-age=60", after: 61, onError: false, offline: true},
		{cc: "max-age=60", after: 100000, onError: false, offline: true},
		{cc: "max-age=60, stale-if-error=100", after: 100, onError: true, offline: true},
		{cc: "max-age=60", reqCC: "max-stale=5", after: 70, onError: false, offline: true},
		{cc: "max-age=60, must-revalidate", after: 61, onError: false, offline: false},
		{cc: "max-age=60, proxy-revalidate", after: 61, onError: false, offline: false},
		{cc: "s-maxage=60", after: 61, onError: false, offline: false},
		{cc: "s-maxage=60, stale-if-error=100", after: 100, onError: true, offline: true},
		{cc: "no-cache, max-age=60", after: 1, onError: false, offline: false},
		{cc: "no-cache, stale-if-error=60", after: 1, onError: true, offline: true},
	}
	for _, tt := range tests {
		m := metaAt(tt.cc, true)
		req := NewRequest([]byte("GET"), bytesOrNil(tt.reqCC), nil, false)
		now := t0.Add(time.Duration(tt.after) * time.Second)
		if got := m.ServeOnError(&req, now, ErrorResponse); got != tt.onError {
			t.Errorf("%q after %ds: ServeOnError(ErrorResponse) = %v", tt.cc, tt.after, got)
		}
		if got := m.ServeOnError(&req, now, Disconnected); got != tt.offline {
			t.Errorf("%q after %ds: ServeOnError(Disconnected) = %v", tt.cc, tt.after, got)
		}
	}
}

func TestErrorStatus(t *testing.T) {
	for s, want := range map[int]bool{500: true, 502: true, 503: true, 504: true, 501: false, 404: false, 200: false, 505: false} {
		if ErrorStatus(s) != want {
			t.Errorf("ErrorStatus(%d) = %v", s, !want)
		}
	}
}

func TestActionString(t *testing.T) {
	if Serve.String() != "serve" || GatewayTimeout.String() != "gateway-timeout" || Action(99).String() != "unknown" {
		t.Error("Action.String")
	}
}
