package bench

import (
	"bytes"
	"errors"
)

// The generator reads answers with this parser rather than fasthttp's: it
// looks at the few header fields a run needs and no other (fasthttp
// normalised and stored every field of every answer, and copied every body
// out of its read buffer: a quarter of the generator's CPU in a real run).
// It reads HTTP/1.1 as the origin, the proxy, nginx and Varnish send it;
// anything it cannot follow is an error, the connection is closed, and the
// request counts as failed.

// responseHead is what a run needs from an answer's status line and header.
type responseHead struct {
	status int
	// contentLength is -1 when the header has none.
	contentLength int64
	chunked       bool
	// close: the server closes the connection after this answer (a
	// Connection: close, or HTTP/1.0 without keep-alive).
	close bool
	// The cache headers, in the read buffer: valid until the next answer.
	cacheStatus, xCacheStatus, xCache []byte
}

// maxBodyBytes bounds an answer's body: far above any answer of the API
// (a first page of 100 posts of 1 KB), low enough that a broken target
// cannot make the generator allocate without bound.
const maxBodyBytes = 16 << 20

// badResponse is the error of an answer the parser cannot follow.
func badResponse(why string) error { return errors.New("bad response: " + why) }

// parseHead reads a status line and header from the start of b. It returns
// the head's length in bytes, 0 when b does not hold the whole head yet.
func parseHead(b []byte) (h responseHead, n int, err error) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		if len(b) > 64<<10 {
			return h, 0, badResponse("header over 64 KB")
		}
		return h, 0, nil
	}
	n = end + 4
	lines := b[:end+2]
	line, lines := nextLine(lines)
	// HTTP/1.x SSS reason
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' || (len(line) > 12 && line[12] != ' ') {
		return h, 0, badResponse("no HTTP/1.x status line")
	}
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return h, 0, badResponse("status code not 3 digits")
		}
		h.status = h.status*10 + int(c-'0')
	}
	h.contentLength = -1
	keepAlive := line[7] == '1' // HTTP/1.1 keeps the connection unless told
	for len(lines) > 0 {
		line, lines = nextLine(lines)
		name, value, ok := bytes.Cut(line, []byte{':'})
		if !ok || len(name) == 0 || name[0] == ' ' || name[0] == '\t' {
			return h, 0, badResponse("header line without a name")
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			l, ok := parseLength(value)
			if !ok || (h.contentLength >= 0 && l != h.contentLength) {
				return h, 0, badResponse("Content-Length not one decimal number")
			}
			h.contentLength = l
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			// Chunked is the only coding a server may send a client
			// that did not ask for others, and it comes last.
			if !bytes.EqualFold(lastToken(value), []byte("chunked")) {
				return h, 0, badResponse("Transfer-Encoding other than chunked")
			}
			h.chunked = true
		case bytes.EqualFold(name, []byte("Connection")):
			for _, tok := range bytes.Split(value, []byte{','}) {
				switch tok = bytes.TrimSpace(tok); {
				case bytes.EqualFold(tok, []byte("close")):
					h.close = true
				case bytes.EqualFold(tok, []byte("keep-alive")):
					keepAlive = true
				}
			}
		case bytes.EqualFold(name, []byte("Cache-Status")):
			h.cacheStatus = value
		case bytes.EqualFold(name, []byte("X-Cache-Status")):
			h.xCacheStatus = value
		case bytes.EqualFold(name, []byte("X-Cache")):
			h.xCache = value
		}
	}
	h.close = h.close || !keepAlive
	if h.chunked {
		h.contentLength = -1 // RFC 9112 6.3: chunked overrides a length
	}
	if h.contentLength > maxBodyBytes {
		return h, 0, badResponse("body over 16 MB")
	}
	return h, n, nil
}

// nextLine splits the first CRLF-ended line off b.
func nextLine(b []byte) (line, rest []byte) {
	i := bytes.Index(b, []byte("\r\n"))
	if i < 0 {
		return b, nil
	}
	return b[:i], b[i+2:]
}

// parseLength reads a Content-Length: decimal digits only.
func parseLength(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 12 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}

// lastToken is the last comma-separated token of a header value.
func lastToken(v []byte) []byte {
	if i := bytes.LastIndexByte(v, ','); i >= 0 {
		v = v[i+1:]
	}
	return bytes.TrimSpace(v)
}

// hasBody says whether an answer with this status carries a body (the
// bench sends no HEAD requests).
func (h *responseHead) hasBody() bool {
	return h.status >= 200 && h.status != 204 && h.status != 304
}

// dechunk decodes a chunked body at the start of b in place. It returns the
// body (a prefix of b, overwritten) and how many bytes of b the chunked
// body took, or n 0 when b does not hold all of it yet. b is left as it
// was when it is incomplete, so that the call can be repeated once more
// has been read.
func dechunk(b []byte) (body []byte, n int, err error) {
	// First a pass that only checks that every chunk is there, then the
	// one that moves the data down: an incomplete body is not modified.
	size, n, err := chunkedSize(b)
	if err != nil || n == 0 {
		return nil, n, err
	}
	body = b[:0]
	i := 0
	for {
		line, _ := nextLine(b[i:])
		l, _ := parseChunkSize(line)
		i += len(line) + 2
		if l == 0 {
			break
		}
		body = append(body, b[i:i+int(l)]...) // never overtakes i: the size lines are gone
		i += int(l) + 2
	}
	if int64(len(body)) != size {
		return nil, 0, badResponse("chunked body miscounted")
	}
	return body, n, nil
}

// chunkedSize checks a chunked body at the start of b: its decoded size and
// its length in b, n 0 when incomplete.
func chunkedSize(b []byte) (size int64, n int, err error) {
	i := 0
	for {
		j := bytes.Index(b[i:], []byte("\r\n"))
		if j < 0 {
			if len(b)-i > 1024 {
				return 0, 0, badResponse("chunk size line over 1 KB")
			}
			return 0, 0, nil
		}
		l, ok := parseChunkSize(b[i : i+j])
		if !ok {
			return 0, 0, badResponse("chunk size not hexadecimal")
		}
		i += j + 2
		if l == 0 {
			break
		}
		if size += l; size > maxBodyBytes {
			return 0, 0, badResponse("body over 16 MB")
		}
		if int64(len(b)-i) < l+2 {
			return 0, 0, nil
		}
		if b[i+int(l)] != '\r' || b[i+int(l)+1] != '\n' {
			return 0, 0, badResponse("chunk not followed by CRLF")
		}
		i += int(l) + 2
	}
	// Trailer fields, up to an empty line.
	for {
		j := bytes.Index(b[i:], []byte("\r\n"))
		if j < 0 {
			if len(b)-i > 64<<10 {
				return 0, 0, badResponse("trailer over 64 KB")
			}
			return 0, 0, nil
		}
		i += j + 2
		if j == 0 {
			return size, i, nil
		}
	}
}

// parseChunkSize reads a chunk size line: hexadecimal digits, then
// optional extensions after ';'.
func parseChunkSize(line []byte) (int64, bool) {
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	line = bytes.TrimRight(line, " \t")
	if len(line) == 0 || len(line) > 8 {
		return 0, false
	}
	var v int64
	for _, c := range line {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | int64(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | int64(c-'a'+10)
		case c >= 'A' && c <= 'F':
			v = v<<4 | int64(c-'A'+10)
		default:
			return 0, false
		}
	}
	return v, true
}
