package envconfig

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

// Log formats. Production binaries log JSON; `make run` (onebox) and `make
// fleet` print the console format, easier to read on a terminal. Both write
// ISO 8601 times.
const (
	FormatJSON    = "json"
	FormatConsole = "console"
)

// encoderConfig is zap's production encoding with ISO 8601 times
// ("2026-12-02T04:43:11.123Z") instead of epoch seconds, in every log of
// every binary.
func encoderConfig() zapcore.EncoderConfig {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	return enc
}

// NewLogger is the application log on stderr at level (debug, info, warn,
// error) in format (json or console). Like zap's production logger it
// samples a message repeated more than 100 times a second.
func NewLogger(level, format string) (*zap.Logger, error) {
	lvl, err := zap.ParseAtomicLevel(level)
	if err != nil {
		return nil, err
	}
	cfg := zap.NewProductionConfig()
	cfg.Level = lvl
	cfg.EncoderConfig = encoderConfig()
	if format == FormatConsole {
		cfg.Encoding = FormatConsole
		cfg.EncoderConfig.EncodeLevel = zapcore.CapitalLevelEncoder
		cfg.DisableStacktrace = true
	}
	return cfg.Build()
}

// CheckLevel records a problem with variable v unless level is one
// NewLogger takes.
func CheckLevel(ps *Problems, v, level string) {
	if _, err := zapcore.ParseLevel(level); err != nil {
		ps.Addf(v, "want debug, info, warn or error, got %q", level)
	}
}

// Access log destinations; any other value is a file path.
const (
	AccessStdout = "stdout"
	AccessStderr = "stderr"
	AccessOff    = "off"
)

// AccessLogHelp is the meaning of an *_ACCESS_LOG variable.
const AccessLogHelp = "where the access log (one JSON line per request, never sampled) goes: stdout, stderr, off, or a file path (containing a /, appended to)"

// CheckAccessLog records a problem with variable v unless dest is stdout,
// stderr, off, or a file path in an existing folder. A path must contain a
// "/" (./access.log), so that a misspelt keyword is not taken for a file
// name.
func CheckAccessLog(ps *Problems, v, dest string) {
	switch dest {
	case AccessStdout, AccessStderr, AccessOff:
		return
	}
	if !strings.Contains(dest, "/") {
		ps.Addf(v, "want stdout, stderr, off or a file path containing a / (./%s), got %q", dest, dest)
		return
	}
	if fi, err := os.Stat(filepath.Dir(dest)); err != nil || !fi.IsDir() {
		ps.Addf(v, "folder %s of %q does not exist", filepath.Dir(dest), dest)
	}
}

// AccessEncoder is the access log's encoding: JSON with ISO 8601 times.
// The proxy writes the same lines without zap (proxy/accesslog), and its
// tests compare the two.
func AccessEncoder() zapcore.Encoder { return zapcore.NewJSONEncoder(encoderConfig()) }

// OpenAccessWriter opens the access log's destination: nil for off, else
// a writer of whole lines that buffers them and writes them from a
// goroutine of its own (lineWriter), about every second and at stop,
// which also closes a file.
func OpenAccessWriter(dest string) (w io.Writer, stop func() error, err error) {
	var out io.Writer
	var file *os.File
	switch dest {
	case AccessOff:
		return nil, func() error { return nil }, nil
	case AccessStdout, "":
		out = os.Stdout
	case AccessStderr:
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

// OpenAccessLog builds the access logger for dest over OpenAccessWriter:
// its own core, never sampled (zap's sampling would thin a line whose
// message never changes), AccessEncoder's lines.
func OpenAccessLog(dest string) (log *zap.Logger, stop func() error, err error) {
	w, stop, err := OpenAccessWriter(dest)
	if err != nil {
		return nil, nil, err
	}
	if w == nil {
		return zap.NewNop(), stop, nil
	}
	core := zapcore.NewCore(AccessEncoder(), zapcore.AddSync(w), zapcore.InfoLevel)
	return zap.New(core).Named("access"), stop, nil
}
