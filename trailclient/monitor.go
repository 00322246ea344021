package trailclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// MonitorSource is where a Monitor reads a deployment's signed state: a
// Trail server (*Client implements it over the API) or a store read
// directly (`trail monitor --db/--postgres`).
type MonitorSource interface {
	// LatestCheckpoint returns the signed note of tenant's newest
	// checkpoint; an error matching trailseal.ErrNoCheckpoint when it has
	// none.
	LatestCheckpoint(ctx context.Context, tenant string) ([]byte, error)
	// ConsistencyProof proves that tenant's checkpoint of size newSize
	// extends the one of size oldSize.
	ConsistencyProof(ctx context.Context, tenant string, oldSize, newSize int64) (tlog.TreeProof, error)
	// Head returns the newest deployment head with tenant's entry and its
	// proof (entry nil when the head has none for it); an error matching
	// trailseal.ErrNoHead when there is no head.
	Head(ctx context.Context, tenant string) (MonitorHead, error)
}

// MonitorHead is a deployment head as a tenant sees it.
type MonitorHead struct {
	Note  string               `json:"note"`
	Entry *trailseal.HeadEntry `json:"entry,omitempty"`
	Proof *trailseal.HeadProof `json:"proof,omitempty"`
}

// MonitorState is what a Monitor remembers between runs: the last
// checkpoint and head it accepted per tenant.
type MonitorState struct {
	Tenants map[string]SeenCheckpoint `json:"tenants"`
	Heads   map[string]SeenHead       `json:"heads,omitempty"`
}

// SeenCheckpoint is the last checkpoint accepted for a tenant.
type SeenCheckpoint struct {
	Size int64     `json:"size"`
	Root tlog.Hash `json:"root"`
	Note string    `json:"note"`
	Seen time.Time `json:"seen"`
}

// SeenHead is the last deployment head accepted while checking a tenant.
type SeenHead struct {
	Time time.Time `json:"time"`
	Root tlog.Hash `json:"root"`
	Note string    `json:"note"`
}

// StateStore keeps a Monitor's state. FileState is the usual one; a
// service can keep it in its own database instead.
type StateStore interface {
	Load(ctx context.Context) (MonitorState, error)
	Save(ctx context.Context, st MonitorState) error
}

// FileState keeps the state in a JSON file (mode 0600, replaced
// atomically). A missing file is an empty state: the first run trusts
// what it sees, as Go's checksum database client does.
type FileState struct{ Path string }

// Load implements StateStore.
func (f FileState) Load(ctx context.Context) (MonitorState, error) {
	var st MonitorState
	b, err := os.ReadFile(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return MonitorState{Tenants: map[string]SeenCheckpoint{}}, nil
	}
	if err != nil {
		return st, fmt.Errorf("trailclient: monitor state: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("trailclient: monitor state %s: %w", f.Path, err)
	}
	if st.Tenants == nil {
		st.Tenants = map[string]SeenCheckpoint{}
	}
	return st, nil
}

// Save implements StateStore.
func (f FileState) Save(ctx context.Context, st MonitorState) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.Path), ".monitor-*")
	if err != nil {
		return fmt.Errorf("trailclient: monitor state: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.Write(append(b, '\n'))
	if serr := tmp.Sync(); werr == nil {
		werr = serr
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), f.Path)
	}
	if werr != nil {
		return fmt.Errorf("trailclient: monitor state: %w", werr)
	}
	return nil
}

// Monitor watches a deployment's checkpoints the way Go's checksum
// database client watches the sum database: it remembers the last
// checkpoint it accepted per tenant, and on every fetch checks the new one's
// signature and a consistency proof from the old one. A smaller log, a
// different root at the same size, a failing proof, a checkpoint or head
// that disappeared or went back in time is a problem: reported, never
// accepted (the state keeps the last good checkpoint, so the next run
// reports it again).
type Monitor struct {
	Source MonitorSource
	State  StateStore
	// Verifiers are the pinned checkpoint keys. Required.
	Verifiers note.Verifiers
	// Origin is the deployment's checkpoint origin. Default
	// trailseal.DefaultOrigin.
	Origin string
	// Tenants to watch (trailseal.PlatformLog for platform events).
	Tenants []string
	// Now stamps what is seen. Default time.Now.
	Now func() time.Time
}

// MonitorProblem is one thing a Monitor refused.
type MonitorProblem struct {
	Tenant string `json:"tenant"`
	// Kind: rolled_back, forked, bad_signature, bad_proof, checkpoint_missing,
	// head_rolled_back, tenant_deleted.
	Kind   trailseal.Kind `json:"kind"`
	Detail string         `json:"detail"`
}

func (p MonitorProblem) String() string {
	return fmt.Sprintf("PROBLEM tenant %q: %s: %s", p.Tenant, p.Kind, p.Detail)
}

// MonitorReport is the outcome of one Check.
type MonitorReport struct {
	// Seen is the state accepted now (saved already).
	Seen     map[string]SeenCheckpoint `json:"seen"`
	Problems []MonitorProblem          `json:"problems"`
}

// OK reports whether nothing was refused.
func (r *MonitorReport) OK() bool { return len(r.Problems) == 0 }

// Check fetches every tenant's newest checkpoint and head, checks them
// against the state and saves what it accepted. An error means the check
// could not run (source or state unreachable); what it refused is in the
// report.
func (m *Monitor) Check(ctx context.Context) (*MonitorReport, error) {
	if m.Source == nil || m.State == nil || m.Verifiers == nil {
		return nil, errors.New("trailclient: Monitor needs a Source, a State and Verifiers")
	}
	origin := m.Origin
	if origin == "" {
		origin = trailseal.DefaultOrigin
	}
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}
	st, err := m.State.Load(ctx)
	if err != nil {
		return nil, err
	}
	if st.Heads == nil {
		st.Heads = map[string]SeenHead{}
	}
	rep := &MonitorReport{Seen: map[string]SeenCheckpoint{}}
	for _, tenant := range m.Tenants {
		problem := func(kind trailseal.Kind, format string, args ...any) {
			rep.Problems = append(rep.Problems, MonitorProblem{Tenant: tenant, Kind: kind, Detail: fmt.Sprintf(format, args...)})
		}
		prev, known := st.Tenants[tenant]
		signed, err := m.Source.LatestCheckpoint(ctx, tenant)
		switch {
		case errors.Is(err, trailseal.ErrNoCheckpoint) && known:
			problem(trailseal.KindTenantDeleted, "no checkpoint any more; the last one seen was of size %d", prev.Size)
			continue
		case errors.Is(err, trailseal.ErrNoCheckpoint):
			continue
		case err != nil:
			return nil, fmt.Errorf("trailclient: monitor %s: %w", tenant, err)
		}
		body, err := trailseal.OpenCheckpoint(signed, m.Verifiers, trailseal.CheckpointOrigin(origin, trailseal.LogName(tenant)))
		if err != nil {
			problem(trailseal.KindBadSignature, "%v", err)
			continue
		}
		if known {
			if !m.consistent(ctx, tenant, prev, body, problem) {
				continue
			}
		}
		if !m.checkHead(ctx, tenant, origin, body, st.Heads, problem) {
			continue
		}
		seen := SeenCheckpoint{Size: body.Size, Root: body.Root, Note: string(signed), Seen: now().UTC()}
		if known && prev.Size == body.Size {
			seen.Seen = prev.Seen
		}
		st.Tenants[tenant] = seen
		rep.Seen[tenant] = seen
	}
	if err := m.State.Save(ctx, st); err != nil {
		return nil, err
	}
	return rep, nil
}

func (m *Monitor) consistent(ctx context.Context, tenant string, prev SeenCheckpoint, body trailseal.CheckpointBody, problem func(trailseal.Kind, string, ...any)) bool {
	switch {
	case body.Size < prev.Size:
		problem(trailseal.KindRolledBack, "the newest checkpoint is of size %d; size %d was seen at %s", body.Size, prev.Size, prev.Seen.Format(time.RFC3339))
		return false
	case body.Size == prev.Size && body.Root != prev.Root:
		problem(trailseal.KindForked, "checkpoint of size %d has root %s; %s was seen", body.Size, body.Root, prev.Root)
		return false
	case body.Size == prev.Size:
		return true
	}
	proof, err := m.Source.ConsistencyProof(ctx, tenant, prev.Size, body.Size)
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) && ae.Status == http.StatusNotFound || errors.Is(err, trailseal.ErrNoCheckpoint) {
			problem(trailseal.KindCheckpointMissing, "the checkpoint of size %d seen before is gone: %v", prev.Size, err)
			return false
		}
		problem(trailseal.Kind("bad_proof"), "no consistency proof from size %d to %d: %v", prev.Size, body.Size, err)
		return false
	}
	if err := tlog.CheckTree(proof, body.Size, body.Root, prev.Size, prev.Root); err != nil {
		problem(trailseal.KindForked, "checkpoint of size %d does not extend the one of size %d seen before: %v", body.Size, prev.Size, err)
		return false
	}
	return true
}

// checkHead checks the newest head against the one last seen with this
// tenant: signed, not older, the tenant's entry in it (proof) and not
// smaller than the checkpoint just accepted allows.
func (m *Monitor) checkHead(ctx context.Context, tenant, origin string, cp trailseal.CheckpointBody, heads map[string]SeenHead, problem func(trailseal.Kind, string, ...any)) bool {
	h, err := m.Source.Head(ctx, tenant)
	if errors.Is(err, trailseal.ErrNoHead) {
		if prev, ok := heads[tenant]; ok {
			problem(trailseal.KindHeadRolledBack, "no deployment head any more; one of %s was seen", prev.Time.Format(time.RFC3339Nano))
			return false
		}
		return true
	}
	if err != nil {
		problem(trailseal.KindHeadRolledBack, "deployment head: %v", err)
		return false
	}
	body, err := trailseal.OpenHead([]byte(h.Note), m.Verifiers, origin)
	if err != nil {
		problem(trailseal.KindBadSignature, "deployment head: %v", err)
		return false
	}
	if prev, ok := heads[tenant]; ok && body.Time.Before(prev.Time) {
		problem(trailseal.KindHeadRolledBack, "the deployment head is of %s; one of %s was seen", body.Time.Format(time.RFC3339Nano), prev.Time.Format(time.RFC3339Nano))
		return false
	}
	if h.Entry != nil {
		if h.Proof == nil || h.Entry.Log != trailseal.LogName(tenant) {
			problem(trailseal.Kind("bad_proof"), "deployment head: entry without its proof, or of another log")
			return false
		}
		if err := trailseal.CheckHeadEntry(body, *h.Entry, *h.Proof); err != nil {
			problem(trailseal.Kind("bad_proof"), "deployment head: %v", err)
			return false
		}
		if h.Entry.Size > cp.Size {
			problem(trailseal.KindRolledBack, "the deployment head says size %d; the newest checkpoint is of size %d", h.Entry.Size, cp.Size)
			return false
		}
	}
	heads[tenant] = SeenHead{Time: body.Time, Root: body.Root, Note: h.Note}
	return true
}

// LatestCheckpoint implements MonitorSource: GET /v1/checkpoints/latest
// as a note.
func (c *Client) LatestCheckpoint(ctx context.Context, tenant string) ([]byte, error) {
	var out []byte
	err := c.retry(ctx, func() error {
		return c.do(ctx, http.MethodGet, "/v1/checkpoints/latest", url.Values{"tenant": {tenant}, "format": {"note"}}, nil, &out)
	})
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return nil, errors.Join(trailseal.ErrNoCheckpoint, err)
	}
	return out, err
}

// ConsistencyProof implements MonitorSource: GET /v1/checkpoints/consistency.
func (c *Client) ConsistencyProof(ctx context.Context, tenant string, oldSize, newSize int64) (tlog.TreeProof, error) {
	var p trailseal.ConsistencyProof
	v := url.Values{"tenant": {tenant}, "old": {strconv.FormatInt(oldSize, 10)}, "new": {strconv.FormatInt(newSize, 10)}}
	err := c.retry(ctx, func() error { return c.do(ctx, http.MethodGet, "/v1/checkpoints/consistency", v, nil, &p) })
	if err != nil {
		return nil, err
	}
	if p.OldSize != oldSize || p.NewSize != newSize {
		return nil, fmt.Errorf("%w: the server proved %d→%d, not %d→%d", trailseal.ErrBadProof, p.OldSize, p.NewSize, oldSize, newSize)
	}
	return p.Proof, nil
}

// Head implements MonitorSource: GET /v1/head for tenant.
func (c *Client) Head(ctx context.Context, tenant string) (MonitorHead, error) {
	var h MonitorHead
	err := c.retry(ctx, func() error { return c.do(ctx, http.MethodGet, "/v1/head", url.Values{"tenant": {tenant}}, nil, &h) })
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return h, errors.Join(trailseal.ErrNoHead, err)
	}
	return h, err
}
