package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// v2Header builds a version 2 header: command, family and transport byte,
// then the address block and any TLVs as given.
func v2Header(command, famTransport byte, block []byte) []byte {
	b := append([]byte(v2Signature), 0x20|command, famTransport, 0, 0)
	binary.BigEndian.PutUint16(b[14:16], uint16(len(block)))
	return append(b, block...)
}

// v2Addrs is the address block of src and dst (both IPv4 or both IPv6).
func v2Addrs(src, dst netip.AddrPort) []byte {
	var b []byte
	b = append(b, src.Addr().AsSlice()...)
	b = append(b, dst.Addr().AsSlice()...)
	b = binary.BigEndian.AppendUint16(b, src.Port())
	return binary.BigEndian.AppendUint16(b, dst.Port())
}

var (
	client4 = netip.MustParseAddrPort("203.0.113.7:56324")
	front4  = netip.MustParseAddrPort("10.0.0.1:443")
	client6 = netip.MustParseAddrPort("[2001:db8::7]:56324")
	front6  = netip.MustParseAddrPort("[2001:db8::1]:443")
)

// An NLB-like TLV: PP2_TYPE_AWS (0xEA), a VPC endpoint ID.
var awsTLV = append([]byte{0xEA, 0x00, 0x17, 0x01}, "vpce-08d2bf15fac5001c9"...)

func TestParseGood(t *testing.T) {
	unix := make([]byte, 216)
	for _, c := range []struct {
		name   string
		header []byte
		want   netip.AddrPort // zero: the header names no client
	}{
		{"v1 TCP4", []byte("PROXY TCP4 203.0.113.7 10.0.0.1 56324 443\r\n"), client4},
		{"v1 TCP6", []byte("PROXY TCP6 2001:db8::7 2001:db8::1 56324 443\r\n"), client6},
		{"v1 TCP6 full", []byte("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
			netip.MustParseAddrPort("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535")},
		{"v1 port 0", []byte("PROXY TCP4 203.0.113.7 10.0.0.1 0 443\r\n"), netip.MustParseAddrPort("203.0.113.7:0")},
		{"v1 UNKNOWN short", []byte("PROXY UNKNOWN\r\n"), netip.AddrPort{}},
		{"v1 UNKNOWN long", []byte("PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"), netip.AddrPort{}},
		{"v2 TCP4", v2Header(1, 0x11, v2Addrs(client4, front4)), client4},
		{"v2 TCP6", v2Header(1, 0x21, v2Addrs(client6, front6)), client6},
		{"v2 TCP4 with TLVs", v2Header(1, 0x11, append(v2Addrs(client4, front4), awsTLV...)), client4},
		{"v2 LOCAL", v2Header(0, 0x00, nil), netip.AddrPort{}},
		{"v2 LOCAL with addresses", v2Header(0, 0x11, v2Addrs(client4, front4)), netip.AddrPort{}},
		{"v2 UNSPEC", v2Header(1, 0x00, nil), netip.AddrPort{}},
		{"v2 UDP4", v2Header(1, 0x12, v2Addrs(client4, front4)), netip.AddrPort{}},
		{"v2 UNIX stream", v2Header(1, 0x31, unix), netip.AddrPort{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := append(bytes.Clone(c.header), "GET / HTTP/1.1\r\n"...)
			got, n, err := Parse(in)
			if err != nil || got != c.want || n != len(c.header) {
				t.Fatalf("Parse = %v, %d, %v; want %v, %d, nil", got, n, err, c.want, len(c.header))
			}
			// Arriving a byte at a time, it is incomplete until its last byte.
			for i := range len(c.header) {
				if _, _, err := Parse(c.header[:i]); !errors.Is(err, errIncomplete) {
					t.Fatalf("first %d bytes: %v, want errIncomplete", i, err)
				}
			}
		})
	}
}

func TestParseBad(t *testing.T) {
	tooLong := []byte("PROXY UNKNOWN " + strings.Repeat("x", 100) + "\r\n")
	for _, c := range []struct {
		name   string
		header []byte
	}{
		{"HTTP", []byte("GET / HTTP/1.1\r\n")},
		{"lowercase", []byte("proxy TCP4 203.0.113.7 10.0.0.1 56324 443\r\n")},
		{"v1 no CRLF in 107 bytes", tooLong},
		{"v1 LF only", []byte("PROXY TCP4 203.0.113.7 10.0.0.1 56324 443\n")},
		{"v1 lone CR", []byte("PROXY TCP4 203.0.113.7\r10.0.0.1 56324 443")},
		{"v1 TCP5", []byte("PROXY TCP5 203.0.113.7 10.0.0.1 56324 443\r\n")},
		{"v1 five fields", []byte("PROXY TCP4 203.0.113.7 10.0.0.1 56324\r\n")},
		{"v1 seven fields", []byte("PROXY TCP4 203.0.113.7 10.0.0.1 56324 443 1\r\n")},
		{"v1 two spaces", []byte("PROXY TCP4  203.0.113.7 10.0.0.1 56324 443\r\n")},
		{"v1 IPv6 as TCP4", []byte("PROXY TCP4 2001:db8::7 10.0.0.1 56324 443\r\n")},
		{"v1 IPv4 as TCP6", []byte("PROXY TCP6 203.0.113.7 2001:db8::1 56324 443\r\n")},
		{"v1 bad destination", []byte("PROXY TCP4 203.0.113.7 10.0.0 56324 443\r\n")},
		{"v1 octal octet", []byte("PROXY TCP4 203.0.113.07 10.0.0.1 56324 443\r\n")},
		{"v1 zone", []byte("PROXY TCP6 fe80::1%eth0 2001:db8::1 56324 443\r\n")},
		{"v1 port leading zero", []byte("PROXY TCP4 203.0.113.7 10.0.0.1 05632 443\r\n")},
		{"v1 port too big", []byte("PROXY TCP4 203.0.113.7 10.0.0.1 65536 443\r\n")},
		{"v1 port sign", []byte("PROXY TCP4 203.0.113.7 10.0.0.1 +5632 443\r\n")},
		{"v1 bad destination port", []byte("PROXY TCP4 203.0.113.7 10.0.0.1 56324 x\r\n")},
		{"v2 version 1", append([]byte(v2Signature), 0x11, 0x11, 0, 12)},
		{"v2 command 2", append([]byte(v2Signature), 0x22, 0x11, 0, 12)},
		{"v2 family 4", append([]byte(v2Signature), 0x21, 0x41, 0, 12)},
		{"v2 transport 3", append([]byte(v2Signature), 0x21, 0x13, 0, 12)},
		{"v2 length short of IPv4", v2Header(1, 0x11, make([]byte, 11))},
		{"v2 length short of IPv6", v2Header(1, 0x21, make([]byte, 35))},
		{"v2 LOCAL length short of UNIX", v2Header(0, 0x31, make([]byte, 215))},
		{"v2 signature damaged", append([]byte("\r\n\r\n\x00\r\nQUIT\r"), 0x21, 0x11, 0, 12)},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got, n, err := Parse(c.header); err == nil || errors.Is(err, errIncomplete) {
				t.Fatalf("Parse = %v, %d, %v; want an error", got, n, err)
			}
		})
	}
}

// FuzzParse: Parse never panics, a header it accepts is a prefix of its
// input that it accepts alone with the same answer, and every shorter
// prefix of it is incomplete (so reading byte by byte finds it).
func FuzzParse(f *testing.F) {
	f.Add([]byte("PROXY TCP4 203.0.113.7 10.0.0.1 56324 443\r\nGET / HTTP/1.1\r\n"))
	f.Add([]byte("PROXY TCP6 2001:db8::7 2001:db8::1 56324 443\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(v2Header(1, 0x11, v2Addrs(client4, front4)))
	f.Add(v2Header(1, 0x21, append(v2Addrs(client6, front6), awsTLV...)))
	f.Add(v2Header(0, 0x00, nil))
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		src, n, err := Parse(b)
		if err != nil {
			if n != 0 || src.IsValid() {
				t.Fatalf("error %v with %v, %d", err, src, n)
			}
			return
		}
		if n <= 0 || n > len(b) || n > v2FixedLen+65535 {
			t.Fatalf("length %d of %d bytes", n, len(b))
		}
		src2, n2, err2 := Parse(b[:n])
		if err2 != nil || src2 != src || n2 != n {
			t.Fatalf("alone: %v, %d, %v; with what follows: %v, %d", src2, n2, err2, src, n)
		}
		for i := range n {
			if _, _, err := Parse(b[:i]); !errors.Is(err, errIncomplete) {
				t.Fatalf("first %d bytes of a %d-byte header: %v, want errIncomplete", i, n, err)
			}
		}
	})
}

// The per-connection cost of the header, before the HTTP request.
func BenchmarkParse(b *testing.B) {
	for _, c := range []struct {
		name   string
		header []byte
	}{
		{"v1-TCP4", []byte("PROXY TCP4 203.0.113.7 10.0.0.1 56324 443\r\n")},
		{"v1-TCP6", []byte("PROXY TCP6 2001:db8::7 2001:db8::1 56324 443\r\n")},
		{"v2-TCP4-TLV", v2Header(1, 0x11, append(v2Addrs(client4, front4), awsTLV...))},
		{"v2-TCP6", v2Header(1, 0x21, v2Addrs(client6, front6))},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := Parse(c.header); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
