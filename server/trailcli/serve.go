package trailcli

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, for the key table
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/internal/demo"
	"github.com/trailhq/trail/server/trailserver"
)

// ServeCmd is `trail serve`.
type ServeCmd struct {
	Postgres  string        `name:"postgres" env:"TRAIL_POSTGRES" placeholder:"DSN" help:"Serve from PostgreSQL instead of the SQLite file (env TRAIL_POSTGRES)."`
	Addr      string        `name:"addr" env:"TRAIL_ADDR" default:"127.0.0.1:8080" placeholder:"HOST:PORT" help:"Address to listen on; default 127.0.0.1:8080 (env TRAIL_ADDR)."`
	Demo      bool          `name:"demo" help:"Seed the demo data if the store is empty, and print an admin key and URLs to try."`
	RateLimit float64       `name:"rate-limit" default:"50" help:"Requests per second per API key (burst: twice that); 0 turns the limit off."`
	Grace     time.Duration `name:"grace" default:"30s" help:"How long shutdown waits for requests in flight."`
	// The live tail's store feed (trailserver/tail_store.go, docs/api.md).
	TailPoll     time.Duration `name:"tail-poll" env:"TRAIL_TAIL_POLL" default:"500ms" help:"While a live tail is open, how often to read events other writers committed to the store; 0 shows this server's writes only (env TRAIL_TAIL_POLL)."`
	TailLookback time.Duration `name:"tail-lookback" env:"TRAIL_TAIL_LOOKBACK" default:"10s" help:"PostgreSQL: how far back in recorded_at each tail poll re-reads; must exceed the longest audited transaction plus writers' clock skew (env TRAIL_TAIL_LOOKBACK)."`
	// Streams: exports and live tails, the UI's included (trailserver/stream.go, docs/api.md).
	StreamWriteTimeout time.Duration `name:"stream-write-timeout" env:"TRAIL_STREAM_WRITE_TIMEOUT" default:"30s" help:"Each write of an export or live tail must reach the client within this, or the stream is closed as unread (env TRAIL_STREAM_WRITE_TIMEOUT)."`
	StreamsPerKey      int           `name:"streams-per-key" env:"TRAIL_STREAMS_PER_KEY" default:"4" help:"Exports and live tails one API key, with its UI sign-ins, may have open at once; beyond, 429. 0 turns the cap off (env TRAIL_STREAMS_PER_KEY)."`
	// Reads' audit.read events are appended in groups (trailserver/auditgroup.go).
	AuditAppends int `name:"audit-appends" env:"TRAIL_AUDIT_APPENDS" default:"0" help:"How many appends of grouped audit.read events may be in flight at once; 0: what the store says, 1 on SQLite, 2 on PostgreSQL (env TRAIL_AUDIT_APPENDS)."`
	SealFlags
	NATSFlags           // sink.go: --nats, ingest through JetStream
	HTTPSFlags          // serve_https.go
	SessionFlags        // serve_session.go
	ServeRetentionFlags // retention_serve.go
}

// backend is an open store with its key store.
type backend struct {
	store trail.Store
	keys  trailserver.KeyStore
	// db is the database/sql handle of the store's database (the SQLite
	// store's own; on PostgreSQL one pool beside the store's pgx pool) that
	// the key store, the privacy layer and the log streams share.
	db    *sql.DB
	where string // for messages: the file or "PostgreSQL"
	close func()
}

// openBackend opens the store serve and keys work on: PostgreSQL when
// --postgres (TRAIL_POSTGRES) is set, else the SQLite file of --db.
func (e *Env) openBackend(postgres string, create bool) (*backend, error) {
	if postgres != "" {
		st, db, err := e.openPostgresFor(postgres, create)
		if err != nil {
			return nil, err
		}
		ks, err := trailserver.NewPostgresKeyStore(e.Ctx, db, st.Schema())
		if err != nil {
			db.Close()
			st.Close()
			return nil, err
		}
		return &backend{store: st, keys: ks, db: db, where: "PostgreSQL", close: func() { db.Close(); st.Close() }}, nil
	}
	st, err := e.OpenStore(create)
	if err != nil {
		return nil, err
	}
	ks, err := trailserver.NewSQLKeyStore(e.Ctx, st.DB(), trailserver.DialectSQLite)
	if err != nil {
		st.Close()
		return nil, err
	}
	return &backend{store: st, keys: ks, db: st.DB(), where: st.Path(), close: func() { st.Close() }}, nil
}

// Run serves the HTTP API until SIGINT or SIGTERM, then shuts down
// gracefully: requests in flight finish, so nothing acknowledged is lost.
func (c *ServeCmd) Run(e *Env) error {
	if c.RateLimit < 0 {
		return Usagef("--rate-limit: must be 0 or more")
	}
	if c.Grace <= 0 {
		return Usagef("--grace: must be positive")
	}
	if c.TailPoll < 0 {
		return Usagef("--tail-poll: must be 0 or more")
	}
	if c.TailLookback <= 0 {
		return Usagef("--tail-lookback: must be positive")
	}
	if c.StreamWriteTimeout <= 0 {
		return Usagef("--stream-write-timeout: must be positive")
	}
	if c.StreamsPerKey < 0 {
		return Usagef("--streams-per-key: must be 0 or more")
	}
	if c.AuditAppends < 0 {
		return Usagef("--audit-appends: must be 0 or more")
	}
	if c.NATS != "" {
		if err := c.NATSFlags.check(); err != nil { // sink.go
			return err
		}
	}
	https, err := c.HTTPSFlags.load() // before the store: a bad flag creates nothing
	if err != nil {
		return err
	}
	sessionSecret, err := c.SessionFlags.load() // serve_session.go
	if err != nil {
		return err
	}
	// NATS before the store: an unreachable server creates no store or key file.
	front, closeNATS, err := c.NATSFlags.front(e.Ctx) // sink.go
	if err != nil {
		return err
	}
	defer closeNATS()
	b, err := e.openBackend(c.Postgres, true)
	if err != nil {
		return err
	}
	defer b.close()
	priv, kms, err := e.servePrivacy(b, c.Demo) // privacy.go
	if err != nil {
		return err
	}

	var d *demo.Dataset
	if c.Demo {
		if d, err = demo.Generate(demo.Config{Now: e.Now()}); err != nil {
			return err
		}
		st, err := demo.Seed(e.Ctx, b.store, d, &demo.SeedOptions{Transform: priv})
		switch {
		case errors.Is(err, demo.ErrNotEmpty):
			fmt.Fprintf(e.Stdout, "%s already holds events: demo data not added.\n", b.where)
		case err != nil:
			return err
		default:
			fmt.Fprintf(e.Stdout, "Seeded %d demo events into %s.\n", st.Stored, b.where)
		}
	}
	k, secret, err := trailserver.Bootstrap(e.Ctx, b.keys, os.Getenv("TRAIL_ADMIN_KEY"), e.Now())
	if err != nil {
		return err
	}
	if secret == "" && c.Demo && os.Getenv("TRAIL_ADMIN_KEY") == "" {
		// Keys exist already (the first one was printed on a previous
		// start): the demo still prints a key that works.
		k, secret, err = trailserver.CreateKey(e.Ctx, b.keys, trailserver.NewKeyRequest{All: true, Role: trailserver.RoleAdmin, Name: "demo"}, e.Now())
		if err != nil {
			return err
		}
	}

	sealCtx, stopSeal := context.WithCancel(e.Ctx)
	integrity, sealWait, err := c.startSealer(sealCtx, e, b.store) // integrity.go
	if err != nil {
		stopSeal()
		return err
	}
	defer sealWait()
	defer stopSeal()
	retWait, retStats, err := c.startRetention(sealCtx, e, b.store, priv) // retention_serve.go
	if err != nil {
		return err
	}
	defer func() { stopSeal(); retWait() }()
	logStreams, lsWait, err := c.startLogStreams(sealCtx, e, b, priv, kms) // streams_serve.go
	if err != nil {
		return err
	}
	defer func() { stopSeal(); lsWait() }()

	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("--addr %s: %w", c.Addr, err)
	}
	rate := c.RateLimit
	if rate == 0 {
		rate = -1
	}
	tailPoll := c.TailPoll
	if tailPoll == 0 {
		tailPoll = -1 // off
	}
	streamsPerKey := c.StreamsPerKey
	if streamsPerKey == 0 {
		streamsPerKey = -1 // no cap
	}
	if c.NATS != "" && tailPoll > 0 {
		tailPoll = min(tailPoll, 50*time.Millisecond) // the tail drains what the stream delivered, in memory
	}
	srv, err := trailserver.New(trailserver.Config{
		Store:     front(b.store),
		Transform: priv,
		Reveal:    priv,
		Privacy:   &trailserver.PrivacyConfig{Admin: priv},
		Keys:      b.keys,
		Logger:    slog.New(slog.NewTextHandler(e.Stderr, nil)),
		RateLimit: rate,
		RateBurst: int(2 * rate),
		Integrity: integrity,

		TailPoll:     tailPoll,
		TailLookback: c.TailLookback,

		StreamWriteTimeout: c.StreamWriteTimeout,
		StreamsPerKey:      streamsPerKey,
		AuditAppends:       c.AuditAppends,

		RetentionStats: retStats, // nil without --retention

		Retention: serveRetention(e, b.store, priv), // the /v1/retention endpoints (retention_serve.go)

		LogStreams: logStreams, // /v1/log-streams (streams_serve.go)

		TLS:           https.tls,
		SecureCookies: https.secure,
		SessionSecret: sessionSecret, // nil: the one kept beside the keys
	})
	if err != nil {
		ln.Close()
		return err
	}
	base := https.scheme() + "://" + ln.Addr().String()
	fmt.Fprintf(e.Stdout, "Trail API listening on %s (store: %s)\n", base, b.where)
	if https.public != "" {
		base = https.public
		fmt.Fprintf(e.Stdout, "Public URL: %s\n", base)
	}
	fmt.Fprintf(e.Stdout, "Admin UI: %s/ui/ (sign in with a reader or admin key)\n", base)
	if secret != "" {
		fmt.Fprintf(e.Stdout, "\nAdmin API key (id %s, all tenants) — shown once, store it now:\n\n  export TRAIL_KEY=%s\n", k.ID, secret)
	}
	if c.Demo {
		printServeTries(e.Stdout, base, d)
	}
	fmt.Fprintf(e.Stdout, "\nPress Ctrl+C to stop.\n")
	if err := srv.Serve(e.Ctx, ln, c.Grace); err != nil {
		return err
	}
	fmt.Fprintln(e.Stdout, "Stopped.")
	return nil
}

func printServeTries(w io.Writer, base string, d *demo.Dataset) {
	acme := &d.Tenants[0]
	auth := `-H "Authorization: Bearer $TRAIL_KEY"`
	tries := []struct{ what, cmd string }{
		{"Who changed " + acme.Name + "'s subscription?", fmt.Sprintf("curl -s %s '%s/v1/events?tenant=%s&action=subscription.*'", auth, base, acme.ID)},
		{"The subscription's history", fmt.Sprintf("curl -s %s '%s/v1/objects/subscription/%s/history?tenant=%s'", auth, base, acme.Subscription, acme.ID)},
		{"Counts by day and action", fmt.Sprintf("curl -s %s '%s/v1/stats?tenant=%s&since=30d'", auth, base, acme.ID)},
		{"Export as CSV", fmt.Sprintf("curl -s %s '%s/v1/export?tenant=%s&format=csv' -o %s.csv", auth, base, acme.ID, acme.ID)},
		{"Follow new events live", fmt.Sprintf("curl -sN %s '%s/v1/tail?tenant=%s'", auth, base, acme.ID)},
		{"Record an event", fmt.Sprintf(`curl -s %s -H 'Content-Type: application/json' %s/v1/events -d '{"tenant":"%s","actor":{"type":"user","id":"42"},"action":"user.delete","target":{"type":"user","id":"17"}}'`, auth, base, acme.ID)},
		{"Your own reads, audited", fmt.Sprintf("curl -s %s '%s/v1/events?action=audit.read&limit=5'", auth, base)},
		{"The API description and metrics", fmt.Sprintf("curl -s %s/openapi.json; curl -s %s/metrics", base, base)},
	}
	fmt.Fprintln(w, "\nTry:")
	for _, t := range tries {
		fmt.Fprintf(w, "\n  # %s\n  %s\n", t.what, t.cmd)
	}
}
