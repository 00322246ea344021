package trailsqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/tlog"
)

var _ trailseal.HeadStore = (*Store)(nil)

// SaveHead implements trailseal.HeadStore, fenced like SaveCheckpoint.
func (s *Store) SaveHead(ctx context.Context, fence trailseal.Fence, h trailseal.Head) error {
	lines := trailseal.MarshalHeadEntries(h.Entries)
	err := s.sealTx(ctx, func(tx *sql.Tx) error {
		if err := checkFence(ctx, tx, fence); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO trail_seal_heads (logs, root, entries, note, created_at) VALUES (?, ?, ?, ?, ?)`,
			len(h.Entries), h.Root[:], string(lines), h.Note, h.Time.UnixMicro())
		return err
	})
	if err != nil && !errors.Is(err, trailseal.ErrFenced) {
		return fmt.Errorf("trailsqlite: save head: %w", err)
	}
	return err
}

// LatestHead implements trailseal.HeadStore. A row whose entries do not
// parse is returned with the note only, so that verify reports it instead
// of the read failing.
func (s *Store) LatestHead(ctx context.Context) (trailseal.Head, error) {
	var h trailseal.Head
	var root []byte
	var entries string
	var at int64
	err := s.db.QueryRowContext(ctx, `SELECT root, entries, note, created_at FROM trail_seal_heads ORDER BY id DESC LIMIT 1`).
		Scan(&root, &entries, &h.Note, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return h, trailseal.ErrNoHead
	}
	if err != nil {
		return h, fmt.Errorf("trailsqlite: latest head: %w", err)
	}
	if len(root) == tlog.HashSize {
		h.Root = tlog.Hash(root)
	}
	h.Time = time.UnixMicro(at).UTC()
	h.Entries, _ = trailseal.ParseHeadEntries([]byte(entries))
	return h, nil
}
