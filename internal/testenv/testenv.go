// Package testenv lets tests find the real services they need (PostgreSQL,
// NATS, S3) and decide what to do when one is missing: on a developer laptop
// the test is skipped with a loud message; in CI (TRAIL_REQUIRE_SERVICES=1,
// set by .ci/run) it fails, so a missing service can never pass as green.
package testenv

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// RequireServices reports whether missing services must fail tests.
func RequireServices() bool {
	v := os.Getenv("TRAIL_REQUIRE_SERVICES")
	return v != "" && v != "0" && !strings.EqualFold(v, "false")
}

// Unavailable skips t, or fails it when services are required, saying which
// service is missing and why.
func Unavailable(t testing.TB, service string, err error) {
	t.Helper()
	msg := "SERVICE UNAVAILABLE: " + service + ": " + err.Error()
	if RequireServices() {
		t.Fatal(msg + " (TRAIL_REQUIRE_SERVICES is set, so this fails instead of skipping)")
	}
	t.Skip(msg + " — skipping; start it, or run .ci/run which starts it")
}

// PostgresDSN returns the DSN of the PostgreSQL server tests use:
// TRAIL_TEST_POSTGRES, or the machine's own server on 127.0.0.1:5432.
func PostgresDSN() string {
	if dsn := os.Getenv("TRAIL_TEST_POSTGRES"); dsn != "" {
		return dsn
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// Dial checks that addr accepts TCP connections, or calls Unavailable.
func Dial(t testing.TB, service, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		Unavailable(t, service, err)
		return
	}
	c.Close()
}
