package trailcli

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/testenv"
)

type pgAttack struct {
	dsn, key string
}

func (s *pgAttack) args() []string { return []string{"--postgres", s.dsn, "--signing-key-file", s.key} }

func (s *pgAttack) append(t *testing.T, evs []trail.Event) {
	t.Helper()
	st := openPostgres(t, s.dsn)
	defer st.Close()
	if _, err := st.Append(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
}

// exec runs stmts as a superuser with every trigger off (the append-only
// guards included), in one transaction.
func (s *pgAttack) exec(t *testing.T, stmts ...string) {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, s.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL session_replication_role = replica"); err != nil {
			return err
		}
		for _, q := range stmts {
			if _, err := tx.Exec(ctx, q); err != nil {
				t.Errorf("%s: %v", q, err)
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// backup copies the database (CREATE DATABASE … TEMPLATE, no session may
// be open on it) and returns the copy's args.
func (s *pgAttack) backup(t *testing.T) []string {
	t.Helper()
	ctx := context.Background()
	u, err := url.Parse(s.dsn)
	if err != nil {
		t.Fatal(err)
	}
	orig := u.Path[1:]
	copyDSN := freshPostgresDB(t) // a name of its own, dropped at the end
	cu, _ := url.Parse(copyDSN)
	name := cu.Path[1:]
	admin, err := pgx.Connect(ctx, testenv.PostgresDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	for _, q := range []string{"DROP DATABASE " + name, "CREATE DATABASE " + name + " TEMPLATE " + orig} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return []string{"--postgres", copyDSN, "--signing-key-file", s.key}
}

func (s *pgAttack) seal(table string) string { return "trail.seal_" + table }

func (s *pgAttack) deleteTenantSQL(tenant string) []string {
	var out []string
	for _, q := range []string{
		"DELETE FROM trail.events WHERE tenant = '%s'",
		"DELETE FROM trail.seal_leaves WHERE log = '%s'", "DELETE FROM trail.seal_hashes WHERE log = '%s'",
		"DELETE FROM trail.seal_logs WHERE log = '%s'", "DELETE FROM trail.seal_checkpoints WHERE log = '%s'",
	} {
		out = append(out, fmt.Sprintf(q, tenant))
	}
	return out
}

func (s *pgAttack) editSQL() []string {
	return []string{"UPDATE trail.events SET description = 'rewritten' WHERE id = (SELECT event_id FROM trail.seal_leaves WHERE log = 'acme' AND seq = 8)"}
}

func (s *pgAttack) repend(t *testing.T, tenant string) {
	s.exec(t, fmt.Sprintf(`INSERT INTO trail.seal_pending (event_id, tenant, occurred_at) SELECT i.id, i.tenant, i.occurred_at FROM trail.events i
		WHERE i.tenant = '%s' AND NOT EXISTS (SELECT 1 FROM trail.seal_leaves l WHERE l.event_id = i.id) ORDER BY i.occurred_at`, tenant))
}

func TestWitnessCatchesRollbackAndDeletionPostgres(t *testing.T) {
	runWitnessAttacks(t, newPGAttack)
}

func newPGAttack(t *testing.T) attackStore {
	key := filepath.Join(t.TempDir(), "signing.key")
	mustRun(t, "", env{}, "keys", "signing", "generate", "--signing-key-file", key)
	dsn := freshPostgresDB(t)
	openPostgres(t, dsn).Close() // migrated
	return &pgAttack{dsn: dsn, key: key}
}
