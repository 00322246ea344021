package trailarchive

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailseal"
)

// SQLite is the Backend of the embedded store (tables of migration
// 0003_retention).
type SQLite struct {
	S *trailsqlite.Store
	// Now is the clock for updated_at and since; default time.Now.
	Now func() time.Time
}

// NewSQLite returns the Backend of s.
func NewSQLite(s *trailsqlite.Store) *SQLite { return &SQLite{S: s, Now: time.Now} }

// Log implements Backend.
func (b *SQLite) Log() trailseal.Store { return b.S }

type queryer interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

func readSet(ctx context.Context, q queryer) (*Set, error) {
	s := &Set{}
	rows, err := q.QueryContext(ctx, `SELECT tenant, action, keep_hours, then_do FROM trail_retention_policies ORDER BY tenant, action`)
	if err != nil {
		return nil, fmt.Errorf("trailarchive: read policies: %w", err)
	}
	for rows.Next() {
		var p Policy
		var h int64
		if err := rows.Scan(&p.Tenant, &p.Action, &h, &p.Then); err != nil {
			rows.Close()
			return nil, err
		}
		p.Keep = time.Duration(h) * time.Hour
		s.Policies = append(s.Policies, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = q.QueryContext(ctx, `SELECT tenant, subject, reason, min_keep_hours, since FROM trail_retention_holds ORDER BY tenant, subject`)
	if err != nil {
		return nil, fmt.Errorf("trailarchive: read holds: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var h Hold
		var mk, since int64
		if err := rows.Scan(&h.Tenant, &h.Subject, &h.Reason, &mk, &since); err != nil {
			return nil, err
		}
		h.MinKeep = time.Duration(mk) * time.Hour
		h.Since = time.UnixMicro(since).UTC()
		s.Holds = append(s.Holds, h)
	}
	return s, rows.Err()
}

// Set implements Backend.
func (b *SQLite) Set(ctx context.Context) (*Set, error) { return readSet(ctx, b.S.DB()) }

func (b *SQLite) tx(ctx context.Context, f func(tx *sql.Tx) error) error {
	tx, err := b.S.DB().BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("trailarchive: %w", err)
	}
	defer tx.Rollback()
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// SetPolicy implements Backend.
func (b *SQLite) SetPolicy(ctx context.Context, p Policy) error {
	if p.Keep%time.Hour != 0 {
		return fmt.Errorf("%w: keep must be whole hours", ErrInvalidPolicy)
	}
	return b.tx(ctx, func(tx *sql.Tx) error {
		s, err := readSet(ctx, tx)
		if err != nil {
			return err
		}
		if err := s.CheckSet(p); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO trail_retention_policies (tenant, action, keep_hours, then_do, updated_at)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant, action) DO UPDATE SET keep_hours = excluded.keep_hours,
			then_do = excluded.then_do, updated_at = excluded.updated_at`,
			p.Tenant, p.Action, int64(p.Keep/time.Hour), string(p.Then), b.Now().UnixMicro())
		return err
	})
}

// DeletePolicy implements Backend.
func (b *SQLite) DeletePolicy(ctx context.Context, tenant, action string) (bool, error) {
	r, err := b.S.DB().ExecContext(ctx, `DELETE FROM trail_retention_policies WHERE tenant = ? AND action = ?`, tenant, action)
	if err != nil {
		return false, err
	}
	n, _ := r.RowsAffected()
	return n > 0, nil
}

// PutHold implements Backend.
func (b *SQLite) PutHold(ctx context.Context, h Hold) error {
	if err := h.Validate(); err != nil {
		return err
	}
	_, err := b.S.DB().ExecContext(ctx, `INSERT INTO trail_retention_holds (tenant, subject, reason, min_keep_hours, since)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant, subject) DO UPDATE SET reason = excluded.reason,
		min_keep_hours = excluded.min_keep_hours`,
		h.Tenant, h.Subject, h.Reason, int64(h.MinKeep/time.Hour), b.Now().UnixMicro())
	return err
}

// ReleaseHold implements Backend.
func (b *SQLite) ReleaseHold(ctx context.Context, tenant, subject string) (bool, error) {
	r, err := b.S.DB().ExecContext(ctx, `DELETE FROM trail_retention_holds WHERE tenant = ? AND subject = ?`, tenant, subject)
	if err != nil {
		return false, err
	}
	n, _ := r.RowsAffected()
	return n > 0, nil
}

// Purge implements Backend: one IMMEDIATE transaction re-reads the holds,
// deletes the events and records the purged seqs.
func (b *SQLite) Purge(ctx context.Context, log string, leaves []trailseal.SealedEvent, archive string) (int64, error) {
	var n int64
	err := b.tx(ctx, func(tx *sql.Tx) error {
		s, err := readSet(ctx, tx)
		if err != nil {
			return err
		}
		seqOf := make(map[[16]byte]int64, len(leaves))
		var ids []any
		for _, l := range leaves {
			if l.Event == nil {
				continue
			}
			if h, held := s.Held(l.Event); held {
				return fmt.Errorf("%w: tenant %s%s, event %s", ErrHeld, h.Tenant, subjectSuffix(h), l.EventID)
			}
			seqOf[l.EventID] = l.Seq
			ids = append(ids, l.EventID[:])
		}
		// One statement per chunk of IDs: FTS5 flushes its index at every
		// statement, so row-by-row deletes cost a flush per event.
		var seqs []int64
		for len(ids) > 0 {
			chunk := ids[:min(len(ids), 500)]
			ids = ids[len(chunk):]
			q := "DELETE FROM trail_events WHERE id IN (?" + strings.Repeat(",?", len(chunk)-1) + ") RETURNING id"
			rows, err := tx.QueryContext(ctx, q, chunk...)
			if err != nil {
				return fmt.Errorf("trailarchive: purge: %w", err)
			}
			for rows.Next() {
				var id []byte
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return err
				}
				seq, ok := seqOf[[16]byte(id)]
				if !ok {
					rows.Close()
					return fmt.Errorf("trailarchive: purge deleted an unexpected row")
				}
				seqs = append(seqs, seq)
				n++
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return fmt.Errorf("trailarchive: purge: %w", err)
			}
		}
		now := b.Now().UnixMicro()
		for _, r := range ranges(seqs) {
			if _, err := tx.ExecContext(ctx, `INSERT INTO trail_seal_purges (log, seq_from, seq_to, archive, purged_at) VALUES (?, ?, ?, ?, ?)`,
				log, r.From, r.To, archive, now); err != nil {
				return fmt.Errorf("trailarchive: record purge: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrHeld) {
			return 0, err
		}
		return 0, fmt.Errorf("trailarchive: purge %s: %w", log, err)
	}
	return n, nil
}

// Purged implements Backend.
func (b *SQLite) Purged(ctx context.Context, log string) ([]PurgedRange, error) {
	rows, err := b.S.DB().QueryContext(ctx, `SELECT seq_from, seq_to, archive FROM trail_seal_purges WHERE log = ? ORDER BY seq_from`, log)
	if err != nil {
		return nil, fmt.Errorf("trailarchive: purged ranges of %q: %w", log, err)
	}
	defer rows.Close()
	var out []PurgedRange
	for rows.Next() {
		var r PurgedRange
		if err := rows.Scan(&r.From, &r.To, &r.Archive); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func subjectSuffix(h Hold) string {
	if h.Subject == "" {
		return ""
	}
	return " subject " + h.Subject
}

// ranges turns seqs into sorted half-open ranges of consecutive seqs.
func ranges(seqs []int64) []trailseal.SeqRange {
	s := slices.Clone(seqs)
	slices.Sort(s)
	s = slices.Compact(s)
	var out []trailseal.SeqRange
	for _, q := range s {
		if n := len(out); n > 0 && out[n-1].To == q {
			out[n-1].To++
			continue
		}
		out = append(out, trailseal.SeqRange{From: q, To: q + 1})
	}
	return out
}
