package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"unsafe"
)

// errIncomplete says the bytes so far are the start of a valid header:
// read more.
var errIncomplete = errors.New("proxyproto: incomplete header")

// v1Prefix starts a version 1 header, v2Signature a version 2 one.
const (
	v1Prefix    = "PROXY "
	v2Signature = "\r\n\r\n\x00\r\nQUIT\n"
)

// v1MaxLen is the longest version 1 line, CRLF included (the spec's
// "PROXY UNKNOWN" with two full IPv6 addresses and ports).
const v1MaxLen = 107

// v2FixedLen is a version 2 header's signature, version and command,
// family and transport, and length.
const v2FixedLen = 16

// v2AddrLen is the length of a version 2 address block by family: none
// (AF_UNSPEC), IPv4 or IPv6 addresses and ports, two UNIX paths.
var v2AddrLen = [4]int{0, 12, 36, 216}

// Parse reads the PROXY protocol header (version 1 or 2) at the start of b.
// It returns the client's address and port the header names, and the
// header's length in bytes. The address is invalid (the zero AddrPort)
// when the header names no client: a version 2 LOCAL command (the load
// balancer's own connection, a health check), version 1 UNKNOWN, or a
// version 2 family other than TCP over IPv4 or IPv6; the connection's own
// peer is then the client.
//
// Parse returns errIncomplete while b is a valid start of a header that
// needs more bytes, and another error as soon as b cannot be one.
// Parse never keeps b.
func Parse(b []byte) (source netip.AddrPort, n int, err error) {
	switch {
	case len(b) == 0:
		return netip.AddrPort{}, 0, errIncomplete
	case b[0] == v1Prefix[0]:
		return parseV1(b)
	case b[0] == v2Signature[0]:
		return parseV2(b)
	}
	return netip.AddrPort{}, 0, errors.New("proxyproto: no PROXY header")
}

// hasPrefix reports whether b starts with prefix, or is a start of it.
// complete says which.
func hasPrefix(b []byte, prefix string) (ok, complete bool) {
	m := min(len(b), len(prefix))
	return string(b[:m]) == prefix[:m], m == len(prefix)
}

// parseV1: "PROXY TCP4 src dst sport dport\r\n", or TCP6, or "PROXY
// UNKNOWN" and anything up to the CRLF.
func parseV1(b []byte) (netip.AddrPort, int, error) {
	ok, complete := hasPrefix(b, v1Prefix)
	if !ok {
		return netip.AddrPort{}, 0, errors.New("proxyproto: no PROXY header")
	}
	end := bytes.Index(b[:min(len(b), v1MaxLen)], []byte("\r\n"))
	if !complete || end < 0 {
		if len(b) >= v1MaxLen {
			return netip.AddrPort{}, 0, fmt.Errorf("proxyproto: version 1 line without CRLF in its first %d bytes", v1MaxLen)
		}
		// A lone CR or LF cannot end the line; the spec allows none in it.
		if bytes.ContainsAny(trimCR(b), "\r\n") {
			return netip.AddrPort{}, 0, errors.New("proxyproto: version 1 line with a lone CR or LF")
		}
		return netip.AddrPort{}, 0, errIncomplete
	}
	n := end + 2
	// Split by hand, into an array: bytes.Split would allocate.
	var fields [5][]byte
	line, count := b[len(v1Prefix):end], 0
	for more := true; more; count++ {
		if count == len(fields) {
			return netip.AddrPort{}, 0, errors.New("proxyproto: version 1 line has more than 6 fields")
		}
		fields[count], line, more = bytes.Cut(line, []byte(" "))
		if count == 0 && string(fields[0]) == "UNKNOWN" {
			return netip.AddrPort{}, n, nil // the rest of the line is ignored
		}
	}
	if count != len(fields) {
		return netip.AddrPort{}, 0, fmt.Errorf("proxyproto: version 1 line has %d fields, want 6", count+1)
	}
	var is4 bool
	switch string(fields[0]) {
	case "TCP4":
		is4 = true
	case "TCP6":
	default:
		return netip.AddrPort{}, 0, fmt.Errorf("proxyproto: version 1 protocol %q, want TCP4, TCP6 or UNKNOWN", fields[0])
	}
	src, err := parseV1Addr(fields[1], is4)
	if err != nil {
		return netip.AddrPort{}, 0, err
	}
	if _, err := parseV1Addr(fields[2], is4); err != nil {
		return netip.AddrPort{}, 0, err
	}
	sport, err := parseV1Port(fields[3])
	if err != nil {
		return netip.AddrPort{}, 0, err
	}
	if _, err := parseV1Port(fields[4]); err != nil {
		return netip.AddrPort{}, 0, err
	}
	return netip.AddrPortFrom(src, sport), n, nil
}

// trimCR drops a last CR: the first half of a CRLF still arriving.
func trimCR(b []byte) []byte {
	if len(b) > 0 && b[len(b)-1] == '\r' {
		return b[:len(b)-1]
	}
	return b
}

// parseV1Addr parses an address of the family the line announced. netip
// refuses IPv4 octets with leading zeros, as the spec does.
func parseV1Addr(f []byte, is4 bool) (netip.Addr, error) {
	var a netip.Addr
	var err error
	if len(f) > 0 {
		// ParseAddr keeps nothing of its argument: no copy of b needed.
		a, err = netip.ParseAddr(unsafe.String(&f[0], len(f)))
	}
	if len(f) == 0 || err != nil || a.Is4() != is4 || a.Zone() != "" {
		family := "IPv6"
		if is4 {
			family = "IPv4"
		}
		return netip.Addr{}, fmt.Errorf("proxyproto: version 1 address %q is not an %s address", f, family)
	}
	return a, nil
}

// parseV1Port parses a decimal port without leading zeros.
func parseV1Port(f []byte) (uint16, error) {
	bad := len(f) == 0 || len(f) > 5 || (len(f) > 1 && f[0] == '0')
	var p uint64
	if !bad {
		var err error
		p, err = strconv.ParseUint(unsafe.String(&f[0], len(f)), 10, 16)
		bad = err != nil
	}
	if bad {
		return 0, fmt.Errorf("proxyproto: version 1 port %q is not a number from 0 to 65535", f)
	}
	return uint16(p), nil
}

// parseV2: the signature, version 2 and a command, a family and a
// transport, the length of the rest, then the addresses and any TLVs
// (which are skipped).
func parseV2(b []byte) (netip.AddrPort, int, error) {
	ok, complete := hasPrefix(b, v2Signature)
	if !ok {
		return netip.AddrPort{}, 0, errors.New("proxyproto: no PROXY header")
	}
	if !complete {
		return netip.AddrPort{}, 0, errIncomplete
	}
	if len(b) > 12 && b[12]>>4 != 2 {
		return netip.AddrPort{}, 0, fmt.Errorf("proxyproto: version 2 header says version %d", b[12]>>4)
	}
	if len(b) > 12 && b[12]&0xf > 1 {
		return netip.AddrPort{}, 0, fmt.Errorf("proxyproto: version 2 command %d, want LOCAL (0) or PROXY (1)", b[12]&0xf)
	}
	if len(b) > 13 && (b[13]>>4 > 3 || b[13]&0xf > 2) {
		return netip.AddrPort{}, 0, fmt.Errorf("proxyproto: version 2 family and transport %#02x are not defined", b[13])
	}
	if len(b) < v2FixedLen {
		return netip.AddrPort{}, 0, errIncomplete
	}
	n := v2FixedLen + int(binary.BigEndian.Uint16(b[14:16]))
	local, family, transport := b[12]&0xf == 0, b[13]>>4, b[13]&0xf
	// A header shorter than its family's addresses is malformed even
	// where the addresses are not used.
	need := v2AddrLen[family]
	if n-v2FixedLen < need {
		return netip.AddrPort{}, 0, fmt.Errorf("proxyproto: version 2 length %d is shorter than its addresses (%d)", n-v2FixedLen, need)
	}
	if len(b) < n {
		return netip.AddrPort{}, 0, errIncomplete
	}
	if local || transport != 1 {
		return netip.AddrPort{}, n, nil
	}
	a := b[v2FixedLen:]
	switch family {
	case 1:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(a[0:4])), binary.BigEndian.Uint16(a[8:10])), n, nil
	case 2:
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(a[0:16])), binary.BigEndian.Uint16(a[32:34])), n, nil
	}
	return netip.AddrPort{}, n, nil // AF_UNSPEC or AF_UNIX: no client address
}
