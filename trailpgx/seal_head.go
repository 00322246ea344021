package trailpgx

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/tlog"
)

var _ trailseal.HeadStore = (*Store)(nil)

// SaveHead implements trailseal.HeadStore, fenced like SaveCheckpoint.
func (s *Store) SaveHead(ctx context.Context, fence trailseal.Fence, h trailseal.Head) error {
	lines := trailseal.MarshalHeadEntries(h.Entries)
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := s.checkFence(ctx, tx, fence); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO `+s.schema+`.seal_heads (logs, root, entries, note, created_at) VALUES ($1, $2, $3, $4, $5)`,
			len(h.Entries), h.Root[:], string(lines), h.Note, h.Time)
		return err
	})
	if err != nil && !errors.Is(err, trailseal.ErrFenced) {
		return fmt.Errorf("trailpgx: save head: %w", err)
	}
	return err
}

// LatestHead implements trailseal.HeadStore. A row whose entries do not
// parse is returned with the note only, so that verify reports it.
func (s *Store) LatestHead(ctx context.Context) (trailseal.Head, error) {
	var h trailseal.Head
	var root []byte
	var entries string
	err := s.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT root, entries, note, created_at FROM `+s.schema+`.seal_heads ORDER BY id DESC LIMIT 1`).
			Scan(&root, &entries, &h.Note, &h.Time)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return h, trailseal.ErrNoHead
	}
	if err != nil {
		return h, fmt.Errorf("trailpgx: latest head: %w", err)
	}
	if len(root) == tlog.HashSize {
		h.Root = tlog.Hash(root)
	}
	h.Time = h.Time.UTC()
	h.Entries, _ = trailseal.ParseHeadEntries([]byte(entries))
	return h, nil
}
