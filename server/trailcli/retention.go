package trailcli

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailarchive"
	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/note"
)

// ArchiveFlags name the archive target.
type ArchiveFlags struct {
	ArchiveTo string `name:"archive-to" env:"TRAIL_ARCHIVE" placeholder:"DIR|s3://bucket/prefix" help:"Where archives go: a directory or s3://bucket/prefix (S3: AWS_* credentials, TRAIL_S3_ENDPOINT)."`
}

// ArchiveWriteFlags shape the archive files a retention run writes.
type ArchiveWriteFlags struct {
	// FileBytes is trailarchive.Config.FileBytes.
	FileBytes int64 `name:"archive-file-bytes" env:"TRAIL_ARCHIVE_FILE_BYTES" placeholder:"BYTES" help:"Size at which an archive Parquet file written by a run is cut (small tenants' days share files, big tenants' span several). Default 67108864 (64 MiB); 1 gives every batch a file of its own."`
}

func (f *ArchiveFlags) target(e *Env) (trailarchive.Target, error) {
	if f.ArchiveTo == "" {
		return nil, Usagef("no archive target: --archive-to DIR|s3://bucket/prefix, or $%s", trailarchive.ArchiveEnv)
	}
	return trailarchive.OpenTarget(e.Ctx, f.ArchiveTo)
}

// RetentionCmd is `trail retention`.
type RetentionCmd struct {
	Show    RetentionShowCmd    `cmd:"" help:"Print the retention policies and legal holds in force."`
	Set     RetentionSetCmd     `cmd:"" help:"Set how long events stay hot, then archive or delete (per tenant and action pattern)."`
	Unset   RetentionUnsetCmd   `cmd:"" help:"Remove one policy (the default then applies: 365d, archive)."`
	Hold    RetentionHoldCmd    `cmd:"" help:"Place a legal hold on a tenant (or a subject in it): nothing of it is purged."`
	Release RetentionReleaseCmd `cmd:"" help:"Release a legal hold."`
	Plan    RetentionPlanCmd    `cmd:"" help:"Print exactly what a run would archive and delete now, changing nothing."`
	Run     RetentionRunCmd     `cmd:"" help:"Archive and purge what the policies say is past its hot period."`
}

// retentionBackend opens the retention backend of the PostgreSQL deployment
// when postgres (--postgres, TRAIL_POSTGRES) is set, else of the SQLite file
// of --db (which must exist). Both schemas are brought up to date.
func (e *Env) retentionBackend(postgres string) (trailarchive.Backend, func(), error) {
	return e.openRetention(postgres, false)
}

// auditedRetention is retentionBackend for the commands that change
// something: retention records their events (retention.*, actor system:cli)
// through the deployment's privacy layer, like any event. On PostgreSQL it
// is applied when the master key is given (TRAIL_MASTER_KEY,
// --master-key-file); without one the events are stored as given (they
// carry IDs, counts and the hold's reason, no actor's personal data).
func (e *Env) auditedRetention(postgres string) (trailarchive.Backend, func(), error) {
	return e.openRetention(postgres, true)
}

// retentionCtx is the context of the CLI's retention changes: their events
// name the CLI as actor and source, as trail forget's do.
func (e *Env) retentionCtx() context.Context {
	return trail.WithSource(trail.WithActor(e.Ctx, cliActor), "cli")
}

func (e *Env) openRetention(postgres string, audited bool) (trailarchive.Backend, func(), error) {
	if postgres == "" {
		s, err := e.OpenStore(false)
		if err != nil {
			return nil, nil, err
		}
		b := trailarchive.NewSQLite(s)
		b.Now = e.Now
		if audited {
			p, _, err := e.openPrivacy(s.DB(), "", s.Path(), false)
			if err != nil {
				s.Close()
				return nil, nil, err
			}
			b.Transform = p
		}
		return b, func() { s.Close() }, nil
	}
	how := pgCreate
	if !audited { // show and plan only read: a database never migrated is refused
		how = pgExisting
	}
	s, err := e.openPgStore(postgres, how) // store.go
	if err != nil {
		return nil, nil, err
	}
	b := trailarchive.NewPostgres(s)
	b.Now = e.Now
	closeFn := func() { s.Close() }
	if audited && (os.Getenv("TRAIL_MASTER_KEY") != "" || e.Globals.MasterKeyFile != "") {
		db, err := sql.Open("pgx", postgres)
		if err != nil {
			s.Close()
			return nil, nil, fmt.Errorf("open PostgreSQL for data keys: %w", err)
		}
		p, _, err := e.openPrivacy(db, s.Schema(), "", false)
		if err != nil {
			db.Close()
			s.Close()
			return nil, nil, err
		}
		b.Transform = p
		closeFn = func() { db.Close(); s.Close() }
	}
	return b, closeFn, nil
}

// policyErr makes bad policies and holds a usage error (exit 2), without
// the library's prefix under the CLI's.
func policyErr(err error) error {
	if errors.Is(err, trailarchive.ErrInvalidPolicy) || errors.Is(err, trailarchive.ErrConflict) {
		return &UsageError{Err: errors.New(strings.ReplaceAll(err.Error(), "trailarchive: ", ""))}
	}
	return err
}

// RetentionShowCmd is `trail retention show`.
type RetentionShowCmd struct {
	PostgresFlag
	JSON bool `name:"json" help:"Print JSON."`
}

// Run prints the policies and holds.
func (c *RetentionShowCmd) Run(e *Env) error {
	b, closeFn, err := e.retentionBackend(c.Postgres)
	if err != nil {
		return err
	}
	defer closeFn()
	set, err := b.Set(e.Ctx)
	if err != nil {
		return err
	}
	if c.JSON {
		enc := json.NewEncoder(e.Stdout)
		return enc.Encode(set)
	}
	tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tACTION\tKEEP\tTHEN")
	defaultSet := false
	for _, p := range set.Policies {
		defaultSet = defaultSet || (p.Tenant == "" && p.Action == "")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", orAll(p.Tenant), orAll(p.Action), trailarchive.FormatKeep(p.Keep), p.Then)
	}
	if !defaultSet {
		fmt.Fprintf(tw, "*\t*\t%s\t%s\t(default)\n", trailarchive.FormatKeep(trailarchive.DefaultKeep), trailarchive.ThenArchive)
	}
	tw.Flush()
	if len(set.Holds) == 0 {
		fmt.Fprintln(e.Stdout, "\nNo legal holds.")
		return nil
	}
	fmt.Fprintln(e.Stdout, "\nLEGAL HOLDS")
	tw = tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tSUBJECT\tMIN KEEP\tSINCE\tREASON")
	for _, h := range set.Holds {
		mk := "-"
		if h.MinKeep > 0 {
			mk = trailarchive.FormatKeep(h.MinKeep)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", h.Tenant, orAll(h.Subject), mk, h.Since.In(e.Loc).Format(time.DateTime), h.Reason)
	}
	return tw.Flush()
}

func orAll(s string) string {
	if s == "" {
		return "*"
	}
	return s
}

// RetentionSetCmd is `trail retention set`.
type RetentionSetCmd struct {
	PostgresFlag
	Tenant string `placeholder:"T" help:"Only this tenant (default: every tenant)."`
	Action string `placeholder:"PATTERN" help:"Only this action or prefix, e.g. auth.* (default: every action)."`
	Keep   string `required:"" placeholder:"365d" help:"How long events stay hot, measured on the time Trail recorded them: 90d, 2w, 6m, 7y."`
	Then   string `default:"archive" enum:"archive,delete" help:"Then archive (and purge) or delete."`
}

// Run stores the policy.
func (c *RetentionSetCmd) Run(e *Env) error {
	keep, err := trailarchive.ParseKeep(c.Keep)
	if err != nil {
		return policyErr(err)
	}
	p := trailarchive.Policy{Tenant: c.Tenant, Action: c.Action, Keep: keep, Then: trailarchive.Then(c.Then)}
	if err := p.Validate(); err != nil {
		return policyErr(err)
	}
	b, closeFn, err := e.auditedRetention(c.Postgres)
	if err != nil {
		return err
	}
	defer closeFn()
	if err := b.SetPolicy(e.retentionCtx(), p); err != nil {
		return policyErr(err)
	}
	fmt.Fprintf(e.Stdout, "Events of tenant %s, action %s: keep %s, then %s.\n", orAll(p.Tenant), orAll(p.Action), trailarchive.FormatKeep(keep), p.Then)
	return nil
}

// RetentionUnsetCmd is `trail retention unset`.
type RetentionUnsetCmd struct {
	PostgresFlag
	Tenant string `placeholder:"T" help:"The policy's tenant (default: every tenant)."`
	Action string `placeholder:"PATTERN" help:"The policy's action pattern (default: every action)."`
}

// Run removes the policy.
func (c *RetentionUnsetCmd) Run(e *Env) error {
	b, closeFn, err := e.auditedRetention(c.Postgres)
	if err != nil {
		return err
	}
	defer closeFn()
	ok, err := b.DeletePolicy(e.retentionCtx(), c.Tenant, c.Action)
	if err != nil {
		return err
	}
	if !ok {
		return Usagef("no policy for tenant %s, action %s", orAll(c.Tenant), orAll(c.Action))
	}
	fmt.Fprintln(e.Stdout, "Policy removed.")
	return nil
}

// RetentionHoldCmd is `trail retention hold`.
type RetentionHoldCmd struct {
	PostgresFlag
	Tenant  string `required:"" placeholder:"T" help:"The tenant under hold."`
	Subject string `placeholder:"TYPE:ID" help:"Only events whose actor or target is this subject, e.g. user:42."`
	Reason  string `placeholder:"TEXT" help:"Why (a case number): one line, at most 1024 bytes."`
	MinKeep string `name:"min-keep" placeholder:"7y" help:"Also refuse any policy of the tenant keeping events less than this."`
}

// Run places the hold, after the checks of the API's POST
// /v1/retention/holds (Hold.Validate). The CLI reaches the store itself, so
// it acts for every tenant, as an all-tenant admin key does: it may replace
// or weaken any hold.
func (c *RetentionHoldCmd) Run(e *Env) error {
	h := trailarchive.Hold{Tenant: c.Tenant, Subject: c.Subject, Reason: c.Reason}
	if c.MinKeep != "" {
		d, err := trailarchive.ParseKeep(c.MinKeep)
		if err != nil {
			return policyErr(err)
		}
		h.MinKeep = d
	}
	if err := h.Validate(); err != nil {
		return policyErr(err)
	}
	b, closeFn, err := e.auditedRetention(c.Postgres)
	if err != nil {
		return err
	}
	defer closeFn()
	set, err := b.Set(e.Ctx)
	if err != nil {
		return err
	}
	if h.MinKeep > 0 {
		for _, p := range set.Policies {
			if (p.Tenant == "" || p.Tenant == h.Tenant) && p.Keep < h.MinKeep {
				fmt.Fprintf(e.Stderr, "trail: note: policy tenant %s action %s keeps %s, less than the hold's %s: the hold wins (nothing of %s is purged)\n",
					orAll(p.Tenant), orAll(p.Action), trailarchive.FormatKeep(p.Keep), trailarchive.FormatKeep(h.MinKeep), h.Tenant)
			}
		}
	}
	if err := b.PutHold(e.retentionCtx(), h); err != nil {
		return policyErr(err)
	}
	fmt.Fprintf(e.Stdout, "Legal hold on tenant %s%s: nothing of it will be purged until \"trail retention release\".\n", h.Tenant, subjectNote(h.Subject))
	return nil
}

func subjectNote(s string) string {
	if s == "" {
		return ""
	}
	return ", subject " + s
}

// RetentionReleaseCmd is `trail retention release`.
type RetentionReleaseCmd struct {
	PostgresFlag
	Tenant  string `required:"" placeholder:"T" help:"The tenant."`
	Subject string `placeholder:"TYPE:ID" help:"The subject of a subject hold."`
}

// Run releases the hold.
func (c *RetentionReleaseCmd) Run(e *Env) error {
	b, closeFn, err := e.auditedRetention(c.Postgres)
	if err != nil {
		return err
	}
	defer closeFn()
	ok, err := b.ReleaseHold(e.retentionCtx(), c.Tenant, c.Subject)
	if err != nil {
		return err
	}
	if !ok {
		return Usagef("no legal hold on tenant %s%s", c.Tenant, subjectNote(c.Subject))
	}
	fmt.Fprintf(e.Stdout, "Legal hold on tenant %s%s released.\n", c.Tenant, subjectNote(c.Subject))
	return nil
}

// RetentionPlanCmd is `trail retention plan`.
type RetentionPlanCmd struct {
	SigningFlags
	ArchiveFlags
	PostgresFlag
	Events bool `name:"events" help:"Also list every event ID (one line each)."`
}

func (e *Env) retentionRunner(sf *SigningFlags, af *ArchiveFlags, wf *ArchiveWriteFlags, needKey bool, b trailarchive.Backend) (*trailarchive.Runner, error) {
	cfg := trailarchive.Config{Backend: b, Origin: sf.origin(), Now: e.Now}
	if needKey {
		// Only the embedded store keeps a key beside its file; a server
		// database's key is the one its sealer signs with.
		if _, embedded := b.(*trailarchive.SQLite); !embedded && sf.SigningKeyFile == "" && os.Getenv(trailseal.SigningKeyEnv) == "" {
			return nil, Usagef("no checkpoint signing key: archiving from PostgreSQL needs the sealer's key (--signing-key-file or $%s)", trailseal.SigningKeyEnv)
		}
		signer, vkey, err := sf.signer(e, false)
		if err != nil {
			return nil, err
		}
		cfg.Signer, cfg.PublicKey = signer, vkey
		t, err := af.target(e)
		if err != nil {
			return nil, err
		}
		cfg.Target = t
	}
	if wf != nil {
		if wf.FileBytes < 0 {
			return nil, Usagef("--archive-file-bytes %d: want a size in bytes, 0 for the default", wf.FileBytes)
		}
		cfg.FileBytes = wf.FileBytes
	}
	return trailarchive.NewRunner(cfg)
}

// Run prints the plan.
func (c *RetentionPlanCmd) Run(e *Env) error {
	b, closeFn, err := e.retentionBackend(c.Postgres)
	if err != nil {
		return err
	}
	defer closeFn()
	r, err := e.retentionRunner(&c.SigningFlags, &c.ArchiveFlags, nil, false, b)
	if err != nil {
		return err
	}
	plan, err := r.Plan(e.Ctx)
	if err != nil {
		return err
	}
	printPlan(e.Stdout, plan, c.Events)
	return nil
}

func printPlan(w io.Writer, plan *trailarchive.Plan, ids bool) {
	for _, b := range plan.Batches {
		first, last := b.Leaves[0].Seq, b.Leaves[len(b.Leaves)-1].Seq
		what := "delete "
		if b.Then == trailarchive.ThenArchive {
			what = "archive"
		}
		fmt.Fprintf(w, "%s tenant=%s date=%s events=%d seqs=%d..%d", what, b.Log, b.Date, len(b.Leaves), first, last)
		if b.Key != "" {
			fmt.Fprintf(w, " -> %s", b.Key)
		}
		fmt.Fprintln(w)
		if ids {
			for _, l := range b.Leaves {
				fmt.Fprintf(w, "  %d %s %s %s\n", l.Seq, l.EventID, l.Event.Action, l.Event.RecordedAt.UTC().Format(time.RFC3339))
			}
		}
	}
	a, d := plan.Totals()
	fmt.Fprintf(w, "Total: archive %d events in %d batches, delete %d; %d held by a legal hold; %d waiting for a checkpoint.\n",
		a, countArchive(plan), d, plan.Held, plan.Waiting)
}

func countArchive(p *trailarchive.Plan) int {
	n := 0
	for _, b := range p.Batches {
		if b.Then == trailarchive.ThenArchive {
			n++
		}
	}
	return n
}

// RetentionRunCmd is `trail retention run`.
type RetentionRunCmd struct {
	SigningFlags
	ArchiveFlags
	ArchiveWriteFlags
	PostgresFlag
	Progress bool `name:"progress" help:"Show a progress bar on stderr even when it is not a terminal."`
}

// Run archives and purges.
func (c *RetentionRunCmd) Run(e *Env) error {
	b, closeFn, err := e.auditedRetention(c.Postgres)
	if err != nil {
		return err
	}
	defer closeFn()
	r, err := e.retentionRunner(&c.SigningFlags, &c.ArchiveFlags, &c.ArchiveWriteFlags, true, b)
	if err != nil {
		return err
	}
	plan, err := r.Plan(e.Ctx)
	if err != nil {
		return err
	}
	bar := &retentionBar{w: e.Stderr}
	if f, ok := e.Stderr.(*os.File); c.Progress || (ok && isTerminal(f)) {
		r.SetProgress(bar.update)
	}
	res, err := r.Run(e.retentionCtx(), plan)
	bar.done()
	if err != nil {
		return fmt.Errorf("%w (done before the error: %d events archived, %d purged; run again to resume)", err, res.Archived, res.Purged)
	}
	fmt.Fprintf(e.Stdout, "Archived %d events in %d batches to %s; purged %d events; %d held; %d waiting for a checkpoint.\n",
		res.Archived, res.Batches, c.ArchiveTo, res.Purged, res.Held, res.Waiting)
	return nil
}

// retentionBar draws a run's progress on one line of stderr.
type retentionBar struct {
	w     io.Writer
	last  time.Time
	drawn bool
}

func (p *retentionBar) update(done, total int64) {
	now := time.Now()
	if done < total && now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last = now
	frac := 1.0
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	const width = 30
	n := int(frac * width)
	fmt.Fprintf(p.w, "\rretention [%s%s] %3.0f%% %d/%d events", strings.Repeat("=", n), strings.Repeat(" ", width-n), frac*100, done, total)
	p.drawn = true
}

func (p *retentionBar) done() {
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}

// archiveVerifiers returns the trusted keys for reading archives.
func archiveVerifiers(e *Env, sf *SigningFlags, keys []string) (note.Verifiers, error) {
	// No warning here: archive reads keep their one-line errors; trail
	// verify --archive-to warns for the whole check.
	t, err := resolveTrust(e, sf, keys) // verify_keys.go
	if err != nil {
		return nil, err
	}
	return t.verifiers(), nil
}
