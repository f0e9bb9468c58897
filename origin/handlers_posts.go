package origin

import (
	"database/sql"
	"errors"
	"net/http"
	"strconv"
)

// getPost handles GET /v1/posts/{id}.
func (s *Server) getPost(w http.ResponseWriter, r *http.Request) {
	id, e := pathID(r)
	if e != nil {
		writeError(w, e)
		return
	}
	p, err := s.db.getPost(r.Context(), wantsFresh(r), id)
	if errors.Is(err, sql.ErrNoRows) {
		s.writeAbsent(w, postGroup(id, 0))
		return
	}
	if err != nil {
		s.readFailed(w, r, err)
		return
	}
	s.writeCacheable(w, r, representation{
		value:        &p,
		version:      p.Version,
		lastModified: p.UpdatedAt,
		group:        postGroup(p.ID, p.Version),
	})
}

// listPosts handles GET /v1/users/{id}/posts?limit=&before=: newest first,
// with "next" the path of the following page or null. The page's URL is
// part of its cache key, so its ETag is the list's version alone.
func (s *Server) listPosts(w http.ResponseWriter, r *http.Request) {
	userID, e := pathID(r)
	if e != nil {
		writeError(w, e)
		return
	}
	limit, before, e := parseListQuery(r.URL.RawQuery)
	if e != nil {
		writeError(w, e)
		return
	}
	page, err := s.db.listPosts(r.Context(), wantsFresh(r), userID, before, limit)
	if err != nil {
		s.readFailed(w, r, err)
		return
	}
	body := &postList{posts: page.posts}
	if page.more {
		// Parameters in sorted order: the form a cache normalises keys to.
		body.next = "/v1/users/" + strconv.FormatInt(userID, 10) + "/posts?before=" +
			strconv.FormatInt(page.posts[len(page.posts)-1].ID, 10) + "&limit=" + strconv.Itoa(limit)
	}
	s.writeCacheable(w, r, representation{
		value:        body,
		version:      page.postsVersion,
		lastModified: page.lastModified,
		group:        userPostsGroup(userID, page.postsVersion),
	})
}

// createPost handles POST /v1/users/{id}/posts, by that user only.
func (s *Server) createPost(w http.ResponseWriter, r *http.Request) {
	userID, e := pathID(r)
	if e != nil {
		writeError(w, e)
		return
	}
	if !s.authorize(w, r, userID) {
		return
	}
	body, e := s.readPost(w, r)
	if e != nil {
		writeError(w, e)
		return
	}
	p, v, err := s.db.createPost(r.Context(), userID, body)
	if err != nil {
		s.writeFailed(w, r, err)
		return
	}
	writeChange(w, http.StatusCreated, "/v1/posts/"+strconv.FormatInt(p.ID, 10),
		[]string{postGroup(p.ID, p.Version), userGroup(userID, v.user), userPostsGroup(userID, v.posts)}, p)
}

// updatePost handles PUT /v1/posts/{id}, by the post's author only, with an
// optional If-Match.
func (s *Server) updatePost(w http.ResponseWriter, r *http.Request) {
	postID, e := pathID(r)
	if e != nil {
		writeError(w, e)
		return
	}
	userID, ok := s.authenticated(w, r)
	if !ok {
		return
	}
	body, e := s.readPost(w, r)
	if e != nil {
		writeError(w, e)
		return
	}
	p, v, err := s.db.updatePost(r.Context(), userID, postID, body, parseIfMatch(r))
	if err != nil {
		s.writeFailed(w, r, err)
		return
	}
	writeChange(w, http.StatusOK, "", []string{postGroup(p.ID, p.Version), userPostsGroup(userID, v.posts)}, p)
}

// deletePost handles DELETE /v1/posts/{id}, by the post's author only, with
// an optional If-Match.
func (s *Server) deletePost(w http.ResponseWriter, r *http.Request) {
	postID, e := pathID(r)
	if e != nil {
		writeError(w, e)
		return
	}
	userID, ok := s.authenticated(w, r)
	if !ok {
		return
	}
	postVersion, v, err := s.db.deletePost(r.Context(), userID, postID, parseIfMatch(r))
	if err != nil {
		s.writeFailed(w, r, err)
		return
	}
	writeChange(w, http.StatusNoContent, "",
		[]string{postGroup(postID, postVersion), userGroup(userID, v.user), userPostsGroup(userID, v.posts)}, nil)
}

// readPost reads and checks a post body from the request.
func (s *Server) readPost(w http.ResponseWriter, r *http.Request) (string, *apiError) {
	data, e := readJSON(w, r)
	if e != nil {
		return "", e
	}
	return decodePost(data)
}

// readFailed answers a read that found nothing (404) or failed.
func (s *Server) readFailed(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, sql.ErrNoRows) {
		writeError(w, errNotFound)
		return
	}
	s.databaseFailed(w, r, err)
}

// writeFailed answers a write that was refused (404, 403, 412) or failed.
func (s *Server) writeFailed(w http.ResponseWriter, r *http.Request, err error) {
	var e *apiError
	if errors.As(err, &e) {
		writeError(w, e)
		return
	}
	s.readFailed(w, r, err)
}
