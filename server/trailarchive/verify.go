package trailarchive

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/tlog"
)

// Kind classifies a CoverageProblem. A kind reads as the CLI prints it, with
// spaces for the underscores.
type Kind string

// Coverage problem kinds.
const (
	// KindManifestMissing: the store purged seqs into a batch whose
	// manifest is not in the target (deleted, or the wrong target).
	KindManifestMissing Kind = "archive_manifest_missing"
	// KindManifestBad: the manifest at the key does not verify: edited,
	// unsigned, signed by an untrusted key or for another deployment
	// (foreign), or another batch's manifest put at this key (moved); or it
	// does not describe its own files.
	KindManifestBad Kind = "archive_manifest_bad"
	// KindFileMissing: a file the manifest lists is not in the target.
	KindFileMissing Kind = "archive_file_missing"
	// KindFileEdited: a file's SHA-256 or row count is not the manifest's,
	// or it is not readable Parquet (edited, corrupted, or replaced by
	// another batch's file).
	KindFileEdited Kind = "archive_file_edited_or_corrupted"
	// KindNotCovered: the manifest verifies but does not hold these purged
	// seqs: nothing in the archive proves what they were.
	KindNotCovered Kind = "archive_range_not_covered"
	// KindArchivedModified: an archived event does not hash to the stored
	// leaf at its seq.
	KindArchivedModified Kind = "archived_event_modified"
	// KindArchivedUnreadable: an archived event's bytes do not parse.
	KindArchivedUnreadable Kind = "archived_event_unreadable"
	// KindNoLeaf: the store has no leaf at an archived event's seq (the tree
	// check reports the store's side).
	KindNoLeaf Kind = "archived_event_without_leaf"
)

// CoverageProblem is one archived range that is not provable, placed by
// tenant, seqs and manifest key.
type CoverageProblem struct {
	Tenant string `json:"tenant"`
	Log    string `json:"log"`
	// From and To are the seqs concerned, [From, To): one archived event,
	// or for a problem with a whole batch the span of the seqs the store
	// purged into it.
	From int64 `json:"from"`
	To   int64 `json:"to"`
	// Key is the manifest key the store recorded for these seqs.
	Key string `json:"key"`
	// File is the archive file concerned, when there is one.
	File   string `json:"file,omitempty"`
	Kind   Kind   `json:"kind"`
	Detail string `json:"detail"`
}

// Seqs is the problem's seqs for people: "7" or "7..19" (inclusive).
func (p CoverageProblem) Seqs() string {
	if p.To-p.From <= 1 {
		return fmt.Sprint(p.From)
	}
	return fmt.Sprintf("%d..%d", p.From, p.To-1)
}

func (p CoverageProblem) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "log %s seq %s: %s: %s", p.Log, p.Seqs(), strings.ReplaceAll(string(p.Kind), "_", " "), p.Key)
	if p.File != "" && p.File != p.Key {
		b.WriteString(" file " + p.File)
	}
	if p.Detail != "" {
		b.WriteString(": " + p.Detail)
	}
	return b.String()
}

// LogCoverage sums up one log's archived ranges.
type LogCoverage struct {
	Log      string `json:"log"`
	Tenant   string `json:"tenant"`
	Archived int64  `json:"archived"` // seqs the store purged into the archive
	Deleted  int64  `json:"deleted"`  // seqs a delete policy purged
	Batches  int    `json:"batches"`  // manifests the store names
	Events   int64  `json:"events"`   // archived events checked against their leaves
	Problems int    `json:"problems"`
}

// CoverageReport is the result of a coverage check: every archived range is
// provable exactly when Problems is empty (and Omitted is 0).
type CoverageReport struct {
	// Checked is false when no archive was given: the ranges were counted,
	// not checked.
	Checked  bool          `json:"checked"`
	Logs     []LogCoverage `json:"logs"`
	Archived int64         `json:"archived"` // seqs the store purged into the archive
	Deleted  int64         `json:"deleted"`  // seqs a delete policy purged: nothing to check
	Batches  int           `json:"batches"`  // manifests the store names
	Events   int64         `json:"events"`   // archived events read and checked against their leaves
	// Unlisted are manifests in the target (of the logs checked) that no
	// purge of the store names: a batch written by a run that stopped
	// before its purge (the next run purges it), or another store's batch
	// in the same target. Informational: a problem only shows when the
	// store's own ranges are not covered.
	Unlisted []string          `json:"unlisted,omitempty"`
	Problems []CoverageProblem `json:"problems"`
	Omitted  int64             `json:"omitted,omitempty"`
}

// OK reports whether every archived range was checked and found provable.
func (r *CoverageReport) OK() bool { return len(r.Problems) == 0 && r.Omitted == 0 }

// keyRanges is the store's purged ranges of one log that name one
// manifest key.
type keyRanges struct {
	key    string
	ranges []trailseal.SeqRange
	// ms are the manifest's batches of the log: nil until read, or when
	// it does not verify. One for a version 1 or 2 manifest; those of the
	// log among the many a version 3 manifest holds.
	ms []*Manifest
}

// seqs returns the seqs k's batches hold, in order.
func (k *keyRanges) seqs() []trailseal.SeqRange {
	if len(k.ms) == 1 {
		return k.ms[0].Seqs
	}
	var all []trailseal.SeqRange
	for _, m := range k.ms {
		all = append(all, m.Seqs...)
	}
	slices.SortFunc(all, func(a, b trailseal.SeqRange) int { return cmp.Compare(a.From, b.From) })
	return all
}

func (k *keyRanges) span() (int64, int64) {
	lo, hi := k.ranges[0].From, k.ranges[0].To
	for _, r := range k.ranges {
		lo, hi = min(lo, r.From), max(hi, r.To)
	}
	return lo, hi
}

type logCoverage struct {
	LogCoverage
	keys []*keyRanges // by first seq
}

// coverage is a coverage check under way: planned (the store's ranges read,
// manifests opened), then its batches checked.
type coverage struct {
	a           *Archive // nil: count only
	log         trailseal.Store
	rep         *CoverageReport
	logs        []*logCoverage
	maxProblems int
}

// MaxCoverageProblems bounds the problems a coverage report keeps (a
// replaced archive has one per event); the rest are counted in Omitted.
const MaxCoverageProblems = 10000

// PurgeLister is the part of a Backend that verification needs: which seqs
// retention purged, and into which batch.
type PurgeLister interface {
	Purged(ctx context.Context, log string) ([]PurgedRange, error)
}

// planCoverage reads the purged ranges of logs from pl (none when nil),
// groups the archived ones by manifest key and, when a is not nil, opens and
// verifies each manifest (a missing or bad one is a problem) and lists the
// target's manifests that no range names. st is the store whose leaves the
// archived events are checked against.
func planCoverage(ctx context.Context, a *Archive, st trailseal.Store, pl PurgeLister, logs []string) (*coverage, error) {
	c := &coverage{a: a, log: st, rep: &CoverageReport{Checked: a != nil, Problems: []CoverageProblem{}}, maxProblems: MaxCoverageProblems}
	named := map[string]bool{}
	for _, log := range logs {
		var rs []PurgedRange
		if pl != nil {
			var err error
			if rs, err = pl.Purged(ctx, log); err != nil {
				return nil, err
			}
		}
		lc := &logCoverage{LogCoverage: LogCoverage{Log: log, Tenant: trailseal.TenantOf(log)}}
		byKey := map[string]*keyRanges{}
		for _, r := range rs {
			if r.To <= r.From {
				continue
			}
			if r.Archive == "" {
				lc.Deleted += r.To - r.From
				continue
			}
			lc.Archived += r.To - r.From
			k := byKey[r.Archive]
			if k == nil {
				k = &keyRanges{key: r.Archive}
				byKey[r.Archive] = k
				lc.keys = append(lc.keys, k)
			}
			k.ranges = append(k.ranges, trailseal.SeqRange{From: r.From, To: r.To})
		}
		slices.SortFunc(lc.keys, func(x, y *keyRanges) int {
			xl, _ := x.span()
			yl, _ := y.span()
			return cmp.Compare(xl, yl)
		})
		lc.Batches = len(lc.keys)
		c.rep.Batches += lc.Batches
		c.rep.Archived += lc.Archived
		c.rep.Deleted += lc.Deleted
		c.logs = append(c.logs, lc)
		if a == nil {
			continue
		}
		for _, k := range lc.keys {
			named[k.key] = true
			if err := c.openManifest(ctx, lc, k); err != nil {
				return nil, err
			}
		}
	}
	if a == nil {
		return c, nil
	}
	for _, log := range logs {
		keys, err := a.ManifestKeys(ctx, Selection{Tenant: trailseal.TenantOf(log)})
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			if named[k] || slices.Contains(c.rep.Unlisted, k) {
				continue
			}
			if isV3Key(k) && !c.holdsLog(ctx, k, log) {
				continue // other logs' batches only
			}
			c.rep.Unlisted = append(c.rep.Unlisted, k)
		}
	}
	return c, nil
}

// holdsLog reports whether the version 3 manifest at key holds a batch of
// log (one that does not verify is listed: it may).
func (c *coverage) holdsLog(ctx context.Context, key, log string) bool {
	ms, err := c.a.Manifests(ctx, key)
	if err != nil {
		return true
	}
	return slices.ContainsFunc(ms, func(m *Manifest) bool { return m.Log == log })
}

// openManifest reads and verifies k's manifest: signature, checkpoint,
// origin, key, and that it names k's log. A target failure is an error;
// anything wrong with the manifest is a problem.
func (c *coverage) openManifest(ctx context.Context, lc *logCoverage, k *keyRanges) error {
	from, to := k.span()
	p := CoverageProblem{From: from, To: to, Key: k.key}
	if !validBatchKey(lc.Log, k.key) {
		// The purge record itself was altered: it cannot name this log's batch.
		p.Kind, p.Detail = KindManifestBad, fmt.Sprintf("the store's purge record names %q, which is not a batch key of log %s", k.key, lc.Log)
		c.problem(lc, p)
		return nil
	}
	ms, err := c.a.Manifests(ctx, k.key)
	switch {
	case errors.Is(err, ErrNotExist):
		p.Kind, p.Detail = KindManifestMissing, fmt.Sprintf("the store purged %d events into this batch; its manifest is not in %s", count(k.ranges), c.a.Target)
		c.problem(lc, p)
		return nil
	case errors.Is(err, ErrBadManifest):
		p.Kind, p.Detail = KindManifestBad, strings.TrimPrefix(err.Error(), k.key+": ")
		c.problem(lc, p)
		return nil
	case err != nil:
		return fmt.Errorf("archive target %s: %w", c.a.Target, err)
	}
	var mine []*Manifest
	for _, m := range ms {
		if m.Log == lc.Log {
			mine = append(mine, m)
		}
	}
	if len(mine) == 0 {
		p.Kind, p.Detail = KindManifestBad, fmt.Sprintf("the manifest is of log %s (moved or foreign)", ms[0].Log)
		c.problem(lc, p)
		return nil
	}
	k.ms = mine
	return nil
}

// validBatchKey reports whether key has the shape Runner gives the keys of
// log's manifests: tenant=LOG/date=YYYY-MM-DD/NAME.manifest.json (versions
// 1 and 2), or manifests/FIRST_LAST_DIGEST.manifest.json (version 3), with
// no path tricks.
func validBatchKey(log, key string) bool {
	if isV3Key(key) {
		return true
	}
	rest, ok := strings.CutPrefix(key, "tenant="+log+"/date=")
	if !ok || !IsManifestKey(key) || strings.Contains(key, "..") || strings.Contains(key, `\`) {
		return false
	}
	date, name, ok := strings.Cut(rest, "/")
	if _, err := time.Parse(time.DateOnly, date); err != nil || !ok {
		return false
	}
	return name != ManifestSuffix && !strings.Contains(name, "/")
}

func count(rs []trailseal.SeqRange) int64 {
	var n int64
	for _, r := range rs {
		n += r.To - r.From
	}
	return n
}

func (c *coverage) problem(lc *logCoverage, p CoverageProblem) {
	lc.Problems++
	if len(c.rep.Problems) >= c.maxProblems {
		c.rep.Omitted++
		return
	}
	p.Log, p.Tenant = lc.Log, lc.Tenant
	c.rep.Problems = append(c.rep.Problems, p)
}

// checkpoints returns the signed checkpoints of the manifests that verified,
// once each: the store's tree must still contain them.
func (c *coverage) checkpoints() [][]byte {
	seen := map[string]bool{}
	var out [][]byte
	for _, lc := range c.logs {
		for _, k := range lc.keys {
			for _, m := range k.ms {
				if !seen[m.Checkpoint.Note] {
					seen[m.Checkpoint.Note] = true
					out = append(out, []byte(m.Checkpoint.Note))
				}
			}
		}
	}
	return out
}

// rows returns the events of the manifests that verified: the work of check.
func (c *coverage) rows() int64 {
	var n int64
	for _, lc := range c.logs {
		for _, k := range lc.keys {
			for _, m := range k.ms {
				n += m.Rows
			}
		}
	}
	return n
}

// check reads every verified manifest's files and checks them, each row
// against the stored leaf at its seq, and that the manifest holds every seq
// the store purged into it. progress is called with the rows read so far.
func (c *coverage) check(ctx context.Context, progress func(rows int64)) error {
	var done int64
	for _, lc := range c.logs {
		for _, k := range lc.keys {
			if len(k.ms) == 0 {
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			from, to := k.span()
			fileProblem := false
			seen := map[finding]bool{} // a file's problem once per key, not once per batch
			for _, m := range k.ms {
				bc, err := c.a.checkBatch(ctx, c.log, m)
				if err != nil {
					return err
				}
				lc.Events += bc.rows
				c.rep.Events += bc.rows
				for _, f := range bc.findings {
					if f.seq < 0 && seen[f] {
						continue
					}
					seen[f] = true
					p := CoverageProblem{From: from, To: to, Key: k.key, File: f.file, Kind: f.kind, Detail: f.detail}
					if f.seq >= 0 {
						p.From, p.To = f.seq, f.seq+1
					} else {
						fileProblem = true
					}
					c.problem(lc, p)
				}
				done += m.Rows
				if progress != nil {
					progress(done)
				}
			}
			// A missing or edited file already names the batch's span.
			if !fileProblem {
				held := k.seqs()
				for _, r := range uncovered(k.ranges, held) {
					c.problem(lc, CoverageProblem{From: r.From, To: r.To, Key: k.key, Kind: KindNotCovered,
						Detail: fmt.Sprintf("the store purged these seqs into this batch, but its manifest holds %s", seqsText(held))})
				}
			}
		}
	}
	return nil
}

// report returns the finished report.
func (c *coverage) report() *CoverageReport {
	c.rep.Logs = c.rep.Logs[:0]
	for _, lc := range c.logs {
		c.rep.Logs = append(c.rep.Logs, lc.LogCoverage)
	}
	return c.rep
}

// uncovered returns the seqs of purged that held does not contain.
func uncovered(purged, held []trailseal.SeqRange) []trailseal.SeqRange {
	in := newSeqIndex(held)
	var seqs []int64
	for _, r := range purged {
		for s := r.From; s < r.To; s++ {
			if !in[s] {
				seqs = append(seqs, s)
			}
		}
	}
	return ranges(seqs)
}

func seqsText(rs []trailseal.SeqRange) string {
	if len(rs) == 0 {
		return "no seqs"
	}
	return fmt.Sprintf("%d seqs in %d..%d", count(rs), rs[0].From, rs[len(rs)-1].To-1)
}

// Coverage checks that the archive holds, provably, every range the store
// of b purged into it, for logs (every log of the store when empty): for
// each manifest key the store recorded, the manifest at that key verifies
// (signature, checkpoint, origin, key), its files' SHA-256 and rows are the
// manifest's, each row's leaf hash is the stored leaf at its seq, and its
// seqs include every seq the store purged into it. Ranges a delete policy
// purged are counted. With the store's own check (trailseal.Verifier, see
// Verifier), that answers whether every event ever sealed is provable. An
// error means the check could not run (a store or target failure).
func (a *Archive) Coverage(ctx context.Context, b Backend, logs []string) (*CoverageReport, error) {
	if len(logs) == 0 {
		var err error
		if logs, err = b.Log().Logs(ctx); err != nil {
			return nil, err
		}
	}
	c, err := planCoverage(ctx, a, b.Log(), b, logs)
	if err != nil {
		return nil, err
	}
	if err := c.check(ctx, nil); err != nil {
		return nil, err
	}
	return c.report(), nil
}

// finding is one thing wrong with a batch's files or rows.
type finding struct {
	kind   Kind
	file   string
	seq    int64 // -1: not about one event
	detail string
}

// batchCheck is what checking one batch found.
type batchCheck struct {
	rows     int64 // rows read
	findings []finding
}

// checkBatch reads m's files and checks each one's SHA-256 and row count,
// that the rows are exactly m's seqs, and — when log is not nil — each
// row's leaf hash against the stored leaf at its seq. An error means the
// target or the store failed; what is wrong with the batch is a finding.
func (a *Archive) checkBatch(ctx context.Context, log trailseal.Store, m *Manifest) (*batchCheck, error) {
	bc := &batchCheck{}
	var stored map[int64]tlog.Hash
	if log != nil {
		var err error
		if stored, err = storedLeaves(ctx, log, m.Log, m.Seqs); err != nil {
			return nil, err
		}
	}
	inBatch := newSeqIndex(m.Seqs)
	unreadable := false
	for _, f := range m.Files {
		rows, err := a.files.rows(ctx, a.Target, f)
		switch {
		case errors.Is(err, errNotInTarget):
			bc.findings = append(bc.findings, finding{KindFileMissing, f.Key, -1, "not in the archive target"})
			unreadable = true
			continue
		case errors.Is(err, errFileBad):
			bc.findings = append(bc.findings, finding{KindFileEdited, f.Key, -1, strings.TrimPrefix(err.Error(), errFileBad.Error()+": ")})
			unreadable = true
			continue
		case err != nil:
			return nil, err
		}
		for _, r := range rows {
			bc.rows++
			if !inBatch[r.Seq] {
				bc.findings = append(bc.findings, finding{KindManifestBad, f.Key, r.Seq, "row is not one of the manifest's seqs"})
				continue
			}
			delete(inBatch, r.Seq)
			if log != nil {
				h, ok := stored[r.Seq]
				switch {
				case !ok:
					bc.findings = append(bc.findings, finding{KindNoLeaf, f.Key, r.Seq, "no stored leaf at this seq"})
				case tlog.RecordHash(r.Event) != h:
					bc.findings = append(bc.findings, finding{KindArchivedModified, f.Key, r.Seq, "archived event does not hash to its leaf (modified)"})
				default:
					continue // the sealed bytes: they parsed when sealed
				}
			}
			if _, err := r.Decode(); err != nil {
				bc.findings = append(bc.findings, finding{KindArchivedUnreadable, f.Key, r.Seq, "unreadable event: " + err.Error()})
			}
		}
	}
	if len(inBatch) > 0 && !unreadable {
		bc.findings = append(bc.findings, finding{KindManifestBad, "", -1, fmt.Sprintf("%d seqs of the manifest have no row", len(inBatch))})
	}
	return bc, nil
}

// leafSpan is how many seqs one read of stored leaves covers at most: the
// seqs of a batch are read span by span, gaps of other events included, so
// that a batch of scattered seqs costs a few reads, not one per range.
const leafSpan = 5000

// storedLeaves returns the stored leaf hash of each seq in rs.
func storedLeaves(ctx context.Context, log trailseal.Store, name string, rs []trailseal.SeqRange) (map[int64]tlog.Hash, error) {
	out := make(map[int64]tlog.Hash, count(rs))
	want := newSeqIndex(rs)
	for i := 0; i < len(rs); {
		from, to := rs[i].From, rs[i].To
		for i++; i < len(rs) && rs[i].To-from <= leafSpan; i++ {
			to = rs[i].To
		}
		for lo := from; lo < to; lo += leafSpan {
			ls, err := log.Leaves(ctx, name, lo, min(lo+leafSpan, to))
			if err != nil {
				return nil, fmt.Errorf("trailarchive: leaves of %q: %w", name, err)
			}
			for _, l := range ls {
				if want[l.Seq] {
					out[l.Seq] = l.Hash
				}
			}
		}
	}
	return out, nil
}

// Verifier answers whether everything a store sealed is still provable: its
// logs (trailseal.Verifier: trees, checkpoints, every hot event against its
// leaf, purged leaves as purged) and every range retention archived
// (Archive.Coverage), the manifests' checkpoints being checked against the
// store's tree like checkpoints kept outside it.
type Verifier struct {
	// Log verifies the store's logs and reads their leaves. Its Progress is
	// not used (see Progress).
	Log *trailseal.Verifier
	// Purges lists the store's purged ranges (its Backend). Nil: the store
	// has no retention, nothing was archived; Archive must then be nil.
	Purges PurgeLister
	// Archive is the target the store archived into; nil: the archived
	// ranges are counted, not checked.
	Archive *Archive
	// Progress, when set, is called as verification advances: the store's
	// leaves, then the archived events (Total counts both).
	Progress func(trailseal.Progress)
}

// Report is the result of Verifier.Verify: the store's report, and the
// archived ranges'.
type Report struct {
	trailseal.Report
	Archive *CoverageReport `json:"archive"`
}

// OK reports whether nothing was found wrong, in the store or the archive.
func (r *Report) OK() bool { return r.Report.OK() && (r.Archive == nil || r.Archive.OK()) }

// Verify runs both checks over opt.Logs (every log when empty).
func (v *Verifier) Verify(ctx context.Context, opt *trailseal.VerifyOptions) (*Report, error) {
	if v.Log == nil || v.Log.Store == nil || (v.Purges == nil && v.Archive != nil) {
		return nil, errors.New("trailarchive: Verifier needs Log, and Purges to check an Archive")
	}
	var o trailseal.VerifyOptions
	if opt != nil {
		o = *opt
	}
	logs := o.Logs
	if len(logs) == 0 {
		var err error
		if logs, err = v.Log.Store.Logs(ctx); err != nil {
			return nil, fmt.Errorf("trailarchive: verify: %w", err)
		}
	}
	c, err := planCoverage(ctx, v.Archive, v.Log.Store, v.Purges, logs)
	if err != nil {
		return nil, err
	}
	var archTotal, storeTotal int64
	if v.Archive != nil {
		archTotal = c.rows()
		o.Checkpoints = append(slices.Clone(o.Checkpoints), c.checkpoints()...)
	}
	lv := *v.Log
	lv.Progress = nil
	if v.Progress != nil {
		lv.Progress = func(p trailseal.Progress) {
			storeTotal = p.Total
			v.Progress(trailseal.Progress{Log: p.Log, Done: p.Done, Total: p.Total + archTotal})
		}
	}
	srep, err := lv.Verify(ctx, &o)
	if err != nil {
		return nil, err
	}
	rep := &Report{Report: *srep}
	if v.Archive != nil {
		var progress func(int64)
		if v.Progress != nil {
			progress = func(n int64) {
				v.Progress(trailseal.Progress{Log: "archive", Done: storeTotal + n, Total: storeTotal + archTotal})
			}
		}
		if err := c.check(ctx, progress); err != nil {
			return nil, err
		}
	}
	rep.Archive = c.report()
	return rep, nil
}
