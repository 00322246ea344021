package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailpgx"
)

// Loaders of the table W3, ui and storage measure when W2 is not run.
const (
	LoadTrail = "trail" // Store.Append in batches: Trail's own write path
	LoadSQL   = "sql"   // COPY without indexes, then the indexes (loadSQL)
)

// loadChunk is how many generated rows travel together from the generator
// to the COPY.
const loadChunk = 10_000

// loadSQL fills a migrated store with cfg.Events events of the generator
// W2 uses, fast enough for 10 M events: it drops the events indexes and the
// partitions' id keys, streams the generated rows with one COPY (the
// generator on one core, the server on the other), and recreates the keys
// and every index from their own definitions, so the result is the table
// Trail's path would have written. The seal queue
// trigger is disabled for the load and the pending rows are not created:
// the load feeds the query workloads, it measures no ingest (W2 does).
func (r *run) loadSQL(ctx context.Context) error {
	s, err := r.newStore(ctx, "w3sql")
	if err != nil {
		return err
	}
	if err := s.EnsurePartitions(ctx, r.monthly()); err != nil {
		return err
	}
	schema := s.Schema()
	events := pgx.Identifier{schema, "events"}.Sanitize()
	conn, err := r.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("bench: load: %w", err)
	}
	defer conn.Release()
	exec := func(sql string) error {
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("bench: load: %s: %w", sql, err)
		}
		return nil
	}
	// The partitioned indexes as Migrate made them; dropping one drops its
	// partitions' indexes too.
	rows, err := conn.Query(ctx, `SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i
		JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = $1::regclass ORDER BY 1`, events)
	if err != nil {
		return fmt.Errorf("bench: load: %w", err)
	}
	type index struct{ name, def string }
	idx, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (index, error) {
		var x index
		err := row.Scan(&x.name, &x.def)
		// pg_get_indexdef names the parent alone (ON ONLY); built that way
		// the index would be invalid, with none on the partitions.
		x.def = strings.Replace(x.def, " ON ONLY ", " ON ", 1)
		return x, err
	})
	if err != nil {
		return fmt.Errorf("bench: load: %w", err)
	}
	if len(idx) == 0 {
		return fmt.Errorf("bench: load: no index on %s", events)
	}
	// Each partition's id key (migration 0016), an index of its own.
	rows, err = conn.Query(ctx, `SELECT c.relname, pg_get_indexdef(c.oid) FROM pg_class c JOIN pg_index x ON x.indexrelid = c.oid
		WHERE c.relnamespace = $1::regnamespace AND x.indisunique AND c.relname LIKE 'events\_p%\_id' ORDER BY 1`, schema)
	if err != nil {
		return fmt.Errorf("bench: load: %w", err)
	}
	keys, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (index, error) {
		var x index
		return x, row.Scan(&x.name, &x.def)
	})
	if err != nil {
		return fmt.Errorf("bench: load: id keys: %w", err)
	}
	for _, x := range append(idx, keys...) {
		if err := exec("DROP INDEX " + pgx.Identifier{schema, x.name}.Sanitize()); err != nil {
			return err
		}
	}
	if err := exec("ALTER TABLE " + events + " DISABLE TRIGGER events_seal_queue"); err != nil {
		return err
	}
	// Nothing waits on this session's commits; the indexes build faster
	// with more memory (the session's own setting, not the server's).
	if err := exec("SET synchronous_commit = off"); err != nil {
		return err
	}
	if err := exec("SET maintenance_work_mem = '512MB'"); err != nil {
		return err
	}

	t0 := time.Now()
	n, err := r.copyGenerated(ctx, conn, pgx.Identifier{schema, "events"})
	if err != nil {
		return err
	}
	if n != int64(r.cfg.Events) {
		return fmt.Errorf("bench: load: COPY wrote %d of %d events", n, r.cfg.Events)
	}
	tCopy := time.Since(t0)
	r.logf("load: COPY of %d events in %s (%.0f/s)", n, tCopy.Round(time.Second), float64(n)/tCopy.Seconds())
	if err := exec("ALTER TABLE " + events + " ENABLE TRIGGER events_seal_queue"); err != nil {
		return err
	}
	for _, x := range append(keys, idx...) {
		t := time.Now()
		if err := exec(x.def); err != nil {
			return err
		}
		r.logf("load: %s in %s", x.name, time.Since(t).Round(time.Second))
	}
	if err := exec("RESET synchronous_commit"); err != nil {
		return err
	}
	if err := exec("RESET maintenance_work_mem"); err != nil {
		return err
	}
	r.logf("load: %d events in %s", n, time.Since(t0).Round(time.Second))
	r.store = s
	return nil
}

// copyGenerated streams cfg.Events generated rows into table through one
// COPY, keeping the samples W3 asks about. The generator runs in its own
// goroutine, a few chunks ahead.
func (r *run) copyGenerated(ctx context.Context, conn *pgxpool.Conn, table pgx.Identifier) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chunks := make(chan [][]any, 4)
	genErr := make(chan error, 1)
	go func() {
		defer close(chunks)
		g := r.source()
		sr := rand.New(rand.NewPCG(r.cfg.Seed, 99))
		batch := make([]trail.Event, 0, loadChunk)
		for written := 0; written < r.cfg.Events; written += len(batch) {
			batch = batch[:0]
			rows := make([][]any, 0, loadChunk)
			for range min(loadChunk, r.cfg.Events-written) {
				ev := g.next()
				row, err := rawRow(&ev)
				if err != nil {
					genErr <- err
					return
				}
				batch = append(batch, ev)
				rows = append(rows, row)
			}
			r.keepSamples(batch, written, sr)
			select {
			case chunks <- rows:
			case <-ctx.Done():
				return
			}
		}
		genErr <- nil
	}()
	src := &chunkSource{chunks: chunks, log: func(n int) {
		if step := max(r.cfg.Events/10, 1); n%step < loadChunk && n >= step {
			r.logf("load: %d/%d events", n, r.cfg.Events)
		}
	}}
	n, err := conn.CopyFrom(ctx, table, copyColumns, src)
	cancel()
	for range chunks { // let the generator finish
	}
	if err != nil {
		return n, fmt.Errorf("bench: load: COPY: %w", err)
	}
	if err := <-genErr; err != nil {
		return n, fmt.Errorf("bench: load: %w", err)
	}
	return n, nil
}

// chunkSource is a pgx.CopyFromSource over a channel of row chunks.
type chunkSource struct {
	chunks <-chan [][]any
	cur    [][]any
	i, n   int
	log    func(n int)
}

func (c *chunkSource) Next() bool {
	c.i++
	if c.i < len(c.cur) {
		return true
	}
	c.n += len(c.cur)
	if c.log != nil && len(c.cur) > 0 {
		c.log(c.n)
	}
	for {
		rows, ok := <-c.chunks
		if !ok {
			return false
		}
		if len(rows) > 0 {
			c.cur, c.i = rows, 0
			return true
		}
	}
}

func (c *chunkSource) Values() ([]any, error) { return c.cur[c.i], nil }
func (c *chunkSource) Err() error             { return nil }

// reuse opens the schema cfg.Schema names, kept by an earlier run, brings it
// up to date, and samples the questions' parameters from its generated rows.
// cfg.Events becomes its number of events.
func (r *run) reuse(ctx context.Context) error {
	s, err := trailpgx.New(ctx, r.pool, &trailpgx.Config{Schema: r.cfg.Schema})
	if err != nil {
		return err
	}
	if err := s.Migrate(ctx); err != nil {
		return fmt.Errorf("bench: migrate %s: %w", r.cfg.Schema, err)
	}
	events := pgx.Identifier{r.cfg.Schema, "events"}.Sanitize()
	var n int64
	if err := r.pool.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{r.cfg.Schema, "events"}.Sanitize()).Scan(&n); err != nil {
		return fmt.Errorf("bench: reuse: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("bench: reuse: %s holds no events", r.cfg.Schema)
	}
	r.cfg.Events = int(n)
	// A uniform sample of the generated rows (not the audit.read events of
	// earlier ui runs); end is when they were generated.
	pct := min(100, 100*2.0*samplesKept/float64(n))
	rows, err := r.pool.Query(ctx, fmt.Sprintf(`SELECT id, tenant, actor_id, action, target_type, target_id, description, occurred_at, recorded_at
		FROM %s TABLESAMPLE BERNOULLI (%f) REPEATABLE (%d) WHERE source = 'bench' LIMIT %d`, events, pct, r.cfg.Seed, samplesKept))
	if err != nil {
		return fmt.Errorf("bench: reuse: %w", err)
	}
	defer rows.Close()
	sr := rand.New(rand.NewPCG(r.cfg.Seed, 99))
	r.samples = r.samples[:0]
	for rows.Next() {
		var ev trail.Event
		if err := rows.Scan(&ev.ID, &ev.Tenant, &ev.Actor.ID, &ev.Action, &ev.Target.Type, &ev.Target.ID, &ev.Description, &ev.OccurredAt, &ev.RecordedAt); err != nil {
			return fmt.Errorf("bench: reuse: %w", err)
		}
		r.end = ev.RecordedAt
		r.samples = append(r.samples, sampleOf(&ev, sr))
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("bench: reuse: %w", err)
	}
	if len(r.samples) == 0 {
		return fmt.Errorf("bench: reuse: no generated rows in %s", r.cfg.Schema)
	}
	r.logf("reusing %s: %d events, %d samples", r.cfg.Schema, n, len(r.samples))
	r.store = s
	return nil
}
