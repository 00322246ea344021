package trailarchive

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Config configures a Runner.
type Config struct {
	// Backend is the store's retention backend. Required.
	Backend Backend
	// Target receives archives. Required to run a plan with archive batches.
	Target Target
	// Signer signs manifests: the checkpoint signing key. Required to run.
	Signer note.Signer
	// Verifiers check manifests read back; default: Signer's verifier key
	// must be given as PublicKey.
	PublicKey string
	// Origin is the deployment's checkpoint origin. Default trailseal.DefaultOrigin.
	Origin string
	// Now is the clock retention is measured with. Default time.Now.
	Now func() time.Time
	// BatchRows is the most events in one batch. Default 100,000.
	BatchRows int
	// FileBytes is the size at which a Parquet file of the archive is cut:
	// a run writes its batches, tenant after tenant and day after day, into
	// shared files of about this size (the first row group boundary past
	// it), so small tenants' days are grouped and a big tenant's are spread
	// over several files. Default DefaultFileBytes (64 MiB).
	FileBytes int64
	// ScanChunk is how many leaves one read fetches. Default 5,000.
	ScanChunk int64
	// Progress, when set, is called after each batch with events done and
	// the plan's total. With a BulkPurger backend an archive batch counts
	// as done once read back, and the total is reported once the purge is
	// over.
	Progress func(done, total int64)

	// afterArchive is called between a batch's read-back and its purge
	// (tests inject crashes there).
	afterArchive func(b *Batch) error
	// manifestVersion, when ManifestV2, writes a manifest per batch as
	// releases before version 3 did (tests make such archives with it).
	manifestVersion int
}

// Runner plans and runs retention.
type Runner struct {
	cfg       Config
	verifiers note.Verifiers
	files     fileCache // the archive file last read back (pack.go)
}

// NewRunner checks cfg and returns a Runner.
func NewRunner(cfg Config) (*Runner, error) {
	if cfg.Backend == nil {
		return nil, errors.New("trailarchive: Config.Backend is required")
	}
	if cfg.Origin == "" {
		cfg.Origin = trailseal.DefaultOrigin
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.BatchRows <= 0 {
		cfg.BatchRows = 100_000
	}
	if cfg.FileBytes <= 0 {
		cfg.FileBytes = DefaultFileBytes
	}
	if cfg.ScanChunk <= 0 {
		cfg.ScanChunk = 5000
	}
	r := &Runner{cfg: cfg}
	if cfg.PublicKey != "" {
		v, err := trailseal.ParseVerifierKey(cfg.PublicKey)
		if err != nil {
			return nil, err
		}
		r.verifiers = note.VerifierList(v)
	}
	return r, nil
}

// Batch is one unit of a run: events of one log, recorded on one UTC day,
// with one fate.
type Batch struct {
	Log    string
	Tenant string
	Date   string // YYYY-MM-DD of RecordedAt, UTC
	Then   Then
	Leaves []trailseal.SealedEvent
	// Key is, in a plan, the batch's key: where a manifest of this batch
	// alone (version 1 or 2, written by earlier releases) would be,
	// tenant=<log>/date=<date>/<batch>.manifest.json. Once the run has
	// archived the batch, it is the key of the manifest that holds it
	// (version 3: manifests/…), which the purge records. Archive batches
	// only.
	Key        string
	Checkpoint trailseal.Checkpoint
}

// Plan is what a run would do.
type Plan struct {
	Batches []*Batch
	// Held counts events past their retention that a hold keeps.
	Held int64
	// Waiting counts events past their retention that no checkpoint covers
	// yet: they are archived once one does.
	Waiting int64
}

// Totals returns the events the plan archives and deletes.
func (p *Plan) Totals() (archive, del int64) {
	for _, b := range p.Batches {
		if b.Then == ThenArchive {
			archive += int64(len(b.Leaves))
		} else {
			del += int64(len(b.Leaves))
		}
	}
	return
}

// Plan computes what a run would archive and delete now, changing nothing.
// Only sealed events covered by a signed checkpoint qualify; held events and
// those waiting for a checkpoint are counted.
func (r *Runner) Plan(ctx context.Context) (*Plan, error) {
	set, err := r.cfg.Backend.Set(ctx)
	if err != nil {
		return nil, err
	}
	lg := r.cfg.Backend.Log()
	logs, err := lg.Logs(ctx)
	if err != nil {
		return nil, err
	}
	now := r.cfg.Now()
	// No event recorded on or after horizon can be past any policy; the scan
	// of a log stops at the first chunk that holds only such events. Leaves
	// are in sealing order, which follows recording order to within one
	// transaction's length, so stopping early can only delay an event that
	// was sealed far out of order to a later run, never purge one early.
	horizon := cutoff(now, set.MinKeep()).Add(Day)
	plan := &Plan{}
	for _, log := range logs {
		size, err := lg.TreeSize(ctx, log)
		if err != nil {
			return nil, err
		}
		cp, err := lg.LatestCheckpoint(ctx, log)
		if err != nil && !errors.Is(err, trailseal.ErrNoCheckpoint) {
			return nil, err
		}
		purged, err := r.cfg.Backend.Purged(ctx, log)
		if err != nil {
			return nil, err
		}
		type gk struct {
			date string
			then Then
		}
		groups := map[gk][]trailseal.SealedEvent{}
	scan:
		// Only the seqs retention has not purged yet are read.
		for _, gap := range unpurged(purged, size) {
			for from := gap.From; from < gap.To; from += r.cfg.ScanChunk {
				leaves, err := lg.Leaves(ctx, log, from, min(from+r.cfg.ScanChunk, gap.To))
				if err != nil {
					return nil, err
				}
				young := true
				for _, l := range leaves {
					ev := l.Event
					if ev == nil {
						continue // purged already
					}
					if ev.RecordedAt.Before(horizon) {
						young = false
					}
					pol := set.Resolve(ev.Tenant, ev.Action)
					if !ev.RecordedAt.Before(cutoff(now, pol.Keep)) {
						continue
					}
					if _, held := set.Held(ev); held {
						plan.Held++
						continue
					}
					if l.Seq >= cp.Size {
						plan.Waiting++
						continue
					}
					k := gk{ev.RecordedAt.UTC().Format(time.DateOnly), pol.Then}
					groups[k] = append(groups[k], l)
				}
				if young && len(leaves) > 0 {
					break scan
				}
			}
		}
		keys := make([]gk, 0, len(groups))
		for k := range groups {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b gk) int { return strings.Compare(a.date+string(a.then), b.date+string(b.then)) })
		for _, k := range keys {
			g := groups[k]
			for len(g) > 0 {
				n := min(len(g), r.cfg.BatchRows)
				b := &Batch{Log: log, Tenant: trailseal.TenantOf(log), Date: k.date, Then: k.then, Leaves: g[:n:n], Checkpoint: cp}
				if b.Then == ThenArchive {
					b.Key = batchKey(log, k.date, b.Leaves)
				}
				plan.Batches = append(plan.Batches, b)
				g = g[n:]
			}
		}
	}
	return plan, nil
}

// cutoff is the end of retention for events kept keep before now: the start
// of the UTC day holding now-keep. Only whole recorded days leave the store,
// so a day's batch of a log is the same set of events in every run that
// sees it (a re-run after a crash names it the same), at the price of
// keeping events up to a day longer than the policy says.
func cutoff(now time.Time, keep time.Duration) time.Time {
	return now.Add(-keep).UTC().Truncate(Day)
}

// unpurged returns the seq ranges of [0, size) that are in none of purged,
// in order.
func unpurged(purged []PurgedRange, size int64) []trailseal.SeqRange {
	rs := make([]trailseal.SeqRange, 0, len(purged))
	for _, p := range purged {
		rs = append(rs, trailseal.SeqRange{From: p.From, To: p.To})
	}
	slices.SortFunc(rs, func(a, b trailseal.SeqRange) int { return cmp.Compare(a.From, b.From) })
	var out []trailseal.SeqRange
	at := int64(0)
	for _, r := range rs {
		if r.From > at {
			out = append(out, trailseal.SeqRange{From: at, To: min(r.From, size)})
		}
		at = max(at, r.To)
		if at >= size {
			break
		}
	}
	if at < size {
		out = append(out, trailseal.SeqRange{From: at, To: size})
	}
	return out
}

// batchKey names a batch by its first and last seq and a digest of all its
// seqs: the same events always get the same name, so a re-run after a crash
// finds its own batch instead of writing a second copy.
func batchKey(log, date string, leaves []trailseal.SealedEvent) string {
	h := sha256.New()
	var b [8]byte
	for _, l := range leaves {
		binary.BigEndian.PutUint64(b[:], uint64(l.Seq))
		h.Write(b[:])
	}
	name := fmt.Sprintf("%012d-%012d-%s", leaves[0].Seq, leaves[len(leaves)-1].Seq, hex.EncodeToString(h.Sum(nil))[:16])
	return "tenant=" + log + "/date=" + date + "/" + name + ManifestSuffix
}

// Result sums up a run.
type Result struct {
	Archived int64 // events written to the archive (or found there from an earlier run)
	Batches  int   // archive batches written or confirmed
	Purged   int64 // events removed from the store
	Held     int64
	Waiting  int64
}

// Run carries out plan: each archive batch is written, read back and
// checked, then purged; each delete batch is purged. With a BulkPurger
// backend (PostgreSQL) every archive batch is written and checked first,
// then all are purged the backend's way. It stops at the first error; what
// was purged before stays purged, and a re-run resumes.
func (r *Runner) Run(ctx context.Context, plan *Plan) (Result, error) {
	ctx = r.withRun(ctx) // one run ID for its retention.purge events (audit.go)
	res := Result{Held: plan.Held, Waiting: plan.Waiting}
	a, d := plan.Totals()
	total, done := a+d, int64(0)
	// Archive batches first: a target that fails stops the run before any
	// delete-only batch purges anything.
	ordered := make([]*Batch, 0, len(plan.Batches))
	for _, b := range plan.Batches {
		if b.Then == ThenArchive {
			ordered = append(ordered, b)
		}
	}
	for _, b := range plan.Batches {
		if b.Then != ThenArchive {
			ordered = append(ordered, b)
		}
	}
	if bp, ok := r.cfg.Backend.(BulkPurger); ok {
		return r.runBulk(ctx, bp, ordered, res, total)
	}
	purge := func(b *Batch, archive string) error {
		n, err := r.cfg.Backend.Purge(ctx, b.Log, b.Leaves, archive)
		if err != nil {
			return err
		}
		res.Purged += n
		done += int64(len(b.Leaves))
		if r.cfg.Progress != nil {
			r.cfg.Progress(done, total)
		}
		return nil
	}
	nArchive := 0
	for nArchive < len(ordered) && ordered[nArchive].Then == ThenArchive {
		nArchive++
	}
	if err := r.archiveAll(ctx, ordered[:nArchive], &res, func(b *Batch) error { return purge(b, b.Key) }); err != nil {
		return res, err
	}
	for _, b := range ordered[nArchive:] {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if err := purge(b, ""); err != nil {
			return res, err
		}
	}
	return res, nil
}

// archiveAll archives batches (all ThenArchive, in plan order) and calls
// done for each once it is written and read back, in order. A batch whose
// manifest an earlier run wrote is read back as it is; the others are
// written into shared files (packBatches), each file followed by the
// manifests of the batches it completes. Each batch is counted in res and
// passed to the test hook.
func (r *Runner) archiveAll(ctx context.Context, batches []*Batch, res *Result, done func(*Batch) error) error {
	if len(batches) == 0 {
		return nil
	}
	if r.cfg.Target == nil {
		return errors.New("trailarchive: no archive target: --archive-to DIR|s3://bucket/prefix, or $" + ArchiveEnv)
	}
	if r.cfg.Signer == nil || r.verifiers == nil {
		return errors.New("trailarchive: archiving needs the checkpoint signing key")
	}
	confirmed := func(b *Batch) error {
		res.Archived += int64(len(b.Leaves))
		res.Batches++
		if r.cfg.afterArchive != nil {
			if err := r.cfg.afterArchive(b); err != nil {
				return err
			}
		}
		return done(b)
	}
	// Batches an earlier run archived and did not purge (it stopped in
	// between) are read back from their manifest: a version 3 manifest
	// that holds them, or their own of an earlier release.
	found, err := r.existingV3(ctx, batches)
	if err != nil {
		return err
	}
	var todo []*Batch
	for _, b := range batches {
		if err := ctx.Err(); err != nil {
			return err
		}
		if v := found[b.Key]; v != nil {
			if err := r.readBack(ctx, b, v); err != nil {
				return err
			}
			b.Key = v.Key
			if err := confirmed(b); err != nil {
				return err
			}
			continue
		}
		old, err := r.cfg.Target.Get(ctx, b.Key)
		switch {
		case errors.Is(err, ErrNotExist):
			todo = append(todo, b)
			continue
		case err != nil:
			return fmt.Errorf("archive target %s: %w (nothing deleted)", r.cfg.Target, err)
		}
		m, err := ParseManifest(old, r.verifiers, r.cfg.Origin)
		if err != nil {
			return fmt.Errorf("%s: existing manifest: %w (nothing deleted)", b.Key, err)
		}
		if err := r.readBack(ctx, b, m); err != nil {
			return err
		}
		if err := confirmed(b); err != nil {
			return err
		}
	}
	if len(todo) == 0 {
		return nil
	}
	next := 0 // the first batch whose manifest is not written yet
	return packBatches(todo, r.cfg.FileBytes, func(f packFile, spans [][]File) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		// Data first, manifests last: a batch without a manifest is
		// incomplete and is simply written again.
		if err := r.cfg.Target.Put(ctx, f.key, f.data); err != nil {
			return fmt.Errorf("archive target %s: %w (nothing deleted)", r.cfg.Target, err)
		}
		first := next
		for next < len(todo) && spanRows(spans[next]) == int64(len(todo[next].Leaves)) {
			next++
		}
		if next == first {
			return nil // the file's last batch continues in the next file
		}
		if r.cfg.manifestVersion == ManifestV2 {
			for i := first; i < next; i++ {
				if err := r.writeManifest(ctx, todo[i], spans[i]); err != nil {
					return err
				}
				if err := confirmed(todo[i]); err != nil {
					return err
				}
			}
			return nil
		}
		// One manifest for every batch this file completes (their rows
		// may start in earlier files, all written already).
		done := todo[first:next]
		if err := r.writeManifestV3(ctx, done, spans[first:next]); err != nil {
			return err
		}
		for _, b := range done {
			if err := confirmed(b); err != nil {
				return err
			}
		}
		return nil
	})
}

// existingV3 finds the batches of a plan that version 3 manifests in the
// target already hold: those of a run that stopped between its manifest
// and its purge. It reads only the manifests whose days (in their name)
// span a day of the plan, and skips those that do not verify (another
// deployment's, or damaged: the batches are then written again). The
// result maps a batch's Key (as planned) to its view, whose Key is the
// manifest's.
func (r *Runner) existingV3(ctx context.Context, batches []*Batch) (map[string]*Manifest, error) {
	keys, err := r.cfg.Target.List(ctx, ManifestDir)
	if err != nil {
		return nil, fmt.Errorf("archive target %s: %w (nothing deleted)", r.cfg.Target, err)
	}
	var days []string
	for _, b := range batches {
		days = append(days, b.Date)
	}
	slices.Sort(days)
	days = slices.Compact(days)
	found := map[string]*Manifest{}
	for _, k := range keys {
		first, last, ok := v3KeyDays(k)
		if !ok {
			continue
		}
		if i, _ := slices.BinarySearch(days, first); i == len(days) || days[i] > last {
			continue
		}
		data, err := r.cfg.Target.Get(ctx, k)
		if err != nil {
			return nil, fmt.Errorf("archive target %s: %w (nothing deleted)", r.cfg.Target, err)
		}
		views, err := ParseManifests(data, r.verifiers, r.cfg.Origin)
		if err != nil || ManifestKeyV3(manifestName(views)) != k {
			continue
		}
		for _, v := range views {
			v.Key = k
			found[batchKeyOf(v)] = v
		}
	}
	return found, nil
}

// writeManifestV3 writes the version 3 manifest of batches, whose rows
// spans place in files already written, reads it back and checks every
// batch through it; each batch's Key becomes the manifest's key.
func (r *Runner) writeManifestV3(ctx context.Context, batches []*Batch, spans [][]File) error {
	m, err := newManifestV3(r.cfg.Origin, batches, spans)
	if err != nil {
		return err
	}
	key, data, err := m.encodeSigned(r.cfg.Signer)
	if err != nil {
		return err
	}
	if err := r.cfg.Target.Put(ctx, key, data); err != nil {
		return fmt.Errorf("archive target %s: %w (nothing deleted)", r.cfg.Target, err)
	}
	back, err := r.cfg.Target.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("read back %s: %w (nothing deleted)", key, err)
	}
	views, err := ParseManifests(back, r.verifiers, r.cfg.Origin)
	if err != nil {
		return fmt.Errorf("read back %s: %w (nothing deleted)", key, err)
	}
	if len(views) != len(batches) {
		return fmt.Errorf("read back %s: %d batches, want %d (nothing deleted)", key, len(views), len(batches))
	}
	byKey := make(map[string]*Manifest, len(views))
	for _, v := range views {
		byKey[batchKeyOf(v)] = v
	}
	for _, b := range batches {
		v := byKey[b.Key]
		if v == nil {
			return fmt.Errorf("read back %s: batch %s is not in it (nothing deleted)", key, b.Key)
		}
		if err := r.readBack(ctx, b, v); err != nil {
			return err
		}
		b.Key = key
	}
	return nil
}

// batchKeyOf is the key a batch's own manifest has (version 1 or 2), or
// would have: tenant=<log>/date=<date>/<batch>.manifest.json.
func batchKeyOf(m *Manifest) string {
	return "tenant=" + m.Log + "/date=" + m.Date + "/" + m.Batch + ManifestSuffix
}

// runBulk is Run for a BulkPurger: every archive batch is written and read
// back first, then the backend purges all batches its own way. A crash or an
// error before the purge leaves every event in the store, and the re-run
// finds the manifests written so far. Progress counts an archive batch's
// events when they are read back, then the delete batches' share as the
// purge goes; it reaches total only when the purge is over.
func (r *Runner) runBulk(ctx context.Context, bp BulkPurger, ordered []*Batch, res Result, total int64) (Result, error) {
	var archived, all int64
	report := func(done int64) {
		if r.cfg.Progress != nil {
			r.cfg.Progress(min(done, max(total-1, 0)), total)
		}
	}
	var archive []*Batch
	for _, b := range ordered {
		all += int64(len(b.Leaves))
		if b.Then == ThenArchive {
			archive = append(archive, b)
		}
	}
	if err := r.archiveAll(ctx, archive, &res, func(b *Batch) error {
		archived += int64(len(b.Leaves))
		report(archived)
		return nil
	}); err != nil {
		return res, err
	}
	if all == 0 {
		return res, nil
	}
	n, err := bp.PurgeBatches(ctx, ordered, func(handled int64) {
		report(archived + (total-archived)*handled/all)
	})
	res.Purged += n
	if err != nil {
		return res, err
	}
	if r.cfg.Progress != nil {
		r.cfg.Progress(total, total)
	}
	return res, nil
}

// writeManifest writes the version 2 manifest of b (as releases before
// version 3 did), whose rows files hold (already
// written), reads it back and checks the batch through it.
func (r *Runner) writeManifest(ctx context.Context, b *Batch, files []File) error {
	seqs := make([]int64, len(b.Leaves))
	for i, l := range b.Leaves {
		seqs[i] = l.Seq
	}
	m := &Manifest{Version: ManifestV2, Origin: r.cfg.Origin, Log: b.Log, Tenant: b.Tenant, Date: b.Date,
		Batch: strings.TrimSuffix(b.Key[strings.LastIndexByte(b.Key, '/')+1:], ManifestSuffix),
		Files: files, Rows: int64(len(b.Leaves)), Seqs: ranges(seqs), Checkpoint: b.Checkpoint}
	if err := m.Sign(r.cfg.Signer); err != nil {
		return err
	}
	mb, err := m.Encode()
	if err != nil {
		return err
	}
	if err := r.cfg.Target.Put(ctx, b.Key, mb); err != nil {
		return fmt.Errorf("archive target %s: %w (nothing deleted)", r.cfg.Target, err)
	}
	back, err := r.cfg.Target.Get(ctx, b.Key)
	if err != nil {
		return fmt.Errorf("read back %s: %w (nothing deleted)", b.Key, err)
	}
	if m, err = ParseManifest(back, r.verifiers, r.cfg.Origin); err != nil {
		return fmt.Errorf("read back %s: %w (nothing deleted)", b.Key, err)
	}
	return r.readBack(ctx, b, m)
}

// readBack checks that the stored batch holds exactly b's events: the
// manifest's seqs, each file's SHA-256 and row count, and every row's leaf
// hash against the stored leaf.
func (r *Runner) readBack(ctx context.Context, b *Batch, m *Manifest) error {
	want := make([]int64, len(b.Leaves))
	for i, l := range b.Leaves {
		want[i] = l.Seq
	}
	if !slices.Equal(ranges(want), m.Seqs) || m.Log != b.Log {
		return fmt.Errorf("%s: the manifest's seqs are not this batch's (nothing deleted)", b.Key)
	}
	byseq := make(map[int64]tlog.Hash, len(b.Leaves))
	for _, l := range b.Leaves {
		byseq[l.Seq] = l.Hash
	}
	seen := 0
	for _, f := range m.Files {
		rows, err := r.readFile(ctx, f)
		if err != nil {
			return fmt.Errorf("%w (nothing deleted)", err)
		}
		for _, row := range rows {
			h, ok := byseq[row.Seq]
			if !ok || tlog.RecordHash(row.Event) != h {
				return fmt.Errorf("%s: seq %d does not match its leaf (nothing deleted)", f.Key, row.Seq)
			}
			delete(byseq, row.Seq)
			seen++
		}
	}
	if seen != len(b.Leaves) || len(byseq) != 0 {
		return fmt.Errorf("%s: %d of %d events read back (nothing deleted)", b.Key, seen, len(b.Leaves))
	}
	return nil
}

// readFile returns the rows f names, checked against its SHA-256 and row
// count; the file last read is kept (fileCache).
func (r *Runner) readFile(ctx context.Context, f File) ([]Row, error) {
	rows, err := r.files.rows(ctx, r.cfg.Target, f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Key, err)
	}
	return rows, nil
}

// SetProgress sets Config.Progress.
func (r *Runner) SetProgress(f func(done, total int64)) { r.cfg.Progress = f }
