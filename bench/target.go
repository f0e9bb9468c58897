package bench

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// target is one base URL the load goes to, with its own connection pool.
type target struct {
	base   string // as given, e.g. http://127.0.0.1:8080
	prefix string // path prefix of base, usually ""
	host   string // Host header
	addr   string // host:port to dial
	tls    bool
	from   *net.TCPAddr // the local address to dial from; nil: the system's choice
	// client is seeding's (seed.go); a run's workers have connections of
	// their own (httpConn).
	client *fasthttp.HostClient
}

// newTarget builds a client for base with a pool of conns connections.
// A benchmark must not hide failures: writes are never retried, and a read
// is retried once only when a pooled keep-alive connection turned out to be
// closed by the server before it answered (counted in retries).
func newTarget(base string, conns int, timeout time.Duration, retries *atomic.Int64) (*target, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("target %q: %w", base, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("target %q: want http://host:port or https://host:port", base)
	}
	tls := u.Scheme == "https"
	addr := fasthttp.AddMissingPort(u.Host, tls)
	return &target{
		base:   base,
		prefix: strings.TrimSuffix(u.Path, "/"),
		host:   u.Host,
		addr:   addr,
		tls:    tls,
		client: &fasthttp.HostClient{
			Addr:                      addr,
			IsTLS:                     tls,
			MaxConns:                  conns,
			MaxConnWaitTimeout:        timeout,
			ReadTimeout:               timeout,
			WriteTimeout:              timeout,
			MaxIdleConnDuration:       5 * time.Second, // below any sane server idle timeout
			MaxIdemponentCallAttempts: 2,
			RetryIfErr: func(req *fasthttp.Request, attempts int, err error) (bool, bool) {
				// The transport reports a closed keep-alive connection as
				// io.EOF; Do turns it into ErrConnectionClosed afterwards.
				closed := errors.Is(err, io.EOF) || errors.Is(err, fasthttp.ErrConnectionClosed)
				retry := attempts < 2 && closed &&
					(req.Header.IsGet() || req.Header.IsHead())
				if retry {
					retries.Add(1)
				}
				return false, retry
			},
			NoDefaultUserAgentHeader: true,
			Dial: func(addr string) (net.Conn, error) {
				return dialRaw(addr, nil, timeout)
			},
		},
	}, nil
}

// dialFrom makes t's connections from the address from.
func (t *target) dialFrom(from string) { t.from = &net.TCPAddr{IP: net.ParseIP(from)} }

// prepare sets up req for method on uri (the target's path prefix, the
// path and the query) with an optional Authorization value and JSON body.
func (t *target) prepare(req *fasthttp.Request, method string, uri []byte, auth string, body []byte) {
	req.Reset()
	req.Header.SetMethod(method)
	req.SetRequestURIBytes(uri)
	req.Header.SetHost(t.host)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != nil {
		req.Header.SetContentType("application/json")
		req.SetBodyRaw(body)
	}
}

// uri is path under the target's path prefix.
func (t *target) uri(path string) []byte { return []byte(t.prefix + path) }

// do sends req and waits for resp, up to timeout.
func (t *target) do(req *fasthttp.Request, resp *fasthttp.Response, timeout time.Duration) error {
	return t.client.DoTimeout(req, resp, timeout)
}

// errorKind names a failed exchange for the error table: a status code, a
// timeout, or what went wrong with the connection.
func errorKind(err error, status int) string {
	if err == nil {
		return "http " + strconv.Itoa(status)
	}
	var netErr net.Error
	switch {
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout),
		errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		return "no free connection"
	case errors.Is(err, fasthttp.ErrConnectionClosed), errors.Is(err, errClosedBeforeAnswer), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection reset"
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return "connection error"
	}
	return "error: " + err.Error()
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
