package origin

import (
	"net/http"
	"time"

	"go.uber.org/zap"
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

// logRequest writes the request's access log line.
func (s *Server) logRequest(r *http.Request, route string, rl *responseLog, took time.Duration) {
	line := s.access.Check(zap.InfoLevel, "request")
	if line == nil { // the access log is off: build no fields
		return
	}
	fields := []zap.Field{
		zap.String("method", r.Method),
		zap.String("path", r.URL.Path),
		zap.String("query", r.URL.RawQuery),
		zap.String("route", route),
		zap.Int("status", rl.status),
		zap.Int("bytes", rl.bytes),
		zap.Duration("duration", took),
		zap.String("remote", r.RemoteAddr),
	}
	if wantsFresh(r) {
		fields = append(fields, zap.Bool("fresh", true))
	}
	if rl.errCode != "" {
		fields = append(fields, zap.String("error_code", rl.errCode), zap.String("error", rl.errMessage))
	}
	line.Write(fields...)
}
