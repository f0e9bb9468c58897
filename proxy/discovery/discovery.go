// Package discovery asks an ElastiCache for Memcached cluster which nodes it
// has (ElastiCache auto discovery): its configuration endpoint answers
// `config get cluster` with a version, which grows by one each time a node
// is added or removed, and the node list.
//
// The leading invalidator uses it, when INVALIDATOR_MEMCACHED_DISCOVERY is
// set, as the desired node set of its memcached membership (package
// membership); the generations it derives from it are what every process
// follows.
//
// Nodes are named by their DNS name, never by their IP address. The
// proxies' placement hashes the address string, so a node's name must be
// the same in every process and must outlive the node's replacement: a
// replaced ElastiCache node keeps its DNS name and gets a new IP. Named by
// IP, a replacement would look like one node removed and another added (a
// membership change and a flush); named by DNS, the replacement is the same
// member that lost its memory, which followers already handle. The DNS
// names are also what Terraform gives as the seed lists (PROXY_MEMCACHED,
// INVALIDATOR_MEMCACHED), so discovery's first answer matches the
// generation the seeds started, and switching it on moves no key.
package discovery

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxConfigBytes bounds the configuration an answer may announce: 40 nodes
// (ElastiCache's limit) take about 4 KiB, and a garbled length must not
// become a huge allocation.
const maxConfigBytes = 64 << 10

// Nodes asks the configuration endpoint (host:port) for its cluster's
// configuration: the version and the nodes, as sorted "host:port" by DNS
// name. The whole exchange, dial included, takes at most timeout, and ends
// early when ctx does. A malformed answer is an error.
func Nodes(ctx context.Context, endpoint string, timeout time.Duration) (version uint64, nodes []string, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", endpoint)
	if err != nil {
		return 0, nil, fmt.Errorf("discovery: %w", err)
	}
	defer conn.Close()
	// When ctx ends (timeout or the caller's cancel), a deadline in the past
	// unblocks the exchange. Set from ctx, not from the same instant, so
	// that a failed read always finds ctx.Err() set.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	version, nodes, err = ask(conn)
	if err != nil && ctx.Err() != nil {
		// Say why the exchange stopped (timeout or cancelled), not which
		// read or write the past deadline happened to end.
		return 0, nil, fmt.Errorf("discovery: %s: %w (%v)", endpoint, ctx.Err(), err)
	}
	if err != nil {
		return 0, nil, fmt.Errorf("discovery: %s: %w", endpoint, err)
	}
	return version, nodes, nil
}

func ask(conn net.Conn) (uint64, []string, error) {
	if _, err := io.WriteString(conn, "config get cluster\r\n"); err != nil {
		return 0, nil, err
	}
	return readAnswer(bufio.NewReader(conn))
}

// readAnswer reads the answer to `config get cluster`, framed like a get's:
//
//	CONFIG cluster <flags> <bytes>\r\n
//	<bytes of configuration>\r\n
//	END\r\n
func readAnswer(r *bufio.Reader) (uint64, []string, error) {
	head, err := readLine(r)
	if err != nil {
		return 0, nil, err
	}
	f := strings.Fields(head)
	switch {
	case head == "ERROR":
		return 0, nil, errors.New("`config get cluster` is unknown here: not an ElastiCache for Memcached configuration endpoint")
	case len(f) != 4 || f[0] != "CONFIG" || f[1] != "cluster":
		return 0, nil, fmt.Errorf("want CONFIG cluster <flags> <bytes>, got %q", head)
	}
	if _, err := strconv.ParseUint(f[2], 10, 32); err != nil {
		return 0, nil, fmt.Errorf("bad flags in %q", head)
	}
	n, err := strconv.ParseUint(f[3], 10, 32)
	if err != nil || n > maxConfigBytes {
		return 0, nil, fmt.Errorf("bad length in %q (at most %d)", head, maxConfigBytes)
	}
	body := make([]byte, n+2)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, fmt.Errorf("configuration cut short: %w", err)
	}
	if !bytes.HasSuffix(body, []byte("\r\n")) {
		return 0, nil, errors.New("configuration longer than announced")
	}
	end, err := readLine(r)
	if err != nil {
		return 0, nil, err
	}
	if end != "END" {
		return 0, nil, fmt.Errorf("want END after the configuration, got %q", end)
	}
	return parseConfig(string(body[:n]))
}

// readLine reads one line ending in \r\n, without it. A line longer than
// the reader's buffer is an error.
func readLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return "", fmt.Errorf("reading the answer: %w", err)
	}
	s, ok := strings.CutSuffix(string(line), "\r\n")
	if !ok {
		return "", fmt.Errorf("line %q does not end in \\r\\n", line)
	}
	return s, nil
}

// parseConfig reads the configuration: the version on the first line (it
// ends in \n), the nodes on the second as "host|ip|port", separated by
// spaces (it ends in \n too). As the ElastiCache cluster clients do, it
// tolerates spaces and \r around lines and nodes, and an empty ip (the name
// is what counts here, see the package doc).
func parseConfig(config string) (uint64, []string, error) {
	lines := strings.Split(strings.TrimSpace(config), "\n")
	if len(lines) != 2 {
		return 0, nil, fmt.Errorf("want a version line and a node line, got %q", config)
	}
	version, err := strconv.ParseUint(strings.TrimSpace(lines[0]), 10, 64)
	if err != nil {
		return 0, nil, fmt.Errorf("bad configuration version %q", lines[0])
	}
	var nodes []string // at least one: the node line is not blank after the trim
	for _, node := range strings.Fields(lines[1]) {
		addr, err := parseNode(node)
		if err != nil {
			return 0, nil, err
		}
		nodes = append(nodes, addr)
	}
	slices.Sort(nodes)
	if len(slices.Compact(slices.Clone(nodes))) != len(nodes) {
		return 0, nil, fmt.Errorf("a node is listed twice in %q", lines[1])
	}
	return version, nodes, nil
}

// parseNode reads "host|ip|port" as "host:port".
func parseNode(node string) (string, error) {
	parts := strings.Split(node, "|")
	if len(parts) != 3 {
		return "", fmt.Errorf("want host|ip|port, got %q", node)
	}
	host, ip, port := parts[0], parts[1], parts[2]
	if !isDNSName(host) {
		return "", fmt.Errorf("bad host name in %q", node)
	}
	if ip != "" {
		if _, err := netip.ParseAddr(ip); err != nil {
			return "", fmt.Errorf("bad IP address in %q", node)
		}
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return "", fmt.Errorf("bad port in %q", node)
	}
	// The port as a number: "011211" and "11211" are one node, one name.
	return net.JoinHostPort(host, strconv.FormatUint(p, 10)), nil
}

// isDNSName reports whether s is made of what host names are made of
// (letters, digits, hyphens, dots), at most 253 of them: anything else
// (a comma, a colon) would not survive the membership document.
func isDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '.':
		default:
			return false
		}
	}
	return true
}
