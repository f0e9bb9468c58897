package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// upstream is one origin server: the client that carries traffic to it and
// what the proxy knows of its health (originhealth.go).
type upstream struct {
	base   string               // the configured base URL, for logs, metrics and /readyz
	hc     *fasthttp.HostClient // client requests
	probe  *fasthttp.HostClient // health probes: a connection of their own, so that a full pool does not read as a dead origin
	host   string               // host:port, sent as Host when the client sent none
	scheme string
	health health

	ejections, returns *metrics.Counter
}

// origins spreads requests over the configured origins round-robin,
// skipping ejected ones (unless every one is), and sends each request to at
// most two of them (see do).
type origins struct {
	ups   []*upstream
	next  atomic.Uint32
	log   *zap.Logger
	m     *metricSet
	limit *concurrencyLimit // requests in flight to every origin together (originlimit.go)

	readTimeout   time.Duration // one read attempt
	ejectAfter    int32         // consecutive failures that eject
	downFor       time.Duration // first ejection; doubled on each quick relapse
	maxDownFor    time.Duration
	probeInterval time.Duration
	probeTimeout  time.Duration
}

func newOrigins(cfg Config, log *zap.Logger, m *metricSet) (*origins, error) {
	o := &origins{log: log, m: m, readTimeout: cfg.OriginReadTimeout, ejectAfter: int32(cfg.OriginEjectAfter),
		downFor: cfg.OriginDownFor, maxDownFor: cfg.OriginMaxDownFor,
		probeInterval: cfg.OriginProbeInterval, probeTimeout: cfg.OriginProbeTimeout,
		limit: newConcurrencyLimit(cfg.OriginConcurrencyMin, cfg.OriginConcurrencyMax)}
	m.originLimit(o.limit)
	for _, base := range cfg.Origins {
		u, err := url.Parse(base)
		if err != nil {
			return nil, err
		}
		tls := u.Scheme == "https"
		addr := fasthttp.AddMissingPort(u.Host, tls)
		connect, probeTimeout := cfg.OriginConnectTimeout, cfg.OriginProbeTimeout
		up := &upstream{base: base, host: u.Host, scheme: u.Scheme, hc: &fasthttp.HostClient{
			Addr:                     addr,
			IsTLS:                    tls,
			Name:                     "edgecache-proxy",
			NoDefaultUserAgentHeader: true,
			Dial:                     func(a string) (net.Conn, error) { return dialOrigin(a, connect, !tls) },
			MaxConns:                 cfg.OriginMaxConns,
			MaxConnWaitTimeout:       cfg.OriginMaxConnWait,
			MaxIdleConnDuration:      cfg.OriginIdleConnTime,
			ReadTimeout:              cfg.OriginTimeout,
			WriteTimeout:             cfg.OriginTimeout,
			MaxResponseBodySize:      cfg.OriginMaxRespBytes,
			// Retries are the proxy's decision (see do), never fasthttp's:
			// its default retries PUT as well, on the same origin.
			MaxIdemponentCallAttempts: 1,
			RetryIfErr:                func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
			DisablePathNormalizing:    true,
		}}
		up.probe = &fasthttp.HostClient{
			Addr:                      addr,
			IsTLS:                     tls,
			Name:                      "edgecache-proxy-probe",
			NoDefaultUserAgentHeader:  true,
			Dial:                      func(a string) (net.Conn, error) { return fasthttp.DialTimeout(a, min(connect, probeTimeout)) },
			MaxConns:                  1,
			MaxIdleConnDuration:       cfg.OriginIdleConnTime,
			MaxIdemponentCallAttempts: 1,
		}
		up.health.init()
		up.ejections, up.returns = m.originHealth(base, up.health.up.Load)
		o.ups = append(o.ups, up)
	}
	return o, nil
}

// errDial marks an error of dialOrigin: the connection was never made.
var errDial = errors.New("origin dial failed")

// dialOrigin connects to an origin. On plain HTTP the connection checks,
// before each reuse, that the origin has not closed it (originconn.go).
func dialOrigin(addr string, timeout time.Duration, checkReuse bool) (net.Conn, error) {
	c, err := fasthttp.DialTimeout(addr, timeout)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errDial, err)
	}
	if checkReuse {
		return newOriginConn(c), nil
	}
	return c, nil
}

// pick returns the next origin in service, other than avoid. When every
// such origin is ejected it returns the one that failed least recently:
// an origin may have recovered before its probe noticed, and a request
// that is tried can succeed where one refused at once cannot. avoid is
// returned only when it is the only origin.
func (o *origins) pick(avoid *upstream) *upstream {
	n := len(o.ups)
	start := int(o.next.Add(1))
	for i := 0; i < n; i++ {
		u := o.ups[(start+i)%n]
		if u != avoid && u.health.up.Load() {
			return u
		}
	}
	var best *upstream
	for _, u := range o.ups {
		if u == avoid && n > 1 {
			continue
		}
		if best == nil || u.health.lastFailure.Load() < best.health.lastFailure.Load() {
			best = u
		}
	}
	return best
}

// originError wraps the status the proxy answers with for an origin
// failure: 502 (refused, broken, too large), 503 (no free connection), 504
// (timeout).
type originError struct {
	status int
	code   string
	err    error
}

func (e *originError) Error() string { return e.err.Error() }
func (e *originError) Unwrap() error { return e.err }

// do sends req to an origin, and to a second one after a failure that
// produced no response when that is safe:
//   - a read (safe is true: GET, HEAD) after any failure. Each attempt
//     waits at most PROXY_ORIGIN_READ_TIMEOUT, so that a read which met a
//     hung origin still has time for a healthy one;
//   - a write only when the failure proves that no byte of it reached the
//     origin (unsent): it cannot have been applied, so sending it elsewhere
//     cannot apply it twice. A write waits for the whole deadline.
//
// Every outcome feeds the origin's health (originhealth.go). The request's
// Host is kept (the origin sees the public name); the connection goes to
// the chosen origin.
func (o *origins) do(req *fasthttp.Request, resp *fasthttp.Response, safe bool, deadline time.Time) error {
	var tried *upstream
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		u := o.pick(tried)
		if len(req.Header.Host()) == 0 {
			req.Header.SetHost(u.host)
		}
		if !o.limit.acquire(!safe) {
			o.m.originRequests["overloaded"].Inc()
			return errOriginOverloaded
		}
		start := time.Now()
		try := deadline
		if t := start.Add(o.readTimeout); safe && t.Before(deadline) {
			try = t
		}
		err = u.hc.DoDeadline(req, resp, try)
		end := time.Now()
		o.limit.release(end, end.Sub(start), err == nil)
		o.m.originDuration.Update(end.Sub(start).Seconds())
		if err == nil {
			status := resp.StatusCode()
			switch {
			case status >= 500:
				o.m.originRequests["5xx"].Inc()
			default:
				o.m.originRequests["ok"].Inc()
			}
			if unavailableStatus(status) {
				o.failed(u, errors.New("answered "+fasthttp.StatusMessage(status)), false)
			} else {
				u.health.succeeded()
			}
			return nil
		}
		oe := classifyOriginError(err)
		switch oe.status {
		case fasthttp.StatusGatewayTimeout:
			o.m.originRequests["timeout"].Inc()
		case fasthttp.StatusServiceUnavailable:
			o.m.originRequests["busy"].Inc()
		default:
			o.m.originRequests["error"].Inc()
		}
		switch {
		case errors.Is(err, fasthttp.ErrBodyTooLarge):
			return oe // the origin answered, too much: another would answer the same
		case errors.Is(err, errStaleConn):
			// Not the origin's failure: it closed an old connection (an idle
			// timeout, a restart). A dead origin shows at the next dial.
		default:
			o.failed(u, err, errors.Is(err, errDial))
		}
		err = oe
		if !safe && !unsent(err) || !time.Now().Before(deadline) {
			break
		}
		if safe {
			o.m.originRetries["read"].Inc()
		} else {
			o.m.originRetries["unsent-write"].Inc()
		}
		tried = u
	}
	return err
}

// unavailableStatus reports whether an answer says the origin cannot serve
// (502, 503, 504: its database or its own upstream is unavailable). Those
// count towards ejection; a 500 is more often one request's bug than the
// origin's health.
func unavailableStatus(status int) bool {
	return status == fasthttp.StatusBadGateway || status == fasthttp.StatusServiceUnavailable ||
		status == fasthttp.StatusGatewayTimeout
}

// unsent reports whether err proves that no byte of the request reached the
// origin. In fasthttp v1.78, transport.RoundTrip (client.go) first takes a
// connection with HostClient.AcquireConn and returns its error before
// writing anything; so these are provable:
//   - errDial: the dial failed (refused, unreachable, timed out);
//   - fasthttp.ErrNoFreeConns: every connection was busy for
//     PROXY_ORIGIN_MAX_CONN_WAIT and none was taken;
//   - errStaleConn: a pooled connection the origin had already closed (or
//     reset, or sent unasked bytes on) before the request's first byte was
//     written; originConn refuses that write (originconn.go).
//
// Not provable, so never resent:
//   - fasthttp.ErrConnectionClosed, "the server closed connection before
//     returning the first response byte": HostClient.Do turns the io.EOF of
//     reading the response into it, after req.Write and Flush succeeded. The
//     origin read the request and may have committed it;
//   - fasthttp.ErrTimeout: it comes from AcquireConn's wait as well as from
//     the write or the response read, and fasthttp does not say which;
//   - any other write error: part of the request may have gone out.
func unsent(err error) bool {
	return errors.Is(err, errDial) || errors.Is(err, fasthttp.ErrNoFreeConns) || errors.Is(err, errStaleConn)
}

func classifyOriginError(err error) *originError {
	switch {
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout):
		return &originError{fasthttp.StatusGatewayTimeout, "origin_timeout", err}
	case errors.Is(err, fasthttp.ErrNoFreeConns), errors.Is(err, fasthttp.ErrConnPoolStrategyNotImpl):
		return &originError{fasthttp.StatusServiceUnavailable, "origin_busy", err}
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return &originError{fasthttp.StatusBadGateway, "origin_response_too_large", err}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &originError{fasthttp.StatusGatewayTimeout, "origin_timeout", err}
	}
	return &originError{fasthttp.StatusBadGateway, "origin_unreachable", err}
}
