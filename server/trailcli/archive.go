package trailcli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailarchive"
	"github.com/trailhq/trail/trailseal"
)

// ArchiveCmd is `trail archive`.
type ArchiveCmd struct {
	List    ArchiveListCmd    `cmd:"" help:"List the archived batches (tenant, date, events, files)."`
	Verify  ArchiveVerifyCmd  `cmd:"" help:"Check archived batches: manifest signatures, file SHA-256, and every event against its leaf."`
	Restore ArchiveRestoreCmd `cmd:"" help:"Print archived events as JSON Lines (verified first)."`
}

// ArchiveSelect picks batches.
type ArchiveSelect struct {
	Tenant string `placeholder:"T" help:"Only this tenant's batches (_platform: the platform events)."`
	From   string `placeholder:"YYYY-MM-DD" help:"Batches recorded on or after this day (UTC)."`
	To     string `placeholder:"YYYY-MM-DD" help:"Batches recorded on or before this day (UTC)."`
}

func (s *ArchiveSelect) selection() (trailarchive.Selection, error) {
	for _, d := range []struct{ flag, v string }{{"--from", s.From}, {"--to", s.To}} {
		if d.v == "" {
			continue
		}
		if _, err := time.Parse(time.DateOnly, d.v); err != nil {
			return trailarchive.Selection{}, Usagef("%s %q: want YYYY-MM-DD", d.flag, d.v)
		}
	}
	return trailarchive.Selection{Tenant: s.Tenant, From: s.From, To: s.To}, nil
}

type archiveOpen struct {
	SigningFlags
	ArchiveFlags
	PublicKey []string `name:"public-key" placeholder:"KEY|FILE" help:"Trust this manifest/checkpoint verifier key (default: the configured signing key's). Repeatable."`
}

// open opens the target and the trusted keys. postgres is the PostgreSQL
// deployment the archive came from (--postgres): its key is never beside a
// SQLite file, so it must be configured.
func (o *archiveOpen) open(e *Env, postgres string) (*trailarchive.Archive, error) {
	t, err := readTarget(e, &o.ArchiveFlags)
	if err != nil {
		return nil, err
	}
	if err := needConfiguredKey(postgres, &o.SigningFlags, o.PublicKey); err != nil {
		return nil, err
	}
	vs, err := archiveVerifiers(e, &o.SigningFlags, o.PublicKey)
	if err != nil {
		return nil, err
	}
	return &trailarchive.Archive{Target: t, Verifiers: vs, Origin: o.origin()}, nil
}

// openSelected opens the archive and then checks the batch selection, the
// common start of the archive commands that read batches.
func openSelected(e *Env, o *archiveOpen, postgres string, s *ArchiveSelect) (*trailarchive.Archive, trailarchive.Selection, error) {
	a, err := o.open(e, postgres)
	if err != nil {
		return nil, trailarchive.Selection{}, err
	}
	sel, err := s.selection()
	if err != nil {
		return nil, trailarchive.Selection{}, err
	}
	return a, sel, nil
}

// ArchiveListCmd is `trail archive list`.
type ArchiveListCmd struct {
	archiveOpen
	ArchiveSelect
	PostgresFlag
}

// Run lists the batches.
func (c *ArchiveListCmd) Run(e *Env) error {
	a, sel, err := openSelected(e, &c.archiveOpen, c.Postgres, &c.ArchiveSelect)
	if err != nil {
		return err
	}
	// Every manifest version: one per batch, or one for many (version 3).
	// A manifest that cannot be read or checked is named on stderr and
	// the listing goes on; the command then fails (exit 1).
	var bad int
	ms, err := a.BatchesSkipping(e.Ctx, sel, func(key string, err error) {
		bad++
		fmt.Fprintf(e.Stderr, "trail: archive list: %s\n", oneLine(err.Error()))
	})
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tDATE\tEVENTS\tBYTES\tSEQS\tBATCH")
	for _, m := range ms {
		// A shared file counts for its share of rows.
		var bytes int64
		for _, f := range m.Files {
			if f.FileRows > 0 {
				bytes += f.Bytes * f.Rows / f.FileRows
			} else {
				bytes += f.Bytes
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d..%d\t%s\n", m.Log, m.Date, m.Rows, bytes, m.Seqs[0].From, m.Seqs[len(m.Seqs)-1].To-1, m.Batch)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	switch {
	case bad == 1:
		return errors.New("archive list: 1 manifest could not be read or verified (named above); run trail archive verify")
	case bad > 1:
		return fmt.Errorf("archive list: %d manifests could not be read or verified (named above); run trail archive verify", bad)
	}
	return nil
}

// ArchiveVerifyCmd is `trail archive verify`.
type ArchiveVerifyCmd struct {
	archiveOpen
	ArchiveSelect
	PostgresFlag
	NoStore bool `name:"no-store" help:"Do not compare with the store's leaves (the store is gone or elsewhere): signatures and hashes only."`
	JSON    bool `name:"json" help:"Print the report as JSON."`
}

// Run verifies and exits 1 on any problem.
func (c *ArchiveVerifyCmd) Run(e *Env) error {
	a, sel, err := openSelected(e, &c.archiveOpen, c.Postgres, &c.ArchiveSelect)
	if err != nil {
		return err
	}
	var log trailseal.Store
	if !c.NoStore {
		st, _, closeStore, err := e.openSealed(c.Postgres, false) // integrity.go
		if err != nil {
			return err
		}
		defer closeStore()
		log = st
	}
	rep, err := a.Verify(e.Ctx, log, sel)
	if err != nil {
		return err
	}
	if c.JSON {
		if err := json.NewEncoder(e.Stdout).Encode(rep); err != nil {
			return err
		}
	} else {
		for _, p := range rep.Problems {
			fmt.Fprintln(e.Stdout, oneLine(p.String()))
		}
	}
	if len(rep.Problems) > 0 {
		return fmt.Errorf("archive verification failed: %d problems in %d batches (%d events read)", len(rep.Problems), rep.Batches, rep.Events)
	}
	if !c.JSON {
		against := "their leaves in the store"
		if c.NoStore {
			against = "their manifests only"
		}
		fmt.Fprintf(e.Stdout, "OK: %d batches, %d archived events verified against %s.\n", rep.Batches, rep.Events, against)
	}
	return nil
}

// ArchiveRestoreCmd is `trail archive restore`.
type ArchiveRestoreCmd struct {
	archiveOpen
	ArchiveSelect
	PostgresFlag
}

// Run prints the events of the selected batches as JSON Lines, oldest
// batch first. The events are as stored (protected fields stay protected,
// unlike `trail query --archive`, which reveals them);
// they are not written back into the store, whose log already seals them.
func (c *ArchiveRestoreCmd) Run(e *Env) error {
	if c.Tenant == "" {
		return Usagef("--tenant is required (restore one tenant at a time)")
	}
	a, sel, err := openSelected(e, &c.archiveOpen, c.Postgres, &c.ArchiveSelect)
	if err != nil {
		return err
	}
	evs, err := a.Events(e.Ctx, sel)
	if err != nil {
		if errors.Is(err, trailarchive.ErrBadManifest) {
			return fmt.Errorf("%w (nothing restored)", err)
		}
		return err
	}
	return writeJSONLines(e.Stdout, evs)
}

// queryArchive runs q over the archive for `trail query --archive`.
// Archived events are in their stored form: they are revealed with the
// privacy keys of the store they came from (PostgreSQL when postgres is
// set, else --db), like `trail query` (privacy.go).
func (e *Env) queryArchive(o *archiveOpen, postgres string, q trail.Query, asJSON bool) error {
	a, err := o.open(e, postgres)
	if err != nil {
		return err
	}
	page, err := a.Query(e.Ctx, q)
	if err != nil {
		return err
	}
	b, err := e.openEvents(postgres, false) // store.go
	if err != nil {
		return fmt.Errorf("the store's keys are needed to read archived events: %w", err)
	}
	defer b.close()
	if err := e.revealEvents(b.p, page.Events); err != nil {
		return err
	}
	return e.printPage(page, asJSON, "no archived events match", printTable)
}

// needConfiguredKey refuses, for a PostgreSQL deployment, to fall back on the
// signing key beside a SQLite file: a server database's key is configured
// (--signing-key-file, $TRAIL_SIGNING_KEY) or its public key given.
func needConfiguredKey(postgres string, sf *SigningFlags, publicKeys []string) error {
	if postgres == "" || len(publicKeys) > 0 || sf.SigningKeyFile != "" || os.Getenv(trailseal.SigningKeyEnv) != "" {
		return nil
	}
	return Usagef("--postgres: give the checkpoint verifier key (--public-key KEY|FILE) or the signing key (--signing-key-file, $%s)", trailseal.SigningKeyEnv)
}

// readTarget opens the archive target to read: a directory must exist (a
// mistyped path would otherwise read as an empty archive).
func readTarget(e *Env, f *ArchiveFlags) (trailarchive.Target, error) {
	t, err := f.target(e)
	if err != nil {
		return nil, err
	}
	if d, ok := t.(*trailarchive.Dir); ok {
		if _, err := os.Stat(d.Root); err != nil {
			return nil, Usagef("--archive-to: %v", err)
		}
	}
	return t, nil
}
