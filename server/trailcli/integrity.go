package trailcli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailarchive"
	"github.com/trailhq/trail/server/trailserver"
	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailpgx"
	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/note"
)

// SigningFlags choose the checkpoint signing key and origin. With neither
// --signing-key-file nor TRAIL_SIGNING_KEY, the embedded store's key beside
// the database (DB.signing.key, mode 0600) is used, generated on first need.
type SigningFlags struct {
	SigningKeyFile string `name:"signing-key-file" env:"TRAIL_SIGNING_KEY_FILE" placeholder:"FILE" help:"Checkpoint signing key (note signer key). Default: $TRAIL_SIGNING_KEY, else DB.signing.key beside the database (generated on first need)."`
	Origin         string `name:"origin" env:"TRAIL_ORIGIN" default:"trail.example" help:"Checkpoint origin: the deployment's host name, so that its checkpoints cannot pass as another's (env TRAIL_ORIGIN)."`
}

// signer returns the configured signer and its public key. create allows
// generating the embedded store's key when none exists.
func (f *SigningFlags) signer(e *Env, create bool) (note.Signer, string, error) {
	if f.SigningKeyFile != "" {
		return trailseal.LoadSigningKey(f.SigningKeyFile)
	}
	if s, vkey, ok, err := trailseal.SigningKeyFromEnv(); ok || err != nil {
		return s, vkey, err
	}
	if !create {
		priv, _ := trailseal.SigningKeyPaths(e.Globals.DB)
		s, vkey, err := trailseal.LoadSigningKey(priv)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, "", fmt.Errorf("no checkpoint signing key: none at %s, no --signing-key-file, no $%s (\"trail seal\" or \"trail keys signing generate\" creates one)", priv, trailseal.SigningKeyEnv)
		}
		return s, vkey, err
	}
	s, vkey, _, err := trailseal.EnsureSigningKey(e.Globals.DB, f.Origin, e.Stderr)
	return s, vkey, err
}

func (f *SigningFlags) origin() string {
	if f.Origin == "" {
		return trailseal.DefaultOrigin
	}
	return f.Origin
}

// SealFlags configure the sealer that `trail serve` runs.
type SealFlags struct {
	SigningFlags
	WitnessFlags
	NoSeal             bool          `name:"no-seal" help:"Do not run the sealer in this process (another process seals)."`
	SealInterval       time.Duration `name:"seal-interval" default:"250ms" help:"How often the sealer looks for unsealed events."`
	CheckpointInterval time.Duration `name:"checkpoint-interval" default:"10s" help:"Sign a tenant's checkpoint when its log grew and its last one is this old."`
	CheckpointEvents   int64         `name:"checkpoint-events" default:"1000" help:"…or when its log grew by this many events."`

	// leading, set by startSealer when this process runs the sealer, says
	// whether it holds the sealer's lease: scheduled retention runs on that
	// leader only.
	leading func() bool
}

// startSealer turns integrity on for store when it keeps a sealed log:
// it returns what the server serves and runs the sealer (unless --no-seal)
// until ctx ends; wait waits for it to release its lease. A store without a
// sealed log (PostgreSQL, for now) gets nil and a note on stderr.
func (f *SealFlags) startSealer(ctx context.Context, e *Env, store trail.Store) (in *trailserver.Integrity, wait func(), err error) {
	log, ok := store.(trailseal.Store)
	if !ok {
		fmt.Fprintln(e.Stderr, "trail: this store does not seal its log yet: checkpoints and proofs are off")
		return nil, func() {}, nil
	}
	if f.SealInterval <= 0 || f.CheckpointInterval <= 0 || f.CheckpointEvents <= 0 {
		return nil, nil, Usagef("--seal-interval, --checkpoint-interval and --checkpoint-events must be positive")
	}
	// Only the embedded store generates a key beside its file; a server
	// database needs one configured (a key made on one replica's disk would
	// differ from the next replica's).
	if _, embedded := store.(*trailsqlite.Store); !embedded && f.SigningKeyFile == "" && os.Getenv(trailseal.SigningKeyEnv) == "" {
		fmt.Fprintf(e.Stderr, "trail: no checkpoint signing key (--signing-key-file or $%s): sealing, checkpoints and proofs are off\n", trailseal.SigningKeyEnv)
		return nil, func() {}, nil
	}
	signer, vkey, err := f.signer(e, true)
	if err != nil {
		return nil, nil, err
	}
	in = &trailserver.Integrity{Log: log, Origin: f.origin(), PublicKey: vkey}
	if err := f.serveWitness(e, in); err != nil { // witness.go
		return nil, nil, err
	}
	if h, _, err := deploymentHistory(e, &f.SigningFlags); err == nil { // verify_keys.go
		in.KeyHistory = h
	}
	if f.NoSeal {
		return in, func() {}, nil
	}
	witnesses, err := f.sealWitnesses(e) // witness.go
	if err != nil {
		return nil, nil, err
	}
	sl, err := trailseal.NewSealer(log, &trailseal.Config{
		Signer: signer, Origin: f.origin(), PollInterval: f.SealInterval, Witnesses: witnesses,
		CheckpointInterval: f.CheckpointInterval, CheckpointEvents: f.CheckpointEvents,
		OnStep: in.ObserveSeal,
		OnError: func(err error) {
			if ctx.Err() == nil {
				fmt.Fprintf(e.Stderr, "trail: sealer: %s\n", oneLine(err.Error()))
			}
		},
	})
	if err != nil {
		return nil, nil, err
	}
	f.leading = sl.Leading
	in.WitnessBacklog = sl.WitnessBacklog
	var wg sync.WaitGroup
	wg.Go(func() { sl.Run(ctx) })
	return in, wg.Wait, nil
}

// openSealed opens the store whose sealed log a command works on: the
// PostgreSQL deployment when postgres is set (migrated first when migrate,
// else left as it is and refused if it has no Trail schema), else the
// SQLite file of --db (which must exist). embedded reports the latter, the
// one store that may generate its own signing key.
func (e *Env) openSealed(postgres string, migrate bool) (st trailseal.Store, embedded bool, closeFn func(), err error) {
	if postgres == "" {
		s, err := e.OpenStore(false)
		if err != nil {
			return nil, false, nil, err
		}
		return s, true, func() { s.Close() }, nil
	}
	how := pgReadOnly
	if migrate {
		how = pgCreate
	}
	s, err := e.openPgStore(postgres, how) // store.go
	if err != nil {
		return nil, false, nil, err
	}
	return s, false, func() { s.Close() }, nil
}

// SealCmd is `trail seal`.
type SealCmd struct {
	SigningFlags
	PostgresFlag
	WitnessFlags
}

// Run seals every pending event and signs the due checkpoints, once.
func (c *SealCmd) Run(e *Env) error {
	st, embedded, closeStore, err := e.openSealed(c.Postgres, true)
	if err != nil {
		return err
	}
	defer closeStore()
	signer, _, err := c.signer(e, embedded)
	if err != nil {
		return err
	}
	witnesses, err := c.sealWitnesses(e) // witness.go
	if err != nil {
		return err
	}
	sl, err := trailseal.NewSealer(st, &trailseal.Config{Signer: signer, Origin: c.origin(), Witnesses: witnesses})
	if err != nil {
		return err
	}
	stats, err := sl.SealAll(e.Ctx)
	if rerr := sl.Release(e.Ctx); err == nil && rerr != nil {
		err = rerr
	}
	if errors.Is(err, trailseal.ErrNotLeader) {
		return errors.New("another sealer (a running \"trail serve\"?) holds the lease: it seals these events; nothing done")
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "Sealed %d events into %d logs; signed %d checkpoints.\n", stats.Sealed, stats.Logs, stats.Checkpoints)
	return nil
}

// VerifyCmd is `trail verify`.
type VerifyCmd struct {
	SigningFlags
	PostgresFlag
	// --archive-to: also verify the ranges retention archived there.
	ArchiveFlags
	WitnessFlags
	Tenant      string   `name:"tenant" placeholder:"T" help:"Verify only this tenant's log (_platform: the platform events)."`
	Checkpoints []string `name:"checkpoint" placeholder:"FILE" help:"A checkpoint kept outside the store (a signed note, or \"trail checkpoints export\" JSON): the store must still contain it. Repeatable."`
	PublicKey   []string `name:"public-key" placeholder:"KEY|FILE" help:"Pin this checkpoint verifier key, a file holding it, or a key history file (\"trail keys signing history\"); default $TRAIL_PUBLIC_KEY, else the configured signing key's (a key beside the database is trusted with a WARNING). Repeatable."`
	Progress    bool     `name:"progress" help:"Show a progress bar on stderr even when it is not a terminal."`
	JSON        bool     `name:"json" help:"Print the report as JSON."`
}

// Run verifies and exits non-zero on any problem: the store's logs, and
// with an archive target every range retention archived there
// (trailarchive.Verifier).
func (c *VerifyCmd) Run(e *Env) error {
	var notes [][]byte
	for _, file := range c.Checkpoints {
		ns, err := readCheckpointFile(file)
		if err != nil {
			return err
		}
		notes = append(notes, ns...)
	}
	if err := needConfiguredKey(c.Postgres, &c.SigningFlags, pinsOrEnv(c.PublicKey)); err != nil {
		return err
	}
	tr, err := resolveTrust(e, &c.SigningFlags, c.PublicKey) // verify_keys.go
	if err != nil {
		return err
	}
	verifiers := tr.verifiers()
	var arc *trailarchive.Archive
	if c.ArchiveTo != "" {
		t, err := readTarget(e, &c.ArchiveFlags) // archive.go
		if err != nil {
			return err
		}
		arc = &trailarchive.Archive{Target: t, Verifiers: verifiers, Origin: c.origin()}
	}
	st, _, closeStore, err := e.openSealed(c.Postgres, false)
	if err != nil {
		return err
	}
	defer closeStore()
	v := &trailarchive.Verifier{Log: &trailseal.Verifier{Store: st, Verifiers: verifiers, Origin: c.origin(), KeyWindows: tr.windows}, Archive: arc}
	if b := retentionOf(st); b != nil {
		v.Purges = b
	} else if arc != nil {
		return errors.New("--archive-to: this store does not record which archive holds its purged events yet: check the archive with \"trail archive verify\"")
	}
	if f, ok := e.Stderr.(*os.File); c.Progress || (ok && isTerminal(f)) {
		bar := &progressBar{w: e.Stderr}
		v.Progress = bar.update
		defer bar.done()
	}
	opt := &trailseal.VerifyOptions{Checkpoints: notes}
	if c.Tenant != "" {
		opt.Logs = []string{trailseal.LogName(c.Tenant)}
	}
	warnTrust(e, tr) // after every bad-input check: a usage error stays one line
	rep, err := v.Verify(e.Ctx, opt)
	if err != nil {
		return err
	}
	if err := addKeyProblems(e, st, c.Postgres, c.Tenant, &rep.Report); err != nil { // verify_privacy.go
		return err
	}
	if err := c.checkWitnesses(e, st, verifiers, c.origin(), opt.Logs, &rep.Report, c.JSON); err != nil { // witness.go
		return err
	}
	// Counted after the pass: an event the sealer takes meanwhile may be in
	// neither count, never in both.
	var log string
	if c.Tenant != "" {
		log = trailseal.LogName(c.Tenant)
	}
	pending, err := pendingEvents(e.Ctx, st, log) // verify_pending.go
	if err != nil {
		return err
	}
	ar := rep.Archive
	if c.JSON {
		b, _ := json.MarshalIndent(verifyJSON{Report: rep, Pending: pending, KeySource: tr.source, Warnings: tr.warnings()}, "", "  ")
		fmt.Fprintf(e.Stdout, "%s\n", b)
	} else {
		for _, p := range rep.Problems {
			fmt.Fprintln(e.Stdout, formatProblem(p))
		}
		for _, p := range ar.Problems {
			fmt.Fprintln(e.Stdout, formatArchiveProblem(p))
		}
		c.printSummary(e, rep, pending)
	}
	if !rep.OK() {
		n := int64(len(rep.Problems)) + rep.Omitted + int64(len(ar.Problems)) + ar.Omitted
		return fmt.Errorf("verification FAILED: %d problem(s) found", n)
	}
	// Events not sealed yet are not tampering: the exit status stays 0.
	if !c.JSON {
		every := "every event"
		if pending > 0 {
			every = "every sealed event"
		}
		if ar.Checked && ar.Archived > 0 {
			fmt.Fprintf(e.Stdout, "OK: %s matches its leaf, every checkpoint verifies, and every archived range is in the archive.\n", every)
		} else {
			fmt.Fprintf(e.Stdout, "OK: %s matches its leaf and every checkpoint verifies.\n", every)
		}
	}
	return nil
}

// printSummary prints what was verified, and what was not: purged,
// archived and not yet sealed events.
func (c *VerifyCmd) printSummary(e *Env, rep *trailarchive.Report, pending int64) {
	var covered, purged int64
	for _, l := range rep.Logs {
		covered += l.Covered
		purged += l.Purged
	}
	// rep.Events counts leaves: purged ones are not events checked.
	ar := rep.Archive
	switch {
	case ar.Checked:
		fmt.Fprintf(e.Stdout, "Verified %d hot and %d archived events in %d logs (%d leaves, %d under a verified checkpoint).\n",
			rep.Events-purged, ar.Events, len(rep.Logs), rep.Events, covered)
	case purged > 0:
		fmt.Fprintf(e.Stdout, "Verified %d hot events in %d logs (%d leaves, %d under a verified checkpoint).\n",
			rep.Events-purged, len(rep.Logs), rep.Events, covered)
	case pending > 0:
		fmt.Fprintf(e.Stdout, "Verified %d sealed events in %d logs (%d under a verified checkpoint).\n", rep.Events, len(rep.Logs), covered)
	default:
		fmt.Fprintf(e.Stdout, "Verified %d events in %d logs (%d under a verified checkpoint).\n", rep.Events, len(rep.Logs), covered)
	}
	if pending > 0 {
		what := "events are"
		if pending == 1 {
			what = "event is"
		}
		fmt.Fprintf(e.Stdout, "%d %s not sealed yet, so not verified: run \"trail seal\" (\"trail serve\" seals continuously), then verify again.\n", pending, what)
	}
	if purged > 0 {
		fmt.Fprintf(e.Stdout, "%d sealed events were purged by retention: their leaves and tree hashes still verify.\n", purged)
	}
	switch {
	case ar.Checked && ar.Archived > 0:
		fmt.Fprintf(e.Stdout, "%d purged events are archived in %d batches of %s, checked against their leaves; %d were deleted by policy.\n",
			ar.Archived, ar.Batches, c.ArchiveTo, ar.Deleted)
	case !ar.Checked && ar.Archived > 0:
		fmt.Fprintf(e.Stdout, "note: %d archived events were not checked: give the archive (--archive-to DIR|s3://bucket/prefix, or $%s) to verify them against their leaves.\n",
			ar.Archived, trailarchive.ArchiveEnv)
	}
	if n := len(ar.Unlisted); n > 0 {
		fmt.Fprintf(e.Stdout, "note: %d manifests in %s are named by no purge of this store (a run that stopped before purging, or another store's batches): not checked.\n", n, c.ArchiveTo)
	}
}

// retentionOf returns the retention backend of the store st, or nil when
// its kind has none.
func retentionOf(st trailseal.Store) trailarchive.Backend {
	switch s := st.(type) {
	case *trailsqlite.Store:
		return trailarchive.NewSQLite(s)
	case *trailpgx.Store:
		return trailarchive.NewPostgres(s)
	}
	return nil
}

// formatArchiveProblem places an archive problem like formatProblem: tenant,
// seqs, kind, then the batch (and file) and what is wrong.
func formatArchiveProblem(p trailarchive.CoverageProblem) string {
	tenant := strconv.Quote(p.Tenant)
	if p.Tenant == "" && p.Log == trailseal.PlatformLog {
		tenant = "(platform)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "PROBLEM tenant %s seq %s: %s: batch %s", tenant, p.Seqs(), strings.ReplaceAll(string(p.Kind), "_", " "), p.Key)
	if p.File != "" {
		b.WriteString(" file " + p.File)
	}
	if p.Detail != "" {
		b.WriteString(": " + oneLine(p.Detail))
	}
	return b.String()
}

// formatProblem names the place: tenant, sequence and kind.
func formatProblem(p trailseal.Problem) string {
	tenant := strconv.Quote(p.Tenant)
	if p.Tenant == "" && p.Log == trailseal.PlatformLog {
		tenant = "(platform)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "PROBLEM tenant %s", tenant)
	if p.Seq >= 0 {
		fmt.Fprintf(&b, " seq %d", p.Seq)
	}
	if p.Checkpoint > 0 {
		fmt.Fprintf(&b, " checkpoint %d", p.Checkpoint)
	}
	fmt.Fprintf(&b, ": %s", p.Kind)
	if p.With >= 0 {
		fmt.Fprintf(&b, " (with seq %d)", p.With)
	}
	if p.EventID != uuid.Nil {
		fmt.Fprintf(&b, " event %s", p.EventID)
	}
	if p.Detail != "" {
		b.WriteString(": " + oneLine(p.Detail))
	}
	return b.String()
}

// checkpointExport is the file `trail checkpoints export` writes: the same
// shape as GET /v1/checkpoints.
type checkpointExport = trailserver.CheckpointList

// readCheckpointFile reads a signed checkpoint note, or every checkpoint of
// an export. A file that is neither is bad input.
func readCheckpointFile(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, Usagef("--checkpoint: %v", err)
	}
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
		var ex checkpointExport
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ex); err != nil {
			return nil, Usagef("--checkpoint %s: not a checkpoint export (truncated?): %v", path, err)
		}
		if len(ex.Checkpoints) == 0 {
			return nil, Usagef("--checkpoint %s: the export holds no checkpoint", path)
		}
		var out [][]byte
		for _, cp := range ex.Checkpoints {
			out = append(out, []byte(cp.Note))
		}
		return out, nil
	}
	if len(b) == 0 {
		return nil, Usagef("--checkpoint %s: empty file", path)
	}
	return [][]byte{b}, nil
}

// progressBar draws verification progress on one line of stderr.
type progressBar struct {
	w     io.Writer
	last  time.Time
	drawn bool
}

func (p *progressBar) update(pr trailseal.Progress) {
	now := time.Now()
	if pr.Done < pr.Total && now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last = now
	frac := 1.0
	if pr.Total > 0 {
		frac = float64(pr.Done) / float64(pr.Total)
	}
	const width = 30
	n := int(frac * width)
	fmt.Fprintf(p.w, "\rverifying [%s%s] %3.0f%% %d/%d events", strings.Repeat("=", n), strings.Repeat(" ", width-n), frac*100, pr.Done, pr.Total)
	p.drawn = true
}

func (p *progressBar) done() {
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}

// ProveCmd is `trail prove`.
type ProveCmd struct {
	SigningFlags
	PostgresFlag
	Consistency bool     `name:"consistency" help:"Prove that checkpoint NEW extends checkpoint OLD (tree sizes) instead."`
	Tenant      string   `name:"tenant" placeholder:"T" help:"The tenant of --consistency (_platform: the platform events)."`
	PublicKey   []string `name:"public-key" placeholder:"KEY|FILE" help:"Check the proof with this pinned verifier key or key history file (default $TRAIL_PUBLIC_KEY, else the signing key's, with a WARNING when that key is beside the database). Repeatable."`
	Args        []string `arg:"" name:"EVENT_ID|OLD NEW" help:"An event ID, or with --consistency two checkpoint sizes."`
}

// Run prints the proof as JSON, after checking it with the configured key.
func (c *ProveCmd) Run(e *Env) error {
	var oldN, newN int64
	var id uuid.UUID
	if c.Consistency {
		if len(c.Args) != 2 {
			return Usagef("prove --consistency: want OLD NEW (two checkpoint sizes)")
		}
		for i, a := range c.Args {
			n, err := strconv.ParseInt(a, 10, 64)
			if err != nil || n <= 0 {
				return Usagef("prove --consistency: %q is not a checkpoint size", a)
			}
			if i == 0 {
				oldN = n
			} else {
				newN = n
			}
		}
		if oldN > newN {
			return Usagef("prove --consistency: OLD (%d) is larger than NEW (%d)", oldN, newN)
		}
		if c.Tenant == "" {
			return Usagef("prove --consistency: --tenant is required (each tenant has its own log; platform events: _platform)")
		}
	} else {
		if len(c.Args) != 1 {
			return Usagef("prove: want one EVENT_ID (or --consistency OLD NEW)")
		}
		var err error
		if id, err = uuid.Parse(c.Args[0]); err != nil || len(c.Args[0]) != 36 {
			return Usagef("prove: %q is not an event ID (a UUID)", c.Args[0])
		}
	}
	st, _, closeStore, err := e.openSealed(c.Postgres, false)
	if err != nil {
		return err
	}
	defer closeStore()
	tr, err := resolveTrust(e, &c.SigningFlags, c.PublicKey) // verify_keys.go
	if err != nil {
		return err
	}
	warnTrust(e, tr)
	keys := tr.verifiers()
	var out any
	if c.Consistency {
		log := trailseal.LogName(c.Tenant)
		oldCP, err := trailseal.FindCheckpoint(e.Ctx, st, log, oldN)
		if err != nil {
			return err
		}
		newCP, err := trailseal.FindCheckpoint(e.Ctx, st, log, newN)
		if err != nil {
			return err
		}
		p, err := trailseal.ProveConsistency(e.Ctx, st, oldCP, newCP)
		if err != nil {
			return err
		}
		if err := p.Verify(keys, c.origin()); err != nil {
			return fmt.Errorf("the store's consistency proof does not verify (run \"trail verify\"): %w", err)
		}
		out = p
	} else {
		p, err := trailseal.ProveInclusion(e.Ctx, st, id, nil)
		switch {
		case errors.Is(err, trailseal.ErrNotSealed), errors.Is(err, trailseal.ErrNotCheckpointed):
			return fmt.Errorf("%w (run \"trail seal\", or wait for the server's sealer)", err)
		case err != nil:
			return err
		}
		if err := p.Verify(keys, c.origin()); err != nil {
			return fmt.Errorf("the store's proof does not verify (run \"trail verify\"): %w", err)
		}
		out = p
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "%s\n", b)
	return nil
}

// CheckpointsCmd is `trail checkpoints`.
type CheckpointsCmd struct {
	Export CheckpointsExportCmd `cmd:"" help:"Write a tenant's checkpoint history to a file (JSON), to verify against later."`
}

// CheckpointsExportCmd is `trail checkpoints export`.
type CheckpointsExportCmd struct {
	SigningFlags
	PostgresFlag
	Tenant string `name:"tenant" required:"" placeholder:"T" help:"The tenant (_platform: the platform events)."`
	File   string `arg:"" name:"FILE" help:"Where to write; - for stdout."`
}

// Run writes the export.
func (c *CheckpointsExportCmd) Run(e *Env) error {
	st, _, closeStore, err := e.openSealed(c.Postgres, false)
	if err != nil {
		return err
	}
	defer closeStore()
	log := trailseal.LogName(c.Tenant)
	cps, err := st.Checkpoints(e.Ctx, log)
	if err != nil {
		return err
	}
	if len(cps) == 0 {
		return fmt.Errorf("tenant %q has no checkpoint yet (run \"trail seal\")", c.Tenant)
	}
	ex := checkpointExport{Tenant: trailseal.TenantOf(log), Log: log}
	if _, vkey, err := c.signer(e, false); err == nil {
		ex.PublicKey = vkey
	}
	origin := c.origin()
	for _, cp := range cps {
		ex.Checkpoints = append(ex.Checkpoints, trailserver.CheckpointView{Tenant: ex.Tenant, Log: log,
			Origin: trailseal.CheckpointOrigin(origin, log), Size: cp.Size, Root: cp.Root, Note: cp.Note, Time: cp.Time})
	}
	b, err := json.MarshalIndent(ex, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if c.File == "-" {
		_, err = e.Stdout.Write(b)
		return err
	}
	if err := writeFileAtomic(c.File, b, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(e.Stderr, "Wrote %d checkpoints of %s to %s.\n", len(cps), log, c.File)
	return nil
}

// writeFileAtomic writes through a temporary file and a rename, so that a
// failure leaves no half-written export.
func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// SigningKeysCmd is `trail keys signing`.
type SigningKeysCmd struct {
	Generate SigningGenerateCmd `cmd:"" help:"Generate the checkpoint signing key (Ed25519) and print its public key."`
	Show     SigningShowCmd     `cmd:"" help:"Print the public checkpoint verifier key (to publish; verifiers pin it)."`
	Rotate   SigningRotateCmd   `cmd:"" help:"Replace the signing key with a new one; the old public key stays in the key history, which vouches for the new key (docs/verification.md)."`
	History  SigningHistoryCmd  `cmd:"" help:"Print the key history (JSON): every signing key, when it signed, and the signed rotations (to publish; verifiers pin it)."`
}

// SigningGenerateCmd is `trail keys signing generate`.
type SigningGenerateCmd struct {
	SigningFlags
}

// Run generates the key: into --signing-key-file, else beside the database.
// An existing key is never overwritten: checkpoints signed with it would no
// longer match the published key.
func (c *SigningGenerateCmd) Run(e *Env) error {
	path := c.SigningKeyFile
	if path == "" {
		path, _ = trailseal.SigningKeyPaths(e.Globals.DB)
	}
	if _, err := os.Stat(path); err == nil {
		return Usagef("%s already exists: a signing key is never overwritten (move it away first; keep its public key to verify old checkpoints)", path)
	}
	skey, vkey, err := trailseal.GenerateSigningKey(c.origin())
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, werr := f.WriteString(skey + "\n")
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(path)
		return werr
	}
	if c.SigningKeyFile == "" {
		_, pub := trailseal.SigningKeyPaths(e.Globals.DB)
		if err := os.WriteFile(pub, []byte(vkey+"\n"), 0o600); err != nil {
			return err
		}
	}
	fmt.Fprintf(e.Stderr, "Wrote the signing key to %s (mode 0600). Public key:\n", path)
	fmt.Fprintln(e.Stdout, vkey)
	return nil
}

// SigningShowCmd is `trail keys signing show`.
type SigningShowCmd struct {
	SigningFlags
}

// Run prints the public key in note verifier-key form.
func (c *SigningShowCmd) Run(e *Env) error {
	_, vkey, err := c.signer(e, false)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.Stdout, vkey)
	return nil
}

var _ trailseal.Store = (*trailsqlite.Store)(nil)
