package trailpgx_test

import (
	"context"
	"strings"
	"testing"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailpgx"
)

// compiledBodies returns the source of the table's compiled capture
// functions (insert, update, delete).
func compiledBodies(t *testing.T, s *trailpgx.Store, tbl string) []string {
	t.Helper()
	rows, err := testPool(t).Query(context.Background(), `SELECT prosrc FROM pg_proc
		WHERE pronamespace = $1::regnamespace AND proname IN ('capture_' || $2::regclass::oid || '_insert',
			'capture_' || $2::regclass::oid || '_update', 'capture_' || $2::regclass::oid || '_delete') ORDER BY proname`,
		s.Schema(), tbl)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var src string
		if err := rows.Scan(&src); err != nil {
			t.Fatal(err)
		}
		out = append(out, src)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) != 3 {
		t.Fatalf("%d compiled capture functions, want 3", len(out))
	}
	return out
}

// With the event trigger on ALTER TABLE (migration 0012, installed when the
// migrating role is a superuser, as here), the compiled capture functions
// read no catalog on a statement: no column check, and an ALTER TABLE
// recompiles them at once. A column added after enable that the deny-list
// matches is redacted by the recompiled statement, a dropped one is gone
// from it, a renamed one recorded under its new name; the functions still
// check nothing per statement.
func TestCaptureRecompiledOnAlterTable(t *testing.T) {
	t.Parallel()
	f := newCaptureFixture(t)
	var watched bool
	if err := testPool(t).QueryRow(context.Background(), "SELECT "+f.s.Schema()+".capture_watched()").Scan(&watched); err != nil {
		t.Fatal(err)
	}
	if !watched {
		t.Fatal("capture_watched() = false: the migration did not install the event trigger trail_capture_ddl")
	}
	f.enable(t, trailpgx.CaptureOptions{TenantColumn: "tenant_id", Ignore: []string{"updated_at"}})
	noCheck := func(when string) {
		t.Helper()
		for _, src := range compiledBodies(t, f.s, f.tbl) {
			if strings.Contains(src, "capture_signature") || strings.Contains(src, "capture_sql") {
				t.Errorf("%s: a compiled capture function reads the catalog per statement:\n%s", when, src)
			}
		}
	}
	noCheck("after enable")
	mustExec(t, `INSERT INTO `+f.tbl+` (id, tenant_id, plan) VALUES (1, 'acme', 'free')`)
	mustExec(t, `ALTER TABLE `+f.tbl+` ADD COLUMN api_token text, DROP COLUMN prefs`)
	mustExec(t, `ALTER TABLE `+f.tbl+` RENAME COLUMN note TO remark`)
	noCheck("after ALTER TABLE")
	if src := compiledBodies(t, f.s, f.tbl)[2]; !strings.Contains(src, "'api_token', 'redacted', true") || strings.Contains(src, "prefs") ||
		!strings.Contains(src, "remark") || strings.Contains(src, "'note'") {
		t.Errorf("update function not recompiled for the new columns:\n%s", src)
	}
	mustExec(t, `UPDATE `+f.tbl+` SET api_token = 'tok-s3cr3t', remark = 'hello', plan = 'pro' WHERE id = 1`)
	evs := all(t, f.s, trail.Query{Tenant: "acme", TargetType: "accounts", TargetID: "1", Action: "accounts.update"})
	if len(evs) != 1 {
		t.Fatalf("%d update events, want 1", len(evs))
	}
	var got []string
	for _, c := range evs[0].Changes {
		s := c.Field
		if c.Redacted {
			s += "=redacted"
		} else {
			s += "=" + string(c.New)
		}
		got = append(got, s)
	}
	if want := `api_token=redacted plan="pro" remark="hello"`; strings.Join(got, " ") != want {
		t.Errorf("changes %s, want %s", strings.Join(got, " "), want)
	}
	if n := eventRowsContaining(t, f.s, "tok-s3cr3t"); n != 0 {
		t.Errorf("%d events hold the token added after enable in clear", n)
	}
}

// The key columns are the ones the capture was enabled with (trigger
// arguments), not read again: an ALTER TABLE that drops the primary key
// (and adds a column) recompiles the capture, which keeps naming targets by
// the old key and records the new column.
func TestCaptureAlterDropsKey(t *testing.T) {
	t.Parallel()
	f := newCaptureFixture(t)
	f.enable(t, trailpgx.CaptureOptions{TenantColumn: "tenant_id"})
	mustExec(t, `INSERT INTO `+f.tbl+` (id, tenant_id, plan) VALUES (1, 'acme', 'free')`)
	mustExec(t, `ALTER TABLE `+f.tbl+` DROP CONSTRAINT accounts_pkey, ADD COLUMN region text`)
	mustExec(t, `UPDATE `+f.tbl+` SET region = 'eu' WHERE id = 1`)
	evs := all(t, f.s, trail.Query{Tenant: "acme", TargetType: "accounts", TargetID: "1", Action: "accounts.update"})
	if len(evs) != 1 {
		t.Fatalf("%d update events after the ALTER, want 1", len(evs))
	}
	if c := evs[0].Changes; len(c) != 1 || c[0].Field != "region" || string(c[0].New) != `"eu"` {
		t.Errorf("changes %+v, want region → \"eu\"", c)
	}
}
