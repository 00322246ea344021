package trailcli

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailpgx"
	"github.com/trailhq/trail/trailprivacy"
	"github.com/trailhq/trail/trailseal"
)

// keyCheck is what verify found in the privacy layer's key table: problems
// (reported like the log's, kind named) and a note when part of the check
// could not run.
type keyCheck struct {
	problems []trailseal.Problem
	note     string
}

// checkKeys checks the data-key table beside the events
// (trailprivacy.KeyAudit): every destroyed key has its privacy.forget event
// and every such event its destroyed key; every live key unwraps under the
// master key for its own tenant, subject and ID; every key the events use
// has its row, of the right subject. Without a master key the unwrap check
// is skipped, and said so; a store without a key table has nothing to
// check. tenant, when set, limits the report to that tenant.
func checkKeys(ctx context.Context, e *Env, st trailseal.Store, postgres, tenant string) (*keyCheck, error) {
	events, ok := st.(trail.Store)
	if !ok {
		return &keyCheck{}, nil
	}
	mk := trailprivacy.MasterKeyConfig{Env: os.Getenv("TRAIL_MASTER_KEY"), File: e.Globals.MasterKeyFile}
	switch s := st.(type) {
	case *trailsqlite.Store:
		var present bool
		if err := s.DB().QueryRowContext(ctx, `SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'trail_subject_keys'`).Scan(&present); err != nil {
			return nil, fmt.Errorf("key table: %w", err)
		}
		if mk.Env == "" && mk.File == "" {
			// Never created here: verify reads, it does not set up.
			if _, err := os.Stat(s.Path() + ".master.key"); err == nil {
				mk.File = s.Path() + ".master.key"
			}
		}
		return runKeyAudit(ctx, events, trailprivacy.NewSQLKeyStore(s.DB()), mk, present, tenant)
	case *trailpgx.Store:
		db, err := sql.Open("pgx", postgres)
		if err != nil {
			return nil, fmt.Errorf("open PostgreSQL for data keys: %w", err)
		}
		defer db.Close()
		ks, err := trailprivacy.NewSQLKeyStoreIn(db, s.Schema())
		if err != nil {
			return nil, err
		}
		var reg sql.NullString
		if err := db.QueryRowContext(ctx, `SELECT to_regclass(quote_ident($1) || '.trail_subject_keys')::text`, s.Schema()).Scan(&reg); err != nil {
			return nil, fmt.Errorf("key table: %w", err)
		}
		return runKeyAudit(ctx, events, ks, mk, reg.Valid, tenant)
	}
	return &keyCheck{}, nil
}

func runKeyAudit(ctx context.Context, events trail.Store, ks *trailprivacy.SQLKeyStore, mk trailprivacy.MasterKeyConfig, present bool, tenant string) (*keyCheck, error) {
	out := &keyCheck{}
	if !present {
		return out, nil // no privacy layer was ever used: no keys to check
	}
	audit := &trailprivacy.KeyAudit{}
	if mk.Env != "" || mk.File != "" {
		kms, _, err := trailprivacy.OpenMasterKey(mk)
		if err != nil {
			return nil, fmt.Errorf("master key: %w", err)
		}
		audit.KMS = kms
	} else {
		out.note = "note: no master key (TRAIL_MASTER_KEY, --master-key-file): the data keys were not unwrapped, so wrapped keys swapped between subjects are not detected."
	}
	q := trail.Query{AllTenants: true, Limit: trail.MaxLimit}
	for {
		page, err := events.Query(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("read events for the key check: %w", err)
		}
		for i := range page.Events {
			audit.AddEvent(&page.Events[i])
		}
		if page.Next == "" {
			break
		}
		q.Cursor = page.Next
	}
	ps, err := audit.Check(ctx, ks)
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		if tenant != "" && p.Tenant != trailseal.TenantOf(trailseal.LogName(tenant)) {
			continue
		}
		var d strings.Builder
		fmt.Fprintf(&d, "subject %s", p.Subject)
		if p.KeyID != "" {
			fmt.Fprintf(&d, " key %s", p.KeyID)
		}
		if p.Events > 0 {
			fmt.Fprintf(&d, " (%d events)", p.Events)
		}
		if p.Detail != "" {
			d.WriteString(": " + p.Detail)
		}
		out.problems = append(out.problems, trailseal.Problem{Tenant: p.Tenant, Log: trailseal.LogName(p.Tenant), Seq: -1, With: -1,
			Kind: trailseal.Kind(p.Kind), EventID: p.EventID, Detail: d.String()})
	}
	return out, nil
}

// addKeyProblems runs checkKeys and adds its problems to rep; its note goes
// to stderr.
func addKeyProblems(e *Env, st trailseal.Store, postgres, tenant string, rep *trailseal.Report) error {
	kc, err := checkKeys(e.Ctx, e, st, postgres, tenant)
	if err != nil {
		return fmt.Errorf("key check: %w", err)
	}
	rep.Problems = append(rep.Problems, kc.problems...)
	if kc.note != "" {
		fmt.Fprintln(e.Stderr, kc.note)
	}
	return nil
}
