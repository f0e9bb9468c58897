package origin

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/valyala/fasthttp"
)

// Limits on what a request may carry.
const (
	// maxPostBytes is the most UTF-8 bytes a post's text may have. Longer
	// text is refused with 413, like any other too-large body.
	maxPostBytes = 1024
	// maxRequestBytes bounds a request body as read from the wire. JSON
	// escaping may turn one byte of text into six ("\u0001"), so it is well
	// above maxPostBytes; past it the request is refused with 413 unread.
	maxRequestBytes = 16 << 10
	maxNameRunes    = 100
	maxEmailBytes   = 254
	defaultLimit    = 20
	maxLimit        = 100
)

// parseID parses a row id: a positive decimal integer that fits in int64,
// without sign, spaces or leading zeros, so that each row has exactly one
// URL (and one cache key).
func parseID(s string) (int64, error) {
	if s == "" || len(s) > 19 || s[0] == '0' {
		return 0, errors.New("not a positive integer")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("not a positive integer")
		}
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, errors.New("out of range")
	}
	return id, nil
}

// parseListQuery reads ?limit= (1..100, default 20) and ?before= (a post id:
// the page holds posts older than it). Other parameters are ignored; a
// repeated one is refused, since it has no single meaning.
func parseListQuery(rawQuery string) (limit int, before int64, e *apiError) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return 0, 0, badRequest("invalid_query", "the query string is malformed")
	}
	limit = defaultLimit
	if vs, ok := q["limit"]; ok {
		n, err := parseID(vs[0])
		if len(vs) > 1 || err != nil || n > maxLimit {
			return 0, 0, badRequest("invalid_limit", "limit must be one integer from 1 to 100")
		}
		limit = int(n)
	}
	if vs, ok := q["before"]; ok {
		n, err := parseID(vs[0])
		if len(vs) > 1 || err != nil {
			return 0, 0, badRequest("invalid_before", "before must be one post id")
		}
		before = n
	}
	return limit, before, nil
}

// readJSON checks the Content-Type and reads the request body, bounded by
// maxRequestBytes, for decodeUser or decodePost.
//
// The server streams bodies (StreamRequestBody): this reads at most one
// byte past the limit, whatever the Content-Length says, and what it
// leaves unread fasthttp drains or, past 256 KiB, closes the connection on.
func readJSON(ctx *fasthttp.RequestCtx) ([]byte, *apiError) {
	mediaType, params, err := mime.ParseMediaType(string(ctx.Request.Header.ContentType()))
	if err != nil || mediaType != "application/json" {
		return nil, &apiError{fasthttp.StatusUnsupportedMediaType, "unsupported_media_type", "Content-Type must be application/json"}
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return nil, &apiError{fasthttp.StatusUnsupportedMediaType, "unsupported_media_type", "the charset must be utf-8"}
	}
	body := ctx.RequestBodyStream()
	if body == nil { // no Content-Length, no Transfer-Encoding: no body
		return nil, nil
	}
	data, err := io.ReadAll(io.LimitReader(body, maxRequestBytes+1))
	if err != nil {
		return nil, badRequest("unreadable_body", "the request body could not be read")
	}
	if len(data) > maxRequestBytes {
		return nil, &apiError{fasthttp.StatusRequestEntityTooLarge, "body_too_large", "the request body exceeds 16384 bytes"}
	}
	return data, nil
}

// decodeStrict decodes exactly one JSON object into dst: valid UTF-8 and no
// \u escape of a lone UTF-16 surrogate (JSON decoding would silently turn
// either into U+FFFD, storing something other than what was sent), no
// unknown fields, no values of the wrong type, nothing after the object.
func decodeStrict(data []byte, dst any) *apiError {
	if !utf8.Valid(data) {
		return badRequest("invalid_utf8", "the request body is not valid UTF-8")
	}
	if loneSurrogate(data) {
		return badRequest("invalid_utf8", `the request body escapes a lone UTF-16 surrogate (such as "\ud800"), which is no character`)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr) && typeErr.Field != "":
			return badRequest("wrong_type", typeErr.Field+" must be a "+typeErr.Type.String())
		case errors.As(err, &typeErr):
			return badRequest("wrong_type", "the request body must be a JSON object")
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return badRequest("unknown_field", strings.TrimPrefix(err.Error(), "json: ")+" is not accepted")
		default:
			return badRequest("invalid_json", "the request body is not valid JSON")
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("invalid_json", "the request body has data after the JSON object")
	}
	return nil
}

// loneSurrogate reports whether a JSON string in data has a \uD800–\uDFFF
// escape that is not half of a pair (a high one followed at once by an
// escaped low one). It reads only strings, and leaves malformed escapes to
// the decoder.
func loneSurrogate(data []byte) bool {
	inString := false
	for i := 0; i < len(data); i++ {
		switch c := data[i]; {
		case c == '"':
			inString = !inString
		case !inString || c != '\\' || i+1 >= len(data):
		case data[i+1] != 'u':
			i++ // \" \\ \n …: the escaped byte is no quote
		default:
			r, ok := hex4(data[i+2:])
			switch {
			case !ok:
				return false
			case r >= 0xDC00 && r <= 0xDFFF:
				return true
			case r >= 0xD800 && r <= 0xDBFF:
				if len(data) < i+12 || data[i+6] != '\\' || data[i+7] != 'u' {
					return true
				}
				if low, ok := hex4(data[i+8:]); !ok || low < 0xDC00 || low > 0xDFFF {
					return true
				}
				i += 11
			default:
				i += 5
			}
		}
	}
	return false
}

// hex4 reads four hex digits.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// userInput is the body of POST /v1/users. Pointers tell a missing field
// (or null) from an empty one.
type userInput struct {
	Name  *string `json:"name"`
	Email *string `json:"email"`
}

// decodeUser decodes and checks a POST /v1/users body.
func decodeUser(data []byte) (name, email string, e *apiError) {
	var in userInput
	if e := decodeStrict(data, &in); e != nil {
		return "", "", e
	}
	if in.Name == nil {
		return "", "", badRequest("missing_field", "name is required")
	}
	if in.Email == nil {
		return "", "", badRequest("missing_field", "email is required")
	}
	name, email = *in.Name, *in.Email
	if n := utf8.RuneCountInString(name); n == 0 || n > maxNameRunes || strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return "", "", badRequest("invalid_name", "name must be 1 to 100 characters, none of them control characters")
	}
	if addr, err := mail.ParseAddress(email); err != nil || addr.Address != email || addr.Name != "" || len(email) > maxEmailBytes {
		return "", "", badRequest("invalid_email", "email must be a plain address like name@example.com, at most 254 bytes")
	}
	return name, email, nil
}

// postInput is the body of POST /v1/users/{id}/posts and PUT /v1/posts/{id}.
type postInput struct {
	Body *string `json:"body"`
}

// decodePost decodes and checks a post body: 1 to 1024 bytes of text.
func decodePost(data []byte) (string, *apiError) {
	var in postInput
	if e := decodeStrict(data, &in); e != nil {
		return "", e
	}
	switch {
	case in.Body == nil:
		return "", badRequest("missing_field", "body is required")
	case *in.Body == "":
		return "", badRequest("invalid_body", "body must not be empty")
	case len(*in.Body) > maxPostBytes:
		return "", &apiError{fasthttp.StatusRequestEntityTooLarge, "body_too_large", "body must be at most 1024 bytes of UTF-8"}
	}
	return *in.Body, nil
}
