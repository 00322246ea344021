package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/trailhq/trail"
)

// W2 target: Trail's batch path keeps this share of a raw COPY's throughput.
const w2Target = 0.8

// samplesKept is how many written events W3 draws its parameters from.
const samplesKept = 4096

// copyColumns are the events columns a writer fills, in the order of rawRow.
var copyColumns = []string{
	"id", "occurred_at", "recorded_at", "schema_version", "tenant",
	"actor_type", "actor_id", "actor_name", "actor_email", "actor_ip", "actor_user_agent", "on_behalf_of",
	"action", "target_type", "target_id", "target_name", "outcome", "description",
	"changes", "changed_fields", "metadata", "request_id", "trace_id", "source",
}

// rawRow is ev as one COPY row of the events table: the same values Trail
// writes, built outside the timed section (the raw side is the limit).
func rawRow(ev *trail.Event) ([]any, error) {
	var changes *string
	var fields []string
	if len(ev.Changes) > 0 {
		b, err := json.Marshal(ev.Changes)
		if err != nil {
			return nil, err
		}
		s := string(b)
		changes = &s
		for _, c := range ev.Changes {
			fields = append(fields, c.Field)
		}
	}
	var obo *string
	if ev.Actor.OnBehalfOf != nil {
		b, err := json.Marshal(ev.Actor.OnBehalfOf)
		if err != nil {
			return nil, err
		}
		s := string(b)
		obo = &s
	}
	var meta *string
	if len(ev.Metadata) > 0 {
		b, err := json.Marshal(ev.Metadata)
		if err != nil {
			return nil, err
		}
		s := string(b)
		meta = &s
	}
	return []any{
		pgtype.UUID{Bytes: ev.ID, Valid: true}, ev.OccurredAt, ev.RecordedAt, int16(ev.SchemaVersion), ev.Tenant,
		string(ev.Actor.Type), ev.Actor.ID, ev.Actor.Name, ev.Actor.Email, ev.Actor.IP, ev.Actor.UserAgent, obo,
		ev.Action, ev.Target.Type, ev.Target.ID, ev.Target.Name, string(ev.Outcome), ev.Description,
		changes, fields, meta, ev.RequestID, ev.TraceID, ev.Source,
	}, nil
}

// monthly returns one event per month of the generator's span, for
// creating every partition before anything is timed.
func (r *run) monthly() []trail.Event {
	var evs []trail.Event
	for t := r.end.AddDate(0, 0, -genDays-1); !t.After(r.end.AddDate(0, 1, 0)); t = t.AddDate(0, 0, 14) {
		evs = append(evs, trail.Event{OccurredAt: t})
	}
	return evs
}

// rawTable strips the idempotency key (each partition's unique id index)
// and the seal queue's trigger from the events table of schema: the raw
// COPY side of W2 writes the same table and indexes without either, as the
// limit Trail's path is measured against.
func rawTable(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	sc := pgx.Identifier{schema}.Sanitize()
	if _, err := pool.Exec(ctx, "ALTER TABLE "+sc+".events DISABLE TRIGGER events_seal_queue"); err != nil {
		return fmt.Errorf("bench: w2: raw table: %w", err)
	}
	rows, err := pool.Query(ctx, `SELECT c.relname FROM pg_class c JOIN pg_index x ON x.indexrelid = c.oid
		WHERE c.relnamespace = $1::regnamespace AND x.indisunique AND c.relname LIKE 'events\_p%\_id'`, schema)
	if err != nil {
		return fmt.Errorf("bench: w2: raw table: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("bench: w2: raw table: %w", err)
	}
	for _, n := range names {
		if _, err := pool.Exec(ctx, "DROP INDEX "+pgx.Identifier{schema, n}.Sanitize()); err != nil {
			return fmt.Errorf("bench: w2: raw table: %w", err)
		}
	}
	return nil
}

// w2 ingests cfg.Events events through Store.Append and the same rows
// through a raw COPY into an identical table, batch by batch, alternating
// which goes first. The Trail store stays for W3 and storage.
func (r *run) w2(ctx context.Context) error {
	r.logf("w2: setting up")
	s, err := r.newStore(ctx, "w2")
	if err != nil {
		return err
	}
	raw, err := r.newStore(ctx, "w2raw")
	if err != nil {
		return err
	}
	for _, st := range []interface {
		EnsurePartitions(context.Context, []trail.Event) error
	}{s, raw} {
		if err := st.EnsurePartitions(ctx, r.monthly()); err != nil {
			return err
		}
	}
	if err := rawTable(ctx, r.pool, raw.Schema()); err != nil {
		return err
	}
	g := r.source()
	sr := rand.New(rand.NewPCG(r.cfg.Seed, 99))
	var tTrail, tRaw time.Duration
	batch := make([]trail.Event, 0, r.cfg.BatchSize)
	rows := make([][]any, 0, r.cfg.BatchSize)
	written, lastLog := 0, 0
	for b := 0; written < r.cfg.Events; b++ {
		batch, rows = batch[:0], rows[:0]
		for range min(r.cfg.BatchSize, r.cfg.Events-written) {
			ev := g.next()
			batch = append(batch, ev)
			row, err := rawRow(&ev)
			if err != nil {
				return err
			}
			rows = append(rows, row)
		}
		r.keepSamples(batch, written, sr)
		trailFn := func() error {
			t0 := time.Now()
			res, err := s.Append(ctx, batch)
			tTrail += time.Since(t0)
			if err == nil && (len(res) != len(batch) || res[0].Duplicate) {
				err = fmt.Errorf("bench: w2: Append stored %d of %d events", len(res), len(batch))
			}
			return err
		}
		rawFn := func() error {
			t0 := time.Now()
			n, err := r.pool.CopyFrom(ctx, pgx.Identifier{raw.Schema(), "events"}, copyColumns, pgx.CopyFromRows(rows))
			tRaw += time.Since(t0)
			if err == nil && int(n) != len(rows) {
				err = fmt.Errorf("bench: w2: raw COPY wrote %d of %d rows", n, len(rows))
			}
			return err
		}
		first, second := trailFn, rawFn
		if b%2 == 1 {
			first, second = rawFn, trailFn
		}
		if err := first(); err != nil {
			return fmt.Errorf("bench: w2: %w", err)
		}
		if err := second(); err != nil {
			return fmt.Errorf("bench: w2: %w", err)
		}
		written += len(batch)
		if written-lastLog >= r.cfg.Events/10 || written == r.cfg.Events {
			lastLog = written
			r.logf("w2: %d/%d events (trail %.0f/s, raw COPY %.0f/s)", written, r.cfg.Events,
				float64(written)/tTrail.Seconds(), float64(written)/tRaw.Seconds())
		}
	}
	rawRes := Result{Workload: "w2", Name: "raw_copy", Events: written, Ops: written, Seconds: tRaw.Seconds(), PerSec: float64(written) / tRaw.Seconds(),
		Note: "pgx CopyFrom of pre-built rows into an identical partitioned, indexed table, without idempotency"}
	trailRes := Result{Workload: "w2", Name: "trail", Events: written, Ops: written, Seconds: tTrail.Seconds(), PerSec: float64(written) / tTrail.Seconds(),
		Note: fmt.Sprintf("Store.Append in batches of %d (encoding, COPY, one transaction per batch)", r.cfg.BatchSize)}
	trailRes.ratio("raw_copy", rawRes.PerSec, w2Target)
	r.emit(trailRes)
	r.emit(rawRes)
	r.store = s
	// The raw table has served its purpose: free the disk now.
	r.dropSchema(ctx, raw.Schema())
	return nil
}

// load fills a store for W3 and storage when W2 is not run.
func (r *run) load(ctx context.Context) error {
	s, err := r.newStore(ctx, "w3")
	if err != nil {
		return err
	}
	if err := s.EnsurePartitions(ctx, r.monthly()); err != nil {
		return err
	}
	g := r.source()
	sr := rand.New(rand.NewPCG(r.cfg.Seed, 99))
	batch := make([]trail.Event, 0, r.cfg.BatchSize)
	for written := 0; written < r.cfg.Events; written += len(batch) {
		batch = batch[:0]
		for range min(r.cfg.BatchSize, r.cfg.Events-written) {
			batch = append(batch, g.next())
		}
		r.keepSamples(batch, written, sr)
		if _, err := s.Append(ctx, batch); err != nil {
			return fmt.Errorf("bench: load: %w", err)
		}
	}
	r.store = s
	return nil
}

// keepSamples keeps a uniform sample (reservoir) of the events written so
// far; seen is how many came before batch.
func (r *run) keepSamples(batch []trail.Event, seen int, sr *rand.Rand) {
	for i := range batch {
		n := seen + i
		if len(r.samples) < samplesKept {
			r.samples = append(r.samples, sampleOf(&batch[i], sr))
		} else if k := sr.IntN(n + 1); k < samplesKept {
			r.samples[k] = sampleOf(&batch[i], sr)
		}
	}
}

func (r *run) dropSchema(ctx context.Context, name string) {
	if _, err := r.pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
		r.logf("drop schema %s: %v", name, err)
	}
}
