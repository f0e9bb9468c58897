package origin

import (
	"crypto/sha256"
	"database/sql"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestCreateAndGetUser(t *testing.T) {
	ts := startServer(t, testConfig(t))
	db := openDB(t, primary)

	r := ts.do("POST", "/v1/users", `{"name":"Ada","email":"ada-create@example.com"}`).expect(t, http.StatusCreated)
	var u createdUser
	r.decode(t, &u)
	if u.ID <= 0 || u.Name != "Ada" || u.CreatedAt.IsZero() {
		t.Fatalf("created user %+v", u)
	}
	wantHeader(t, r, "Location", fmt.Sprintf("/v1/users/%d", u.ID))
	wantHeader(t, r, "Edgecache-Groups", fmt.Sprintf("user/%d=1", u.ID))
	wantHeader(t, r, "Cache-Control", "no-store")

	// The token is "<id>.<secret>"; only the secret's SHA-256 is stored.
	idPart, secret, ok := strings.Cut(u.Token, ".")
	if !ok || idPart != fmt.Sprint(u.ID) || len(secret) != 43 {
		t.Fatalf("token %q is not <id>.<43 base64url chars>", u.Token)
	}
	var stored []byte
	if err := db.QueryRow("SELECT token_hash FROM users WHERE id = ?", u.ID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256([]byte(secret)); string(stored) != string(sum[:]) {
		t.Fatal("stored token hash is not SHA-256 of the secret")
	}

	r = ts.do("GET", fmt.Sprintf("/v1/users/%d", u.ID), "").expect(t, http.StatusOK)
	var got map[string]any
	r.decode(t, &got)
	for _, k := range []string{"id", "name", "post_count", "created_at", "updated_at"} {
		if _, ok := got[k]; !ok {
			t.Errorf("GET user lacks %q: %s", k, r.body)
		}
	}
	if len(got) != 5 {
		t.Errorf("GET user has fields beyond the API (email must stay private): %s", r.body)
	}
	wantHeader(t, r, "ETag", `"1"`)
	wantHeader(t, r, "Edgecache-Groups", fmt.Sprintf("user/%d=1", u.ID))
	wantHeader(t, r, "Cache-Control", "public, max-age=0, s-maxage=60, stale-while-revalidate=30, stale-if-error=300")
	wantHeader(t, r, "Edgecache-Cache-Control", "max-age=3600, stale-while-revalidate=30, stale-if-error=300")
	wantHeader(t, r, "Content-Type", "application/json")
	wantHeader(t, r, "Last-Modified", "") // not strong yet (TestLastModifiedWeak)

	// The same email again (case-insensitively) is a conflict.
	r = ts.do("POST", "/v1/users", `{"name":"Ada 2","email":"ADA-create@example.com"}`)
	wantError(t, r, http.StatusConflict, "email_taken")

	wantAbsent(t, ts.do("GET", "/v1/users/9223372036854775807", ""), "user/9223372036854775807=0")
}

// TestPostLifecycle walks a post through create, read, list, edit and
// delete, checking after each write the response's groups and, in the
// database, that every version the write promised moved.
func TestPostLifecycle(t *testing.T) {
	ts := startServer(t, testConfig(t))
	db := openDB(t, primary)
	u := ts.newUser()
	auth := []string{"Authorization", "Bearer " + u.Token}

	// Create: post 1, user version and list version move, post_count 1.
	r := ts.do("POST", fmt.Sprintf("/v1/users/%d/posts", u.ID), `{"body":"hello, world"}`, auth...).expect(t, http.StatusCreated)
	var p post
	r.decode(t, &p)
	if p.UserID != u.ID || p.Body != "hello, world" || p.Version != 1 || p.CreatedAt.IsZero() || !p.UpdatedAt.Equal(p.CreatedAt) {
		t.Fatalf("created post %+v", p)
	}
	wantHeader(t, r, "Location", fmt.Sprintf("/v1/posts/%d", p.ID))
	wantHeader(t, r, "Edgecache-Groups", fmt.Sprintf("post/%d=1 user/%d=2 user/%d/posts=2", p.ID, u.ID, u.ID))
	wantRow(t, db, u.ID, 1, 2, 2)

	r = ts.do("GET", fmt.Sprintf("/v1/posts/%d", p.ID), "").expect(t, http.StatusOK)
	var got post
	r.decode(t, &got)
	if got != p {
		t.Fatalf("GET post %+v, created %+v", got, p)
	}
	wantHeader(t, r, "ETag", `"1"`)
	wantHeader(t, r, "Edgecache-Groups", fmt.Sprintf("post/%d=1", p.ID))
	wantHeader(t, r, "Last-Modified", "") // not strong yet (TestLastModifiedWeak)

	var gotUser user
	r = ts.do("GET", fmt.Sprintf("/v1/users/%d", u.ID), "").expect(t, http.StatusOK)
	r.decode(t, &gotUser)
	if gotUser.PostCount != 1 {
		t.Fatalf("post_count %d, want 1", gotUser.PostCount)
	}
	wantHeader(t, r, "ETag", `"2"`)
	wantHeader(t, r, "Edgecache-Groups", fmt.Sprintf("user/%d=2", u.ID))

	// Edit: the post's version and the list's move; the user's does not.
	r = ts.do("PUT", fmt.Sprintf("/v1/posts/%d", p.ID), `{"body":"edited"}`, auth...).expect(t, http.StatusOK)
	var edited post
	r.decode(t, &edited)
	if edited.Body != "edited" || edited.Version != 2 || edited.ID != p.ID || !edited.CreatedAt.Equal(p.CreatedAt) || edited.UpdatedAt.Before(p.UpdatedAt) {
		t.Fatalf("edited post %+v", edited)
	}
	wantHeader(t, r, "Edgecache-Groups", fmt.Sprintf("post/%d=2 user/%d/posts=3", p.ID, u.ID))
	wantRow(t, db, u.ID, 1, 2, 3)

	r = ts.do("GET", fmt.Sprintf("/v1/users/%d/posts", u.ID), "").expect(t, http.StatusOK)
	var list struct {
		Posts []post
		Next  *string
	}
	r.decode(t, &list)
	if len(list.Posts) != 1 || list.Posts[0] != edited || list.Next != nil {
		t.Fatalf("list %s", r.body)
	}
	wantHeader(t, r, "ETag", `"3"`)
	wantHeader(t, r, "Edgecache-Groups", fmt.Sprintf("user/%d/posts=3", u.ID))

	// Delete: the post's group moves to its last version + 1.
	r = ts.do("DELETE", fmt.Sprintf("/v1/posts/%d", p.ID), "", auth...).expect(t, http.StatusNoContent)
	if len(r.body) != 0 {
		t.Errorf("204 with body %q", r.body)
	}
	wantHeader(t, r, "Edgecache-Groups", fmt.Sprintf("post/%d=3 user/%d=3 user/%d/posts=4", p.ID, u.ID, u.ID))
	wantRow(t, db, u.ID, 0, 3, 4)

	wantAbsent(t, ts.do("GET", fmt.Sprintf("/v1/posts/%d", p.ID), ""), fmt.Sprintf("post/%d=0", p.ID))
	wantError(t, ts.do("PUT", fmt.Sprintf("/v1/posts/%d", p.ID), `{"body":"x"}`, auth...), http.StatusNotFound, "not_found")
	wantError(t, ts.do("DELETE", fmt.Sprintf("/v1/posts/%d", p.ID), "", auth...), http.StatusNotFound, "not_found")
	wantRow(t, db, u.ID, 0, 3, 4)

	r = ts.do("GET", fmt.Sprintf("/v1/users/%d/posts", u.ID), "").expect(t, http.StatusOK)
	if string(r.body) != `{"posts":[],"next":null}` {
		t.Fatalf("empty list %s", r.body)
	}
}

func TestListPagination(t *testing.T) {
	ts := startServer(t, testConfig(t))
	u := ts.newUser()
	var ids []int64
	for i := range 5 {
		ids = append(ids, ts.newPost(u, fmt.Sprint("post ", i)).ID)
	}
	// Newest first, two at a time, following next.
	var seen []int64
	path := fmt.Sprintf("/v1/users/%d/posts?limit=2", u.ID)
	var nexts []string
	for path != "" {
		var page struct {
			Posts []post
			Next  *string
		}
		ts.do("GET", path, "").expect(t, http.StatusOK).decode(t, &page)
		if len(page.Posts) > 2 {
			t.Fatalf("page of %d posts with limit=2", len(page.Posts))
		}
		for _, p := range page.Posts {
			seen = append(seen, p.ID)
		}
		path = ""
		if page.Next != nil {
			path = *page.Next
			nexts = append(nexts, path)
		}
	}
	want := []int64{ids[4], ids[3], ids[2], ids[1], ids[0]}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Fatalf("pages gave %v, want %v", seen, want)
	}
	wantNexts := []string{
		fmt.Sprintf("/v1/users/%d/posts?before=%d&limit=2", u.ID, ids[3]),
		fmt.Sprintf("/v1/users/%d/posts?before=%d&limit=2", u.ID, ids[1]),
	}
	if fmt.Sprint(nexts) != fmt.Sprint(wantNexts) {
		t.Fatalf("next links %v, want %v", nexts, wantNexts)
	}

	// Exactly a page's worth left: no next.
	var page struct {
		Posts []post
		Next  *string
	}
	ts.do("GET", fmt.Sprintf("/v1/users/%d/posts?limit=5", u.ID), "").expect(t, http.StatusOK).decode(t, &page)
	if len(page.Posts) != 5 || page.Next != nil {
		t.Fatalf("limit=5 of 5: %d posts, next %v", len(page.Posts), page.Next)
	}
	ts.do("GET", fmt.Sprintf("/v1/users/%d/posts?limit=100", u.ID), "").expect(t, http.StatusOK)
	wantError(t, ts.do("GET", fmt.Sprintf("/v1/users/%d/posts?limit=101", u.ID), ""), http.StatusBadRequest, "invalid_limit")
	wantError(t, ts.do("GET", "/v1/users/9223372036854775807/posts", ""), http.StatusNotFound, "not_found")

	// Default limit is 20.
	for i := 5; i < 25; i++ {
		ts.newPost(u, fmt.Sprint("post ", i))
	}
	ts.do("GET", fmt.Sprintf("/v1/users/%d/posts", u.ID), "").expect(t, http.StatusOK).decode(t, &page)
	if len(page.Posts) != 20 || page.Next == nil {
		t.Fatalf("default page: %d posts, next %v", len(page.Posts), page.Next)
	}
}

// agedPost inserts a post by u, as SQL typed by hand, created and last
// changed age ago, so that its Last-Modified is strong.
func agedPost(t testing.TB, db *sql.DB, u createdUser, body string, age time.Duration) post {
	t.Helper()
	at := time.Now().UTC().Add(-age)
	res, err := db.Exec("INSERT INTO posts (user_id, body, created_at, updated_at) VALUES (?, ?, ?, ?)", u.ID, body, at, at)
	if err != nil {
		t.Fatal(err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		t.Fatal(err)
	}
	var p post
	if err := db.QueryRow(selectPost, id).Scan(&p.ID, &p.UserID, &p.Body, &p.Version, &p.CreatedAt, &p.UpdatedAt); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConditionalGet(t *testing.T) {
	ts := startServer(t, testConfig(t))
	u := ts.newUser()
	p := agedPost(t, openDB(t, primary), u, "cache me", time.Hour)
	path := fmt.Sprintf("/v1/posts/%d", p.ID)
	full := ts.do("GET", path, "").expect(t, http.StatusOK)
	lastModified := full.header.Get("Last-Modified")
	if want := p.UpdatedAt.UTC().Format(http.TimeFormat); lastModified != want {
		t.Fatalf("Last-Modified %q, want %q", lastModified, want)
	}

	for _, tc := range []struct {
		name    string
		headers []string
		status  int
	}{
		{"matching If-None-Match", []string{"If-None-Match", `"1"`}, http.StatusNotModified},
		{"weak If-None-Match matches", []string{"If-None-Match", `W/"1"`}, http.StatusNotModified},
		{"If-None-Match list", []string{"If-None-Match", `"7", "1"`}, http.StatusNotModified},
		{"If-None-Match star", []string{"If-None-Match", `*`}, http.StatusNotModified},
		{"other If-None-Match", []string{"If-None-Match", `"2"`}, http.StatusOK},
		{"If-Modified-Since at Last-Modified", []string{"If-Modified-Since", lastModified}, http.StatusNotModified},
		{"If-Modified-Since before", []string{"If-Modified-Since", p.UpdatedAt.Add(-time.Hour).Format(http.TimeFormat)}, http.StatusOK},
		{"If-None-Match wins over If-Modified-Since", []string{"If-None-Match", `"2"`, "If-Modified-Since", lastModified}, http.StatusOK},
		{"bad If-Modified-Since ignored", []string{"If-Modified-Since", "yesterday"}, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.do("GET", path, "", tc.headers...).expect(t, tc.status)
			// A 304 carries what a cache needs to refresh its entry.
			wantHeader(t, r, "ETag", `"1"`)
			wantHeader(t, r, "Edgecache-Groups", fmt.Sprintf("post/%d=1", p.ID))
			wantHeader(t, r, "Cache-Control", full.header.Get("Cache-Control"))
			if tc.status == http.StatusNotModified && len(r.body) != 0 {
				t.Errorf("304 with a body")
			}
		})
	}

	// After an edit the old ETag no longer matches.
	ts.do("PUT", path, `{"body":"changed"}`, "Authorization", "Bearer "+u.Token).expect(t, http.StatusOK)
	r := ts.do("GET", path, "", "If-None-Match", `"1"`).expect(t, http.StatusOK)
	wantHeader(t, r, "ETag", `"2"`)

	// HEAD answers like GET, without a body.
	r = ts.do("HEAD", path, "").expect(t, http.StatusOK)
	wantHeader(t, r, "ETag", `"2"`)
	if len(r.body) != 0 {
		t.Errorf("HEAD with a body")
	}

	// Lists and users revalidate too.
	list := ts.do("GET", fmt.Sprintf("/v1/users/%d/posts", u.ID), "").expect(t, http.StatusOK)
	ts.do("GET", fmt.Sprintf("/v1/users/%d/posts", u.ID), "", "If-None-Match", list.header.Get("ETag")).expect(t, http.StatusNotModified)
	usr := ts.do("GET", fmt.Sprintf("/v1/users/%d", u.ID), "").expect(t, http.StatusOK)
	ts.do("GET", fmt.Sprintf("/v1/users/%d", u.ID), "", "If-None-Match", usr.header.Get("ETag")).expect(t, http.StatusNotModified)
}

// TestLastModifiedWeak changes a post twice within one second, stamped by
// hand a second ahead of the clock so that the requests surely come before
// that second ends: no Last-Modified is sent, and If-Modified-Since with the
// one both versions would have gets the full new version, not a 304. Once
// the second is long past, both are answered as usual.
func TestLastModifiedWeak(t *testing.T) {
	ts := startServer(t, testConfig(t))
	db := openDB(t, primary)
	u := ts.newUser()
	p := ts.newPost(u, "created")
	path := fmt.Sprintf("/v1/posts/%d", p.ID)
	change := func(body string, at time.Time) {
		t.Helper()
		if _, err := db.Exec("UPDATE posts SET body = ?, updated_at = ? WHERE id = ?", body, at, p.ID); err != nil {
			t.Fatal(err)
		}
	}
	second := time.Now().UTC().Truncate(time.Second).Add(time.Hour)
	ims := second.Format(http.TimeFormat)

	change("first", second.Add(100*time.Millisecond))
	r := ts.do("GET", path, "").expect(t, http.StatusOK)
	wantHeader(t, r, "Last-Modified", "")
	change("second", second.Add(200*time.Millisecond))
	for _, since := range []string{ims, second.Add(time.Hour).Format(http.TimeFormat)} {
		var got post
		r = ts.do("GET", path, "", "If-Modified-Since", since).expect(t, http.StatusOK)
		r.decode(t, &got)
		if got.Body != "second" {
			t.Fatalf("If-Modified-Since %s: body %q", since, got.Body)
		}
		wantHeader(t, r, "Last-Modified", "")
		wantHeader(t, r, "ETag", `"3"`)
	}

	past := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	change("second", past.Add(200*time.Millisecond))
	r = ts.do("GET", path, "").expect(t, http.StatusOK)
	wantHeader(t, r, "Last-Modified", past.Format(http.TimeFormat))
	ts.do("GET", path, "", "If-Modified-Since", past.Format(http.TimeFormat)).expect(t, http.StatusNotModified)
	ts.do("GET", path, "", "If-Modified-Since", past.Add(-time.Second).Format(http.TimeFormat)).expect(t, http.StatusOK)
}

// TestLastModifiedStrong pins where a Last-Modified becomes strong: when
// its second has ended and the write deadline has passed after it.
func TestLastModifiedStrong(t *testing.T) {
	s := &Server{cfg: Config{QueryTimeout: time.Second}}
	changed := time.Date(2030, 1, 2, 10, 0, 0, 300_000_000, time.UTC)
	for _, tc := range []struct {
		now    time.Time
		strong bool
	}{
		{changed, false},
		{changed.Add(-time.Hour), false}, // a clock behind the database's
		{time.Date(2030, 1, 2, 10, 0, 1, 999_999_999, time.UTC), false},
		{time.Date(2030, 1, 2, 10, 0, 2, 0, time.UTC), true},
		{changed.Add(time.Hour), true},
	} {
		if got := s.lastModifiedStrong(changed, tc.now); got != tc.strong {
			t.Errorf("changed %s, now %s: strong %v, want %v", changed.Format(time.StampMicro), tc.now.Format(time.StampMicro), got, tc.strong)
		}
	}
}

func TestIfMatch(t *testing.T) {
	ts := startServer(t, testConfig(t))
	db := openDB(t, primary)
	u := ts.newUser()
	auth := []string{"Authorization", "Bearer " + u.Token}
	p := ts.newPost(u, "v1")
	path := fmt.Sprintf("/v1/posts/%d", p.ID)

	for _, stale := range []string{`"2"`, `W/"1"`, `1`, `"x"`} {
		before := dbState(t, db)
		r := ts.do("PUT", path, `{"body":"no"}`, append(auth, "If-Match", stale)...)
		wantError(t, r, http.StatusPreconditionFailed, "precondition_failed")
		if after := dbState(t, db); after != before {
			t.Fatalf("If-Match %s: refused PUT changed the database", stale)
		}
	}
	ts.do("PUT", path, `{"body":"v2"}`, append(auth, "If-Match", `"1"`)...).expect(t, http.StatusOK)
	ts.do("PUT", path, `{"body":"v3"}`, append(auth, "If-Match", `"9", "2"`)...).expect(t, http.StatusOK)
	ts.do("PUT", path, `{"body":"v4"}`, append(auth, "If-Match", `*`)...).expect(t, http.StatusOK)
	wantError(t, ts.do("DELETE", path, "", append(auth, "If-Match", `"1"`)...), http.StatusPreconditionFailed, "precondition_failed")
	ts.do("DELETE", path, "", append(auth, "If-Match", `"4"`)...).expect(t, http.StatusNoContent)
}

func TestAuth(t *testing.T) {
	ts := startServer(t, testConfig(t))
	db := openDB(t, primary)
	owner, other := ts.newUser(), ts.newUser()
	p := ts.newPost(owner, "mine")
	idPart, _, _ := strings.Cut(owner.Token, ".")
	_, otherSecret, _ := strings.Cut(other.Token, ".")

	create := fmt.Sprintf("/v1/users/%d/posts", owner.ID)
	postPath := fmt.Sprintf("/v1/posts/%d", p.ID)
	for _, tc := range []struct {
		name   string
		auth   string
		status int
		code   string
	}{
		{"no header", "", http.StatusUnauthorized, "unauthorized"},
		{"not bearer", "Basic " + owner.Token, http.StatusUnauthorized, "unauthorized"},
		{"no secret", "Bearer " + idPart, http.StatusUnauthorized, "unauthorized"},
		{"wrong secret", "Bearer " + idPart + "." + otherSecret, http.StatusUnauthorized, "unauthorized"},
		{"no such user", "Bearer 9223372036854775807." + otherSecret, http.StatusUnauthorized, "unauthorized"},
		{"garbage", "Bearer !!!", http.StatusUnauthorized, "unauthorized"},
		{"another user's token", "Bearer " + other.Token, http.StatusForbidden, "forbidden"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := dbState(t, db)
			for _, req := range []struct{ method, path, body string }{
				{"POST", create, `{"body":"x"}`},
				{"PUT", postPath, `{"body":"x"}`},
				{"DELETE", postPath, ""},
			} {
				r := ts.do(req.method, req.path, req.body, "Authorization", tc.auth)
				wantError(t, r, tc.status, tc.code)
				if tc.status == http.StatusUnauthorized && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("%s %s: 401 without WWW-Authenticate: Bearer", req.method, req.path)
				}
			}
			if after := dbState(t, db); after != before {
				t.Fatal("a refused write changed the database")
			}
		})
	}
	// The scheme is case-insensitive.
	ts.do("PUT", postPath, `{"body":"still mine"}`, "Authorization", "bearer "+owner.Token).expect(t, http.StatusOK)
}

func TestHealthAndUnknownRoutes(t *testing.T) {
	ts := startServer(t, testConfig(t))
	ts.do("GET", "/healthz", "").expect(t, http.StatusOK)
	ts.do("GET", "/readyz", "").expect(t, http.StatusOK)
	wantError(t, ts.do("GET", "/nope", ""), http.StatusNotFound, "not_found")
	r := ts.do("PATCH", "/v1/posts/1", `{}`)
	wantError(t, r, http.StatusMethodNotAllowed, "method_not_allowed")
	if allow := r.header.Get("Allow"); !strings.Contains(allow, "PUT") || !strings.Contains(allow, "DELETE") {
		t.Errorf("Allow %q", allow)
	}
}

// TestNonCanonicalPaths sends requests, with the owner's token, to paths
// that clean to a real resource: each gets the JSON 404, no redirect (whose
// Location a proxy would invalidate), and changes nothing.
func TestNonCanonicalPaths(t *testing.T) {
	ts := startServer(t, testConfig(t))
	db := openDB(t, primary)
	u := ts.newUser()
	p := ts.newPost(u, "canonical")
	auth := []string{"Authorization", "Bearer " + u.Token}
	before := dbState(t, db)
	for _, req := range []struct{ method, path string }{
		{"PUT", fmt.Sprintf("/v1//posts/%d", p.ID)},
		{"PUT", fmt.Sprintf("/v1/./posts/%d", p.ID)},
		{"PUT", fmt.Sprintf("/v1/posts/%d/../%d", p.ID, p.ID)},
		{"PUT", fmt.Sprintf("/v1/%%2e/posts/%d", p.ID)},
		{"PUT", fmt.Sprintf("/v1/posts/%d/", p.ID)},
		{"DELETE", fmt.Sprintf("//v1/posts/%d", p.ID)},
		{"DELETE", fmt.Sprintf("/v1/posts/x/../%d", p.ID)},
		{"POST", fmt.Sprintf("/v1/users//%d/posts", u.ID)},
		{"POST", "/v1/./users"},
		{"GET", fmt.Sprintf("/v1//posts/%d", p.ID)},
		{"HEAD", fmt.Sprintf("/v1/posts/%d/.", p.ID)},
	} {
		body := ""
		if req.method == "PUT" || req.method == "POST" {
			body = `{"body":"rewritten","name":"n","email":"noncanonical@example.com"}`
		}
		r := ts.do(req.method, req.path, body, auth...)
		if req.method == "HEAD" {
			r.expect(t, http.StatusNotFound)
		} else {
			wantError(t, r, http.StatusNotFound, "not_found")
		}
		if loc := r.header.Get("Location"); loc != "" {
			t.Errorf("%s %s: Location %q", req.method, req.path, loc)
		}
	}
	if after := dbState(t, db); after != before {
		t.Fatal("a request to a non-canonical path changed the database")
	}
	ts.do("PUT", fmt.Sprintf("/v1/posts/%d", p.ID), jsonPost("the clean path works"), auth...).expect(t, http.StatusOK)
}

func wantHeader(t testing.TB, r reply, name, want string) {
	t.Helper()
	if got := r.header.Get(name); got != want {
		t.Errorf("%s: %q, want %q", name, got, want)
	}
}

// wantError checks an error reply: status, JSON error code, no-store, and
// no cache headers.
func wantError(t testing.TB, r reply, status int, code string) {
	t.Helper()
	if r.status != status || r.errorCode() != code {
		t.Fatalf("got %d %s, want %d with code %q", r.status, r.body, status, code)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("error with Cache-Control %q, want no-store", cc)
	}
	for _, h := range []string{"ETag", "Edgecache-Groups"} {
		if r.header.Get(h) != "" {
			t.Errorf("error carries %s", h)
		}
	}
}

// wantAbsent checks the 404 of a single post or user: a JSON not_found that
// a shared cache may keep briefly, naming at version 0 the group its
// creation moves.
func wantAbsent(t testing.TB, r reply, group string) {
	t.Helper()
	if r.status != http.StatusNotFound || r.errorCode() != "not_found" {
		t.Fatalf("got %d %s, want 404 not_found", r.status, r.body)
	}
	wantHeader(t, r, "Cache-Control", "public, max-age=0, s-maxage=10")
	wantHeader(t, r, "Edgecache-Groups", group)
	wantHeader(t, r, "ETag", "")
}

// wantRow checks a user's post_count, version and posts_version in the
// database.
func wantRow(t testing.TB, db *sql.DB, userID, postCount, version, postsVersion int64) {
	t.Helper()
	c, v, pv := rowVersions(t, db, userID)
	if c != postCount || v != version || pv != postsVersion {
		t.Fatalf("user %d: post_count %d, version %d, posts_version %d; want %d, %d, %d",
			userID, c, v, pv, postCount, version, postsVersion)
	}
}
