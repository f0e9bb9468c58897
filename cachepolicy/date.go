package cachepolicy

import "time"

// ParseHTTPDate parses an HTTP-date (RFC 9110 §5.6.7) into Unix seconds:
// IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), and the obsolete RFC 850
// ("Sunday, 06-Nov-94 08:49:37 GMT") and asctime ("Sun Nov  6 08:49:37
// 1994") forms. A two-digit RFC 850 year below 70 is 20yy, else 19yy. The
// weekday name must be a real one but is not checked against the date.
// Surrounding whitespace is ignored. It does not allocate.
//
// What an invalid date means is up to the field: an invalid Expires means
// "already expired", an invalid Date or Last-Modified is ignored.
func ParseHTTPDate(v []byte) (int64, bool) {
	v = trimSpace(v)
	if len(v) < 24 {
		return 0, false
	}
	comma := 0
	for comma < len(v) && isAlpha(v[comma]) {
		comma++
	}
	switch {
	case comma == 3 && v[3] == ',' && len(v) == 29:
		// IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
		if !shortDay(v[:3]) || v[4] != ' ' || v[7] != ' ' || v[11] != ' ' || v[16] != ' ' || !gmt(v[25:]) {
			return 0, false
		}
		return civil(num(v[12:16]), month(v[8:11]), num(v[5:7]), v[17:25])
	case comma > 3 && comma < len(v) && v[comma] == ',':
		// RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
		if !longDay(v[:comma]) {
			return 0, false
		}
		r := v[comma+1:]
		if len(r) != 23 || r[0] != ' ' || r[3] != '-' || r[7] != '-' || r[10] != ' ' || !gmt(r[19:]) {
			return 0, false
		}
		y := num(r[8:10])
		if y < 0 {
			return 0, false
		}
		if y < 70 {
			y += 2000
		} else {
			y += 1900
		}
		return civil(y, month(r[4:7]), num(r[1:3]), r[11:19])
	case comma == 3 && v[3] == ' ' && len(v) == 24:
		// asctime: "Sun Nov  6 08:49:37 1994"
		if !shortDay(v[:3]) || v[7] != ' ' || v[10] != ' ' || v[19] != ' ' {
			return 0, false
		}
		day := v[8:10]
		if day[0] == ' ' {
			day = day[1:]
		}
		return civil(num(v[20:24]), month(v[4:7]), num(day), v[11:19])
	}
	return 0, false
}

// civil validates the parts of a date and converts them to Unix seconds.
// hms is "HH:MM:SS".
func civil(year, mon, day int, hms []byte) (int64, bool) {
	if hms[2] != ':' || hms[5] != ':' {
		return 0, false
	}
	h, m, s := num(hms[0:2]), num(hms[3:5]), num(hms[6:8])
	if year < 0 || mon < 1 || day < 1 || h < 0 || h > 23 || m < 0 || m > 59 || s < 0 || s > 60 {
		return 0, false
	}
	if day > daysIn(time.Month(mon), year) {
		return 0, false
	}
	return time.Date(year, time.Month(mon), day, h, m, s, 0, time.UTC).Unix(), true
}

func daysIn(m time.Month, year int) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// num parses a short run of digits; -1 if any byte is not a digit.
func num(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	n := 0
	for _, c := range b {
		if !isDigit(c) {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

const months = "janfebmaraprmayjunjulaugsepoctnovdec"

// month returns 1..12 for a three-letter month name in any case, or 0.
func month(b []byte) int {
	for i := 0; i < len(months); i += 3 {
		if EqualFold(b, months[i:i+3]) {
			return i/3 + 1
		}
	}
	return 0
}

func shortDay(b []byte) bool {
	for _, d := range [...]string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"} {
		if EqualFold(b, d) {
			return true
		}
	}
	return false
}

func longDay(b []byte) bool {
	for _, d := range [...]string{"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"} {
		if EqualFold(b, d) {
			return true
		}
	}
	return false
}

// gmt reports whether b is " GMT", in any case.
func gmt(b []byte) bool { return len(b) == 4 && b[0] == ' ' && EqualFold(b[1:], "gmt") }

// ParseAge parses an Age field value (RFC 9111 §5.1) into seconds. Age is a
// single delta-seconds; a list ("0, old", or duplicate lines joined) uses
// its first member and discards the rest, as §5.1 says a cache SHOULD. ok
// is false when that member is not a valid delta-seconds: the field is
// then ignored, and the age_value is 0 (§4.2.3).
func ParseAge(v []byte) (age int64, ok bool) {
	i := 0
	for i < len(v) && v[i] != ',' {
		i++
	}
	return ParseDeltaSeconds(trimSpace(v[:i]))
}
