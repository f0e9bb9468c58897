package accesslog

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// zapLine is the line zap writes for r with the access log's encoder: what
// a line here must equal.
func zapLine(t testing.TB, r *Request) string {
	ent := zapcore.Entry{Level: zapcore.InfoLevel, Time: r.Time, LoggerName: "access", Message: "request"}
	buf, err := Encoder().EncodeEntry(ent, []zap.Field{
		zap.ByteString("method", r.Method),
		zap.ByteString("uri", r.URI),
		zap.Int("status", r.Status),
		zap.String("outcome", r.Outcome),
		zap.Int("bytes", r.Bytes),
		zap.Duration("duration", r.Duration),
		zap.String("client", r.Client.String()),
	})
	if err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func line(r *Request) string {
	var w bytes.Buffer
	New(&w).Write(r)
	return w.String()
}

func TestLinesAreZapsLines(t *testing.T) {
	at := time.Date(2026, 12, 2, 18, 6, 2, 272_999_999, time.UTC)
	cases := []Request{
		{Time: at, Method: []byte("GET"), URI: []byte("/v1/posts/1"), Status: 200, Outcome: "hit", Bytes: 1152,
			Duration: 6322 * time.Nanosecond, Client: netip.AddrFrom4([4]byte{127, 0, 0, 1})},
		{Time: at.In(time.FixedZone("CET", 3600)), Method: []byte("PUT"), URI: []byte("/a?b=\"c\"\\d\n\r\t\x01\x7f"),
			Status: 504, Outcome: "error", Duration: 2 * time.Second, Client: netip.MustParseAddr("2001:db8::1")},
		{Time: at.Add(-at.Sub(at.Truncate(time.Second))), Method: []byte("GET"), URI: []byte("/é\xff\xfe/日本"),
			Status: 0, Outcome: "miss", Bytes: -1, Duration: 1500 * time.Millisecond, Client: netip.AddrFrom4([4]byte{10, 0, 0, 7})},
		{Time: at, URI: nil, Duration: 0, Client: netip.Addr{}},
		{Time: at, Duration: -3 * time.Millisecond, Client: netip.MustParseAddr("fe80::1%eth0")},
		{Time: at, Duration: 1e15 + 1, Client: netip.MustParseAddr("::ffff:192.0.2.1")},
		{Time: at, Duration: 999_999_999_999_999, Client: netip.IPv6Unspecified()},
	}
	for i, r := range cases {
		if got, want := line(&r), zapLine(t, &r); got != want {
			t.Errorf("case %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

// The second's stamp is kept: the next second, and another zone in the
// same second, must not reuse it.
func TestTimeStampFollowsTheClock(t *testing.T) {
	l := New(&bytes.Buffer{})
	at := time.Date(2026, 12, 2, 23, 59, 59, 999_000_000, time.UTC)
	for _, ts := range []time.Time{at, at.Add(time.Millisecond), at.Add(time.Millisecond).In(time.FixedZone("", -5*3600)), at} {
		if got, want := string(l.appendTime(nil, ts)), ts.Format("2006-01-02T15:04:05.000Z0700"); got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
}

func TestWriteAllocatesNothing(t *testing.T) {
	l := New(discard{})
	r := Request{Time: time.Now(), Method: []byte("GET"), URI: []byte("/v1/posts/1"), Status: 200, Outcome: "hit",
		Bytes: 1152, Duration: 6322, Client: netip.AddrFrom4([4]byte{127, 0, 0, 1})}
	l.Write(&r) // the second's stamp
	if n := testing.AllocsPerRun(1000, func() { l.Write(&r) }); n != 0 {
		t.Fatalf("%v allocations per line", n)
	}
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

func FuzzLinesAreZapsLines(f *testing.F) {
	f.Add([]byte("GET"), []byte("/v1/posts/1"), 200, 1152, int64(6322), []byte{127, 0, 0, 1}, int64(1796234762272000000))
	f.Add([]byte("\x00"), []byte("/\"\\\xff"), -1, 0, int64(-1), []byte{}, int64(0))
	f.Fuzz(func(t *testing.T, method, uri []byte, status, n int, d int64, ip []byte, unixNano int64) {
		r := Request{Time: time.Unix(0, unixNano), Method: method, URI: uri, Status: status, Outcome: "hit",
			Bytes: n, Duration: time.Duration(d)}
		r.Client, _ = netip.AddrFromSlice(ip)
		if got, want := line(&r), zapLine(t, &r); got != want {
			t.Fatalf("\n got %s\nwant %s", got, want)
		}
	})
}

func BenchmarkWrite(b *testing.B) {
	l := New(discard{})
	r := Request{Time: time.Now(), Method: []byte("GET"), URI: []byte("/v1/posts/1"), Status: 200, Outcome: "hit",
		Bytes: 1152, Duration: 6322, Client: netip.AddrFrom4([4]byte{127, 0, 0, 1})}
	b.ReportAllocs()
	for b.Loop() {
		l.Write(&r)
	}
}

// BenchmarkZap is what a line cost before: zap's logger on the same sink.
func BenchmarkZap(b *testing.B) {
	log := zap.New(zapcore.NewCore(Encoder(), zapcore.AddSync(discard{}), zapcore.InfoLevel)).Named("access")
	ip := netip.AddrFrom4([4]byte{127, 0, 0, 1})
	b.ReportAllocs()
	for b.Loop() {
		log.Info("request", zap.ByteString("method", []byte("GET")), zap.ByteString("uri", []byte("/v1/posts/1")),
			zap.Int("status", 200), zap.String("outcome", "hit"), zap.Int("bytes", 1152),
			zap.Duration("duration", 6322), zap.String("client", ip.String()))
	}
}
