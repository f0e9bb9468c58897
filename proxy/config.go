package proxy

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"

	"edgecache/proxy/accesslog"
	"edgecache/proxy/lease"
)

// Config is the proxy's configuration. The commands read it from PROXY_*
// environment variables (deploy/envconfig: the tags are also `proxy -h` and
// proxy/README.md's table). Every field has a default; Validate catches
// what env cannot (an empty variable silently falls back to the default, a
// zero timeout, ...).
type Config struct {
	Listen      string   `env:"PROXY_LISTEN" envDefault:"127.0.0.1:8080" help:"client listener host:port"`
	AdminListen string   `env:"PROXY_ADMIN_LISTEN" envDefault:"127.0.0.1:8082" help:"admin listener (healthz, readyz, metrics, pprof, purge); keep it private"`
	Origins     []string `env:"PROXY_ORIGINS" envDefault:"http://127.0.0.1:8081" help:"comma-separated origin base URLs (http://host:port); requests are spread over the healthy ones"`
	Memcached   []string `env:"PROXY_MEMCACHED" envDefault:"127.0.0.1:11211" help:"comma-separated memcached host:port seed list, the same on every proxy and the invalidator (INVALIDATOR_MEMCACHED): where to read the membership document the leading invalidator publishes, and the nodes used while none exists"`

	HeaderTimeout  time.Duration `env:"PROXY_HEADER_TIMEOUT" envDefault:"5s" help:"client side: time to read a request's head (request line and fields), from its first byte or from the connection's opening (408 beyond; the client timeouts are checked twice a second: they fire up to 0.5 s late)"`
	ReadTimeout    time.Duration `env:"PROXY_READ_TIMEOUT" envDefault:"30s" help:"client side: time to read a request's body, after its head"`
	WriteTimeout   time.Duration `env:"PROXY_WRITE_TIMEOUT" envDefault:"30s" help:"client side: time to write a whole response"`
	IdleTimeout    time.Duration `env:"PROXY_IDLE_TIMEOUT" envDefault:"75s" help:"client side: keep-alive idle time; must exceed the load balancer's (ALB: 60s)"`
	MaxHeaderBytes int           `env:"PROXY_MAX_HEADER_BYTES" envDefault:"16384" help:"largest request header block accepted (431 beyond)"`
	MaxBodyBytes   int           `env:"PROXY_MAX_BODY_BYTES" envDefault:"16384" help:"largest request body of a write forwarded to the origin (413 beyond; the origin takes at most 16 KiB); read as it arrives, never allocated as announced; a GET or HEAD with a body is a 413"`
	MaxConns       int           `env:"PROXY_MAX_CONNS" envDefault:"20000" help:"most concurrent client connections"`

	OriginConnectTimeout time.Duration `env:"PROXY_ORIGIN_CONNECT_TIMEOUT" envDefault:"1s" help:"origin: TCP connect timeout"`
	OriginTimeout        time.Duration `env:"PROXY_ORIGIN_TIMEOUT" envDefault:"5s" help:"origin: whole-request deadline of a read (504 beyond): its attempts together"`
	OriginWriteTimeout   time.Duration `env:"PROXY_ORIGIN_WRITE_TIMEOUT" envDefault:"2500ms" help:"origin: deadline of a write's one attempt (504 and Edgecache-Invalidation: pending beyond); the origin's own database deadline is 1s (ORIGIN_QUERY_TIMEOUT), so a write past it is one the origin is not answering"`
	OriginReadTimeout    time.Duration `env:"PROXY_ORIGIN_READ_TIMEOUT" envDefault:"2s" help:"origin: deadline of one read attempt (GET/HEAD: miss, revalidation, pass); a read that failed is tried once more on another origin"`
	OriginMaxConns       int           `env:"PROXY_ORIGIN_MAX_CONNS" envDefault:"512" help:"origin: connections per origin"`
	OriginConcurrencyMin int           `env:"PROXY_ORIGIN_CONCURRENCY_MIN" envDefault:"16" help:"origin: the adaptive limit on this proxy's requests in flight to the origins (Gradient2: it shrinks when their latency rises above its long-term average) never goes below this"`
	OriginConcurrencyMax int           `env:"PROXY_ORIGIN_CONCURRENCY_MAX" envDefault:"1024" help:"origin: the adaptive limit starts here and never goes above it; a request beyond the limit is not sent: a read gets its stale entry if it has one, else 503 origin_overloaded with Retry-After at once; writes may go a tenth over the limit (at least one) before they get the 503"`
	OriginMaxConnWait    time.Duration `env:"PROXY_ORIGIN_MAX_CONN_WAIT" envDefault:"1s" help:"origin: how long a request waits for a free connection (503 beyond)"`
	OriginIdleConnTime   time.Duration `env:"PROXY_ORIGIN_IDLE_CONN_TIME" envDefault:"4s" help:"origin: idle connections are closed after this; keep below the origin's idle timeout"`
	OriginMaxRespBytes   int           `env:"PROXY_ORIGIN_MAX_RESPONSE_BYTES" envDefault:"16777216" help:"origin: largest response body accepted (502 beyond)"`
	OriginEjectAfter     int           `env:"PROXY_ORIGIN_EJECT_AFTER" envDefault:"3" help:"origin: failures in a row (timeouts, refused or broken connections, 502/503/504, failed probes) that take an origin out of service; a failed dial does at once"`
	OriginDownFor        time.Duration `env:"PROXY_ORIGIN_DOWN_FOR" envDefault:"2s" help:"origin: an ejected origin stays out at least this long, then until its /healthz probe passes; doubled when it is ejected again soon after coming back"`
	OriginMaxDownFor     time.Duration `env:"PROXY_ORIGIN_MAX_DOWN_FOR" envDefault:"30s" help:"origin: the longest an ejection lasts once its origin answers probes again"`
	OriginProbeInterval  time.Duration `env:"PROXY_ORIGIN_PROBE_INTERVAL" envDefault:"500ms" help:"origin: how often every origin's /healthz is probed (all in parallel); /readyz reads the result"`
	OriginProbeTimeout   time.Duration `env:"PROXY_ORIGIN_PROBE_TIMEOUT" envDefault:"500ms" help:"origin: deadline of one probe"`

	MemcachedTimeout       time.Duration `env:"PROXY_MEMCACHED_TIMEOUT" envDefault:"250ms" help:"memcached: dial and per-operation timeout; a node that fails 3 times in a row is marked down and probed"`
	MemcachedMaxIdleConns  int           `env:"PROXY_MEMCACHED_MAX_IDLE_CONNS" envDefault:"512" help:"memcached: idle connections kept per node in each of the store's pools (single-key operations, moves and node operations, pipelined reads); size to peak concurrency (gomemcache's default of 2 dials per operation)"`
	MemcachedProbeInterval time.Duration `env:"PROXY_MEMCACHED_PROBE_INTERVAL" envDefault:"500ms" help:"memcached: how often a down node is probed and the membership document read; keep it a quarter of INVALIDATOR_MEMCACHED_VIEW or less"`

	L1Bytes          int64         `env:"PROXY_L1_BYTES" envDefault:"268435456" help:"in-process copy of hot entries (L1), in bytes; while this proxy holds an invalidation lease a hit there asks nothing of memcached, else it reads only its group versions, batched with other requests; 0 turns L1 off"`
	GroupMemoryBytes int           `env:"PROXY_GROUP_MEMORY_BYTES" envDefault:"67108864" help:"memory of which groups each cache key's entry uses (a hint that saves a memcached round trip per L2 hit), in bytes, keys included (about 200 bytes a key of the origin's API: 64 MiB holds some 330,000, the former count bound was 200,000 keys); when full it starts over"`
	MemoryLimit      int64         `env:"PROXY_MEMORY_LIMIT" envDefault:"0" help:"the process's soft memory limit (Go's runtime/debug.SetMemoryLimit), in bytes: the heap is collected more often as the process nears it, so that RSS stays near what the proxy keeps rather than at twice its live heap; 0: half as much again as PROXY_L1_BYTES and what the group memory holds, at least 64 MiB and 16 MiB above the live heap, set anew every second (so 1.5 × (PROXY_L1_BYTES + PROXY_GROUP_MEMORY_BYTES) when the group memory is full and the rest of the heap is not larger than half of that); the GOMEMLIMIT environment variable, when set, takes precedence (GOMEMLIMIT=off: no limit)"`
	MaxKeyBytes      int           `env:"PROXY_MAX_KEY_BYTES" envDefault:"8192" help:"longest cache key of a GET or HEAD (scheme, host, path and query, after normalisation); a longer one is answered 414 uri_too_long without asking the origin"`
	MaxObjectBytes   int           `env:"PROXY_MAX_OBJECT_BYTES" envDefault:"524288" help:"largest response stored in memcached; larger ones pass through uncached"`
	MaxTTL           time.Duration `env:"PROXY_MAX_TTL" envDefault:"24h" help:"upper bound on how long an entry is kept in memcached (freshness + stale windows)"`
	LeaseTTL         time.Duration `env:"PROXY_LEASE_TTL" envDefault:"5s" help:"fleet-wide fill lease lifetime (whole seconds, >= 1s); a crashed filler blocks others at most this long"`
	CoalesceWait     time.Duration `env:"PROXY_COALESCE_WAIT" envDefault:"3s" help:"how long a request waits for another request's fill (this process or another proxy) before fetching itself"`
	LeasePoll        time.Duration `env:"PROXY_LEASE_POLL" envDefault:"10ms" help:"how often a request waiting on another proxy's fill polls memcached"`

	LeaseDuration time.Duration `env:"PROXY_LEASE_DURATION" envDefault:"1s" help:"invalidation lease (proxy/README.md \"Leases\"): how long one renewal in memcached lets L1 hits skip memcached; renewed every third of it; also the longest a write waits for a lease holder that does not answer"`
	PeerSecret    string        `env:"PROXY_PEER_SECRET" envDefault:"" help:"shared secret of the invalidation channel between proxies and the invalidator (the same everywhere, INVALIDATOR_PEER_SECRET too); empty turns leases off: every L1 hit is checked in memcached"`
	PeerAdvertise string        `env:"PROXY_PEER_ADVERTISE" envDefault:"" help:"host:port where other proxies and the invalidator reach this proxy's admin listener to invalidate its L1; default the admin listener's address; behind NAT or in an Auto Scaling group, the instance's private IP and admin port"`
	PeerNetworks  []string      `env:"PROXY_PEER_NETWORKS" envDefault:"127.0.0.0/8,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,::1/128,fc00::/7" help:"comma-separated networks (CIDR) where lease holders may be: a write never sends an invalidation to an address outside them, whatever memcached's registry lists; this proxy's advertised address must be inside them"`
	PeerTimeout   time.Duration `env:"PROXY_PEER_TIMEOUT" envDefault:"200ms" help:"how long a write waits for a lease holder's acknowledgement before revoking its lease (then it waits out the lease, at most PROXY_LEASE_DURATION)"`

	ConsistencySample  float64       `env:"PROXY_CONSISTENCY_SAMPLE" envDefault:"0.001" help:"share of hits checked again against the primary, off the request path (proxy/README.md \"Consistency checks\"); 1 checks every hit, 0 turns checks off"`
	ConsistencyMaxRate float64       `env:"PROXY_CONSISTENCY_MAX_RATE" envDefault:"20" help:"most consistency checks a second per proxy (a token bucket, bursts of one second's worth); sampled hits over it are counted skipped"`
	ConsistencyBound   time.Duration `env:"PROXY_CONSISTENCY_BOUND" envDefault:"2s" help:"how long after a check first sees a newer state on the primary the cache must have stopped serving the older one; at least the invalidation pending bound (a write's moves and lease waits, the durable invalidator's poll and round trip); with leases on, never less than PROXY_LEASE_DURATION + PROXY_PEER_TIMEOUT"`

	CacheName     string `env:"PROXY_CACHE_NAME" envDefault:"edgecache" help:"this cache's name in Cache-Status (RFC 9211) and Via"`
	TargetedField string `env:"PROXY_TARGETED_CACHE_CONTROL" envDefault:"Edgecache-Cache-Control" help:"RFC 9213 targeted field that overrides CDN-Cache-Control and Cache-Control for this cache"`

	StripSetCookie bool `env:"PROXY_STRIP_SET_COOKIE" envDefault:"false" help:"store responses without their Set-Cookie (the client whose request filled the entry still gets it); false stores and replays Set-Cookie of responses the origin marked cacheable with explicit freshness (RFC 9111 §3.1, §7.3)"`

	QueryAllow  string   `env:"PROXY_QUERY_ALLOW" envDefault:"/v1/=;/v1/users/*/posts=limit,before" help:"query parameters kept in a read's cache key and forwarded request, per path: pattern=name,name rules separated by ';', a pattern's segments literal or * (one segment), a trailing / for every path under it; the longest matching pattern decides, other parameters are dropped; paths no rule matches keep all; the default is the origin's API (only its lists read limit and before)"`
	PublicPaths []string `env:"PROXY_PUBLIC_PATHS" envDefault:"/v1/" help:"comma-separated path prefixes the client listener forwards (each starts with /); any other path is answered 404 not_found without asking the origin, so its /metrics, /healthz and /readyz stay private"`
	AdminToken  string   `env:"PROXY_ADMIN_TOKEN" envDefault:"" help:"bearer token for POST /purge on the admin listener; empty disables purge (403)"`

	DrainDelay       time.Duration `env:"PROXY_DRAIN_DELAY" envDefault:"5s" help:"after SIGTERM, /readyz fails this long before the listener closes (load balancer notices)"`
	ShutdownTimeout  time.Duration `env:"PROXY_SHUTDOWN_TIMEOUT" envDefault:"30s" help:"after the drain delay, the longest wait for in-flight requests and background refreshes"`
	LogLevel         string        `env:"PROXY_LOG_LEVEL" envDefault:"info" help:"level of the application log (JSON on stderr): debug, info, warn or error"`
	AccessLog        string        `env:"PROXY_ACCESS_LOG" envDefault:"stdout" help:"where the access log (one JSON line per request, never sampled) goes: stdout, stderr, off, or a file path (containing a /, appended to)"`
	TrustXFF         bool          `env:"PROXY_TRUST_FORWARDED" envDefault:"false" help:"keep the client's X-Forwarded-For/-Proto in what is forwarded to the origin, whatever the TCP peer (set true behind a load balancer that sets them); PROXY_TRUSTED_PROXIES does so for its peers only"`
	ClientMissRate   float64       `env:"PROXY_CLIENT_MISS_RATE" envDefault:"0" help:"per-client budget of reads that go to the origin (misses, revalidations, requests with Authorization), a second, per proxy (a token bucket per client address, see PROXY_TRUSTED_PROXIES); beyond it 429 too_many_requests with Retry-After; hits are never limited; 0 turns it off"`
	ClientMissBurst  int           `env:"PROXY_CLIENT_MISS_BURST" envDefault:"100" help:"how many misses a client may make at once before PROXY_CLIENT_MISS_RATE applies"`
	ClientWriteRate  float64       `env:"PROXY_CLIENT_WRITE_RATE" envDefault:"0" help:"per-client budget of writes (any method but GET and HEAD) a second, per proxy, as PROXY_CLIENT_MISS_RATE; 0 turns it off"`
	ClientWriteBurst int           `env:"PROXY_CLIENT_WRITE_BURST" envDefault:"20" help:"how many writes a client may make at once before PROXY_CLIENT_WRITE_RATE applies"`
	TrustedProxies   []string      `env:"PROXY_TRUSTED_PROXIES" envDefault:"" help:"comma-separated networks (CIDR) of the load balancers in front: when the TCP peer is inside them, the client (access log, per-client budgets) is the rightmost X-Forwarded-For address outside them, and the client's X-Forwarded-For/-Proto are forwarded; empty trusts nobody: the client is the TCP peer"`
	ProxyProtocol    bool          `env:"PROXY_PROXY_PROTOCOL" envDefault:"false" help:"every connection from a peer inside PROXY_TRUSTED_PROXIES begins with a PROXY protocol header (v1 or v2, as an NLB or HAProxy send-proxy-v2 sends), which names the client in place of the TCP peer; one that is missing, malformed or incomplete after PROXY_HEADER_TIMEOUT closes the connection unanswered; other peers' bytes are read as HTTP; needs PROXY_TRUSTED_PROXIES"`
}

// Validate reports every invalid setting at once, one "VARIABLE: problem"
// error each, joined (deploy/envconfig lists them under their variables).
func (c Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	c.checkAddresses(bad)
	c.checkDurations(bad)
	c.checkLeases(bad)
	c.checkSizes(bad)
	if _, err := zapcore.ParseLevel(c.LogLevel); err != nil {
		bad("PROXY_LOG_LEVEL", "want debug, info, warn or error, got %q", c.LogLevel)
	}
	if err := accesslog.CheckDestination(c.AccessLog); err != nil {
		bad("PROXY_ACCESS_LOG", "%v", err)
	}
	c.checkHTTP(bad)
	c.checkConsistency(bad)
	return errors.Join(errs...)
}

// checkAddresses: the listeners, origins and memcached nodes.
func (c Config) checkAddresses(bad func(name, format string, args ...any)) {
	for _, l := range []struct{ name, addr string }{{"PROXY_LISTEN", c.Listen}, {"PROXY_ADMIN_LISTEN", c.AdminListen}} {
		if _, _, err := net.SplitHostPort(l.addr); err != nil {
			bad(l.name, "want host:port, got %q", l.addr)
		}
	}
	if len(c.Origins) == 0 {
		bad("PROXY_ORIGINS", "at least one origin URL is needed")
	}
	for _, o := range c.Origins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			bad("PROXY_ORIGINS", "want a base URL like http://host:port, got %q", o)
		}
	}
	if len(c.Memcached) == 0 {
		bad("PROXY_MEMCACHED", "at least one memcached host:port is needed")
	}
	for _, m := range c.Memcached {
		if _, _, err := net.SplitHostPort(m); err != nil {
			bad("PROXY_MEMCACHED", "want host:port, got %q", m)
		}
	}
}

// checkDurations: every timeout and interval.
func (c Config) checkDurations(bad func(name, format string, args ...any)) {
	positive := map[string]time.Duration{
		"PROXY_HEADER_TIMEOUT": c.HeaderTimeout, "PROXY_READ_TIMEOUT": c.ReadTimeout, "PROXY_WRITE_TIMEOUT": c.WriteTimeout, "PROXY_IDLE_TIMEOUT": c.IdleTimeout,
		"PROXY_ORIGIN_CONNECT_TIMEOUT": c.OriginConnectTimeout, "PROXY_ORIGIN_TIMEOUT": c.OriginTimeout,
		"PROXY_ORIGIN_WRITE_TIMEOUT": c.OriginWriteTimeout,
		"PROXY_ORIGIN_MAX_CONN_WAIT": c.OriginMaxConnWait, "PROXY_ORIGIN_IDLE_CONN_TIME": c.OriginIdleConnTime,
		"PROXY_ORIGIN_READ_TIMEOUT": c.OriginReadTimeout, "PROXY_ORIGIN_DOWN_FOR": c.OriginDownFor,
		"PROXY_ORIGIN_MAX_DOWN_FOR": c.OriginMaxDownFor, "PROXY_ORIGIN_PROBE_INTERVAL": c.OriginProbeInterval,
		"PROXY_ORIGIN_PROBE_TIMEOUT": c.OriginProbeTimeout,
		"PROXY_MEMCACHED_TIMEOUT":    c.MemcachedTimeout, "PROXY_MEMCACHED_PROBE_INTERVAL": c.MemcachedProbeInterval,
		"PROXY_MAX_TTL": c.MaxTTL, "PROXY_COALESCE_WAIT": c.CoalesceWait, "PROXY_LEASE_POLL": c.LeasePoll,
		"PROXY_SHUTDOWN_TIMEOUT": c.ShutdownTimeout,
	}
	for _, name := range slices.Sorted(maps.Keys(positive)) {
		d := positive[name]
		if d <= 0 {
			bad(name, "must be > 0, got %s", d)
		}
	}
	if c.DrainDelay < 0 {
		bad("PROXY_DRAIN_DELAY", "must be >= 0, got %s", c.DrainDelay)
	}
	if c.OriginMaxDownFor < c.OriginDownFor {
		bad("PROXY_ORIGIN_MAX_DOWN_FOR", "must be at least PROXY_ORIGIN_DOWN_FOR (%s), got %s", c.OriginDownFor, c.OriginMaxDownFor)
	}
}

// checkLeases: the fill lease and the invalidation lease, and how peers reach this proxy.
func (c Config) checkLeases(bad func(name, format string, args ...any)) {
	if c.LeaseTTL < time.Second || c.LeaseTTL%time.Second != 0 {
		bad("PROXY_LEASE_TTL", "memcached expiry is in whole seconds: want >= 1s and a whole number of seconds, got %s", c.LeaseTTL)
	}
	if c.LeaseDuration < 10*time.Millisecond {
		bad("PROXY_LEASE_DURATION", "must be >= 10ms, got %s", c.LeaseDuration)
	}
	if c.PeerTimeout <= 0 || c.PeerTimeout >= c.LeaseDuration {
		bad("PROXY_PEER_TIMEOUT", "must be > 0 and below PROXY_LEASE_DURATION (%s), got %s", c.LeaseDuration, c.PeerTimeout)
	}
	if strings.ContainsAny(c.PeerSecret, " \t\r\n") {
		bad("PROXY_PEER_SECRET", "must not contain spaces or line breaks")
	}
	networks, err := lease.ParseNetworks(c.PeerNetworks)
	if err != nil {
		bad("PROXY_PEER_NETWORKS", "%v", err)
	}
	if advertise := c.advertised(); c.PeerSecret != "" && err == nil && advertise != "" {
		c.checkAdvertised(advertise, networks, bad)
	}
	switch host, _, err := net.SplitHostPort(c.PeerAdvertise); {
	case c.PeerAdvertise != "" && err != nil:
		bad("PROXY_PEER_ADVERTISE", "want host:port, got %q", c.PeerAdvertise)
	case c.PeerAdvertise != "" && unspecifiedHost(host):
		bad("PROXY_PEER_ADVERTISE", "must be an address peers can reach, got %q", c.PeerAdvertise)
	case c.PeerAdvertise == "" && c.PeerSecret != "":
		if h, _, err := net.SplitHostPort(c.AdminListen); err == nil && unspecifiedHost(h) {
			bad("PROXY_PEER_ADVERTISE", "PROXY_ADMIN_LISTEN %q listens on every address: set the address peers reach this proxy at (the instance's private IP and admin port)", c.AdminListen)
		}
	}
}

// advertised is where peers reach this proxy: PROXY_PEER_ADVERTISE, else
// the admin listener ("" if that listens everywhere: an error of its own).
func (c Config) advertised() string {
	if c.PeerAdvertise != "" {
		return c.PeerAdvertise
	}
	if h, _, err := net.SplitHostPort(c.AdminListen); err == nil && !unspecifiedHost(h) {
		return c.AdminListen
	}
	return ""
}

// checkAdvertised: movers send only to IP addresses inside the peer
// networks, and a loopback address is only reachable from this host: with
// memcached on another host, other hosts' proxies share the registry and
// would notify whatever process listens at that address on their own
// host (a holder the write never reaches, stale reads).
func (c Config) checkAdvertised(addr string, networks []netip.Prefix, bad func(name, format string, args ...any)) {
	name := "PROXY_PEER_ADVERTISE"
	if c.PeerAdvertise == "" {
		name = "PROXY_ADMIN_LISTEN"
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		bad(name, "peers reach this proxy at %q: want an IP address and port (movers do not resolve names)", addr)
		return
	}
	if !lease.Allowed(addr, networks) {
		bad(name, "peers reach this proxy at %q, outside PROXY_PEER_NETWORKS", addr)
	}
	if !ap.Addr().IsLoopback() {
		return
	}
	for _, m := range c.Memcached {
		if h, _, err := net.SplitHostPort(m); err == nil && !loopbackHost(h) {
			bad(name, "peers reach this proxy at loopback %q but memcached %q is on another host: set PROXY_PEER_ADVERTISE to this host's private IP and admin port", addr, m)
			return
		}
	}
}

// loopbackHost reports whether host is a loopback address or localhost.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// checkSizes: limits in bytes and counts.
func (c Config) checkSizes(bad func(name, format string, args ...any)) {
	ints := map[string]int{
		"PROXY_MAX_HEADER_BYTES": c.MaxHeaderBytes, "PROXY_MAX_BODY_BYTES": c.MaxBodyBytes, "PROXY_MAX_CONNS": c.MaxConns,
		"PROXY_ORIGIN_MAX_CONNS": c.OriginMaxConns, "PROXY_ORIGIN_MAX_RESPONSE_BYTES": c.OriginMaxRespBytes,
		"PROXY_MEMCACHED_MAX_IDLE_CONNS": c.MemcachedMaxIdleConns, "PROXY_MAX_OBJECT_BYTES": c.MaxObjectBytes,
		"PROXY_ORIGIN_EJECT_AFTER": c.OriginEjectAfter, "PROXY_GROUP_MEMORY_BYTES": c.GroupMemoryBytes,
		"PROXY_MAX_KEY_BYTES": c.MaxKeyBytes, "PROXY_ORIGIN_CONCURRENCY_MIN": c.OriginConcurrencyMin,
		"PROXY_ORIGIN_CONCURRENCY_MAX": c.OriginConcurrencyMax,
	}
	for _, name := range slices.Sorted(maps.Keys(ints)) {
		n := ints[name]
		if n <= 0 {
			bad(name, "must be > 0, got %d", n)
		}
	}
	if c.OriginConcurrencyMax < c.OriginConcurrencyMin {
		bad("PROXY_ORIGIN_CONCURRENCY_MAX", "must be at least PROXY_ORIGIN_CONCURRENCY_MIN (%d), got %d", c.OriginConcurrencyMin, c.OriginConcurrencyMax)
	}
	if c.MemoryLimit < 0 {
		bad("PROXY_MEMORY_LIMIT", "must be >= 0 (0: derived from what the proxy keeps), got %d", c.MemoryLimit)
	}
	if c.L1Bytes < 0 {
		bad("PROXY_L1_BYTES", "must be >= 0, got %d", c.L1Bytes)
	}
	if c.MaxHeaderBytes < 1024 {
		bad("PROXY_MAX_HEADER_BYTES", "must be >= 1024, got %d", c.MaxHeaderBytes)
	}
	// memcached's default item limit is 1 MiB including key and metadata.
	if c.MaxObjectBytes > 1000*1024 {
		bad("PROXY_MAX_OBJECT_BYTES", "must stay under memcached's 1 MiB item limit, got %d", c.MaxObjectBytes)
	}
}

// checkHTTP: what the proxy's answers are made of.
func (c Config) checkHTTP(bad func(name, format string, args ...any)) {
	if len(c.PublicPaths) == 0 {
		bad("PROXY_PUBLIC_PATHS", "at least one path prefix is needed")
	}
	for _, p := range c.PublicPaths {
		if !strings.HasPrefix(p, "/") {
			bad("PROXY_PUBLIC_PATHS", "want path prefixes starting with /, got %q", p)
		}
	}
	rates := map[string]float64{"PROXY_CLIENT_MISS_RATE": c.ClientMissRate, "PROXY_CLIENT_WRITE_RATE": c.ClientWriteRate}
	for _, name := range slices.Sorted(maps.Keys(rates)) {
		if rate := rates[name]; !(rate >= 0) || math.IsInf(rate, 1) {
			bad(name, "want requests a second >= 0 (0: off), got %v", rate)
		}
	}
	if c.ClientMissBurst < 1 {
		bad("PROXY_CLIENT_MISS_BURST", "must be >= 1, got %d", c.ClientMissBurst)
	}
	if c.ClientWriteBurst < 1 {
		bad("PROXY_CLIENT_WRITE_BURST", "must be >= 1, got %d", c.ClientWriteBurst)
	}
	if _, err := parseTrustedProxies(c.TrustedProxies); err != nil {
		bad("PROXY_TRUSTED_PROXIES", "%v", err)
	}
	if c.ProxyProtocol && len(c.TrustedProxies) == 0 {
		bad("PROXY_PROXY_PROTOCOL", "needs PROXY_TRUSTED_PROXIES: the load balancers whose PROXY header is read")
	}
	if _, err := parseQueryAllow(c.QueryAllow); err != nil {
		bad("PROXY_QUERY_ALLOW", "%v", err)
	}
	if c.CacheName == "" || strings.ContainsAny(c.CacheName, " ,;=\"") {
		bad("PROXY_CACHE_NAME", "want a token without spaces, commas, semicolons, quotes or '=', got %q", c.CacheName)
	}
	if c.TargetedField == "" || strings.ContainsAny(c.TargetedField, " :\t") {
		bad("PROXY_TARGETED_CACHE_CONTROL", "want a header field name, got %q", c.TargetedField)
	}
}

// checkConsistency: the sampled checks of hits.
func (c Config) checkConsistency(bad func(name, format string, args ...any)) {
	if !(c.ConsistencySample >= 0 && c.ConsistencySample <= 1) { // NaN too
		bad("PROXY_CONSISTENCY_SAMPLE", "want a share from 0 to 1, got %v", c.ConsistencySample)
	}
	if !(c.ConsistencyMaxRate > 0) || math.IsInf(c.ConsistencyMaxRate, 1) {
		bad("PROXY_CONSISTENCY_MAX_RATE", "want checks a second > 0, got %v", c.ConsistencyMaxRate)
	}
	if c.ConsistencyBound <= 0 {
		bad("PROXY_CONSISTENCY_BOUND", "must be > 0, got %s", c.ConsistencyBound)
	}
}

// unspecifiedHost reports whether host means "every address" (0.0.0.0,
// ::, empty): fine to listen on, useless to advertise.
func unspecifiedHost(host string) bool {
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}
