package trailarchive

import (
	"cmp"
	"context"
	"fmt"
	"strings"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailseal"
	"github.com/trailhq/trail/trailtest"
	"golang.org/x/mod/sumdb/note"
)

// Archive reads a target's batches back.
type Archive struct {
	Target    Target
	Verifiers note.Verifiers
	Origin    string // default trailseal.DefaultOrigin

	files fileCache // the archive file last read (pack.go)
}

// Selection picks batches: Tenant ("" for every log; "_platform" for the
// platform events) and an inclusive range of recorded dates (YYYY-MM-DD,
// either may be empty).
type Selection struct {
	Tenant   string
	From, To string
}

func (a *Archive) origin() string {
	if a.Origin == "" {
		return trailseal.DefaultOrigin
	}
	return a.Origin
}

// ManifestKeys lists the manifest keys sel picks, in order.
func (a *Archive) ManifestKeys(ctx context.Context, sel Selection) ([]string, error) {
	prefix := ""
	if sel.Tenant != "" {
		prefix = "tenant=" + trailseal.LogName(sel.Tenant) + "/"
	}
	keys, err := a.Target.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, k := range keys {
		if !IsManifestKey(k) {
			continue
		}
		date := ""
		for _, part := range strings.Split(k, "/") {
			if d, ok := strings.CutPrefix(part, "date="); ok {
				date = d
			}
		}
		if (sel.From != "" && date < sel.From) || (sel.To != "" && date > sel.To) {
			continue
		}
		out = append(out, k)
	}
	return out, nil
}

// Manifest reads and checks the manifest at key.
func (a *Archive) Manifest(ctx context.Context, key string) (*Manifest, error) {
	b, err := a.Target.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	m, err := ParseManifest(b, a.Verifiers, a.origin())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	want := strings.TrimSuffix(key[strings.LastIndexByte(key, '/')+1:], ManifestSuffix)
	if m.Batch != want || !strings.HasPrefix(key, "tenant="+m.Log+"/date="+m.Date+"/") {
		return nil, fmt.Errorf("%s: %w: it describes batch %s of %s (moved or foreign)", key, ErrBadManifest, m.Batch, m.Log)
	}
	return m, nil
}

// Problem is one thing Verify found wrong.
type Problem struct {
	Key    string `json:"key"`
	Seq    int64  `json:"seq,omitempty"`
	Detail string `json:"detail"`
}

func (p Problem) String() string {
	if p.Seq > 0 {
		return fmt.Sprintf("PROBLEM %s seq %d: %s", p.Key, p.Seq, p.Detail)
	}
	return fmt.Sprintf("PROBLEM %s: %s", p.Key, p.Detail)
}

// VerifyReport is what Verify checked.
type VerifyReport struct {
	Batches  int       `json:"batches"`
	Events   int64     `json:"events"`
	Problems []Problem `json:"problems,omitempty"`
}

// Verify checks every batch sel picks: the manifest's signature (and its
// checkpoint's), each file's SHA-256 and row count, that the rows are
// exactly the manifest's seqs, and — when log is not nil — that every
// archived event's leaf hash is the stored leaf at its seq. It starts from
// the archive, so it cannot see a batch that is gone; Coverage starts from
// the store's purges and can (Verifier: both checks of `trail verify`). An
// error means the target or the store failed.
func (a *Archive) Verify(ctx context.Context, log trailseal.Store, sel Selection) (*VerifyReport, error) {
	keys, err := a.ManifestKeys(ctx, sel)
	if err != nil {
		return nil, err
	}
	rep := &VerifyReport{}
	for _, k := range keys {
		rep.Batches++
		m, err := a.Manifest(ctx, k)
		if err != nil {
			rep.Problems = append(rep.Problems, Problem{Key: k, Detail: err.Error()})
			continue
		}
		bc, err := a.checkBatch(ctx, log, m) // verify.go
		if err != nil {
			return nil, err
		}
		rep.Events += bc.rows
		for _, f := range bc.findings {
			p := Problem{Key: cmp.Or(f.file, k), Detail: f.detail}
			if f.seq >= 0 {
				p.Seq = f.seq
			}
			rep.Problems = append(rep.Problems, p)
		}
	}
	return rep, nil
}

func newSeqIndex(rs []trailseal.SeqRange) map[int64]bool {
	m := map[int64]bool{}
	for _, r := range rs {
		for s := r.From; s < r.To; s++ {
			m[s] = true
		}
	}
	return m
}

// Events returns the archived events sel picks, as stored, after checking
// each manifest and file (any failure is an error: nothing unverified is
// returned).
func (a *Archive) Events(ctx context.Context, sel Selection) ([]trail.Event, error) {
	keys, err := a.ManifestKeys(ctx, sel)
	if err != nil {
		return nil, err
	}
	var out []trail.Event
	for _, k := range keys {
		m, err := a.Manifest(ctx, k)
		if err != nil {
			return nil, err
		}
		for _, f := range m.Files {
			rows, err := a.files.rows(ctx, a.Target, f)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f.Key, err)
			}
			for _, r := range rows {
				ev, err := r.Decode()
				if err != nil {
					return nil, fmt.Errorf("%s: %w", f.Key, err)
				}
				out = append(out, ev)
			}
		}
	}
	return out, nil
}

// Query answers q over the archived events of q.Tenant (every log with
// q.AllTenants), with the same filters, order and paging as a store.
func (a *Archive) Query(ctx context.Context, q trail.Query) (trail.Page, error) {
	if err := q.Validate(); err != nil {
		return trail.Page{}, err
	}
	// Batches are laid out by recorded date, the filters are on occurred
	// time (client-supplied): every batch of the tenant is read.
	sel := Selection{Tenant: q.Tenant}
	evs, err := a.Events(ctx, sel)
	if err != nil {
		return trail.Page{}, err
	}
	mem := trailtest.NewStore()
	defer mem.Close()
	if _, err := mem.Append(ctx, evs); err != nil {
		return trail.Page{}, fmt.Errorf("trailarchive: %w", err)
	}
	return mem.Query(ctx, q)
}
