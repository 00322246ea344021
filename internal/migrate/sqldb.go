package migrate

import (
	"context"
	"database/sql"
)

// SQLDB adapts a database/sql handle to DB. Transactions begin with the
// handle's default options; the SQLite store opens its handle with
// _txlock=immediate so that each migration holds the write lock from its
// first statement.
func SQLDB(db *sql.DB) DB { return sqlDB{db} }

type sqlDB struct{ db *sql.DB }

func (d sqlDB) Begin(ctx context.Context) (Tx, error) {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	return sqlTx{tx}, nil
}

type sqlTx struct{ tx *sql.Tx }

func (t sqlTx) Exec(ctx context.Context, q string) error {
	_, err := t.tx.ExecContext(ctx, q)
	return err
}

func (t sqlTx) QueryInts(ctx context.Context, q string) ([]int64, error) {
	return queryCol[int64](ctx, t.tx, q)
}

func (t sqlTx) QueryStrings(ctx context.Context, q string) ([]string, error) {
	return queryCol[string](ctx, t.tx, q)
}

func queryCol[T any](ctx context.Context, tx *sql.Tx, q string) ([]T, error) {
	rows, err := tx.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func (t sqlTx) Commit(context.Context) error   { return t.tx.Commit() }
func (t sqlTx) Rollback(context.Context) error { return t.tx.Rollback() }
