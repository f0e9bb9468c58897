package cachepolicy

// Flags records which boolean cache directives were present, and which
// directives with values were present (their values are in Directives).
type Flags uint32

// Cache directives (RFC 9111 §5.2, RFC 5861, RFC 8246).
const (
	NoStore                 Flags = 1 << iota // no-store
	NoCache                                   // unqualified no-cache (qualified: Directives.NoCacheFields)
	Private                                   // unqualified private (qualified: Directives.PrivateFields)
	Public                                    // public
	MustRevalidate                            // must-revalidate
	ProxyRevalidate                           // proxy-revalidate
	MustUnderstand                            // must-understand
	Immutable                                 // immutable (RFC 8246)
	NoTransform                               // no-transform
	OnlyIfCached                              // only-if-cached (request)
	HasMaxAge                                 // max-age=N, value in MaxAge
	HasSMaxAge                                // s-maxage=N, value in SMaxAge
	HasMaxStale                               // max-stale[=N], value in MaxStale (MaxDelta without a value)
	HasMinFresh                               // min-fresh=N, value in MinFresh
	HasStaleWhileRevalidate                   // stale-while-revalidate=N (RFC 5861)
	HasStaleIfError                           // stale-if-error=N (RFC 5861)
	Targeted                                  // came from a targeted field (RFC 9213): Expires is ignored
)

// invalidValue stands for a directive value that could not be parsed: it is
// neither delta-seconds nor a field list, so it reads restrictively.
var invalidValue = []byte("?")

// MaxDelta is the value a delta-seconds that overflows saturates at
// (RFC 9111 §1.2.2): 2^31 seconds, about 68 years.
const MaxDelta = 1 << 31

// Directives is a parsed Cache-Control (or targeted) field value. The zero
// value means "no directives". Durations are in seconds, in [0, MaxDelta],
// and meaningful only when their Has* flag is set.
//
// Rules where the RFCs leave room, chosen to be the most restrictive
// (RFC 9111 §4.2.1: "the most restrictive directive should be honored"):
//   - Names are case-insensitive; unknown directives are ignored; values may
//     be tokens or quoted strings (RFC 9111 §5.2).
//   - max-age / s-maxage without a valid delta-seconds (missing, negative,
//     not a number) count as 0: the response is stale at once (§4.2.1).
//   - max-stale, stale-while-revalidate, stale-if-error with an invalid
//     value are ignored (absent is the restrictive reading); so is a
//     garbled min-fresh. max-stale without a value means "any staleness"
//     (MaxDelta).
//   - Repeated directives combine to the most restrictive: the smallest
//     max-age, s-maxage, max-stale, stale-while-revalidate, stale-if-error,
//     the largest min-fresh.
//   - Overflowing values saturate at MaxDelta.
//   - A qualified no-cache or private lists field names; the list is kept
//     (aliasing the parsed input). An empty list, a value that is not a list
//     of field names, or the qualified form given twice, is treated as the
//     unqualified directive. A shared cache stores a response with a
//     qualified private or no-cache without the listed fields
//     (FieldRules.Store) and then needs no revalidation for them.
//   - public and immutable with a value (not allowed) are ignored.
type Directives struct {
	Flags                Flags
	MaxAge               int64
	SMaxAge              int64
	MaxStale             int64
	MinFresh             int64
	StaleWhileRevalidate int64
	StaleIfError         int64
	// NoCacheFields and PrivateFields are the field-name lists of the
	// qualified forms, e.g. `set-cookie, x-user` (unquoted). They alias the
	// bytes given to the parser: copy them to keep them longer.
	NoCacheFields []byte
	PrivateFields []byte
}

// Has reports whether every flag in f is set.
func (d *Directives) Has(f Flags) bool { return d.Flags&f == f }

// ParseCacheControl parses a Cache-Control field value (request or response;
// duplicate field lines joined with ", "). It never fails: what cannot be
// understood is ignored or read restrictively, as documented on Directives.
// It does not allocate.
func ParseCacheControl(v []byte) Directives {
	var d Directives
	for i := 0; i < len(v); {
		// Skip separators and whitespace between members.
		for i < len(v) && (v[i] == ',' || isSpace(v[i])) {
			i++
		}
		start := i
		for i < len(v) && isTchar(v[i]) {
			i++
		}
		name := v[start:i]
		for i < len(v) && isSpace(v[i]) {
			i++
		}
		if len(name) == 0 {
			i = skipMember(v, i)
			continue
		}
		if i >= len(v) || v[i] == ',' {
			d.apply(name, nil, false)
			continue
		}
		if v[i] != '=' {
			// Garbage after a name: the member is invalid; read a
			// value-taking directive restrictively, ignore the rest.
			d.apply(name, invalidValue, true)
			i = skipMember(v, i)
			continue
		}
		i++
		for i < len(v) && isSpace(v[i]) {
			i++
		}
		var val []byte
		if i < len(v) && v[i] == '"' {
			var ok bool
			val, i, ok = quotedString(v, i)
			if !ok {
				val = invalidValue // unterminated quote
			}
			for i < len(v) && isSpace(v[i]) {
				i++
			}
			if i < len(v) && v[i] != ',' {
				val = invalidValue
				i = skipMember(v, i)
			}
		} else {
			start := i
			i = skipMember(v, i)
			val = trimSpace(v[start:i])
		}
		d.apply(name, val, true)
	}
	return d
}

// apply records one directive. hasValue distinguishes `name` from `name=`.
func (d *Directives) apply(name, val []byte, hasValue bool) {
	switch {
	case EqualFold(name, "max-age"):
		d.setMin(HasMaxAge, &d.MaxAge, deltaOrZero(val))
	case EqualFold(name, "s-maxage"):
		d.setMin(HasSMaxAge, &d.SMaxAge, deltaOrZero(val))
	case EqualFold(name, "max-stale"):
		if !hasValue {
			d.setMin(HasMaxStale, &d.MaxStale, MaxDelta)
		} else if n, ok := ParseDeltaSeconds(val); ok {
			d.setMin(HasMaxStale, &d.MaxStale, n)
		}
	case EqualFold(name, "min-fresh"):
		if n, ok := ParseDeltaSeconds(val); ok {
			if !d.Has(HasMinFresh) || n > d.MinFresh {
				d.MinFresh = n
			}
			d.Flags |= HasMinFresh
		}
	case EqualFold(name, "stale-while-revalidate"):
		if n, ok := ParseDeltaSeconds(val); ok {
			d.setMin(HasStaleWhileRevalidate, &d.StaleWhileRevalidate, n)
		}
	case EqualFold(name, "stale-if-error"):
		if n, ok := ParseDeltaSeconds(val); ok {
			d.setMin(HasStaleIfError, &d.StaleIfError, n)
		}
	case EqualFold(name, "no-cache"):
		d.qualified(NoCache, &d.NoCacheFields, val, hasValue)
	case EqualFold(name, "private"):
		d.qualified(Private, &d.PrivateFields, val, hasValue)
	case EqualFold(name, "no-store"):
		d.Flags |= NoStore
	case EqualFold(name, "public"):
		// A value is not allowed (RFC 9111 §5.2); a garbled public
		// grants nothing.
		if !hasValue {
			d.Flags |= Public
		}
	case EqualFold(name, "must-revalidate"):
		d.Flags |= MustRevalidate
	case EqualFold(name, "proxy-revalidate"):
		d.Flags |= ProxyRevalidate
	case EqualFold(name, "must-understand"):
		d.Flags |= MustUnderstand
	case EqualFold(name, "immutable"):
		if !hasValue {
			d.Flags |= Immutable
		}
	case EqualFold(name, "no-transform"):
		d.Flags |= NoTransform
	case EqualFold(name, "only-if-cached"):
		d.Flags |= OnlyIfCached
	}
}

// unset forgets a directive, so that a later Dictionary member with the
// same key replaces it.
func (d *Directives) unset(name []byte) {
	var f Flags
	var field *int64
	switch {
	case EqualFold(name, "max-age"):
		f, field = HasMaxAge, &d.MaxAge
	case EqualFold(name, "s-maxage"):
		f, field = HasSMaxAge, &d.SMaxAge
	case EqualFold(name, "max-stale"):
		f, field = HasMaxStale, &d.MaxStale
	case EqualFold(name, "min-fresh"):
		f, field = HasMinFresh, &d.MinFresh
	case EqualFold(name, "stale-while-revalidate"):
		f, field = HasStaleWhileRevalidate, &d.StaleWhileRevalidate
	case EqualFold(name, "stale-if-error"):
		f, field = HasStaleIfError, &d.StaleIfError
	case EqualFold(name, "no-cache"):
		f, d.NoCacheFields = NoCache, nil
	case EqualFold(name, "private"):
		f, d.PrivateFields = Private, nil
	case EqualFold(name, "no-store"):
		f = NoStore
	case EqualFold(name, "public"):
		f = Public
	case EqualFold(name, "must-revalidate"):
		f = MustRevalidate
	case EqualFold(name, "proxy-revalidate"):
		f = ProxyRevalidate
	case EqualFold(name, "must-understand"):
		f = MustUnderstand
	case EqualFold(name, "immutable"):
		f = Immutable
	case EqualFold(name, "no-transform"):
		f = NoTransform
	case EqualFold(name, "only-if-cached"):
		f = OnlyIfCached
	}
	d.Flags &^= f
	if field != nil {
		*field = 0
	}
}

func (d *Directives) setMin(f Flags, field *int64, n int64) {
	if !d.Has(f) || n < *field {
		*field = n
	}
	d.Flags |= f
}

// qualified records no-cache or private, with or without a field list.
func (d *Directives) qualified(f Flags, fields *[]byte, val []byte, hasValue bool) {
	val = trimSpace(val)
	if !hasValue || len(val) == 0 || *fields != nil || !validFieldList(val) {
		d.Flags |= f
		return
	}
	*fields = val
}

// validFieldList reports whether v is a comma-separated list of field names.
func validFieldList(v []byte) bool {
	for _, c := range v {
		if !isTchar(c) && c != ',' && !isSpace(c) {
			return false
		}
	}
	return true
}

func deltaOrZero(v []byte) int64 {
	n, _ := ParseDeltaSeconds(v)
	return n
}

// ParseDeltaSeconds parses delta-seconds (RFC 9111 §1.2.2): one or more
// digits, nothing else. Values above MaxDelta saturate at MaxDelta.
func ParseDeltaSeconds(v []byte) (int64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		if n < MaxDelta {
			n = n*10 + int64(c-'0')
		}
	}
	return min(n, MaxDelta), true
}

// ParseTargeted parses a targeted cache-control field value (RFC 9213 §2.1),
// such as CDN-Cache-Control: a Structured Fields Dictionary (RFC 8941) of the
// same directives as Cache-Control. ok is false when the value is empty or
// not a valid Dictionary: the whole field is then ignored (RFC 9213 §2.1),
// never applied in part, and the caller falls back to the next field.
// Several field lines are one Dictionary once joined with ", " (RFC 8941
// §4.2). A key given twice takes its last value (RFC 8941 §4.2.2), not the
// most restrictive as in Cache-Control: `no-store, no-store=?0` is no
// no-store. Booleans that are false (`no-store=?0`) are absent; parameters
// are ignored; values are read like Cache-Control values, but seconds must
// be an Integer (`max-age="60"` is an invalid max-age, so 0). It does not
// allocate.
func ParseTargeted(v []byte) (d Directives, ok bool) {
	i := skipSP(v, 0)
	if i == len(v) {
		return d, false
	}
	for {
		start := i
		if i >= len(v) || !(isLcalpha(v[i]) || v[i] == '*') {
			return Directives{}, false
		}
		for i < len(v) && isKeyChar(v[i]) {
			i++
		}
		name := v[start:i]
		var val []byte
		hasValue := false
		isTrue := true
		if i < len(v) && v[i] == '=' {
			i++
			var kind byte
			val, kind, i, ok = sfItemValue(v, i)
			if !ok {
				return Directives{}, false
			}
			switch kind {
			case 'b':
				isTrue = val[0] == '1'
			case 'l':
				// An inner list cannot name fields or seconds here: read
				// the directive restrictively.
				val, hasValue = invalidValue, true
			default:
				hasValue = true
				// Seconds are an Integer (RFC 9213 §2.1: implementations
				// SHOULD NOT consume values that violate the inferred
				// type): max-age="60" or max-age=1.5 is invalid, read
				// restrictively as Cache-Control's invalid values are.
				if kind != 'i' && secondsDirective(name) {
					val = invalidValue
				}
			}
		}
		if i, ok = sfParams(v, i); !ok {
			return Directives{}, false
		}
		d.unset(name)
		if isTrue {
			d.apply(name, val, hasValue)
		}
		i = skipOWS(v, i)
		if i == len(v) {
			return d, true
		}
		if v[i] != ',' {
			return Directives{}, false
		}
		i = skipOWS(v, i+1)
		if i == len(v) {
			return Directives{}, false // trailing comma
		}
	}
}

// secondsDirective reports whether the directive's value is a number of
// seconds: in a targeted field, an Integer.
func secondsDirective(name []byte) bool {
	return EqualFold(name, "max-age") || EqualFold(name, "s-maxage") || EqualFold(name, "stale-while-revalidate") ||
		EqualFold(name, "stale-if-error") || EqualFold(name, "max-stale") || EqualFold(name, "min-fresh")
}

// ResponseDirectives selects the directives that govern this cache (RFC 9213
// §2.2): the first valid, non-empty of the proxy's own targeted field (e.g.
// Edgecache-Cache-Control) and CDN-Cache-Control, marked Targeted so that
// Expires is ignored; otherwise Cache-Control. Pass nil for absent fields.
func ResponseDirectives(targeted, cdnCacheControl, cacheControl []byte) Directives {
	if d, ok := ParseTargeted(targeted); ok {
		d.Flags |= Targeted
		return d
	}
	if d, ok := ParseTargeted(cdnCacheControl); ok {
		d.Flags |= Targeted
		return d
	}
	return ParseCacheControl(cacheControl)
}

// sfItemValue parses an RFC 8941 bare item (or inner list) at v[i]. It
// returns the value (digits for an integer, the unescaped-in-place content
// for a string, the token, "0"/"1" for a boolean), its kind ('i', 's', 't',
// 'b', 'l' for inner list, 'd' decimal, 'y' byte sequence) and the index
// after it.
func sfItemValue(v []byte, i int) (val []byte, kind byte, next int, ok bool) {
	if i >= len(v) {
		return nil, 0, i, false
	}
	switch c := v[i]; {
	case c == '"':
		return sfString(v, i)
	case c == '-' || isDigit(c):
		return sfNumber(v, i)
	case c == '?':
		if i+1 < len(v) && (v[i+1] == '0' || v[i+1] == '1') {
			return v[i+1 : i+2], 'b', i + 2, true
		}
	case c == ':':
		return sfByteSequence(v, i)
	case c == '(':
		return sfInnerList(v, i)
	case isAlpha(c) || c == '*':
		start := i
		for i < len(v) && (isTchar(v[i]) || v[i] == ':' || v[i] == '/') {
			i++
		}
		return v[start:i], 't', i, true
	}
	return nil, 0, i, false
}

// sfString parses an sf-string at v[i] == '"': printable ASCII, where a
// backslash escapes only '"' or '\'.
func sfString(v []byte, i int) (val []byte, kind byte, next int, ok bool) {
	val, next, ok = quotedString(v, i)
	for k := 0; ok && k < len(val); k++ {
		switch c := val[k]; {
		case c < 0x20 || c > 0x7e:
			ok = false
		case c == '\\':
			k++
			ok = k < len(val) && (val[k] == '"' || val[k] == '\\')
		}
	}
	if !ok {
		return nil, 0, i, false
	}
	return val, 's', next, true
}

// sfNumber parses an sf-integer (at most 15 digits) or sf-decimal (at most
// 12 digits, a point and 1 to 3 more) at v[i].
func sfNumber(v []byte, i int) (val []byte, kind byte, next int, ok bool) {
	start := i
	if v[i] == '-' {
		i++
	}
	d := i
	for i < len(v) && isDigit(v[i]) {
		i++
	}
	if i == d || i-d > 15 {
		return nil, 0, i, false
	}
	if i < len(v) && v[i] == '.' {
		i++
		f := i
		for i < len(v) && isDigit(v[i]) {
			i++
		}
		if i == f || i-f > 3 || f-1-d > 12 {
			return nil, 0, i, false
		}
		return v[start:i], 'd', i, true
	}
	return v[start:i], 'i', i, true
}

// sfByteSequence parses an sf-binary at v[i] == ':': base64 up to the
// closing ':', returned undecoded.
func sfByteSequence(v []byte, i int) (val []byte, kind byte, next int, ok bool) {
	start := i + 1
	for i = start; i < len(v) && v[i] != ':'; i++ {
		if !isBase64(v[i]) {
			return nil, 0, i, false
		}
	}
	if i >= len(v) {
		return nil, 0, i, false
	}
	return v[start:i], 'y', i + 1, true
}

// sfInnerList checks an inner-list at v[i] == '(': items with parameters,
// separated by spaces. Its value is nil: an inner list names no fields or
// seconds here, so ParseTargeted reads its directive restrictively.
func sfInnerList(v []byte, i int) (val []byte, kind byte, next int, ok bool) {
	i++
	for {
		i = skipSP(v, i)
		if i >= len(v) {
			return nil, 0, i, false
		}
		if v[i] == ')' {
			return nil, 'l', i + 1, true
		}
		if _, _, i, ok = sfItemValue(v, i); !ok {
			return nil, 0, i, false
		}
		if i, ok = sfParams(v, i); !ok {
			return nil, 0, i, false
		}
		if i < len(v) && v[i] != ' ' && v[i] != ')' {
			return nil, 0, i, false
		}
	}
}

// sfParams skips RFC 8941 parameters (;key[=item]) at v[i].
func sfParams(v []byte, i int) (int, bool) {
	for i < len(v) && v[i] == ';' {
		i = skipSP(v, i+1)
		if i >= len(v) || !(isLcalpha(v[i]) || v[i] == '*') {
			return i, false
		}
		for i < len(v) && isKeyChar(v[i]) {
			i++
		}
		if i < len(v) && v[i] == '=' {
			_, kind, next, ok := sfItemValue(v, i+1)
			if !ok || kind == 'l' {
				return i, false
			}
			i = next
		}
	}
	return i, true
}

// quotedString parses a quoted-string starting at v[i] == '"'. The returned
// content aliases v and keeps backslash escapes (values used by this package
// never need them: a number or field list containing one is invalid).
func quotedString(v []byte, i int) (content []byte, next int, ok bool) {
	start := i + 1
	for i = start; i < len(v); i++ {
		switch v[i] {
		case '\\':
			i++
		case '"':
			return v[start:i], i + 1, true
		}
	}
	return nil, len(v), false
}

// skipMember returns the index of the next comma at or after i that is not
// inside a quoted string (or len(v)).
func skipMember(v []byte, i int) int {
	for i < len(v) && v[i] != ',' {
		if v[i] == '"' {
			_, i, _ = quotedString(v, i)
			continue
		}
		i++
	}
	return i
}

func isSpace(c byte) bool   { return c == ' ' || c == '\t' }
func isDigit(c byte) bool   { return c >= '0' && c <= '9' }
func isLcalpha(c byte) bool { return c >= 'a' && c <= 'z' }
func isAlpha(c byte) bool   { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isKeyChar(c byte) bool {
	return isLcalpha(c) || isDigit(c) || c == '_' || c == '-' || c == '.' || c == '*'
}
func isBase64(c byte) bool {
	return isAlpha(c) || isDigit(c) || c == '+' || c == '/' || c == '='
}

// isTchar reports whether c may appear in an HTTP token (RFC 9110 §5.6.2).
func isTchar(c byte) bool {
	if isAlpha(c) || isDigit(c) {
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

func skipSP(v []byte, i int) int {
	for i < len(v) && v[i] == ' ' {
		i++
	}
	return i
}

func skipOWS(v []byte, i int) int {
	for i < len(v) && isSpace(v[i]) {
		i++
	}
	return i
}

func trimSpace(v []byte) []byte {
	for len(v) > 0 && isSpace(v[0]) {
		v = v[1:]
	}
	for len(v) > 0 && isSpace(v[len(v)-1]) {
		v = v[:len(v)-1]
	}
	return v
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// EqualFold reports whether b and s are the same ASCII text, ignoring case
// (field names, directive names). The proxy uses it too.
func EqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}
