package origin

import (
	"context"
	"database/sql"
	"errors"
	"github.com/valyala/fasthttp"
	"strconv"
	"time"
)

// createUser handles POST /v1/users: the answer carries the user's token,
// shown this once; only its hash is stored.
func (s *Server) createUser(ctx *fasthttp.RequestCtx, _ int64) {
	data, e := readJSON(ctx)
	if e != nil {
		writeError(ctx, e)
		return
	}
	name, email, e := decodeUser(data)
	if e != nil {
		writeError(ctx, e)
		return
	}
	secret, hash := newSecret()
	u, err := s.db.createUser(context.Background(), name, email, hash)
	if mysqlErrorNumber(err) == errDuplicateKey {
		writeError(ctx, &apiError{fasthttp.StatusConflict, "email_taken", "a user with this email exists"})
		return
	}
	if err != nil {
		s.databaseFailed(ctx, err)
		return
	}
	writeChange(ctx, fasthttp.StatusCreated, "/v1/users/"+strconv.FormatInt(u.ID, 10),
		[]string{userGroup(u.ID, u.version)},
		struct {
			ID        int64     `json:"id"`
			Name      string    `json:"name"`
			CreatedAt time.Time `json:"created_at"`
			Token     string    `json:"token"`
		}{u.ID, u.Name, u.CreatedAt, formatToken(u.ID, secret)})
}

// getUser handles GET /v1/users/{id}.
func (s *Server) getUser(ctx *fasthttp.RequestCtx, id int64) {
	u, err := s.db.getUser(context.Background(), wantsFresh(ctx), id)
	if errors.Is(err, sql.ErrNoRows) {
		s.writeAbsent(ctx, userGroup(id, 0))
		return
	}
	if err != nil {
		s.readFailed(ctx, err)
		return
	}
	s.writeCacheable(ctx, representation{
		value:        &u,
		version:      u.version,
		lastModified: u.UpdatedAt,
		group:        userGroup(u.ID, u.version),
	})
}
