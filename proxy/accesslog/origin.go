package accesslog

import (
	"strconv"
	"time"
)

// OriginRequest is what one line of the origin's access log says about one
// request.
type OriginRequest struct {
	Time     time.Time // when the answer was done: the line's "ts"
	Method   string
	Path     string // decoded, as routed
	Query    string // raw
	Route    string // the route's pattern, or "unmatched"
	Status   int
	Bytes    int // body bytes sent
	Duration time.Duration
	Remote   string // the TCP peer, host:port
	Fresh    bool   // asked for a read from the primary (Edgecache-Fresh: 1)
	// ErrorCode and Error are the JSON error's code and message, if the
	// answer was one.
	ErrorCode, Error string
}

// WriteOrigin writes r's line: the line zap's logger named "access" wrote
// with Encoder for the message "request" and, in this order, the fields
// method, path, query, route, status, bytes, duration, remote, then fresh
// (only if set) and error_code and error (only if there was an error).
// The error is the writer's.
func (l *Log) WriteOrigin(r *OriginRequest) error {
	return l.write(func(b []byte) []byte { return l.appendOrigin(b, r) })
}

func (l *Log) appendOrigin(b []byte, r *OriginRequest) []byte {
	b = appendHead(l, b, r.Time, r.Method)
	b = append(b, `","path":"`...)
	b = appendEscaped(b, r.Path)
	b = append(b, `","query":"`...)
	b = appendEscaped(b, r.Query)
	b = append(b, `","route":"`...)
	b = appendEscaped(b, r.Route)
	b = append(b, `","status":`...)
	b = strconv.AppendInt(b, int64(r.Status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, int64(r.Bytes), 10)
	b = append(b, `,"duration":`...)
	b = appendSeconds(b, r.Duration)
	b = append(b, `,"remote":"`...)
	b = appendEscaped(b, r.Remote)
	b = append(b, '"')
	if r.Fresh {
		b = append(b, `,"fresh":true`...)
	}
	if r.ErrorCode != "" {
		b = append(b, `,"error_code":"`...)
		b = appendEscaped(b, r.ErrorCode)
		b = append(b, `","error":"`...)
		b = appendEscaped(b, r.Error)
		b = append(b, '"')
	}
	return append(b, "}\n"...)
}
