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

// Archive reads a target's batches back. It keeps the manifests and the
// file it read last for the next call, so it is not safe for concurrent
// use: give each goroutine its own (they are cheap: a Target and keys).
type Archive struct {
	Target    Target
	Verifiers note.Verifiers
	Origin    string // default trailseal.DefaultOrigin

	files fileCache              // the archive file last read (pack.go)
	cache map[string][]*Manifest // manifests read (Manifests)
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

// ManifestKeys lists, in order, the keys of the manifests that may hold
// batches sel picks: the version 1 and 2 manifests (one per batch) of its
// tenant and days, and the version 3 manifests (under manifests/, each
// holding many batches) whose days, which their names give, meet sel's.
// Which of a version 3 manifest's batches sel picks is known once it is
// read (Batches, Manifests).
func (a *Archive) ManifestKeys(ctx context.Context, sel Selection) ([]string, error) {
	prefix := ""
	if sel.Tenant != "" {
		prefix = "tenant=" + trailseal.LogName(sel.Tenant) + "/"
	}
	keys, err := a.Target.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	if prefix != "" {
		v3, err := a.Target.List(ctx, ManifestDir)
		if err != nil {
			return nil, err
		}
		keys = append(v3, keys...)
	}
	var out []string
	for _, k := range keys {
		if !IsManifestKey(k) {
			continue
		}
		if first, last, ok := v3KeyDays(k); ok {
			if (sel.From != "" && last < sel.From) || (sel.To != "" && first > sel.To) {
				continue
			}
			out = append(out, k)
			continue
		}
		if strings.HasPrefix(k, ManifestDir) {
			continue // not a name Trail gives
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

// Manifest reads and checks the manifest of one batch at key (version 1
// or 2; a version 3 manifest at key must hold exactly one batch).
func (a *Archive) Manifest(ctx context.Context, key string) (*Manifest, error) {
	ms, err := a.Manifests(ctx, key)
	if err != nil {
		return nil, err
	}
	if len(ms) != 1 {
		return nil, fmt.Errorf("%s: holds %d batches (use Manifests)", key, len(ms))
	}
	return ms[0], nil
}

// Manifests reads and checks the manifest at key and returns the batches
// it holds (ParseManifests), each with Key set to key: the manifest must
// have the name its key gives (the batch's for versions 1 and 2, the name
// derived from its batches for version 3), else it was moved or is
// foreign. The manifests read last are kept (a version 3 manifest is read
// once for all its logs).
func (a *Archive) Manifests(ctx context.Context, key string) ([]*Manifest, error) {
	if ms, ok := a.cache[key]; ok {
		return ms, nil
	}
	b, err := a.Target.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	ms, err := ParseManifests(b, a.Verifiers, a.origin())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	want := strings.TrimSuffix(key[strings.LastIndexByte(key, '/')+1:], ManifestSuffix)
	m := ms[0]
	if m.Version == ManifestV3 {
		if name := manifestName(ms); !isV3Key(key) || name != want {
			return nil, fmt.Errorf("%s: %w: it is manifest %s (moved or foreign)", key, ErrBadManifest, name)
		}
	} else if m.Batch != want || !strings.HasPrefix(key, "tenant="+m.Log+"/date="+m.Date+"/") {
		return nil, fmt.Errorf("%s: %w: it describes batch %s of %s (moved or foreign)", key, ErrBadManifest, m.Batch, m.Log)
	}
	for _, m := range ms {
		m.Key = key
	}
	if len(a.cache) >= 64 {
		clear(a.cache)
	}
	if a.cache == nil {
		a.cache = map[string][]*Manifest{}
	}
	a.cache[key] = ms
	return ms, nil
}

// picks reports whether sel picks batch m.
func (sel Selection) picks(m *Manifest) bool {
	return (sel.Tenant == "" || m.Log == trailseal.LogName(sel.Tenant)) &&
		(sel.From == "" || m.Date >= sel.From) && (sel.To == "" || m.Date <= sel.To)
}

// Batches returns the batches sel picks, checked (ParseManifests), by log,
// day and first seq, whatever manifests hold them. Any manifest that does
// not verify is an error.
func (a *Archive) Batches(ctx context.Context, sel Selection) ([]*Manifest, error) {
	return a.BatchesSkipping(ctx, sel, nil)
}

// BatchesSkipping is Batches that, when bad is not nil, reports to it each
// manifest it cannot read or check (key and error) and goes on with the
// others, for listings that should show what is readable and name what is
// not. Reads of events never skip (Events, Query, Verify).
func (a *Archive) BatchesSkipping(ctx context.Context, sel Selection, bad func(key string, err error)) ([]*Manifest, error) {
	keys, err := a.ManifestKeys(ctx, sel)
	if err != nil {
		return nil, err
	}
	var out []*Manifest
	for _, k := range keys {
		ms, err := a.Manifests(ctx, k)
		if err != nil && bad != nil && ctx.Err() == nil {
			bad(k, err)
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			if sel.picks(m) {
				out = append(out, m)
			}
		}
	}
	sortViews(out)
	return out, nil
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
		ms, err := a.Manifests(ctx, k)
		if err != nil {
			rep.Batches++
			rep.Problems = append(rep.Problems, Problem{Key: k, Detail: err.Error()})
			continue
		}
		for _, m := range ms {
			if !sel.picks(m) {
				continue
			}
			rep.Batches++
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
	ms, err := a.Batches(ctx, sel)
	if err != nil {
		return nil, err
	}
	var out []trail.Event
	for _, m := range ms {
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
