package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"edgecache/deploy/envconfig"
	"edgecache/deploy/localstack"
	"edgecache/origin"
)

// buildOrigin compiles this command into a temporary folder.
func buildOrigin(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "origin")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestHelpListsEveryVariable(t *testing.T) {
	out, err := exec.Command(buildOrigin(t), "-h").CombinedOutput()
	if err != nil {
		t.Fatalf("origin -h: %v\n%s", err, out)
	}
	var want strings.Builder
	envconfig.Usage(&want, origin.Config{})
	if !strings.Contains(string(out), want.String()) {
		t.Fatalf("origin -h does not print the variables:\n%s", out)
	}
}

func TestBadConfigurationExits(t *testing.T) {
	cmd := exec.Command(buildOrigin(t))
	cmd.Env = append(os.Environ(), "ORIGIN_MYSQL_MAX_CONNS=0")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "ORIGIN_MYSQL_MAX_CONNS") {
		t.Fatalf("err %v, output:\n%s", err, out)
	}
}

// TestServeAndSIGTERM runs the binary against a private MariaDB, serves a
// request, and checks that SIGTERM ends it cleanly.
func TestServeAndSIGTERM(t *testing.T) {
	bin := buildOrigin(t)
	ctx := context.Background()
	db, err := localstack.StartMariaDB(ctx, localstack.MariaDBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Stop()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "ORIGIN_LISTEN="+addr, "ORIGIN_MYSQL_DSN="+db.DSN("edgecache"), "ORIGIN_DRAIN_DELAY=0s")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer cmd.Process.Kill() // after a clean exit this fails harmlessly

	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("origin exited early: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("origin never became ready:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := http.Post("http://"+addr+"/v1/users", "application/json", strings.NewReader(`{"name":"cli","email":"cli@example.com"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /v1/users: %d", resp.StatusCode)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("origin did not exit after SIGTERM")
	}
	// The access log (stdout) was flushed on the way out.
	if !strings.Contains(stdout.String(), `"route":"POST /v1/users"`) || !strings.Contains(stdout.String(), `"status":201`) {
		t.Fatalf("access log lacks the request:\n%s", stdout.String())
	}
	if !strings.Contains(stderr.String(), "applied migration") {
		t.Fatalf("app log lacks the migration:\n%s", stderr.String())
	}
}
