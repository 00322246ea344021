package trailcli

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailnats"
)

// NATSFlags name the JetStream stream of trail serve --nats and trail sink
// (trailnats, docs/scale.md). Every process of a deployment gives the same.
type NATSFlags struct {
	NATS           string `name:"nats" env:"TRAIL_NATS" placeholder:"URL" help:"NATS server(s) with JetStream, comma-separated (nats-server 2.12+: atomic batch publish); serve: ingest is acknowledged once the stream has the events and trail sink stores them (env TRAIL_NATS)."`
	NATSReplicas   int    `name:"nats-replicas" env:"TRAIL_NATS_REPLICAS" default:"1" help:"The stream's replicas: 1, 3 or 5 (env TRAIL_NATS_REPLICAS)."`
	NATSPartitions int    `name:"nats-partitions" env:"TRAIL_NATS_PARTITIONS" default:"16" help:"Subjects the stream is cut into by tenant; bounds how many sinks work at once; fixed for the stream's life (env TRAIL_NATS_PARTITIONS)."`
	NATSStream     string `name:"nats-stream" env:"TRAIL_NATS_STREAM" default:"TRAIL_EVENTS" help:"The JetStream stream's name (env TRAIL_NATS_STREAM)."`
	NATSSubject    string `name:"nats-subject" env:"TRAIL_NATS_SUBJECT" default:"trail.events" help:"The subjects' prefix: events go to PREFIX.<partition> (env TRAIL_NATS_SUBJECT)."`
}

func (f *NATSFlags) config() trailnats.Config {
	return trailnats.Config{Stream: f.NATSStream, Subject: f.NATSSubject, Partitions: f.NATSPartitions, Replicas: f.NATSReplicas}
}

func (f *NATSFlags) check() error {
	switch {
	case f.NATSReplicas != 1 && f.NATSReplicas != 3 && f.NATSReplicas != 5:
		return Usagef("--nats-replicas: must be 1, 3 or 5")
	case f.NATSPartitions < 1 || f.NATSPartitions > 1024:
		return Usagef("--nats-partitions: must be 1 to 1024")
	}
	return nil
}

// connect opens the connection, checks the server and sets the stream up.
func (f *NATSFlags) connect(ctx context.Context, name string) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(f.NATS, nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond))
	if err != nil {
		return nil, nil, fmt.Errorf("--nats %s: %w", f.NATS, err)
	}
	if err := trailnats.CheckServer(nc); err != nil {
		nc.Close()
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := trailnats.Setup(sctx, js, f.config()); err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// front returns the store trail serve --nats serves through: appends go to
// the stream, reads to st. With no --nats it returns st. The caller has
// run check. serve calls it before it opens the store.
func (f *NATSFlags) front(ctx context.Context) (func(st trail.Store) trail.Store, func(), error) {
	if f.NATS == "" {
		return func(st trail.Store) trail.Store { return st }, func() {}, nil
	}
	nc, js, err := f.connect(ctx, "trail serve")
	if err != nil {
		return nil, nil, err
	}
	pub := trailnats.NewPublisher(js, f.config())
	return func(st trail.Store) trail.Store { return &trailnats.Store{Publisher: pub, Read: st} }, nc.Close, nil
}

// SinkCmd is `trail sink`.
type SinkCmd struct {
	Postgres string `name:"postgres" env:"TRAIL_POSTGRES" placeholder:"DSN" help:"Store into PostgreSQL instead of the SQLite file of --db (env TRAIL_POSTGRES)."`
	NATSFlags
	Batch     int           `name:"batch" default:"500" help:"Most events one store write takes (and each partition's unacknowledged maximum); the same on every sink."`
	AckWait   time.Duration `name:"ack-wait" default:"10s" help:"A batch a sink holds this long without acknowledging or signalling progress (a dead sink) is redelivered; the same on every sink."`
	PinnedTTL time.Duration `name:"pinned-ttl" default:"15s" help:"A partition whose sink stopped pulling (a dead sink) moves to another sink after this; more than --ack-wait; the same on every sink."`
}

// Run moves events from the stream into the store until SIGINT or SIGTERM.
// Any number of sinks may run: each partition is worked by one at a time.
func (c *SinkCmd) Run(e *Env) error {
	if c.NATS == "" {
		return Usagef("--nats (TRAIL_NATS) is required")
	}
	if err := c.check(); err != nil {
		return err
	}
	if c.Batch < 1 || c.Batch > 10000 {
		return Usagef("--batch: must be 1 to 10000")
	}
	if c.AckWait < time.Second || c.PinnedTTL <= c.AckWait {
		return Usagef("--ack-wait: must be at least 1s, and --pinned-ttl more than --ack-wait")
	}
	// NATS first: an unreachable server leaves no store file behind.
	nc, js, err := c.connect(e.Ctx, "trail sink")
	if err != nil {
		return err
	}
	defer nc.Close()
	var st trail.Store
	where := "PostgreSQL"
	if c.Postgres != "" {
		pg, db, err := e.openPostgres(c.Postgres)
		if err != nil {
			return err
		}
		db.Close() // the key table's handle: a sink has no keys
		st = pg
	} else {
		lite, err := e.OpenStore(true)
		if err != nil {
			return err
		}
		st, where = lite, lite.Path()
	}
	defer st.Close()
	sink := trailnats.NewSink(js, st, trailnats.SinkConfig{Config: c.config(), Batch: c.Batch, AckWait: c.AckWait, PinnedTTL: c.PinnedTTL,
		Logger: slog.New(slog.NewTextHandler(e.Stderr, nil))})
	fmt.Fprintf(e.Stdout, "Trail sink: %d partitions of stream %s → %s\n", c.NATSPartitions, c.NATSStream, where)
	if err := sink.Run(e.Ctx); err != nil {
		return err
	}
	s := sink.Stats()
	fmt.Fprintf(e.Stdout, "Stopped: %d events in %d batches (%d new, %d already stored, %d set aside as conflicts, %d undecodable, %d retried writes, %d handed back to keep order, %d partitions handed to other sinks).\n",
		s.Events, s.Batches, s.Stored, s.Duplicates, s.Conflicts, s.Undecoded, s.Retries, s.HandedBack, s.Released)
	return nil
}
