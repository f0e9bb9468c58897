package proxy

import (
	"errors"
	"net"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// upstream is one origin server.
type upstream struct {
	hc        *fasthttp.HostClient
	host      string // host:port, sent as Host when the client sent none
	scheme    string
	downUntil atomic.Int64 // unix nanos; a failed dial skips it until then
}

// origins spreads requests over the configured origins round-robin,
// skipping those that recently refused connections (unless all did).
type origins struct {
	ups     []*upstream
	next    atomic.Uint32
	downFor time.Duration
	timeout time.Duration
	m       *metricSet
}

func newOrigins(cfg Config, m *metricSet) (*origins, error) {
	o := &origins{downFor: cfg.OriginDownFor, timeout: cfg.OriginTimeout, m: m}
	for _, base := range cfg.Origins {
		u, err := url.Parse(base)
		if err != nil {
			return nil, err
		}
		addr := u.Host
		if u.Port() == "" {
			if u.Scheme == "https" {
				addr += ":443"
			} else {
				addr += ":80"
			}
		}
		connect := cfg.OriginConnectTimeout
		o.ups = append(o.ups, &upstream{host: u.Host, scheme: u.Scheme, hc: &fasthttp.HostClient{
			Addr:                     addr,
			IsTLS:                    u.Scheme == "https",
			Name:                     "edgecache-proxy",
			NoDefaultUserAgentHeader: true,
			Dial:                     func(a string) (net.Conn, error) { return fasthttp.DialTimeout(a, connect) },
			MaxConns:                 cfg.OriginMaxConns,
			MaxConnWaitTimeout:       cfg.OriginMaxConnWait,
			MaxIdleConnDuration:      cfg.OriginIdleConnTime,
			ReadTimeout:              cfg.OriginTimeout,
			WriteTimeout:             cfg.OriginTimeout,
			MaxResponseBodySize:      cfg.OriginMaxRespBytes,
			// Retries are the proxy's decision (reads only, see do), never
			// fasthttp's: its default retries PUT as well.
			MaxIdemponentCallAttempts: 1,
			RetryIfErr:                func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
			DisablePathNormalizing:    true,
		}})
	}
	return o, nil
}

func (o *origins) pick() *upstream {
	n := len(o.ups)
	start := int(o.next.Add(1))
	now := time.Now().UnixNano()
	for i := 0; i < n; i++ {
		u := o.ups[(start+i)%n]
		if u.downUntil.Load() <= now {
			return u
		}
	}
	return o.ups[start%n]
}

// errOriginStatus wraps the status the proxy answers with for an origin
// failure: 502 (refused, broken, too large), 503 (no free connection), 504
// (timeout).
type originError struct {
	status int
	code   string
	err    error
}

func (e *originError) Error() string { return e.err.Error() }
func (e *originError) Unwrap() error { return e.err }

// do sends req to an origin. Reads (safe methods) get a second attempt on
// another origin after a failure that produced no response; writes are sent
// exactly once. The request's Host is kept (the origin sees the public
// name); the connection goes to the chosen origin.
func (o *origins) do(req *fasthttp.Request, resp *fasthttp.Response, retry bool, deadline time.Time) error {
	attempts := 1
	if retry {
		attempts = 2
	}
	var err error
	for a := 0; a < attempts; a++ {
		u := o.pick()
		if len(req.Header.Host()) == 0 {
			req.Header.SetHost(u.host)
		}
		start := time.Now()
		err = u.hc.DoDeadline(req, resp, deadline)
		o.m.originDuration.UpdateDuration(start)
		if err == nil {
			if resp.StatusCode() >= 500 {
				o.m.originRequests["5xx"].Inc()
			} else {
				o.m.originRequests["ok"].Inc()
			}
			return nil
		}
		oe := classifyOriginError(err)
		switch oe.status {
		case fasthttp.StatusGatewayTimeout:
			o.m.originRequests["timeout"].Inc()
			return oe // the deadline is spent: no second attempt
		case fasthttp.StatusServiceUnavailable:
			o.m.originRequests["busy"].Inc()
		default:
			o.m.originRequests["error"].Inc()
			var ne *net.OpError
			if errors.As(err, &ne) && ne.Op == "dial" || errors.Is(err, fasthttp.ErrDialTimeout) {
				u.downUntil.Store(time.Now().Add(o.downFor).UnixNano())
			}
		}
		err = oe
		if time.Now().After(deadline) {
			break
		}
	}
	return err
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

// ping asks each origin's /healthz; /readyz needs at least one to answer.
func (o *origins) ping(timeout time.Duration) error {
	var errs []error
	for _, u := range o.ups {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI(u.scheme + "://" + u.host + "/healthz")
		err := u.hc.DoTimeout(req, resp, timeout)
		if err == nil && resp.StatusCode() != fasthttp.StatusOK {
			err = errors.New("origin /healthz: " + fasthttp.StatusMessage(resp.StatusCode()))
		}
		fasthttp.ReleaseRequest(req)
		fasthttp.ReleaseResponse(resp)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
