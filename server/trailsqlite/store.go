package trailsqlite

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/migrate"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

//go:embed migrations/*.up.sql
var migrationFS embed.FS

// Config configures a Store. A nil *Config means every default.
type Config struct {
	// SkipMigrate leaves the schema alone on Open; the caller runs Migrate (or
	// `trail migrate`) itself. Default false: Open migrates.
	SkipMigrate bool
	// BusyTimeout is how long a writer waits for another writer's lock before
	// failing with SQLITE_BUSY. Default 10s.
	BusyTimeout time.Duration
	// Synchronous is SQLite's synchronous pragma: "FULL" (default: an event is
	// on disk when Append returns, even across a power failure) or "NORMAL"
	// (WAL's faster mode: survives a crash of the process, may lose the last
	// commits on power loss).
	Synchronous string
	// MaxOpenConns bounds the connection pool. Default 0: database/sql's
	// default (unbounded); writers still take turns on SQLite's write lock.
	MaxOpenConns int
	// Now stamps RecordedAt on events appended without one. Default time.Now.
	Now func() time.Time
}

// Store is the embedded SQLite store. It implements trail.TxStore[*sql.Tx]
// and is safe for concurrent use.
type Store struct {
	db   *sql.DB
	path string
	cfg  Config
	mig  *migrate.Migrator

	mu    sync.Mutex
	stmts map[int]*sql.Stmt // prepared INSERTs of a full chunk and of one event

	wq writeQueue // the store's writers' turns at the write lock (writer.go)
}

var (
	_ trail.Store            = (*Store)(nil)
	_ trail.TxStore[*sql.Tx] = (*Store)(nil)
)

// ErrNotTrailDatabase is matched by the error Open returns for a file that
// is not an SQLite database, or whose schema Trail cannot read.
var ErrNotTrailDatabase = errors.New("not a Trail database")

const sqliteHeader = "SQLite format 3\x00"

// Open opens (creating if needed) the database file at path and, unless cfg
// says SkipMigrate, brings its schema up to date. The database runs in WAL
// mode (readers never block the writer), with a busy timeout, foreign keys
// on, and every transaction begun IMMEDIATE so that two writers queue on the
// lock instead of deadlocking when a reader upgrades to a writer.
//
// A new file is created with mode 0600, owner only (SQLite gives its -wal
// and -shm files the same mode); an existing file keeps its mode.
//
// A file that is not an SQLite database is refused with an error naming the
// path and matching ErrNotTrailDatabase, and is not written to.
func Open(ctx context.Context, path string, cfg *Config) (*Store, error) {
	s := &Store{path: path}
	if cfg != nil {
		s.cfg = *cfg
	}
	if s.cfg.BusyTimeout <= 0 {
		s.cfg.BusyTimeout = 10 * time.Second
	}
	if s.cfg.Now == nil {
		s.cfg.Now = time.Now
	}
	switch strings.ToUpper(s.cfg.Synchronous) {
	case "":
		s.cfg.Synchronous = "FULL"
	case "FULL", "NORMAL", "OFF", "EXTRA":
		s.cfg.Synchronous = strings.ToUpper(s.cfg.Synchronous)
	default:
		return nil, fmt.Errorf("trailsqlite: Config.Synchronous %q must be FULL or NORMAL", s.cfg.Synchronous)
	}
	if path == "" {
		return nil, errors.New("trailsqlite: empty database path")
	}
	if path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("trailsqlite: %s: give a file path (WAL mode needs a file; use a temporary directory for throwaway stores)", path)
	}
	if err := checkFile(path); err != nil {
		return nil, err
	}
	ms, err := migrate.Load(migrationFS, "migrations")
	if err != nil {
		return nil, fmt.Errorf("trailsqlite: %w", err)
	}
	if s.mig, err = migrate.New(ms, nil); err != nil {
		return nil, fmt.Errorf("trailsqlite: %w", err)
	}
	db, err := sql.Open("sqlite", s.dsn())
	if err != nil {
		return nil, fmt.Errorf("trailsqlite: open %s: %w", path, err)
	}
	if s.cfg.MaxOpenConns > 0 {
		db.SetMaxOpenConns(s.cfg.MaxOpenConns)
	}
	db.SetMaxIdleConns(max(4, s.cfg.MaxOpenConns))
	s.db = db
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, s.openErr(err)
	}
	// Read the schema once: this is where a damaged file first fails.
	if _, err := s.mig.Status(ctx, migrate.SQLDB(db)); err != nil {
		db.Close()
		if errors.Is(err, migrate.ErrTooNew) {
			return nil, fmt.Errorf("trailsqlite: %s: %w", path, err)
		}
		return nil, s.openErr(err)
	}
	if !s.cfg.SkipMigrate {
		if err := s.Migrate(ctx); err != nil {
			db.Close()
			return nil, err
		}
	}
	return s, nil
}

func (s *Store) openErr(err error) error {
	msg := err.Error()
	if strings.Contains(msg, "not a database") || strings.Contains(msg, "malformed") || strings.Contains(msg, "SQLITE_CORRUPT") || strings.Contains(msg, "SQLITE_NOTADB") {
		return fmt.Errorf("trailsqlite: %s: %w (file is not a database or is damaged): %v", s.path, ErrNotTrailDatabase, err)
	}
	return fmt.Errorf("trailsqlite: open %s: %w", s.path, err)
}

// fileMode is the mode Open creates a new database file with: the events
// and the privacy layer's wrapped keys are readable by their owner only.
// SQLite gives the -wal and -shm files it creates beside the database the
// database file's mode. An existing file keeps its mode.
const fileMode os.FileMode = 0o600

// checkFile refuses, before SQLite touches it, an existing file that is not
// an SQLite database: opening it in WAL mode would otherwise create -wal and
// -shm files next to someone else's data. A missing file is created empty
// with fileMode, so that SQLite never creates it with its default 0644.
func checkFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		nf, cerr := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileMode)
		if cerr == nil {
			return nf.Close()
		}
		if !errors.Is(cerr, os.ErrExist) {
			return fmt.Errorf("trailsqlite: create %s: %w", path, cerr)
		}
		f, err = os.Open(path) // another process created it first: check it
	}
	if err != nil {
		return fmt.Errorf("trailsqlite: open %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("trailsqlite: open %s: %w", path, err)
	}
	if fi.IsDir() {
		return fmt.Errorf("trailsqlite: %s is a directory, not a database file", path)
	}
	if fi.Size() == 0 {
		return nil // a new, empty database
	}
	var hdr [len(sqliteHeader)]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil || string(hdr[:]) != sqliteHeader {
		return fmt.Errorf("trailsqlite: %s: %w (file is not a database: no SQLite header)", path, ErrNotTrailDatabase)
	}
	return nil
}

// The page cache and the memory map, per connection. SQLite's default
// cache (2 MiB) holds the indexes of some 50,000 events: past that, every
// insert into an index in random key order (target, actor and action)
// read its page back with a system call, and ingest cost about twice as
// much at 100,000 events as into an empty file (BENCHMARKS.md, "SQLite ingest as the file grows"). The
// map lets reads of pages not in the cache come from the operating
// system's cache without a copy; it reserves address space, not memory.
const (
	pageCacheKiB = 64 << 10 // 64 MiB, the upper bound, allocated as pages are used
	mmapBytes    = 1 << 30
)

func (s *Store) dsn() string {
	p := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(s.path)
	return fmt.Sprintf("file:%s?_txlock=immediate&_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=temp_store(MEMORY)&_pragma=synchronous(%s)"+
		"&_pragma=cache_size(%d)&_pragma=mmap_size(%d)",
		p, s.cfg.BusyTimeout.Milliseconds(), s.cfg.Synchronous, -pageCacheKiB, mmapBytes)
}

// Migrate brings the schema up to date. Open does it unless
// Config.SkipMigrate; running it again is harmless.
func (s *Store) Migrate(ctx context.Context) error {
	if _, err := s.mig.Up(ctx, migrate.SQLDB(s.db)); err != nil {
		return fmt.Errorf("trailsqlite: %s: %w", s.path, err)
	}
	return nil
}

// SchemaVersion returns the database's schema version and the latest this
// binary knows.
func (s *Store) SchemaVersion(ctx context.Context) (current, latest int, err error) {
	v, err := s.mig.Status(ctx, migrate.SQLDB(s.db))
	return v, s.mig.Latest(), err
}

// DB returns the store's database handle, for the caller's own tables in the
// same file and for beginning the transactions AppendTx writes in. Its
// transactions begin IMMEDIATE (they take the write lock at once, so two of
// them queue instead of deadlocking); begin with sql.TxOptions{ReadOnly: true}
// for a read-only transaction that should not wait for writers.
func (s *Store) DB() *sql.DB { return s.db }

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

// Close closes the database. It first lets SQLite refresh the statistics its
// query planner uses (PRAGMA optimize, bounded by analysis_limit), as SQLite
// recommends for long-lived connections; a failure there is not an error.
func (s *Store) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	s.db.ExecContext(ctx, "PRAGMA analysis_limit = 400; PRAGMA optimize")
	s.mu.Lock()
	for _, st := range s.stmts {
		st.Close()
	}
	s.stmts = nil
	s.mu.Unlock()
	return s.db.Close()
}

// Append stores events in one transaction: all or none. It waits for its
// turn behind the store's other writers (writer.go), then for the write
// lock.
func (s *Store) Append(ctx context.Context, events []trail.Event) ([]trail.Result, error) {
	if err := checkEvents(events); err != nil {
		return nil, err
	}
	return s.appendTurn(ctx, appendWriter, func() []trail.Event { return events }, false)
}

// AppendGathered is Append of the events gather returns, which it calls once
// this writer has its turn and holds the write lock: a caller that groups
// events (the server's audit.read groups) takes in everything that arrived
// while it waited, instead of leaving it for a turn of its own. gather is
// called once; when it returns no events nothing is written.
func (s *Store) AppendGathered(ctx context.Context, gather func() []trail.Event) ([]trail.Result, error) {
	return s.appendTurn(ctx, gatherWriter, gather, true)
}

// appendTurn is Append and AppendGathered, writers of kind k; check says
// whether the events gather returns are still to be checked.
func (s *Store) appendTurn(ctx context.Context, k writerClass, gather func() []trail.Event, check bool) ([]trail.Result, error) {
	if err := s.wq.acquire(ctx, k); err != nil {
		return nil, fmt.Errorf("trailsqlite: append: wait for the writer's turn: %w", err)
	}
	defer s.wq.release()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("trailsqlite: append: begin: %w", err)
	}
	events := gather()
	if len(events) == 0 {
		tx.Rollback()
		return nil, nil
	}
	if check {
		if err := checkEvents(events); err != nil {
			tx.Rollback()
			return nil, err
		}
	}
	res, err := s.insert(ctx, tx, events, true)
	if err != nil {
		tx.Rollback()
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("trailsqlite: append: commit: %w", err)
	}
	return res, nil
}

// AppendTx stores events inside the caller's transaction tx, which must come
// from DB(): they exist if and only if tx commits. It neither commits nor
// rolls back; on error the caller should roll back.
func (s *Store) AppendTx(ctx context.Context, tx *sql.Tx, events []trail.Event) ([]trail.Result, error) {
	if tx == nil {
		return nil, errors.New("trailsqlite: AppendTx: nil transaction")
	}
	if err := checkEvents(events); err != nil {
		return nil, err
	}
	return s.insert(ctx, tx, events, false)
}

// checkEvents rejects events a store must never write: Append's contract is
// normalized, valid events (trail.Client guarantees it); this catches the
// mistakes that would corrupt the table or the order, cheaply.
func checkEvents(events []trail.Event) error {
	for i := range events {
		if err := trail.CheckStorable(&events[i]); err != nil {
			return fmt.Errorf("trailsqlite: append: event %d: %w", i, err)
		}
	}
	return nil
}

const insertCols = `id, occurred_at, recorded_at, tenant, actor_type, actor_id, actor_name, actor_email, actor_ip,
	actor_user_agent, on_behalf_of, action, target_type, target_id, target_name, outcome, description,
	changes, metadata, request_id, trace_id, source, schema_version, span_id, actor_name_digest, actor_email_digest`

const nInsertCols = 26

// maxRowsPerInsert bounds one multi-row INSERT: 26 parameters a row stays
// under SQLite's limit of 32766 bound parameters.
const maxRowsPerInsert = 1000

// insertSQL returns the statement inserting n events, doing nothing for an ID
// already stored, and returning the IDs it did insert. OR IGNORE rather than
// ON CONFLICT (id) DO NOTHING: with no constraint that may abort the
// statement (and no trigger, see indexChunk), SQLite keeps no statement
// journal, which copied every index page the chunk touched.
// The columns' other constraints (NOT NULL, the id's length) hold by
// construction in encoder.args; a row they would drop comes back as a
// "duplicate" that CheckDuplicates finds missing, an error.
func insertSQL(n int) string {
	return "INSERT OR IGNORE INTO trail_events (" + insertCols + ") VALUES " + insertRow + strings.Repeat(","+insertRow, n-1) +
		" RETURNING seq, id"
}

// stmt returns the prepared INSERT of n events, or nil to parse it on the
// spot: for the caller's transactions (which might come from another handle),
// and for sizes not worth a statement kept for the store's lifetime.
func (s *Store) stmt(ctx context.Context, n int, own bool) *sql.Stmt {
	if !own || (n != 1 && n != maxRowsPerInsert) {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.stmts[n]; st != nil {
		return st
	}
	st, err := s.db.PrepareContext(ctx, insertSQL(n))
	if err != nil {
		return nil // e.g. not migrated yet: the unprepared path reports it
	}
	if s.stmts == nil {
		s.stmts = map[int]*sql.Stmt{}
	}
	s.stmts[n] = st
	return st
}

var insertRow = "(?" + strings.Repeat(",?", nInsertCols-1) + ")"

// insert writes events with one multi-row INSERT per maxRowsPerInsert events.
// Rows are inserted in batch order, so of two events with one ID the first
// is inserted and the second reported as a duplicate. One statement per
// chunk rather than per event matters: FTS5 flushes its pending terms to
// disk at every statement boundary, which made per-row inserts twice as slow.
//
// own is true when tx is the store's own transaction, so that the statements
// prepared once on the store's handle can be used: parsing a 1,000-row INSERT
// with its triggers costs about as much as a tenth of executing it.
func (s *Store) insert(ctx context.Context, tx *sql.Tx, events []trail.Event, own bool) ([]trail.Result, error) {
	if len(events) == 0 {
		return nil, nil
	}
	now := s.cfg.Now().UTC().Truncate(time.Microsecond)
	res := make([]trail.Result, len(events))
	var enc encoder
	args := make([]any, min(len(events), maxRowsPerInsert)*nInsertCols)
	inserted := make(map[uuid.UUID]bool, len(events))
	var seqs []int64
	for lo := 0; lo < len(events); lo += maxRowsPerInsert {
		chunk := events[lo:min(lo+maxRowsPerInsert, len(events))]
		a := args[:len(chunk)*nInsertCols]
		for i := range chunk {
			ev := &chunk[i]
			rec := ev.RecordedAt
			if rec.IsZero() {
				rec = now
			}
			res[lo+i] = trail.Result{ID: ev.ID, RecordedAt: rec}
			if err := enc.args(ev, rec, a[i*nInsertCols:(i+1)*nInsertCols]); err != nil {
				return nil, fmt.Errorf("trailsqlite: append: event %d: %w", lo+i, err)
			}
		}
		var rows *sql.Rows
		var err error
		if st := s.stmt(ctx, len(chunk), own); st != nil {
			rows, err = tx.StmtContext(ctx, st).QueryContext(ctx, a...)
		} else {
			rows, err = tx.QueryContext(ctx, insertSQL(len(chunk)), a...)
		}
		if err != nil {
			return nil, fmt.Errorf("trailsqlite: append: %w", err)
		}
		seqs = seqs[:0]
		for rows.Next() {
			var id []byte
			var seq int64
			if err := rows.Scan(&seq, &id); err != nil {
				rows.Close()
				return nil, fmt.Errorf("trailsqlite: append: %w", err)
			}
			u, err := uuid.FromBytes(id)
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("trailsqlite: append: returned id: %w", err)
			}
			inserted[u] = true
			seqs = append(seqs, seq)
		}
		if err := rows.Close(); err != nil {
			return nil, fmt.Errorf("trailsqlite: append: %w", err)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("trailsqlite: append: %w", err)
		}
		// Index the new events' descriptions and queue them for sealing,
		// in the same transaction (index.go).
		if err := indexChunk(ctx, tx, seqs); err != nil {
			return nil, err
		}
	}
	var dup []bool
	for i := range res {
		if inserted[res[i].ID] {
			delete(inserted, res[i].ID) // a later copy in the batch is a duplicate
			continue
		}
		res[i].Duplicate = true
		res[i].RecordedAt = time.Time{}
		if dup == nil {
			dup = make([]bool, len(res))
		}
		dup[i] = true
	}
	if dup != nil {
		if err := trail.CheckDuplicates(events, dup, func(ids []uuid.UUID) (map[uuid.UUID]trail.Event, error) {
			return heldEvents(ctx, tx, ids)
		}); err != nil {
			return nil, fmt.Errorf("trailsqlite: append: %w", err)
		}
	}
	return res, nil
}

// heldEvents reads the identity (trail.SameEvent's fields) of the stored
// events with ids, in tx.
func heldEvents(ctx context.Context, tx *sql.Tx, ids []uuid.UUID) (map[uuid.UUID]trail.Event, error) {
	out := make(map[uuid.UUID]trail.Event, len(ids))
	for lo := 0; lo < len(ids); lo += 500 {
		chunk := ids[lo:min(lo+500, len(ids))]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id[:]
		}
		rows, err := tx.QueryContext(ctx, `SELECT id, tenant, action, actor_type, actor_id, target_type, target_id, outcome
			FROM trail_events WHERE id IN (?`+strings.Repeat(",?", len(chunk)-1)+`)`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id []byte
			var ev trail.Event
			var actorType, outcome string
			if err := rows.Scan(&id, &ev.Tenant, &ev.Action, &actorType, &ev.Actor.ID, &ev.Target.Type, &ev.Target.ID, &outcome); err != nil {
				rows.Close()
				return nil, err
			}
			if ev.ID, err = uuid.FromBytes(id); err != nil {
				rows.Close()
				return nil, err
			}
			ev.Actor.Type, ev.Outcome = trail.ActorType(actorType), trail.Outcome(outcome)
			out[ev.ID] = ev
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// encoder turns events into column values, reusing its buffer.
type encoder struct {
	buf []byte
}

func (e *encoder) args(ev *trail.Event, rec time.Time, a []any) error {
	a[0] = ev.ID[:]
	a[1] = ev.OccurredAt.UnixMicro()
	a[2] = rec.UnixMicro()
	a[3] = ev.Tenant
	a[4] = string(ev.Actor.Type)
	a[5] = ev.Actor.ID
	a[6] = ev.Actor.Name
	a[7] = ev.Actor.Email
	a[8] = ev.Actor.IP
	a[9] = ev.Actor.UserAgent
	a[10] = nil
	if ev.Actor.OnBehalfOf != nil {
		b, err := e.json(ev.Actor.OnBehalfOf)
		if err != nil {
			return fmt.Errorf("actor.on_behalf_of: %w", err)
		}
		a[10] = b
	}
	a[11] = ev.Action
	a[12] = ev.Target.Type
	a[13] = ev.Target.ID
	a[14] = ev.Target.Name
	a[15] = string(ev.Outcome)
	a[16] = ev.Description
	a[17] = nil
	if len(ev.Changes) > 0 {
		b, err := appendChanges(e.buf[:0], ev.Changes)
		if err != nil {
			return fmt.Errorf("changes: %w", err)
		}
		a[17] = string(b)
		e.buf = b
	}
	a[18] = nil
	if len(ev.Metadata) > 0 {
		b, err := appendValue(e.buf[:0], ev.Metadata)
		if err != nil {
			return fmt.Errorf("metadata: %w", err)
		}
		a[18] = string(b)
		e.buf = b
	}
	a[19] = ev.RequestID
	a[20] = ev.TraceID
	a[21] = ev.Source
	a[22] = int64(ev.SchemaVersion)
	a[23] = ev.SpanID
	a[24] = digestArg(&ev.Lookup.ActorName)
	a[25] = digestArg(&ev.Lookup.ActorEmail)
	return nil
}

// digestArg is a trail.Digest as a BLOB parameter: NULL for none.
func digestArg(d *trail.Digest) any {
	if d.IsZero() {
		return nil
	}
	return d[:]
}

// json encodes v (an on_behalf_of actor) with encoding/json.
func (e *encoder) json(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}
