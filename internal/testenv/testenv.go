// Package testenv lets tests find the real services they need (PostgreSQL,
// NATS, S3) and decide what to do when one is missing: on a developer laptop
// the test is skipped with a loud message; in CI (TRAIL_REQUIRE_SERVICES=1,
// set by .ci/run) it fails, so a missing service can never pass as green.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
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

var (
	pgOnce sync.Once
	pgPool *pgxpool.Pool
	pgErr  error
)

// PostgresPool returns the test binary's one pool to the PostgreSQL test
// server, or calls Unavailable. The pool is opened by the first call, with
// that call's maxConns, and shared by every test of the binary after it.
func PostgresPool(t testing.TB, maxConns int32) *pgxpool.Pool {
	t.Helper()
	pgOnce.Do(func() {
		cfg, err := pgxpool.ParseConfig(PostgresDSN())
		if err != nil {
			pgErr = err
			return
		}
		cfg.MaxConns = maxConns
		pgPool, pgErr = pgxpool.NewWithConfig(context.Background(), cfg)
		if pgErr == nil {
			pgErr = pgPool.Ping(context.Background())
		}
	})
	if pgErr != nil {
		Unavailable(t, "PostgreSQL", pgErr)
	}
	return pgPool
}

// FreshSchema returns the name of a PostgreSQL schema no other test uses
// (the test's name folded to [a-z0-9_], its last 40 characters, and a random
// suffix, so parallel tests and reruns never meet) and drops it, with all it
// holds, at the end of t.
func FreshSchema(t testing.TB, p *pgxpool.Pool) string {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	n := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, strings.ToLower(t.Name()))
	if len(n) > 40 {
		n = n[len(n)-40:]
	}
	schema := "t_" + n + "_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		if _, err := p.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	return schema
}
