package bench

import "bytes"

// The checks need two or three integers from each answer. encoding/json
// decoded them at about 45% of the generator's CPU (a list page is 20 posts
// of 1 KB, validated, then scanned again for the fields), so answers are read
// by this scanner instead: one pass over the bytes, nothing built, strings
// and unwanted values skipped. It reads the same JSON the origin sends; on
// anything it cannot follow it fails, and the answer is reported as bad.

// answerFields are the integer fields the checks read from one object. A
// field that is absent or null is left at -1.
type answerFields struct {
	id, version, postCount int64
}

// parsePost reads a post (or a write's answer): its id and version.
func parsePost(b []byte) (answerFields, bool) {
	s := scanner{b: b}
	f := s.fields(nil)
	return f, s.end()
}

// parseList reads a list page: the id and version of every post on it,
// appended to page.
func parseList(b []byte, page []listedPost) ([]listedPost, bool) {
	s := scanner{b: b}
	s.fields(func(key []byte) bool {
		if string(key) != "posts" {
			return false
		}
		if s.null() {
			return true
		}
		s.array(func() {
			p := s.fields(nil)
			page = append(page, listedPost{ID: p.id, Version: p.version})
		})
		return true
	})
	return page, s.end()
}

// scanner is a cursor over one JSON text; bad is set at the first byte it
// cannot follow, after which every method does nothing.
type scanner struct {
	b   []byte
	i   int
	bad bool
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next is the next byte after white space, 0 at the end or once bad.
func (s *scanner) next() byte {
	s.ws()
	if s.bad || s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

func (s *scanner) expect(c byte) {
	if s.next() != c {
		s.bad = true
		return
	}
	s.i++
}

// end reports whether the text was read whole and without a fault.
func (s *scanner) end() bool {
	s.ws()
	return !s.bad && s.i == len(s.b)
}

// fields reads an object. The integer fields id, version and post_count
// are kept; for any other key, other (when not nil) may read the value and
// return true, else the value is skipped.
func (s *scanner) fields(other func(key []byte) bool) answerFields {
	f := answerFields{id: -1, version: -1, postCount: -1}
	s.expect('{')
	if s.next() == '}' {
		s.i++
		return f
	}
	for !s.bad {
		key := s.str()
		s.expect(':')
		switch string(key) {
		case "id":
			f.id = s.intOrNull()
		case "version":
			f.version = s.intOrNull()
		case "post_count":
			f.postCount = s.intOrNull()
		default:
			if other == nil || !other(key) {
				s.skip()
			}
		}
		if s.next() == ',' {
			s.i++
			continue
		}
		s.expect('}')
		break
	}
	return f
}

// array reads an array, calling elem to read each element.
func (s *scanner) array(elem func()) {
	s.expect('[')
	if s.next() == ']' {
		s.i++
		return
	}
	for !s.bad {
		elem()
		if s.next() == ',' {
			s.i++
			continue
		}
		s.expect(']')
		return
	}
}

// str reads a string and returns its raw contents (escapes left as sent).
// It looks for the closing quote with bytes.IndexByte: post bodies are most
// of a list page's bytes.
func (s *scanner) str() []byte {
	s.expect('"')
	if s.bad {
		return nil
	}
	start := s.i
	for {
		q := bytes.IndexByte(s.b[s.i:], '"')
		if q < 0 {
			s.bad = true
			return nil
		}
		s.i += q + 1
		// The quote is escaped if an odd number of backslashes precede it.
		backslashes := 0
		for k := s.i - 2; k >= start && s.b[k] == '\\'; k-- {
			backslashes++
		}
		if backslashes%2 == 0 {
			return s.b[start : s.i-1]
		}
	}
}

// null reads a null if one is next.
func (s *scanner) null() bool {
	if s.next() == 'n' && len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "null" {
		s.i += 4
		return true
	}
	return false
}

// intOrNull reads a non-negative integer, -1 for null; anything else is bad.
func (s *scanner) intOrNull() int64 {
	if s.null() {
		return -1
	}
	s.ws()
	start := s.i
	var v int64
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' && s.i-start < 18 {
		v = v*10 + int64(s.b[s.i]-'0')
		s.i++
	}
	if s.i == start || (s.i < len(s.b) && (s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E' || (s.b[s.i] >= '0' && s.b[s.i] <= '9'))) {
		s.bad = true
		return -1
	}
	return v
}

// skip reads any value without keeping it.
func (s *scanner) skip() {
	switch c := s.next(); {
	case c == '"':
		s.str()
	case c == '{':
		s.fields(nil)
	case c == '[':
		s.array(s.skip)
	case c == '-' || (c >= '0' && c <= '9'):
		for s.i < len(s.b) && isNumberByte(s.b[s.i]) {
			s.i++
		}
	case c == 't' || c == 'f' || c == 'n':
		start := s.i
		for s.i < len(s.b) && s.b[s.i] >= 'a' && s.b[s.i] <= 'z' {
			s.i++
		}
		if w := string(s.b[start:s.i]); w != "null" && w != "true" && w != "false" {
			s.bad = true
		}
	default:
		s.bad = true
	}
}

func isNumberByte(c byte) bool {
	return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}
