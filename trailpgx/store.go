package trailpgx

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/trailhq/trail"
)

// Config configures a Store. A nil *Config means every default.
type Config struct {
	// Schema holds Trail's tables and functions. Default: "trail". Tests use
	// one schema each so that they run in parallel on one database.
	Schema string
	// ReaderRole is the role whose reads row-level security limits to the
	// tenant named by the transaction setting trail.tenant. Default:
	// "trail_reader". Roles are cluster-wide: every schema shares them.
	ReaderRole string
	// WriterRole may append and read every event. Default: "trail_writer".
	// Grant it to the roles your services connect as.
	WriterRole string
	// MonthsAhead is how many monthly partitions Migrate creates beyond the
	// current month. Default: 3. Appends create any other month on demand.
	MonthsAhead int
	// CopyThreshold is the batch size from which Append and AppendTx switch
	// from one INSERT … SELECT FROM unnest(…) statement to COPY. Default: 256.
	CopyThreshold int
	// Now is the clock that stamps RecordedAt on events that arrive without
	// one. Default: time.Now.
	Now func() time.Time
}

var identRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

func (c *Config) withDefaults() (Config, error) {
	var out Config
	if c != nil {
		out = *c
	}
	if out.Schema == "" {
		out.Schema = "trail"
	}
	if out.ReaderRole == "" {
		out.ReaderRole = "trail_reader"
	}
	if out.WriterRole == "" {
		out.WriterRole = "trail_writer"
	}
	for _, v := range []struct{ name, val string }{{"Schema", out.Schema}, {"ReaderRole", out.ReaderRole}, {"WriterRole", out.WriterRole}} {
		if !identRE.MatchString(v.val) {
			return out, fmt.Errorf("trailpgx: Config.%s %q must be a lower-case SQL identifier (a-z, 0-9, _; at most 63 bytes)", v.name, v.val)
		}
	}
	if out.MonthsAhead <= 0 {
		out.MonthsAhead = 3
	}
	if out.CopyThreshold <= 0 {
		out.CopyThreshold = 256
	}
	if out.Now == nil {
		out.Now = time.Now
	}
	return out, nil
}

// Acquirer lends the store a connection for the duration of fn. *pgxpool.Pool
// is adapted by New; trailsql adapts a *sql.DB through database/sql's Raw.
// The connection must not be inside a transaction: the store runs its own,
// and some reads set LOCAL planner settings (query.go, genericRead) that
// would otherwise last until the lender's transaction ends.
type Acquirer func(ctx context.Context, fn func(*pgx.Conn) error) error

// Store is the PostgreSQL store. It is safe for concurrent use.
type Store struct {
	cfg     Config
	schema  string // quoted identifier
	acquire Acquirer
	closeFn func()
	parts   partitionCache
	sql     statements
}

var _ trail.TxStore[pgx.Tx] = (*Store)(nil)

// New returns a store using pool. It checks that the server answers but does
// not change the database: call Migrate once at start-up (or run `trail
// migrate`). The pool stays the caller's: Close does not close it. A bare
// store records nothing by itself: NewClient builds the client (with the
// privacy layer) over it in one call.
func New(ctx context.Context, pool *pgxpool.Pool, cfg *Config) (*Store, error) {
	if pool == nil {
		return nil, errors.New("trailpgx: New: pool is nil")
	}
	s, err := NewWithAcquirer(ctx, func(ctx context.Context, fn func(*pgx.Conn) error) error {
		return pool.AcquireFunc(ctx, func(c *pgxpool.Conn) error { return fn(c.Conn()) })
	}, cfg)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// NewWithAcquirer is New for connections lent by acquire; trailsql uses it to
// run the store over a *sql.DB.
func NewWithAcquirer(ctx context.Context, acquire Acquirer, cfg *Config) (*Store, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Store{cfg: c, schema: pgx.Identifier{c.Schema}.Sanitize(), acquire: acquire}
	s.sql = newStatements(s.schema)
	if err := s.with(ctx, func(conn *pgx.Conn) error { return conn.Ping(ctx) }); err != nil {
		return nil, connectError(err)
	}
	return s, nil
}

// Open connects to the PostgreSQL server at dsn (a URL or key=value string)
// and returns a store that owns its pool: Close closes it.
func Open(ctx context.Context, dsn string, cfg *Config) (*Store, error) {
	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("trailpgx: bad PostgreSQL DSN: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("trailpgx: %w", err)
	}
	s, err := New(ctx, pool, cfg)
	if err != nil {
		pool.Close()
		return nil, err
	}
	s.closeFn = pool.Close
	return s, nil
}

func connectError(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return fmt.Errorf("trailpgx: PostgreSQL refused the connection: %w", err)
	}
	return fmt.Errorf("trailpgx: cannot connect to PostgreSQL: %w", err)
}

// Close releases the pool if Open created it.
func (s *Store) Close() error {
	if s.closeFn != nil {
		s.closeFn()
	}
	return nil
}

// Schema returns the schema the store lives in.
func (s *Store) Schema() string { return s.cfg.Schema }

// ConcurrentAppends is 2: PostgreSQL writes concurrently, and a server
// (trailserver.ConcurrentAppender) with two audit.read appends in flight
// beside ingest kept read and ingest p99 lower than with one (BENCHMARKS.md,
// "Mixed load"); four did no better and hold more of the pool's
// connections (pgxpool's default: 4 on 2 CPUs).
func (s *Store) ConcurrentAppends() int { return 2 }

func (s *Store) with(ctx context.Context, fn func(*pgx.Conn) error) error {
	return s.acquire(ctx, fn)
}

// Partitions. The store remembers which months have a partition, so that an
// append normally costs no DDL check at all; a month it has not seen is
// created through ensure_partitions on a separate connection before the
// insert, never inside the caller's transaction (creating a partition locks
// the events table until the creating transaction ends).

type partitionCache struct {
	mu     sync.Mutex
	loaded bool
	months map[int]bool
	// aheadTried is when the store last tried to create the months ahead of
	// the clock, so that a failure (lock timeout) is retried hourly, not on
	// every append.
	aheadTried time.Time
}

func (p *partitionCache) reset() {
	p.mu.Lock()
	p.loaded = false
	p.months = nil
	p.mu.Unlock()
}

// monthIndex numbers UTC months: year*12 + month-1.
func monthIndex(t time.Time) int {
	t = t.UTC()
	return t.Year()*12 + int(t.Month()) - 1
}

func monthStart(i int) time.Time {
	return time.Date(i/12, time.Month(i%12+1), 1, 0, 0, 0, 0, time.UTC)
}

// ensureFor makes sure every month of events has a partition.
func (s *Store) ensureFor(ctx context.Context, events []trail.Event) error {
	var missing []int
	s.parts.mu.Lock()
	loaded := s.parts.loaded
	s.parts.mu.Unlock()
	if !loaded {
		if err := s.loadPartitions(ctx); err != nil {
			return err
		}
	}
	s.parts.mu.Lock()
	seen := map[int]bool{}
	for i := range events {
		m := monthIndex(events[i].OccurredAt)
		if !s.parts.months[m] && !seen[m] {
			seen[m] = true
			missing = append(missing, m)
		}
	}
	// Keep Config.MonthsAhead months ahead of the clock, so that a
	// long-running process never creates the current month's partition in
	// the hot path. Best effort: the events at hand do not need them.
	var ahead []int
	now := s.cfg.Now()
	if cur := monthIndex(now); !s.parts.months[cur+1] && now.Sub(s.parts.aheadTried) > time.Hour {
		s.parts.aheadTried = now
		for i := 0; i <= s.cfg.MonthsAhead; i++ {
			if !s.parts.months[cur+i] && !seen[cur+i] {
				ahead = append(ahead, cur+i)
			}
		}
	}
	s.parts.mu.Unlock()
	if len(ahead) > 0 {
		_ = s.ensureMonths(ctx, ahead)
	}
	if len(missing) == 0 {
		return nil
	}
	return s.ensureMonths(ctx, missing)
}

func (s *Store) ensureMonths(ctx context.Context, months []int) error {
	ts := make([]time.Time, len(months))
	for i, m := range months {
		ts[i] = monthStart(m)
	}
	err := s.with(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, "SELECT "+s.schema+".ensure_partitions($1)", ts)
		return err
	})
	if err != nil {
		return fmt.Errorf("trailpgx: create partitions: %w", err)
	}
	s.parts.mu.Lock()
	if s.parts.months == nil {
		s.parts.months = map[int]bool{}
	}
	for _, m := range months {
		s.parts.months[m] = true
	}
	s.parts.mu.Unlock()
	return nil
}

func (s *Store) loadPartitions(ctx context.Context) error {
	months := map[int]bool{}
	err := s.with(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
			WHERE i.inhparent = to_regclass($1)`, s.cfg.Schema+".events")
		if err != nil {
			return err
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, n := range names {
			d, ok := strings.CutPrefix(n, "events_p")
			if !ok || len(d) != 6 {
				continue
			}
			v, err := strconv.Atoi(d)
			if err != nil {
				continue
			}
			months[(v/100)*12+v%100-1] = true
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("trailpgx: list partitions: %w", err)
	}
	s.parts.mu.Lock()
	s.parts.months, s.parts.loaded = months, true
	s.parts.mu.Unlock()
	return nil
}

// isNoPartition reports the error of an insert into a month whose partition
// was dropped behind the cache's back (by retention).
func isNoPartition(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23514" && strings.Contains(pgErr.Message, "no partition")
}

// BindReader makes login role role a reader of tenant's events only: it
// grants the reader role to role and binds role to tenant by session_user,
// which SQL run in the session cannot change (unlike trail.tenant). The role
// must exist. Binding again moves it to another tenant.
func (s *Store) BindReader(ctx context.Context, role, tenant string) error {
	if !trail.ValidTenant(tenant) {
		return fmt.Errorf("trailpgx: BindReader: %q is not a valid tenant", tenant)
	}
	return s.with(ctx, func(c *pgx.Conn) error {
		return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "GRANT "+pgx.Identifier{s.cfg.ReaderRole}.Sanitize()+" TO "+pgx.Identifier{role}.Sanitize()); err != nil {
				return fmt.Errorf("trailpgx: BindReader: %w", err)
			}
			_, err := tx.Exec(ctx, "INSERT INTO "+s.schema+".reader_tenants (role, tenant) VALUES ($1, $2) ON CONFLICT (role) DO UPDATE SET tenant = excluded.tenant", role, tenant)
			if err != nil {
				return fmt.Errorf("trailpgx: BindReader: %w", err)
			}
			return nil
		})
	})
}
