package cachepolicy

import "testing"

func TestCacheStatusAppend(t *testing.T) {
	tests := []struct {
		s    CacheStatus
		want string
	}{
		{CacheStatus{Cache: "edgecache", Hit: true, TTL: 30, HasTTL: true}, "edgecache; hit; ttl=30"},
		{CacheStatus{Cache: "edgecache", Hit: true, TTL: -5, HasTTL: true, Detail: "stale-while-revalidate"}, "edgecache; hit; ttl=-5; detail=stale-while-revalidate"},
		{CacheStatus{Cache: "edgecache", Fwd: FwdMiss, FwdStatus: 200, Stored: true}, "edgecache; fwd=miss; fwd-status=200; stored"},
		{CacheStatus{Cache: "edgecache", Fwd: FwdURIMiss, Collapsed: true}, "edgecache; fwd=uri-miss; collapsed"},
		{CacheStatus{Cache: "edgecache", Fwd: FwdVaryMiss}, "edgecache; fwd=vary-miss"},
		{CacheStatus{Cache: "edgecache", Fwd: FwdStale, FwdStatus: 304, TTL: 60, HasTTL: true, Stored: true}, "edgecache; fwd=stale; fwd-status=304; ttl=60; stored"},
		{CacheStatus{Cache: "edgecache", Fwd: FwdRequest}, "edgecache; fwd=request"},
		{CacheStatus{Cache: "edgecache", Fwd: FwdMethod, FwdStatus: 201}, "edgecache; fwd=method; fwd-status=201"},
		{CacheStatus{Cache: "edgecache", Fwd: FwdBypass}, "edgecache; fwd=bypass"},
		{CacheStatus{Cache: "edgecache", Fwd: FwdPartial}, "edgecache; fwd=partial"},
		{CacheStatus{Cache: "edgecache", Fwd: FwdMiss, Detail: ReasonSetCookie}, "edgecache; fwd=miss; detail=set-cookie"},
		{CacheStatus{Cache: "edgecache", Stored: true, Collapsed: true, FwdStatus: 200}, "edgecache"}, // only with fwd
		{CacheStatus{Cache: "edge cache"}, `"edge cache"`},
		{CacheStatus{Cache: "1cache"}, `"1cache"`},
		{CacheStatus{Cache: ""}, `""`},
		{CacheStatus{Cache: "c", Detail: "q=\"x\\y\"\x00\xff"}, `c; detail="q=\"x\\y\"%00%FF"`},
		{CacheStatus{Cache: "c", Detail: "two words"}, `c; detail="two words"`},
		{CacheStatus{Cache: "c", Fwd: Fwd(200)}, "c"},
	}
	for _, tt := range tests {
		if got := string(tt.s.Append(nil)); got != tt.want {
			t.Errorf("Append(%+v) = %s, want %s", tt.s, got, tt.want)
		}
	}
}

func TestFwdString(t *testing.T) {
	if FwdNone.String() != "" || FwdVaryMiss.String() != "vary-miss" || Fwd(99).String() != "" {
		t.Error("Fwd.String")
	}
}
