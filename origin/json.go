package origin

import (
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// The answers of the read routes and errors are encoded here by hand, byte
// for byte as encoding/json encodes the same structs (json_test.go checks
// it): encoding/json's reflection and its allocations were a tenth of the
// origin's CPU on a list page. Bodies are built in pooled buffers.

// bodyBuffers hold answer bodies while they are written. A buffer grown
// past maxPooledBody (a long list of escaped text) is left to the garbage
// collector rather than kept.
var bodyBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

const maxPooledBody = 64 << 10

// jsonBody is a value that appends its JSON encoding to a buffer.
type jsonBody interface {
	appendJSON(b []byte) []byte
}

func (p *post) appendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, p.ID, 10)
	b = append(b, `,"user_id":`...)
	b = strconv.AppendInt(b, p.UserID, 10)
	b = append(b, `,"body":`...)
	b = appendJSONString(b, p.Body)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, p.Version, 10)
	b = append(b, `,"created_at":`...)
	b = appendJSONTime(b, p.CreatedAt)
	b = append(b, `,"updated_at":`...)
	b = appendJSONTime(b, p.UpdatedAt)
	return append(b, '}')
}

func (u *user) appendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, u.ID, 10)
	b = append(b, `,"name":`...)
	b = appendJSONString(b, u.Name)
	b = append(b, `,"post_count":`...)
	b = strconv.AppendInt(b, u.PostCount, 10)
	b = append(b, `,"created_at":`...)
	b = appendJSONTime(b, u.CreatedAt)
	b = append(b, `,"updated_at":`...)
	b = appendJSONTime(b, u.UpdatedAt)
	return append(b, '}')
}

// postList is a page of GET /v1/users/{id}/posts: {"posts":[...],"next":...}.
type postList struct {
	posts []post
	next  string // the following page's path; "" encodes null
}

func (l *postList) appendJSON(b []byte) []byte {
	b = append(b, `{"posts":[`...)
	for i := range l.posts {
		if i > 0 {
			b = append(b, ',')
		}
		b = l.posts[i].appendJSON(b)
	}
	b = append(b, `],"next":`...)
	if l.next == "" {
		b = append(b, "null"...)
	} else {
		b = appendJSONString(b, l.next)
	}
	return append(b, '}')
}

// errorBody is the body of every error: {"error":{"code":...,"message":...}}.
type errorBody struct{ code, message string }

func (e *errorBody) appendJSON(b []byte) []byte {
	b = append(b, `{"error":{"code":`...)
	b = appendJSONString(b, e.code)
	b = append(b, `,"message":`...)
	b = appendJSONString(b, e.message)
	return append(b, "}}"...)
}

// appendJSONTime appends t as time.Time's MarshalJSON does: RFC 3339 with
// the fraction's trailing zeros dropped.
func appendJSONTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// jsonEscaped are the ASCII bytes encoding/json escapes: control bytes,
// the quote, the backslash, and HTML's <, > and &.
var jsonEscaped = func() (escaped [utf8.RuneSelf]bool) {
	for c := range 0x20 {
		escaped[c] = true
	}
	for _, c := range `"\<>&` {
		escaped[c] = true
	}
	return escaped
}()

// appendJSONString appends s quoted as encoding/json's Marshal quotes it:
// HTML's <, > and & escaped, U+2028 and U+2029 escaped, each invalid UTF-8
// byte replaced by \ufffd.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if !jsonEscaped[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
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
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
