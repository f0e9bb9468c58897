package origin

import (
	"net/http"
	"time"

	"go.uber.org/zap"

	"edgecache/proxy/accesslog"
)

// responseLog wraps a ResponseWriter to remember what the access log line
// and the metrics need.
type responseLog struct {
	http.ResponseWriter
	status     int
	bytes      int
	errCode    string // set by writeError
	errMessage string
}

func (rl *responseLog) WriteHeader(status int) {
	if rl.status == 0 {
		rl.status = status
	}
	rl.ResponseWriter.WriteHeader(status)
}

func (rl *responseLog) Write(b []byte) (int, error) {
	if rl.status == 0 {
		rl.status = http.StatusOK
	}
	n, err := rl.ResponseWriter.Write(b)
	rl.bytes += n
	return n, err
}

// logRequest writes the request's access log line, in the format zap's
// JSON encoder wrote it (accesslog.Log.WriteOrigin says which fields), at
// a tenth of zap's cost. A write error is the destination's, reported once
// per failed flush.
func (s *Server) logRequest(r *http.Request, route string, rl *responseLog, began, end time.Time) {
	if s.access == nil {
		return
	}
	err := s.access.WriteOrigin(&accesslog.OriginRequest{Time: end, Method: r.Method, Path: r.URL.Path,
		Query: r.URL.RawQuery, Route: route, Status: rl.status, Bytes: rl.bytes, Duration: end.Sub(began),
		Remote: r.RemoteAddr, Fresh: wantsFresh(r), ErrorCode: rl.errCode, Error: rl.errMessage})
	if err != nil {
		s.log.Warn("access log", zap.Error(err))
	}
}
