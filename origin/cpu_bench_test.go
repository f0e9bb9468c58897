package origin

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// The BenchmarkCPU benchmarks measure what one read costs the origin's
// process in CPU time (user + system, getrusage around b.N requests) and
// allocations, against the real MariaDB. The client is a few raw
// keep-alive connections that write a request prepared in advance and skip
// the answer by its Content-Length, so that nearly all of the process's
// CPU is the origin's: the server, the handler, the driver, the access log
// (encoded as in production, written to io.Discard).
//
//	go test -run '^$' -bench CPU -benchtime 5000x ./origin

func BenchmarkCPUGetPost(b *testing.B) {
	ts := startBenchServer(b)
	posts, _ := benchPosts(ts, 64)
	var paths []string
	for _, p := range posts {
		paths = append(paths, fmt.Sprintf("/v1/posts/%d", p.ID))
	}
	benchCPU(b, ts, http.StatusOK, paths)
}

func BenchmarkCPUListPosts(b *testing.B) {
	ts := startBenchServer(b)
	posts, _ := benchPosts(ts, 64) // 8 users of 8 posts: a page of 8 posts, 8 KB
	var paths []string
	for _, p := range posts[:8] {
		paths = append(paths, fmt.Sprintf("/v1/users/%d/posts", p.UserID))
	}
	benchCPU(b, ts, http.StatusOK, paths)
}

func BenchmarkCPUGetUser(b *testing.B) {
	ts := startBenchServer(b)
	posts, _ := benchPosts(ts, 8)
	var paths []string
	for _, p := range posts {
		paths = append(paths, fmt.Sprintf("/v1/users/%d", p.UserID))
	}
	benchCPU(b, ts, http.StatusOK, paths)
}

func BenchmarkCPUPostNotFound(b *testing.B) {
	ts := startBenchServer(b)
	benchCPU(b, ts, http.StatusNotFound, []string{"/v1/posts/9223372036854775807"})
}

// benchConns is how many connections send requests at once: enough to keep
// the origin busy on a 2-core machine without measuring a queue.
const benchConns = 4

// benchCPU sends GETs of paths in turn over benchConns raw connections
// until b.N, failing on any status but want, and reports the process's CPU
// time per request.
func benchCPU(b *testing.B, ts *testServer, want int, paths []string) {
	var requests [][]byte
	for _, p := range paths {
		requests = append(requests, []byte("GET "+p+" HTTP/1.1\r\nHost: origin\r\n\r\n"))
	}
	conns := make([]*rawConn, benchConns)
	for i := range conns {
		c, err := net.Dial("tcp", ts.Addr())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		conns[i] = &rawConn{conn: c, r: bufio.NewReaderSize(c, 64<<10)}
		if status, err := conns[i].do(requests[0]); err != nil || status != want { // warm the connection
			b.Fatalf("warm-up: status %d, %v", status, err)
		}
	}
	b.ReportAllocs()
	beforeUser, beforeSys := cpuTime(b)
	b.ResetTimer()
	done := make(chan error, benchConns)
	for i, c := range conns {
		n := b.N / benchConns
		if i < b.N%benchConns {
			n++
		}
		go func() {
			for j := range n {
				status, err := c.do(requests[(i+j*benchConns)%len(requests)])
				if err == nil && status != want {
					err = fmt.Errorf("status %d, want %d", status, want)
				}
				if err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range conns {
		if err := <-done; err != nil {
			b.Error(err)
		}
	}
	b.StopTimer()
	user, sys := cpuTime(b)
	user, sys = user-beforeUser, sys-beforeSys
	b.ReportMetric(float64((user+sys).Microseconds())/float64(b.N), "cpu-µs/op")
	b.ReportMetric(float64(sys.Microseconds())/float64(b.N), "sys-µs/op")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// cpuTime is the process's user and system (kernel) CPU time so far.
func cpuTime(b *testing.B) (user, sys time.Duration) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

// rawConn is a keep-alive HTTP/1.1 connection that reads only an answer's
// status and Content-Length.
type rawConn struct {
	conn net.Conn
	r    *bufio.Reader
}

// do writes request and reads its answer, returning the status.
func (c *rawConn) do(request []byte) (int, error) {
	if _, err := c.conn.Write(request); err != nil {
		return 0, err
	}
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, fmt.Errorf("status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, fmt.Errorf("status line %q", line)
	}
	length := -1
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(line) <= 2 { // the blank line ending the header
			break
		}
		if name, value, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(name, []byte("Content-Length")) {
			if length, err = strconv.Atoi(string(bytes.TrimSpace(value))); err != nil {
				return 0, fmt.Errorf("Content-Length %q", value)
			}
		}
	}
	if length < 0 {
		return 0, fmt.Errorf("status %d without Content-Length", status)
	}
	_, err = c.r.Discard(length)
	return status, err
}
