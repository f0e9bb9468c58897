package lease

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// Message is one notification: the group keys that moved, for one member.
// It names the member it is for, because an address read from the
// registry can be wrong (two processes advertising the same loopback
// address, a process restarted on a member's old port): a process that is
// not the member refuses it, and the mover treats the member as one that
// did not acknowledge (revoke, wait out its lease).
type Message struct {
	Member string   // the member's id
	Addr   string   // host:port of its peer listener, as the registry lists it
	Keys   []string // memcached group keys, each once
}

// Link carries a message to its member and returns nil only once the
// member acknowledged it. The HTTP link (newHTTPLink) is the production
// one; the fault simulator has its own.
type Link interface {
	Send(m Message, deadline time.Time) error
}

// The peer listener's fields. No secret crosses the network: the mover
// signs each message (member, a random nonce, the body) with the shared
// secret, and the member signs its acknowledgement of that nonce. An
// address planted in memcached's registry therefore learns nothing it can
// reuse, and cannot acknowledge for a member.
const (
	hdrMember    = "Edgecache-Lease-Member"
	hdrNonce     = "Edgecache-Lease-Nonce"
	hdrSignature = "Edgecache-Lease-Signature"
	hdrAck       = "Edgecache-Lease-Ack"
)

// sign is hex(HMAC-SHA256(secret, parts joined by newlines)).
func sign(secret string, parts ...[]byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	for i, p := range parts {
		if i > 0 {
			m.Write([]byte{'\n'})
		}
		m.Write(p)
	}
	return hex.EncodeToString(m.Sum(nil))
}

func validSignature(got []byte, secret string, parts ...[]byte) bool {
	return secret != "" && hmac.Equal(got, []byte(sign(secret, parts...)))
}

// ErrNotAllowed is returned for a member whose advertised address is not
// an IP address inside the allowed networks: movers never send to it.
var ErrNotAllowed = errors.New("lease: member's address is outside the allowed peer networks")

// PrivateNetworks are the default peer networks: loopback and private
// addresses (RFC 1918, RFC 4193), where a fleet's peer listeners live.
var PrivateNetworks = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"), netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("fc00::/7"),
}

// ParseNetworks reads CIDR prefixes (PROXY_PEER_NETWORKS); none is an error.
func ParseNetworks(cidrs []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(strings.TrimSpace(c))
		if err != nil {
			return nil, errors.New("want CIDR networks like 10.0.0.0/8, got " + strconv.Quote(c))
		}
		out = append(out, p.Masked())
	}
	if len(out) == 0 {
		return nil, errors.New("at least one network is needed")
	}
	return out, nil
}

// Allowed reports whether addr (ip:port) is inside one of networks.
func Allowed(addr string, networks []netip.Prefix) bool {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return false
	}
	for _, n := range networks {
		if n.Contains(ap.Addr().Unmap()) {
			return true
		}
	}
	return false
}

// httpLink posts signed messages to peer listeners (Path).
type httpLink struct {
	client   *fasthttp.Client
	secret   string
	networks []netip.Prefix
}

// newHTTPLink is the production link: signed POSTs to members' peer
// listeners inside networks, each answered within timeout.
func newHTTPLink(secret string, networks []netip.Prefix, timeout time.Duration) Link {
	return &httpLink{secret: secret, networks: networks, client: &fasthttp.Client{
		ReadTimeout: timeout, WriteTimeout: timeout, MaxIdleConnDuration: 30 * time.Second,
		NoDefaultUserAgentHeader: true, MaxConnsPerHost: 16, MaxConnWaitTimeout: timeout,
	}}
}

func (l *httpLink) Send(m Message, deadline time.Time) error {
	if !Allowed(m.Addr, l.networks) {
		return ErrNotAllowed
	}
	var body strings.Builder
	for _, k := range m.Keys {
		body.WriteString(k)
		body.WriteByte('\n')
	}
	var nonce [16]byte
	rand.Read(nonce[:])
	n := hex.EncodeToString(nonce[:])
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + m.Addr + Path)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.Set(hdrMember, m.Member)
	req.Header.Set(hdrNonce, n)
	req.Header.Set(hdrSignature, sign(l.secret, []byte("invalidate"), []byte(m.Member), []byte(n), []byte(body.String())))
	req.Header.SetContentType("text/plain")
	req.SetBodyString(body.String())
	if err := l.client.DoDeadline(req, resp, deadline); err != nil {
		return err
	}
	if resp.StatusCode() != fasthttp.StatusOK {
		return errors.New("lease: peer answered " + strconv.Itoa(resp.StatusCode()) + ": " + strings.TrimSpace(string(resp.Body())))
	}
	if !validSignature(resp.Header.Peek(hdrAck), l.secret, []byte("ack"), []byte(m.Member), []byte(n)) {
		return errors.New("lease: peer's acknowledgement is not signed by member " + m.Member)
	}
	return nil
}
