package envconfig

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// MustLoad is the start of every binary's main: it parses the command line
// (none is accepted but -h, which prints the usage, summary and variables
// of T), then loads T from the environment. On a problem it prints every
// one, each under its variable's name, and exits with status 2.
func MustLoad[T Validator](name, summary string) T {
	var zero T
	flag.Usage = func() { CommandUsage(flag.CommandLine.Output(), name, summary, zero) }
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	cfg, err := Load[T]()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: bad configuration (%s -h lists every variable):\n%s\n", name, name, indent(err.Error()))
		os.Exit(2)
	}
	return cfg
}

func indent(s string) string { return "  " + strings.ReplaceAll(s, "\n", "\n  ") }

// Service is a running server as RunUntilSignal stops it.
type Service interface {
	// Drain fails readiness while requests are still served, so that the
	// load balancer stops sending new ones.
	Drain()
	// Shutdown stops accepting, waits for the requests in flight (until ctx
	// ends) and releases what the service holds.
	Shutdown(ctx context.Context) error
}

// RunUntilSignal is the one start → drain → stop sequence of every binary.
// It blocks until SIGTERM or SIGINT, then stops svc: Drain, wait drainDelay
// (the load balancer notices the failing readiness check), then Shutdown
// within shutdownTimeout, counted after the drain delay. A second signal
// exits at once with status 1: the operator does not want to wait. The
// error is Shutdown's.
func RunUntilSignal(log *zap.Logger, svc Service, drainDelay, shutdownTimeout time.Duration) error {
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sig)
	return stopOnSignal(log, sig, svc, drainDelay, shutdownTimeout, func() {
		log.Sync()
		os.Exit(1)
	})
}

// stopOnSignal is RunUntilSignal with the signals and the exit given.
func stopOnSignal(log *zap.Logger, sig <-chan os.Signal, svc Service, drainDelay, shutdownTimeout time.Duration, exit func()) error {
	s := <-sig
	log.Info("signal received: draining", zap.String("signal", s.String()), zap.Duration("drain_delay", drainDelay),
		zap.Duration("shutdown_timeout", shutdownTimeout))
	svc.Drain()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case s := <-sig:
			log.Warn("second signal: exiting without waiting", zap.String("signal", s.String()))
			exit()
		case <-done:
		}
	}()
	time.Sleep(drainDelay)
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := svc.Shutdown(ctx)
	if err != nil {
		log.Error("shutdown", zap.Error(err))
	} else {
		log.Info("stopped")
	}
	return err
}
