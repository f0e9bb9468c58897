package origin

import (
	"database/sql"
	"errors"
	"net/http"
	"strconv"
	"time"
)

// createUser handles POST /v1/users: the answer carries the user's token,
// shown this once; only its hash is stored.
func (s *Server) createUser(w http.ResponseWriter, r *http.Request) {
	data, e := readJSON(w, r)
	if e != nil {
		writeError(w, e)
		return
	}
	name, email, e := decodeUser(data)
	if e != nil {
		writeError(w, e)
		return
	}
	secret, hash := newSecret()
	u, err := s.db.createUser(r.Context(), name, email, hash)
	if mysqlErrorNumber(err) == errDuplicateKey {
		writeError(w, &apiError{http.StatusConflict, "email_taken", "a user with this email exists"})
		return
	}
	if err != nil {
		s.databaseFailed(w, r, err)
		return
	}
	writeChange(w, http.StatusCreated, "/v1/users/"+strconv.FormatInt(u.ID, 10),
		[]string{userGroup(u.ID, u.version)},
		struct {
			ID        int64     `json:"id"`
			Name      string    `json:"name"`
			CreatedAt time.Time `json:"created_at"`
			Token     string    `json:"token"`
		}{u.ID, u.Name, u.CreatedAt, formatToken(u.ID, secret)})
}

// getUser handles GET /v1/users/{id}.
func (s *Server) getUser(w http.ResponseWriter, r *http.Request) {
	id, e := pathID(r)
	if e != nil {
		writeError(w, e)
		return
	}
	u, err := s.db.getUser(r.Context(), wantsFresh(r), id)
	if errors.Is(err, sql.ErrNoRows) {
		s.writeAbsent(w, userGroup(id, 0))
		return
	}
	if err != nil {
		s.readFailed(w, r, err)
		return
	}
	s.writeCacheable(w, r, representation{
		value:        &u,
		version:      u.version,
		lastModified: u.UpdatedAt,
		group:        userGroup(u.ID, u.version),
	})
}
