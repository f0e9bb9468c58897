package envconfig

import (
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
