package discovery

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"edgecache/deploy/localstack"
)

// configEndpoint is the one stand-in these tests use: there is no
// ElastiCache here, so this tiny TCP server speaks an ElastiCache
// configuration endpoint's side of `config get cluster`. Every connection
// gets the answer set last, then is closed; with hang set, it gets nothing
// and stays open until the test ends.
type configEndpoint struct {
	addr  string
	asked chan struct{} // one per command received

	mu     sync.Mutex
	answer string
	hang   bool
}

func startEndpoint(t *testing.T, answer string) *configEndpoint {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var conns sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		close(done)
		conns.Wait()
	})
	e := &configEndpoint{addr: ln.Addr().String(), asked: make(chan struct{}, 16), answer: answer}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer conns.Done()
				defer conn.Close()
				e.serve(conn, done)
			}()
		}
	}()
	return e
}

func (e *configEndpoint) serve(conn net.Conn, done <-chan struct{}) {
	cmd, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return
	}
	e.asked <- struct{}{}
	if cmd != "config get cluster\r\n" {
		io.WriteString(conn, "ERROR\r\n")
		return
	}
	e.mu.Lock()
	answer, hang := e.answer, e.hang
	e.mu.Unlock()
	if hang {
		<-done
		return
	}
	io.WriteString(conn, answer)
}

func (e *configEndpoint) set(answer string, hang bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.answer, e.hang = answer, hang
}

// answer frames a configuration as ElastiCache does: the length counts the
// configuration, which \r\nEND\r\n follows.
func answer(config string) string {
	return "CONFIG cluster 0 " + strconv.Itoa(len(config)) + "\r\n" + config + "\r\nEND\r\n"
}

// The answer as AWS documents it, with what the cluster clients tolerate:
// spaces between and after the nodes, a \r before a line's \n.
func TestNodesReadsTheClusterConfiguration(t *testing.T) {
	e := startEndpoint(t, answer("12\r\n"+
		"c.x.cfg.0003.use1.cache.amazonaws.com|10.0.3.7|11211  "+
		"a.x.cfg.0001.use1.cache.amazonaws.com|10.0.1.5|11211 "+
		"b.x.cfg.0002.use1.cache.amazonaws.com|10.0.2.9|11211 \n"))
	version, nodes, err := Nodes(context.Background(), e.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"a.x.cfg.0001.use1.cache.amazonaws.com:11211",
		"b.x.cfg.0002.use1.cache.amazonaws.com:11211",
		"c.x.cfg.0003.use1.cache.amazonaws.com:11211",
	}
	if version != 12 || !slices.Equal(nodes, want) {
		t.Fatalf("got version %d, nodes %q; want 12, %q", version, nodes, want)
	}
}

// Each call asks anew: a node added shows up with the next version. A node
// replaced (same name, new IP) does not change the node list.
func TestNodesFollowsTheConfigurationVersion(t *testing.T) {
	e := startEndpoint(t, answer("1\na|10.0.0.1|11211 b|10.0.0.2|11211\n"))
	ctx := context.Background()
	for _, step := range []struct {
		config  string
		version uint64
		nodes   []string
	}{
		{"", 1, []string{"a:11211", "b:11211"}},
		{"2\na|10.0.0.1|11211 b|10.0.0.2|11211 c|10.0.0.3|11211\n", 2, []string{"a:11211", "b:11211", "c:11211"}},
		{"3\na|10.0.0.1|11211 b|10.0.9.9|11211 c|10.0.0.3|11211\n", 3, []string{"a:11211", "b:11211", "c:11211"}},
	} {
		if step.config != "" {
			e.set(answer(step.config), false)
		}
		version, nodes, err := Nodes(ctx, e.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if version != step.version || !slices.Equal(nodes, step.nodes) {
			t.Fatalf("got version %d, nodes %q; want %d, %q", version, nodes, step.version, step.nodes)
		}
	}
}

// A node whose IP field is empty (its address not known yet) is a node all
// the same: it is named by its DNS name.
func TestNodeWithoutIPIsANode(t *testing.T) {
	e := startEndpoint(t, answer("4\na.cache|10.0.0.1|11211 b.cache||11211\n"))
	_, nodes, err := Nodes(context.Background(), e.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a.cache:11211", "b.cache:11211"}; !slices.Equal(nodes, want) {
		t.Fatalf("got %q, want %q", nodes, want)
	}
}

// Whatever comes back that is not a whole, well-formed configuration is an
// error, never a node list.
func TestNodesRefusesBadAnswers(t *testing.T) {
	for _, tc := range []struct{ name, answer, want string }{
		{"garbage", "\x00\xffhello\r\n", "want CONFIG cluster"},
		{"no line end", "CONFIG cluster 0 10", "unexpected EOF"},
		{"value of a get", "VALUE cluster 0 2\r\n1\n\r\nEND\r\n", "want CONFIG cluster"},
		{"no configuration", "END\r\n", "want CONFIG cluster"},
		{"bad length", "CONFIG cluster 0 -1\r\n1\na|1.2.3.4|1\n\r\nEND\r\n", "bad length"},
		{"huge length", "CONFIG cluster 0 99999999\r\n", "bad length"},
		{"longer than announced", "CONFIG cluster 0 3\r\n1\na|1.2.3.4|1\n\r\nEND\r\n", "longer than announced"},
		{"truncated", answer("7\na|10.0.0.1|11211 b|10.0.0.2|11211\n")[:40], "cut short"},
		{"truncated before END", strings.TrimSuffix(answer("7\na|10.0.0.1|11211\n"), "END\r\n"), "unexpected EOF"},
		{"no END", strings.TrimSuffix(answer("7\na|10.0.0.1|11211\n"), "END\r\n") + "STORED\r\n", "want END"},
		{"no node", answer("7\n\n"), "want a version line and a node line"},
		{"only spaces", answer("7\n   \n"), "want a version line and a node line"},
		{"bad version", answer("seven\na|10.0.0.1|11211\n"), "bad configuration version"},
		{"three lines", answer("7\na|10.0.0.1|11211\nb|10.0.0.2|11211\n"), "want a version line"},
		{"no port", answer("7\na|10.0.0.1\n"), "want host|ip|port"},
		{"bad port", answer("7\na|10.0.0.1|99999\n"), "bad port"},
		{"port zero", answer("7\na|10.0.0.1|0\n"), "bad port"},
		{"no host", answer("7\n|10.0.0.1|11211\n"), "bad host name"},
		{"comma in host", answer("7\na,b|10.0.0.1|11211\n"), "bad host name"},
		{"bad ip", answer("7\na|10.0.0|11211\n"), "bad IP address"},
		{"twice", answer("7\na|10.0.0.1|11211 a|10.0.0.1|011211\n"), "listed twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startEndpoint(t, tc.answer)
			_, nodes, err := Nodes(context.Background(), e.addr, 5*time.Second)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got nodes %q, error %v; want an error with %q", nodes, err, tc.want)
			}
			if !strings.Contains(err.Error(), e.addr) {
				t.Errorf("error %v does not name the endpoint", err)
			}
		})
	}
}

// An endpoint that takes the command and never answers costs the timeout,
// then an error that says so.
func TestNodesGivesUpOnAnEndpointThatHangs(t *testing.T) {
	e := startEndpoint(t, "")
	e.set("", true)
	_, _, err := Nodes(context.Background(), e.addr, 50*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want a deadline error", err)
	}
}

// Cancelling the caller's context ends the exchange at once, however long
// the timeout.
func TestNodesStopsWhenCancelled(t *testing.T) {
	e := startEndpoint(t, "")
	e.set("", true)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-e.asked
		cancel()
	}()
	_, _, err := Nodes(ctx, e.addr, time.Hour)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

// A plain memcached (a self-hosted pool, or INVALIDATOR_MEMCACHED_DISCOVERY
// set to something that is not a configuration endpoint) does not know the
// command: a clear error, not an empty cluster.
func TestPlainMemcachedIsNotAConfigurationEndpoint(t *testing.T) {
	mc, err := localstack.StartMemcached(context.Background(), 16)
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Stop()
	_, _, err = Nodes(context.Background(), mc.Addr, 5*time.Second)
	if err == nil || !strings.Contains(err.Error(), "not an ElastiCache for Memcached configuration endpoint") {
		t.Fatalf("got %v, want the endpoint refused as not a configuration endpoint", err)
	}
}

// No answer, however malformed, makes the reader panic or accept something
// that would not survive the membership document; what it accepts is
// sorted, each node once.
func FuzzReadAnswer(f *testing.F) {
	f.Add([]byte(answer("12\na.x|10.0.0.1|11211 b.x||11211 \n")))
	f.Add([]byte(answer("1\r\nc|::1|1\r\n")))
	f.Add([]byte("ERROR\r\n"))
	f.Add([]byte("CONFIG cluster 0 5\r\n1\na|\r\nEND\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, nodes, err := readAnswer(bufio.NewReader(bytes.NewReader(b)))
		if err != nil {
			return
		}
		if len(nodes) == 0 || !slices.IsSorted(nodes) || len(slices.Compact(slices.Clone(nodes))) != len(nodes) {
			t.Fatalf("accepted nodes %q", nodes)
		}
		for _, n := range nodes {
			host, port, err := net.SplitHostPort(n)
			if err != nil || host == "" || port == "" || strings.ContainsAny(n, " ,|\n") {
				t.Fatalf("accepted node %q", n)
			}
		}
	})
}
