package cachepolicy

import (
	"testing"
	"time"
)

func TestParseHTTPDate(t *testing.T) {
	want := time.Date(1994, 11, 6, 8, 49, 37, 0, time.UTC).Unix()
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"Sun, 06 Nov 1994 08:49:37 GMT", want, true},
		{"  Sun, 06 Nov 1994 08:49:37 GMT ", want, true},
		{"Sunday, 06-Nov-94 08:49:37 GMT", want, true},
		{"Sun Nov  6 08:49:37 1994", want, true},
		{"Sun Nov 06 08:49:37 1994", want, true},
		{"Mon, 06 Nov 1994 08:49:37 GMT", want, true}, // weekday not cross-checked
		{"Thursday, 01-Jan-70 00:00:00 GMT", 0, true},
		{"Friday, 01-Jan-38 00:00:00 GMT", time.Date(2038, 1, 1, 0, 0, 0, 0, time.UTC).Unix(), true},
		{"Sat, 29 Feb 2020 23:59:59 GMT", time.Date(2020, 2, 29, 23, 59, 59, 0, time.UTC).Unix(), true},
		{"Fri, 31 Dec 2016 23:59:60 GMT", time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC).Unix(), true},
		{"Fri, 31 Dec 9999 23:59:59 GMT", time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC).Unix(), true},
		{"", 0, false},
		{"0", 0, false},
		{"-1", 0, false},
		{"Sun, 06 Nov 1994 08:49:37 UTC", 0, false},
		// Wrong case in weekday, month and zone is read as browsers and
		// Squid read it; nothing else is relaxed.
		{"Sun, 06 Nov 1994 08:49:37 gmt", want, true},
		{"sun, 06 Nov 1994 08:49:37 GMT", want, true},
		{"Sun, 06 nov 1994 08:49:37 GMT", want, true},
		{"SUN, 06 NOV 1994 08:49:37 GMT", want, true},
		{"sunday, 06-nov-94 08:49:37 Gmt", want, true},
		{"SUN NOV  6 08:49:37 1994", want, true},
		{"Sun, 06 Nov 1994 08:49:37 GMX", 0, false},
		{"Sun, 06 Nov 1994 08:49:37 +0000", 0, false},
		{"Sux, 06 Nov 1994 08:49:37 GMT", 0, false},
		{"Sun, 06 Nox 1994 08:49:37 GMT", 0, false},
		{"Sun, 6 Nov 1994 08:49:37 GMT", 0, false},
		{"Sun, 06 Nov 94 08:49:37 GMT", 0, false},
		{"Sun, 31 Nov 1994 08:49:37 GMT", 0, false},
		{"Sat, 29 Feb 2019 08:49:37 GMT", 0, false},
		{"Sun, 00 Nov 1994 08:49:37 GMT", 0, false},
		{"Sun, 06 Nov 1994 24:00:00 GMT", 0, false},
		{"Sun, 06 Nov 1994 08:60:00 GMT", 0, false},
		{"Sun, 06 Nov 1994 08:49:61 GMT", 0, false},
		{"Sun, 06 Nov 1994 08-49-37 GMT", 0, false},
		{"Sun, 06 Nov 1994 08:49:3x GMT", 0, false},
		{"Sun, 06 Nov 1994 08:49:37 GMTX", 0, false},
		{"Sunday, 06-Nov-1994 08:49:37 GMT", 0, false},
		{"Sundae, 06-Nov-94 08:49:37 GMT", 0, false},
		{"Sun Nov  6 08:49:37 94", 0, false},
		{"Sun Nov 6 08:49:37 1994", 0, false},
		{"Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT", 0, false},
		{"Sun, 06 Nov 1994 08:49:37\x00GMT", 0, false},
		{"abcdefghijklmnopqrstuvwxyzabc", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseHTTPDate([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseHTTPDate(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseAge(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"60", 60, true},
		{" 60 ", 60, true},
		// RFC 9111 §5.1: a list uses its first member, the rest discarded.
		{"0, old", 0, true},
		{"5, 7", 5, true},
		{"7, 5", 7, true},
		{" 9 ,", 9, true},
		{"x, 5", 0, false},
		{", 5", 0, false},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"abc", 0, false},
		{"99999999999999999999", MaxDelta, true},
		{",,", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseAge([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseAge(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
