package accesslog

import (
	"bytes"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// zapOriginLine is the line the origin's zap logger wrote for r: what a
// line here must equal.
func zapOriginLine(t testing.TB, r *OriginRequest) string {
	fields := []zap.Field{
		zap.String("method", r.Method),
		zap.String("path", r.Path),
		zap.String("query", r.Query),
		zap.String("route", r.Route),
		zap.Int("status", r.Status),
		zap.Int("bytes", r.Bytes),
		zap.Duration("duration", r.Duration),
		zap.String("remote", r.Remote),
	}
	if r.Fresh {
		fields = append(fields, zap.Bool("fresh", true))
	}
	if r.ErrorCode != "" {
		fields = append(fields, zap.String("error_code", r.ErrorCode), zap.String("error", r.Error))
	}
	ent := zapcore.Entry{Level: zapcore.InfoLevel, Time: r.Time, LoggerName: "access", Message: "request"}
	buf, err := Encoder().EncodeEntry(ent, fields)
	if err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func originLine(r *OriginRequest) string {
	var w bytes.Buffer
	New(&w).WriteOrigin(r)
	return w.String()
}

func TestOriginLinesAreZapsLines(t *testing.T) {
	at := time.Date(2026, 12, 2, 18, 6, 2, 272_999_999, time.UTC)
	cases := []OriginRequest{
		{Time: at, Method: "GET", Path: "/v1/posts/1", Route: "GET /v1/posts/{id}", Status: 200, Bytes: 1152,
			Duration: 6322 * time.Nanosecond, Remote: "127.0.0.1:50312"},
		{Time: at.In(time.FixedZone("CET", 3600)), Method: "GET", Path: "/v1/users/1/posts", Query: "limit=2&before=\"9\"\\\n",
			Route: "GET /v1/users/{id}/posts", Status: 200, Duration: 2 * time.Second, Remote: "[::1]:8080", Fresh: true},
		{Time: at, Method: "PUT", Path: "/v1/posts/é\xff", Route: "unmatched", Status: 404, Bytes: 61,
			Duration: 1500 * time.Millisecond, Remote: "10.0.0.7:1", ErrorCode: "not_found", Error: "no such \"resource\"\t"},
		{Time: at, Fresh: true, ErrorCode: "internal", Duration: -3 * time.Millisecond},
		{Time: at, Duration: 1e15 + 1},
	}
	for i, r := range cases {
		if got, want := originLine(&r), zapOriginLine(t, &r); got != want {
			t.Errorf("case %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

func TestWriteOriginAllocatesNothing(t *testing.T) {
	l := New(discard{})
	r := OriginRequest{Time: time.Now(), Method: "GET", Path: "/v1/posts/1", Route: "GET /v1/posts/{id}",
		Status: 200, Bytes: 1152, Duration: 6322, Remote: "127.0.0.1:50312"}
	l.WriteOrigin(&r) // the second's stamp
	if n := testing.AllocsPerRun(1000, func() { l.WriteOrigin(&r) }); n != 0 {
		t.Fatalf("%v allocations per line", n)
	}
}

func FuzzOriginLinesAreZapsLines(f *testing.F) {
	f.Add("GET", "/v1/posts/1", "limit=2", "GET /v1/posts/{id}", 200, 1152, int64(6322), "127.0.0.1:1", false, "", "", int64(1796234762272000000))
	f.Add("\x00", "/\"\\\xff", "%zz", "unmatched", -1, 0, int64(-1), "", true, "not_found", "no\n", int64(0))
	f.Fuzz(func(t *testing.T, method, path, query, route string, status, n int, d int64, remote string, fresh bool, code, message string, unixNano int64) {
		r := OriginRequest{Time: time.Unix(0, unixNano), Method: method, Path: path, Query: query, Route: route,
			Status: status, Bytes: n, Duration: time.Duration(d), Remote: remote, Fresh: fresh, ErrorCode: code, Error: message}
		if got, want := originLine(&r), zapOriginLine(t, &r); got != want {
			t.Fatalf("\n got %s\nwant %s", got, want)
		}
	})
}

func BenchmarkWriteOrigin(b *testing.B) {
	l := New(discard{})
	r := OriginRequest{Time: time.Now(), Method: "GET", Path: "/v1/posts/1", Route: "GET /v1/posts/{id}",
		Status: 200, Bytes: 1152, Duration: 6322, Remote: "127.0.0.1:50312"}
	b.ReportAllocs()
	for b.Loop() {
		l.WriteOrigin(&r)
	}
}

// BenchmarkZapOrigin is what an origin line cost before: zap's logger on
// the same sink.
func BenchmarkZapOrigin(b *testing.B) {
	log := zap.New(zapcore.NewCore(Encoder(), zapcore.AddSync(discard{}), zapcore.InfoLevel)).Named("access")
	b.ReportAllocs()
	for b.Loop() {
		log.Info("request", zap.String("method", "GET"), zap.String("path", "/v1/posts/1"), zap.String("query", ""),
			zap.String("route", "GET /v1/posts/{id}"), zap.Int("status", 200), zap.Int("bytes", 1152),
			zap.Duration("duration", 6322), zap.String("remote", "127.0.0.1:50312"))
	}
}
