package origin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"
	"github.com/valyala/fasthttp"
	"strconv"
	"strings"
)

// A token is "<user id>.<secret>": the id says whose stored hash to compare
// against, so the comparison is a constant-time compare of two hashes rather
// than an index lookup by secret. The secret is 32 random bytes, base64url;
// only its SHA-256 is stored (a salt or slow hash adds nothing for 256 bits
// of randomness). Clients treat the token as opaque.

// newSecret returns a fresh random secret and the hash to store for it.
func newSecret() (secret string, hash []byte) {
	b := make([]byte, 32)
	rand.Read(b) // never fails; see crypto/rand
	secret = base64.RawURLEncoding.EncodeToString(b)
	return secret, hashSecret(secret)
}

func hashSecret(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

func formatToken(userID int64, secret string) string {
	return strconv.FormatInt(userID, 10) + "." + secret
}

// errUnauthenticated means the request has no valid bearer token.
var errUnauthenticated = errors.New("unauthenticated")

// bearerToken splits "Authorization: Bearer <id>.<secret>" (the scheme is
// case-insensitive, RFC 9110 §11.1).
func bearerToken(h *fasthttp.RequestHeader) (userID int64, secret string, ok bool) {
	scheme, token, found := strings.Cut(string(h.Peek("Authorization")), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return 0, "", false
	}
	idText, secret, found := strings.Cut(strings.TrimSpace(token), ".")
	if !found || secret == "" {
		return 0, "", false
	}
	id, err := parseID(idText)
	if err != nil {
		return 0, "", false
	}
	return id, secret, true
}

// authenticate returns the id of the user whose token the request carries,
// errUnauthenticated when there is none or it is wrong, or a database error.
// It reads the primary: a user created a moment ago may not have reached a
// replica.
func (s *Server) authenticate(ctx *fasthttp.RequestCtx) (int64, error) {
	userID, secret, ok := bearerToken(&ctx.Request.Header)
	if !ok {
		return 0, errUnauthenticated
	}
	var stored []byte
	err := s.db.read(context.Background(), true, func(ctx context.Context, db *sql.DB) error {
		return db.QueryRowContext(ctx, "SELECT token_hash FROM users WHERE id = ?", userID).Scan(&stored)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return 0, errUnauthenticated
	}
	if err != nil {
		return 0, err
	}
	if subtle.ConstantTimeCompare(hashSecret(secret), stored) != 1 {
		return 0, errUnauthenticated
	}
	return userID, nil
}

// authenticated returns the requesting user's id, or answers 401 (or 503
// when the database cannot say) and returns false.
func (s *Server) authenticated(ctx *fasthttp.RequestCtx) (int64, bool) {
	userID, err := s.authenticate(ctx)
	if errors.Is(err, errUnauthenticated) {
		writeError(ctx, &apiError{fasthttp.StatusUnauthorized, "unauthorized", "a valid bearer token is required"})
		return 0, false
	}
	if err != nil {
		s.databaseFailed(ctx, err)
		return 0, false
	}
	return userID, true
}

// authorize checks that the request is by user owner, answering 401 or 403
// otherwise.
func (s *Server) authorize(ctx *fasthttp.RequestCtx, owner int64) bool {
	userID, ok := s.authenticated(ctx)
	if !ok {
		return false
	}
	if userID != owner {
		writeError(ctx, errForbidden)
		return false
	}
	return true
}
