package origin

import (
	"context"
	"database/sql"
	"errors"
	"github.com/valyala/fasthttp"
	"strconv"
)

// getPost handles GET /v1/posts/{id}.
func (s *Server) getPost(ctx *fasthttp.RequestCtx, id int64) {
	p, err := s.db.getPost(context.Background(), wantsFresh(ctx), id)
	if errors.Is(err, sql.ErrNoRows) {
		s.writeAbsent(ctx, postGroup(id, 0))
		return
	}
	if err != nil {
		s.readFailed(ctx, err)
		return
	}
	s.writeCacheable(ctx, representation{
		value:        &p,
		version:      p.Version,
		lastModified: p.UpdatedAt,
		group:        postGroup(p.ID, p.Version),
	})
}

// listPosts handles GET /v1/users/{id}/posts?limit=&before=: newest first,
// with "next" the path of the following page or null. The page's URL is
// part of its cache key, so its ETag is the list's version alone.
func (s *Server) listPosts(ctx *fasthttp.RequestCtx, userID int64) {
	limit, before, e := parseListQuery(string(ctx.URI().QueryString()))
	if e != nil {
		writeError(ctx, e)
		return
	}
	page, err := s.db.listPosts(context.Background(), wantsFresh(ctx), userID, before, limit)
	if err != nil {
		s.readFailed(ctx, err)
		return
	}
	body := &postList{posts: page.posts}
	if page.more {
		// Parameters in sorted order: the form a cache normalises keys to.
		body.next = "/v1/users/" + strconv.FormatInt(userID, 10) + "/posts?before=" +
			strconv.FormatInt(page.posts[len(page.posts)-1].ID, 10) + "&limit=" + strconv.Itoa(limit)
	}
	s.writeCacheable(ctx, representation{
		value:        body,
		version:      page.postsVersion,
		lastModified: page.lastModified,
		group:        userPostsGroup(userID, page.postsVersion),
	})
}

// createPost handles POST /v1/users/{id}/posts, by that user only.
func (s *Server) createPost(ctx *fasthttp.RequestCtx, userID int64) {
	if !s.authorize(ctx, userID) {
		return
	}
	body, e := s.readPost(ctx)
	if e != nil {
		writeError(ctx, e)
		return
	}
	p, v, err := s.db.createPost(context.Background(), userID, body)
	if err != nil {
		s.writeFailed(ctx, err)
		return
	}
	writeChange(ctx, fasthttp.StatusCreated, "/v1/posts/"+strconv.FormatInt(p.ID, 10),
		[]string{postGroup(p.ID, p.Version), userGroup(userID, v.user), userPostsGroup(userID, v.posts)}, p)
}

// updatePost handles PUT /v1/posts/{id}, by the post's author only, with an
// optional If-Match.
func (s *Server) updatePost(ctx *fasthttp.RequestCtx, postID int64) {
	userID, ok := s.authenticated(ctx)
	if !ok {
		return
	}
	body, e := s.readPost(ctx)
	if e != nil {
		writeError(ctx, e)
		return
	}
	p, v, err := s.db.updatePost(context.Background(), userID, postID, body, parseIfMatch(&ctx.Request.Header))
	if err != nil {
		s.writeFailed(ctx, err)
		return
	}
	writeChange(ctx, fasthttp.StatusOK, "", []string{postGroup(p.ID, p.Version), userPostsGroup(userID, v.posts)}, p)
}

// deletePost handles DELETE /v1/posts/{id}, by the post's author only, with
// an optional If-Match.
func (s *Server) deletePost(ctx *fasthttp.RequestCtx, postID int64) {
	userID, ok := s.authenticated(ctx)
	if !ok {
		return
	}
	postVersion, v, err := s.db.deletePost(context.Background(), userID, postID, parseIfMatch(&ctx.Request.Header))
	if err != nil {
		s.writeFailed(ctx, err)
		return
	}
	writeChange(ctx, fasthttp.StatusNoContent, "",
		[]string{postGroup(postID, postVersion), userGroup(userID, v.user), userPostsGroup(userID, v.posts)}, nil)
}

// readPost reads and checks a post body from the request.
func (s *Server) readPost(ctx *fasthttp.RequestCtx) (string, *apiError) {
	data, e := readJSON(ctx)
	if e != nil {
		return "", e
	}
	return decodePost(data)
}

// readFailed answers a read that found nothing (404) or failed.
func (s *Server) readFailed(ctx *fasthttp.RequestCtx, err error) {
	if errors.Is(err, sql.ErrNoRows) {
		writeError(ctx, errNotFound)
		return
	}
	s.databaseFailed(ctx, err)
}

// writeFailed answers a write that was refused (404, 403, 412) or failed.
func (s *Server) writeFailed(ctx *fasthttp.RequestCtx, err error) {
	var e *apiError
	if errors.As(err, &e) {
		writeError(ctx, e)
		return
	}
	s.readFailed(ctx, err)
}
