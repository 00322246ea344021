package trailpgx

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/trailhq/trail"
)

// Beginner starts transactions: *pgxpool.Pool and *pgx.Conn are Beginners.
type Beginner interface {
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
}

// Transaction settings that BeginTx sets from the context, for trigger
// capture and for row-level security (trail.tenant). They are local to the
// transaction: they vanish at COMMIT or ROLLBACK, so a pooled connection
// never carries one request's tenant into the next.
const (
	SettingActor     = "trail.actor"      // "type:id", e.g. "user:42"
	SettingTenant    = "trail.tenant"     // the tenant ID
	SettingRequestID = "trail.request_id" // the request ID
)

// BeginTx begins a transaction on db and sets trail.actor, trail.tenant and
// trail.request_id from ctx (trail.WithActor, WithTenant, WithRequest) with
// set_config(…, true), once for the whole transaction. The settings travel
// with BEGIN in one simple-protocol message: no extra round trip. Settings
// the context does not carry are set to the empty string, which reads as
// not set.
func BeginTx(ctx context.Context, db Beginner, opts pgx.TxOptions) (pgx.Tx, error) {
	begin, err := beginSQL(ctx, opts)
	if err != nil {
		return nil, err
	}
	opts.BeginQuery = begin
	tx, err := db.BeginTx(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("trailpgx: begin: %w", err)
	}
	return tx, nil
}

// SettingsSQL returns the SELECT set_config(…) statement that BeginTx sends
// after BEGIN, with the context's values as literals.
func SettingsSQL(ctx context.Context) (string, error) {
	var actor, tenant, request string
	if a, ok := trail.ActorFrom(ctx); ok && !a.IsZero() {
		actor = a.String()
	}
	if t, ok := trail.TenantFrom(ctx); ok {
		tenant = t
	}
	if r, ok := trail.RequestFrom(ctx); ok {
		request = r.ID
	}
	var b strings.Builder
	b.WriteString("SELECT ")
	for i, kv := range [][2]string{{SettingActor, actor}, {SettingTenant, tenant}, {SettingRequestID, request}} {
		if strings.IndexByte(kv[1], 0) >= 0 {
			return "", fmt.Errorf("trailpgx: %s from the context contains a NUL byte", kv[0])
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "set_config('%s', %s, true)", kv[0], quoteLiteral(kv[1]))
	}
	return b.String(), nil
}

func beginSQL(ctx context.Context, opts pgx.TxOptions) (string, error) {
	set, err := SettingsSQL(ctx)
	if err != nil {
		return "", err
	}
	begin := opts.BeginQuery
	if begin == "" {
		var b strings.Builder
		b.WriteString("BEGIN")
		if opts.IsoLevel != "" {
			b.WriteString(" ISOLATION LEVEL " + string(opts.IsoLevel))
		}
		if opts.AccessMode != "" {
			b.WriteString(" " + string(opts.AccessMode))
		}
		if opts.DeferrableMode != "" {
			b.WriteString(" " + string(opts.DeferrableMode))
		}
		begin = b.String()
	}
	return begin + "; " + set, nil
}

// WithTx runs fn in a transaction begun by BeginTx: it commits when fn
// returns nil, and rolls back when fn returns an error or panics (the panic
// then continues). Whatever fn recorded with RecordTx exists if and only if
// the transaction commits.
func WithTx(ctx context.Context, db Beginner, fn func(tx pgx.Tx) error) (err error) {
	tx, err := BeginTx(ctx, db, pgx.TxOptions{})
	if err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
			panic(p)
		}
	}()
	if err := fn(tx); err != nil {
		if rbErr := tx.Rollback(context.WithoutCancel(ctx)); rbErr != nil && !errors.Is(rbErr, pgx.ErrTxClosed) {
			return errors.Join(err, fmt.Errorf("trailpgx: rollback: %w", rbErr))
		}
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return fmt.Errorf("trailpgx: commit: %w", err)
	}
	return nil
}

// The default client behind the package-level RecordTx.
var (
	defaultClient atomic.Pointer[trail.Client[pgx.Tx]]
	defaultOnce   sync.Mutex
)

// SetDefault makes c the client used by the package-level RecordTx.
func SetDefault(c *trail.Client[pgx.Tx]) { defaultClient.Store(c) }

// RecordTx records ev in tx, the caller's transaction, with the default
// client: the one given to SetDefault, else the first made by NewClient,
// else one made on first use over the schema "trail" of tx's database with
// the privacy layer of a zero trailprivacy.Setup (master key from
// TRAIL_MASTER_KEY; without one, RecordTx fails and says how to set it).
// The client fills the event from ctx. The event exists if and only if tx
// commits. It is one statement, one round trip, on tx's connection.
func RecordTx(ctx context.Context, tx pgx.Tx, ev trail.Event) (trail.Result, error) {
	c := defaultClient.Load()
	if c == nil {
		var err error
		if c, err = lazyDefault(ctx, tx); err != nil {
			return trail.Result{}, err
		}
	}
	return c.RecordTx(ctx, tx, ev)
}

// defaultSchema is the schema of the lazily made default client; tests
// change it.
var defaultSchema = "trail"

func lazyDefault(ctx context.Context, tx pgx.Tx) (*trail.Client[pgx.Tx], error) {
	defaultOnce.Lock()
	defer defaultOnce.Unlock()
	if c := defaultClient.Load(); c != nil {
		return c, nil
	}
	if tx == nil || tx.Conn() == nil {
		return nil, errors.New("trailpgx: RecordTx: tx is nil")
	}
	// The default store has no pool: it opens a short-lived side connection
	// with tx's settings when it must create a partition (never inside the
	// caller's transaction) or list them (once). The key store does the
	// same through database/sql.
	cfg := tx.Conn().Config().Copy()
	c, _ := (&Config{Schema: defaultSchema}).withDefaults()
	s := &Store{cfg: c, schema: pgx.Identifier{c.Schema}.Sanitize()}
	s.sql = newStatements(s.schema)
	s.acquire = func(ctx context.Context, fn func(*pgx.Conn) error) error {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return err
		}
		defer conn.Close(context.WithoutCancel(ctx))
		return fn(conn)
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxIdleConns(1)
	client, err := newPrivateClient(context.WithoutCancel(ctx), s, db, ClientConfig{})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("trailpgx: RecordTx: no default client (call trailpgx.NewClient once at start-up): %w", err)
	}
	defaultClient.Store(client)
	return client, nil
}

// Queue prepares events with client (context, defaults, validation, as
// RecordTx does) and queues their insert on batch, which the caller sends
// with its own statements (tx.SendBatch): the audit write then rides the
// business statements' round trip instead of taking one of its own. The
// results are filled in when the batch's results are read (Close or Exec on
// pgx.BatchResults); the events exist if and only if the transaction the
// batch runs in commits. client's store must be a *Store.
func Queue(ctx context.Context, client *trail.Client[pgx.Tx], batch *pgx.Batch, events ...trail.Event) ([]trail.Result, error) {
	s, ok := client.Store().(*Store)
	if !ok {
		return nil, errors.New("trailpgx: Queue: the client's store is not a *trailpgx.Store")
	}
	if len(events) == 0 {
		return nil, errors.New("trailpgx: Queue: no events")
	}
	prepared := make([]trail.Event, len(events))
	for i, ev := range events {
		p, err := client.Prepare(ctx, ev)
		if err != nil {
			return nil, err
		}
		prepared[i] = p
	}
	b, err := s.prepare(prepared)
	if err != nil {
		return nil, err
	}
	if err := s.ensureFor(ctx, prepared); err != nil {
		return nil, err
	}
	q, args := b.statement(s)
	batch.Queue(q, args...).Query(func(rows pgx.Rows) error {
		ids, err := pgx.CollectRows(rows, pgx.RowTo[pgtype.UUID])
		for _, id := range ids {
			b.stored(id.Bytes)
		}
		return err
	})
	return b.results, nil
}
