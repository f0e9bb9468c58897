// Package accesslog writes the proxy's and the origin's access logs: one
// JSON line per request (Write, WriteOrigin), byte for byte the line zap's
// JSON encoder writes with Encoder's settings, so that the two logs read
// and parse alike and as they did when zap wrote them; and it opens where
// the lines go (OpenWriter, CheckDestination).
//
// It exists because zap's general encoder was the largest single cost of a
// cache hit (about 12 % of the proxy's CPU under wrk, 4 to 6 % of an
// origin read's: the ISO 8601 time
// formatted field by field, the duration through the shortest-float
// search, the client's address as a new string). Here the time is
// formatted once a second, a duration is printed as the exact decimal it
// is, and a line is built in a pooled buffer: a line costs no allocation.
package accesslog

import (
	"io"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Request is what one line says about one request.
type Request struct {
	Time     time.Time // when the answer was done: the line's "ts"
	Method   []byte
	URI      []byte // as the client sent it; escaped here
	Status   int
	Outcome  string // the proxy's own word (hit, miss, ...): written unescaped
	Bytes    int    // body bytes sent
	Duration time.Duration
	Client   netip.Addr // the client as the proxy trusts it (its TCP peer, or from X-Forwarded-For)
}

// Log writes lines to w, which should be buffered (a write per line is a
// system call per request): OpenWriter's is.
type Log struct {
	w      io.Writer
	lines  sync.Pool // *[]byte
	second atomic.Pointer[stamp]
}

// New returns a Log writing to w.
func New(w io.Writer) *Log {
	return &Log{w: w, lines: sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}}
}

// Write writes r's line. The error is w's.
func (l *Log) Write(r *Request) error {
	return l.write(func(b []byte) []byte { return l.append(b, r) })
}

// write writes the line line appends, built in a pooled buffer. The error
// is w's.
func (l *Log) write(line func(b []byte) []byte) error {
	bp := l.lines.Get().(*[]byte)
	b := line((*bp)[:0])
	_, err := l.w.Write(b)
	*bp = b
	l.lines.Put(bp)
	return err
}

// append appends r's line, newline included, in zap's field order: level,
// ts, logger, msg, then the request's fields.
func (l *Log) append(b []byte, r *Request) []byte {
	b = appendHead(l, b, r.Time, r.Method)
	b = append(b, `","uri":"`...)
	b = appendEscaped(b, r.URI)
	b = append(b, `","status":`...)
	b = strconv.AppendInt(b, int64(r.Status), 10)
	b = append(b, `,"outcome":"`...)
	b = append(b, r.Outcome...)
	b = append(b, `","bytes":`...)
	b = strconv.AppendInt(b, int64(r.Bytes), 10)
	b = append(b, `,"duration":`...)
	b = appendSeconds(b, r.Duration)
	b = append(b, `,"client":"`...)
	b = appendIP(b, r.Client)
	return append(b, "\"}\n"...)
}

// appendHead appends what every line starts with, zap's fields (level,
// ts, logger, msg), then the request's method, its string left open.
func appendHead[S string | []byte](l *Log, b []byte, t time.Time, method S) []byte {
	b = append(b, `{"level":"info","ts":"`...)
	b = l.appendTime(b, t)
	b = append(b, `","logger":"access","msg":"request","method":"`...)
	return appendEscaped(b, method)
}

// stamp is one second of zap's ISO 8601 layout
// (2006-01-02T15:04:05.000Z0700), split around the milliseconds.
type stamp struct {
	unix   int64
	loc    *time.Location
	prefix []byte // "2026-12-02T18:06:02."
	zone   []byte // "Z", "+0100"
}

// appendTime appends t in zap's ISO 8601 layout, formatting its second
// only when the second changed.
func (l *Log) appendTime(b []byte, t time.Time) []byte {
	s := l.second.Load()
	if s == nil || s.unix != t.Unix() || s.loc != t.Location() {
		s = &stamp{unix: t.Unix(), loc: t.Location(),
			prefix: t.AppendFormat(nil, "2006-01-02T15:04:05."), zone: t.AppendFormat(nil, "Z0700")}
		l.second.Store(s)
	}
	b = append(b, s.prefix...)
	ms := t.Nanosecond() / int(time.Millisecond) // truncated, as time's ".000" is
	b = append(b, byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10))
	return append(b, s.zone...)
}

// appendSeconds appends d in seconds as zap's SecondsDurationEncoder does:
// the shortest decimal that reads back as float64(d)/1e9. For d under
// 10^15 ns (11 days), that is d/1e9 written out exactly (every decimal of
// at most 15 significant digits is the shortest one for its float64), so
// no float search is needed.
func appendSeconds(b []byte, d time.Duration) []byte {
	if d < 0 || d >= 1e15 {
		return strconv.AppendFloat(b, float64(d)/float64(time.Second), 'f', -1, 64)
	}
	b = strconv.AppendInt(b, int64(d/time.Second), 10)
	frac := int64(d % time.Second)
	if frac == 0 {
		return b
	}
	var digits [10]byte
	digits[0] = '.'
	for i := 9; i > 0; i-- {
		digits[i] = byte('0' + frac%10)
		frac /= 10
	}
	n := 10
	for digits[n-1] == '0' {
		n--
	}
	return append(b, digits[:n]...)
}

// appendIP appends a as its String writes it, without its allocation.
func appendIP(b []byte, a netip.Addr) []byte {
	if !a.IsValid() {
		return append(b, a.String()...) // "invalid IP": never on a TCP peer
	}
	return a.AppendTo(b)
}

const hex = "0123456789abcdef"

// appendEscaped appends s as zap writes a string inside quotes: `\` and `"`
// escaped, \n \r \t by name, other bytes under 0x20 as \u00XX, each byte
// of invalid UTF-8 as \ufffd, everything else as is (no HTML escaping).
func appendEscaped[S string | []byte](b []byte, s S) []byte {
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			// Only a rune's few bytes are made a string, which stays on
			// the stack for a []byte.
			r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
			b = append(append(b, s[last:i]...), `\ufffd`...)
			i++
			last = i
			continue
		}
		if c >= 0x20 && c != '\\' && c != '"' {
			i++
			continue
		}
		b = append(b, s[last:i]...)
		switch c {
		case '\\', '"':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
		}
		i++
		last = i
	}
	return append(b, s[last:]...)
}
