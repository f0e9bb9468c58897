package cachepolicy

import "testing"

const lm = "Sun, 06 Nov 1994 08:49:37 GMT"

func TestConditional(t *testing.T) {
	m := Meta{ETag: []byte(`"v1"`), LastModified: []byte(lm)}
	inm, ims := m.Conditional()
	if string(inm) != `"v1"` || string(ims) != lm {
		t.Errorf("Conditional = %q, %q", inm, ims)
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
		{"nothing to compare", "", "", "", true},
		{"all match", `"a"`, lm, "5", true},
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
	}{
		{"etag match", 200, `"a"`, "", `"a"`, "", true},
		{"etag weak match", 200, `"a"`, "", `W/"a"`, "", true},
		{"stored weak etag", 200, `W/"a"`, "", `"a"`, "", true},
		{"etag in list", 200, `"a"`, "", `"x", "y,z", "a"`, "", true},
		{"etag with comma inside", 200, `"a,b"`, "", `"a,b"`, "", true},
		{"etag not in list", 200, `"a"`, "", `"x", "y"`, "", false},
		{"star", 200, `"a"`, "", `*`, "", true},
		{"star without etag", 200, "", "", `*`, "", true},
		{"malformed list stops", 200, `"a"`, "", `x, "a"`, "", false},
		{"unterminated", 200, `"a"`, "", `"a`, "", false},
		{"no etag stored", 200, "", lm, `"a"`, "", false},
		{"inm present ignores ims", 200, `"a"`, lm, `"b"`, lm, false},
		{"ims equal", 200, "", lm, "", lm, true},
		{"ims later", 200, "", lm, "", "Mon, 07 Nov 1994 08:49:37 GMT", true},
		{"ims earlier", 200, "", lm, "", "Sat, 05 Nov 1994 08:49:37 GMT", false},
		{"ims invalid", 200, "", lm, "", "yesterday", false},
		{"ims against date when no last-modified", 200, "", "", "", "Mon, 07 Nov 1994 08:49:37 GMT", true},
		{"not 2xx", 404, `"a"`, "", `"a"`, "", false},
		{"nothing", 200, `"a"`, lm, "", "", false},
	}
	date, _ := ParseHTTPDate([]byte(lm))
	for _, tt := range tests {
		m := Meta{Status: tt.status, Date: date, ETag: bytesOrNil(tt.etag), LastModified: bytesOrNil(tt.lastMod)}
		if got := m.NotModified(bytesOrNil(tt.inm), bytesOrNil(tt.ims)); got != tt.want {
			t.Errorf("%s: NotModified = %v", tt.name, got)
		}
	}
}
