package cachepolicy

import "testing"

const lm = "Sun, 06 Nov 1994 08:49:37 GMT"

func TestConditional(t *testing.T) {
	date, _ := ParseHTTPDate([]byte(lm))
	m := Meta{ETag: []byte(`"v1"`), LastModified: []byte(lm), Date: date + 1}
	inm, ims := m.Conditional()
	if string(inm) != `"v1"` || string(ims) != lm {
		t.Errorf("Conditional = %q, %q", inm, ims)
	}
	// RFC 9110 §8.8.2.2: a Last-Modified within a second of Date is weak;
	// it is not sent.
	m.Date = date
	if inm, ims = m.Conditional(); string(inm) != `"v1"` || ims != nil {
		t.Errorf("Conditional with a weak Last-Modified = %q, %q", inm, ims)
	}
	inm, ims = (&Meta{}).Conditional()
	if inm != nil || ims != nil {
		t.Errorf("Conditional without validators = %q, %q", inm, ims)
	}
}

func TestSelects304(t *testing.T) {
	tests := []struct {
		name                 string
		storedETag, storedLM string
		etag, lastMod        string
		want                 bool
	}{
		{"same strong etag", `"a"`, "", `"a"`, "", true},
		{"different strong etag", `"a"`, "", `"b"`, "", false},
		{"strong 304, weak stored", `W/"a"`, "", `"a"`, "", false},
		{"weak 304 matches weakly", `"a"`, "", `W/"a"`, "", true},
		{"weak 304, different", `W/"a"`, "", `W/"b"`, "", false},
		{"etag 304, entry without etag", "", lm, `"a"`, "", false},
		{"etag decides over last-modified", `"a"`, lm, `"a"`, "Mon, 07 Nov 1994 08:49:37 GMT", true},
		{"same last-modified", "", lm, "", lm, true},
		{"same last-modified, other format", "", lm, "", "Sunday, 06-Nov-94 08:49:37 GMT", true},
		{"different last-modified", "", lm, "", "Mon, 07 Nov 1994 08:49:37 GMT", false},
		{"no validators in 304", `"a"`, lm, "", "", true},
		{"malformed etag in 304", `"a"`, "", `a`, "", false},
	}
	for _, tt := range tests {
		m := Meta{ETag: bytesOrNil(tt.storedETag), LastModified: bytesOrNil(tt.storedLM)}
		if got := m.Selects304(bytesOrNil(tt.etag), bytesOrNil(tt.lastMod)); got != tt.want {
			t.Errorf("%s: Selects304 = %v", tt.name, got)
		}
	}
}

func TestSelectsHead(t *testing.T) {
	m := Meta{ETag: []byte(`"a"`), LastModified: []byte(lm)}
	tests := []struct {
		name, etag, lastMod, length string
		want                        bool
	}{
		{"nothing to compare", "", "", "", false},
		{"only a matching length", "", "", "5", false},
		{"all match", `"a"`, lm, "5", true},
		{"etag alone", `"a"`, "", "", true},
		{"last-modified alone", "", lm, "", true},
		{"weak etag matches", `W/"a"`, "", "", true},
		{"etag differs", `"b"`, "", "", false},
		{"last-modified differs", "", "Mon, 07 Nov 1994 08:49:37 GMT", "", false},
		{"length differs", "", "", "6", false},
		{"length invalid", "", "", "five", false},
	}
	for _, tt := range tests {
		if got := m.SelectsHead(bytesOrNil(tt.etag), bytesOrNil(tt.lastMod), bytesOrNil(tt.length), 5); got != tt.want {
			t.Errorf("%s: SelectsHead = %v", tt.name, got)
		}
	}
}

func TestNotModified(t *testing.T) {
	tests := []struct {
		name          string
		status        int
		etag, lastMod string
		inm, ims      string
		want          bool
		weak          bool // Date in the same second as Last-Modified
	}{
		{"etag match", 200, `"a"`, "", `"a"`, "", true, false},
		{"etag weak match", 200, `"a"`, "", `W/"a"`, "", true, false},
		{"stored weak etag", 200, `W/"a"`, "", `"a"`, "", true, false},
		{"etag in list", 200, `"a"`, "", `"x", "y,z", "a"`, "", true, false},
		{"etag with comma inside", 200, `"a,b"`, "", `"a,b"`, "", true, false},
		{"etag not in list", 200, `"a"`, "", `"x", "y"`, "", false, false},
		{"star", 200, `"a"`, "", `*`, "", true, false},
		{"star without etag", 200, "", "", `*`, "", true, false},
		{"malformed list stops", 200, `"a"`, "", `x, "a"`, "", false, false},
		{"unterminated", 200, `"a"`, "", `"a`, "", false, false},
		{"no etag stored", 200, "", lm, `"a"`, "", false, false},
		{"inm present ignores ims", 200, `"a"`, lm, `"b"`, lm, false, false},
		{"ims equal", 200, "", lm, "", lm, true, false},
		{"ims later", 200, "", lm, "", "Mon, 07 Nov 1994 08:49:37 GMT", true, false},
		{"ims earlier", 200, "", lm, "", "Sat, 05 Nov 1994 08:49:37 GMT", false, false},
		{"ims invalid", 200, "", lm, "", "yesterday", false, false},
		{"ims against date when no last-modified", 200, "", "", "", "Mon, 07 Nov 1994 08:49:37 GMT", true, false},
		{"ims equal to date when no last-modified", 200, "", "", "", "Sun, 06 Nov 1994 09:49:37 GMT", false, false},
		// RFC 9110 §8.8.2.2: two versions within one second share a
		// Last-Modified; a weak one never answers If-Modified-Since.
		{"weak last-modified, ims equal", 200, "", lm, "", lm, false, true},
		{"weak last-modified, ims later", 200, "", lm, "", "Mon, 07 Nov 1994 08:49:37 GMT", false, true},
		{"not 2xx", 404, `"a"`, "", `"a"`, "", false, false},
		{"nothing", 200, `"a"`, lm, "", "", false, false},
	}
	date, _ := ParseHTTPDate([]byte(lm))
	for _, tt := range tests {
		d := date + 3600
		if tt.weak {
			d = date
		}
		m := Meta{Status: tt.status, Date: d, ETag: bytesOrNil(tt.etag), LastModified: bytesOrNil(tt.lastMod)}
		if got := m.NotModified(bytesOrNil(tt.inm), bytesOrNil(tt.ims)); got != tt.want {
			t.Errorf("%s: NotModified = %v", tt.name, got)
		}
	}
}
