package accesslog

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Destinations of an access log (PROXY_ACCESS_LOG, ORIGIN_ACCESS_LOG); any
// other value is a file path.
const (
	Stdout = "stdout"
	Stderr = "stderr"
	Off    = "off"
)

// CheckDestination says what is wrong with dest unless it is stdout,
// stderr, off, or a file path in an existing folder. A path must contain a
// "/" (./access.log), so that a misspelt keyword is not taken for a file
// name.
func CheckDestination(dest string) error {
	switch dest {
	case Stdout, Stderr, Off:
		return nil
	}
	if !strings.Contains(dest, "/") {
		return fmt.Errorf("want stdout, stderr, off or a file path containing a / (./%s), got %q", dest, dest)
	}
	if fi, err := os.Stat(filepath.Dir(dest)); err != nil || !fi.IsDir() {
		return fmt.Errorf("folder %s of %q does not exist", filepath.Dir(dest), dest)
	}
	return nil
}

// Encoder is zap's JSON encoding of an access log line, with ISO 8601
// times: the proxy's and the origin's lines were zap's with it, and a Log
// writes the same lines without zap (its tests compare the two).
func Encoder() zapcore.Encoder {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	return zapcore.NewJSONEncoder(enc)
}

// OpenWriter opens the access log's destination: nil for off, else a
// writer of whole lines that buffers them and writes them from a
// goroutine of its own (lineWriter), about every second and at stop,
// which also closes a file.
func OpenWriter(dest string) (w io.Writer, stop func() error, err error) {
	var out io.Writer
	var file *os.File
	switch dest {
	case Off:
		return nil, func() error { return nil }, nil
	case Stdout, "":
		out = os.Stdout
	case Stderr:
		out = os.Stderr
	default:
		if file, err = os.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644); err != nil {
			return nil, nil, fmt.Errorf("access log: %w", err)
		}
		out = file
	}
	lw := newLineWriter(out, lineBufferSize, lineBuffers, time.Second)
	var once sync.Once
	var stopped error
	stop = func() error {
		once.Do(func() {
			stopped = lw.stop()
			if file != nil {
				stopped = errors.Join(stopped, file.Close())
			}
		})
		return stopped
	}
	return lw, stop, nil
}
