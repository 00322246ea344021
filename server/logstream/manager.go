package logstream

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailprivacy"
	"github.com/trailhq/trail/trailseal"
)

// Caller is who asks: the tenant its key may manage ("" with All for an
// all-tenant admin). The actor of the audit events comes from the context
// (trail.WithActor, WithRequest, WithSource), as for every event.
type Caller struct {
	Tenant string
	All    bool
}

func (c Caller) may(r *row) bool {
	return c.All || (!r.AllTenants && r.Tenant == c.Tenant)
}

// ForbiddenError is a request outside the caller's tenant.
type ForbiddenError struct{ Field, Reason string }

func (e *ForbiddenError) Error() string { return e.Field + ": " + e.Reason }

// Manager creates, reads and changes streams, checking the caller's scope,
// making a test delivery before a stream is stored, wrapping secrets and
// recording every change as an audit event in the change's transaction.
type Manager struct {
	Store *Store
	// KMS wraps destination secrets: the privacy layer's master key. Nil
	// (the plaintext setup) refuses streams with secrets (ErrNoKMS).
	KMS trailprivacy.KMS
	// Transform puts the audit events in their stored form (the privacy
	// layer), as every event the server writes itself.
	Transform trail.Transformer
	// Log is the sealed log delivery reads; with it, Health reports the
	// lag. Optional.
	Log trailseal.Store
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Dialer opens a destination's sender; tests and the Runner share it.
	// Default: the real destinations (destinations.go).
	Dialer *Dialer
	// NoTestDelivery skips the test delivery at creation (benchmarks only).
	NoTestDelivery bool
}

func (m *Manager) now() time.Time {
	if m.Now == nil {
		return time.Now().UTC()
	}
	return m.Now().UTC()
}

func (m *Manager) dialer() *Dialer {
	if m.Dialer == nil {
		return &Dialer{}
	}
	return m.Dialer
}

// CreateRequest is the body of POST /v1/log-streams: a Stream's settings and
// the destination's secret (a webhook's is generated when not given).
type CreateRequest struct {
	Tenant      string      `json:"tenant"`
	AllTenants  bool        `json:"all_tenants"`
	Name        string      `json:"name"`
	Destination Destination `json:"destination"`
	Format      string      `json:"format"`
	Filter      Filter      `json:"filter"`
	Batching    Batching    `json:"batching"`
	// DeadLetterAfterS: default 86400 (a day).
	DeadLetterAfterS int `json:"dead_letter_after_s"`
	// Paused creates the stream disabled.
	Paused bool   `json:"paused"`
	Secret string `json:"secret"`
}

// Created is the answer of a creation or a rotation: the stream, and the
// webhook signing secret when Trail generated it — shown this once.
type Created struct {
	Stream
	Secret string `json:"secret,omitempty"`
	// Notes are what the caller should know but did not stop it, such as a
	// filter that matches no stored event.
	Notes []string `json:"notes,omitempty"`
}

// Check reports what is wrong with req before anything is opened (the CLI
// checks its flags with it); Create checks it again.
func (req CreateRequest) Check() error {
	s := Stream{Tenant: req.Tenant, AllTenants: req.AllTenants, Name: req.Name, Destination: req.Destination, Format: req.Format,
		Filter: req.Filter, Batching: req.Batching, DeadLetterAfterS: req.DeadLetterAfterS}
	secret := req.Secret
	if secret == "" && s.Destination.Type == TypeWebhook {
		secret = "generated"
	}
	return s.normalize(secret)
}

// Create checks req, makes a test delivery to the destination, and stores
// the stream with its audit event (log_stream.create). Delivery starts at
// the stream's creation: events sealed before it are not sent.
func (m *Manager) Create(ctx context.Context, c Caller, req CreateRequest) (*Created, error) {
	if req.AllTenants && !c.All {
		return nil, &ForbiddenError{"all_tenants", "an all-tenant stream needs an all-tenant admin key"}
	}
	if req.Tenant == "" && !req.AllTenants && !c.All {
		req.Tenant = c.Tenant
	}
	if !c.All && req.Tenant != c.Tenant {
		return nil, &ForbiddenError{"tenant", fmt.Sprintf("this key manages only tenant %q", c.Tenant)}
	}
	if req.Tenant != "" && !trail.ValidTenant(req.Tenant) {
		return nil, invalid("tenant", "not a valid tenant")
	}
	generated := false
	if req.Destination.Type == TypeWebhook && req.Secret == "" {
		req.Secret, generated = NewSecret(), true
	}
	if len(req.Secret) > 4096 {
		return nil, invalid("secret", "at most 4096 bytes")
	}
	now := m.now()
	r := &row{Stream: Stream{ID: newID(), Tenant: req.Tenant, AllTenants: req.AllTenants, Name: req.Name, Destination: req.Destination,
		Format: req.Format, Filter: req.Filter, Batching: req.Batching, DeadLetterAfterS: req.DeadLetterAfterS,
		Enabled: !req.Paused, CreatedAt: now, UpdatedAt: now}, next: 1}
	if err := r.normalize(req.Secret); err != nil {
		return nil, err
	}
	if req.Secret != "" && m.KMS == nil {
		return nil, ErrNoKMS
	}
	sec := secrets{Current: req.Secret}
	if !m.NoTestDelivery {
		if err := m.dialer().Test(ctx, &r.Stream, sec, now); err != nil {
			return nil, &DestinationError{Err: err}
		}
	}
	var err error
	if r.secret, err = sealSecrets(ctx, m.KMS, r.ID, sec); err != nil {
		return nil, err
	}
	r.HasSecret = r.secret != ""
	// Start at the logs' current ends: a new stream delivers what is
	// sealed from now on.
	if r.cursor, err = m.startCursor(ctx, r); err != nil {
		return nil, err
	}
	ev := m.event(r, "log_stream.create", "Created log stream "+r.Name)
	if err := m.prepare(ctx, &ev); err != nil {
		return nil, err
	}
	if err := m.Store.change(ctx, ev, func(tx *sql.Tx) error { return m.Store.insert(ctx, tx, r) }); err != nil {
		return nil, err
	}
	r.Health.State = StatePending
	if !r.Enabled {
		r.Health.State = StatePaused
	}
	out := &Created{Stream: r.Stream}
	if generated {
		out.Secret = req.Secret
	}
	if m.Log != nil && !m.filterMatchesAny(ctx, r) {
		out.Notes = append(out.Notes, "the filter matches none of the tenant's stored events so far")
	}
	return out, nil
}

func (m *Manager) startCursor(ctx context.Context, r *row) (map[string]int64, error) {
	cur := map[string]int64{}
	if m.Log == nil {
		return cur, nil
	}
	logs, err := m.logsOf(ctx, r)
	if err != nil {
		return nil, err
	}
	for _, l := range logs {
		n, err := m.Log.TreeSize(ctx, l)
		if err != nil {
			return nil, fmt.Errorf("logstream: log size: %w", err)
		}
		if n > 0 {
			cur[l] = n
		}
	}
	return cur, nil
}

// filterMatchesAny reads the newest sealed events of the stream's logs (up
// to 1,000 per log) for one the filter passes.
func (m *Manager) filterMatchesAny(ctx context.Context, r *row) bool {
	if len(r.Filter.Actions) == 0 && r.Filter.Outcome == "" {
		return true
	}
	logs, err := m.logsOf(ctx, r)
	if err != nil {
		return true
	}
	for _, l := range logs {
		n, err := m.Log.TreeSize(ctx, l)
		if err != nil {
			return true
		}
		ls, err := m.Log.Leaves(ctx, l, max(0, n-1000), n)
		if err != nil {
			return true
		}
		for _, se := range ls {
			if se.Event != nil && r.Filter.Match(se.Event) {
				return true
			}
		}
	}
	return false
}

func (m *Manager) logsOf(ctx context.Context, r *row) ([]string, error) {
	if !r.AllTenants {
		return []string{trailseal.LogName(r.Tenant)}, nil
	}
	if m.Log == nil {
		return nil, nil
	}
	ls, err := m.Log.Logs(ctx)
	if err != nil {
		return nil, fmt.Errorf("logstream: logs: %w", err)
	}
	return ls, nil
}

// withNew keeps of logs those with leaves past r's cursor, when the sealed
// log reads many logs' sizes in one query (trailseal.BatchReader): a poll of
// an all-tenant stream then reads the logs of the tenants with new events,
// not every tenant's log.
func (m *Manager) withNew(ctx context.Context, r *row, logs []string) ([]string, error) {
	br, ok := m.Log.(trailseal.BatchReader)
	if !ok || len(logs) < 2 {
		return logs, nil
	}
	const chunk = 1000 // logs per query
	var out []string
	for lo := 0; lo < len(logs); lo += chunk {
		part := logs[lo:min(lo+chunk, len(logs))]
		sizes, err := br.TreeSizes(ctx, part)
		if err != nil {
			return nil, fmt.Errorf("logstream: log sizes: %w", err)
		}
		for _, l := range part {
			if sizes[l] > r.cursor[l] {
				out = append(out, l)
			}
		}
	}
	return out, nil
}

// event is the audit event of a change to r, filled from ctx and put in its
// stored form.
func (m *Manager) event(r *row, action, desc string) trail.Event {
	return trail.Event{Tenant: r.Tenant, Action: action, Description: desc,
		Target:   trail.Target{Type: "log_stream", ID: r.ID, Name: r.Name},
		Metadata: map[string]any{"destination": r.Destination.Type, "format": r.Format, "all_tenants": r.AllTenants}}
}

// List returns the caller's streams with their health.
func (m *Manager) List(ctx context.Context, c Caller) ([]Stream, error) {
	rs, err := m.Store.list(ctx, c.Tenant, c.All)
	if err != nil {
		return nil, err
	}
	out := make([]Stream, 0, len(rs))
	for _, r := range rs {
		m.lag(ctx, r)
		out = append(out, r.Stream)
	}
	return out, nil
}

// Get returns one stream of the caller; another tenant's is ErrNotFound
// (its existence is not told).
func (m *Manager) Get(ctx context.Context, c Caller, id string) (*Stream, error) {
	r, err := m.Store.get(ctx, m.Store.db, id)
	if err != nil {
		return nil, err
	}
	if !c.may(r) {
		return nil, ErrNotFound
	}
	m.lag(ctx, r)
	return &r.Stream, nil
}

// lag fills r's lag from the sealed logs (best effort: an error leaves it 0).
func (m *Manager) lag(ctx context.Context, r *row) {
	if m.Log == nil {
		return
	}
	logs, err := m.logsOf(ctx, r)
	if err != nil {
		return
	}
	now := m.now()
	for _, l := range logs {
		n, err := m.Log.TreeSize(ctx, l)
		if err != nil || n <= r.cursor[l] {
			continue
		}
		r.Health.LagEvents += n - r.cursor[l]
		ls, err := m.Log.Leaves(ctx, l, r.cursor[l], r.cursor[l]+1)
		if err == nil && len(ls) == 1 && ls[0].Event != nil {
			r.Health.LagSeconds = max(r.Health.LagSeconds, now.Sub(ls[0].Event.RecordedAt).Seconds())
		}
	}
}

// SetEnabled pauses (false) or resumes (true) a stream: log_stream.pause
// or log_stream.resume. A paused stream keeps its position and resumes
// from it.
func (m *Manager) SetEnabled(ctx context.Context, c Caller, id string, enabled bool) (*Stream, error) {
	action, verb := "log_stream.pause", "Paused"
	if enabled {
		action, verb = "log_stream.resume", "Resumed"
	}
	var out *row
	err := m.modify(ctx, c, id, action, verb, func(tx *sql.Tx, r *row) error {
		res, err := tx.ExecContext(ctx, m.Store.q(`UPDATE {streams} SET enabled = $1, updated_at = $2 WHERE id = $3`), b2i(enabled), m.now().UnixMicro(), id)
		if err := affected(res, err); err != nil {
			return err
		}
		out = r
		return nil
	})
	if err != nil {
		return nil, err
	}
	return m.Get(ctx, c, out.ID)
}

// Delete removes a stream and its dead letters: log_stream.delete.
func (m *Manager) Delete(ctx context.Context, c Caller, id string) error {
	return m.modify(ctx, c, id, "log_stream.delete", "Deleted", func(tx *sql.Tx, r *row) error {
		if _, err := tx.ExecContext(ctx, m.Store.q(`DELETE FROM {dead} WHERE stream_id = $1`), id); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, m.Store.q(`DELETE FROM {streams} WHERE id = $1`), id)
		return affected(res, err)
	})
}

// RotateRequest is the body of POST /v1/log-streams/{id}/rotate-secret.
type RotateRequest struct {
	// Secret is the new secret; for a webhook Trail generates one when
	// empty. Required for the other destinations.
	Secret string `json:"secret"`
	// OverlapS is how long a webhook keeps signing with the old secret
	// too (both signatures in the header), so that receivers can switch.
	// Default 86400 (a day); 0 is the default, -1 ends it now.
	OverlapS int `json:"overlap_s"`
}

// RotateSecret replaces a stream's secret: log_stream.rotate_secret. A
// webhook signs with both secrets until the overlap ends; the new secret is
// test-delivered first for the other destinations.
func (m *Manager) RotateSecret(ctx context.Context, c Caller, id string, req RotateRequest) (*Created, error) {
	r, err := m.Store.get(ctx, m.Store.db, id)
	if err != nil {
		return nil, err
	}
	if !c.may(r) {
		return nil, ErrNotFound
	}
	if r.Destination.Type == TypeSyslog {
		return nil, invalid("secret", "a syslog destination has no secret")
	}
	if m.KMS == nil {
		return nil, ErrNoKMS
	}
	generated := false
	if req.Secret == "" {
		if r.Destination.Type != TypeWebhook {
			return nil, invalid("secret", "give the new secret of this %s destination", r.Destination.Type)
		}
		req.Secret, generated = NewSecret(), true
	}
	if len(req.Secret) > 4096 {
		return nil, invalid("secret", "at most 4096 bytes")
	}
	old, err := openSecrets(ctx, m.KMS, r.ID, r.secret)
	if err != nil {
		return nil, err
	}
	now := m.now()
	sec := secrets{Current: req.Secret}
	var until *time.Time
	if r.Destination.Type == TypeWebhook && req.OverlapS >= 0 {
		ov := time.Duration(req.OverlapS) * time.Second
		if req.OverlapS == 0 {
			ov = DefaultSecretOverlap
		}
		u := now.Add(ov)
		sec.Previous, sec.PreviousUntil, until = old.Current, u.Unix(), &u
	} else if !m.NoTestDelivery {
		if err := m.dialer().Test(ctx, &r.Stream, sec, now); err != nil {
			return nil, &DestinationError{Err: err}
		}
	}
	wrapped, err := sealSecrets(ctx, m.KMS, r.ID, sec)
	if err != nil {
		return nil, err
	}
	err = m.modify(ctx, c, id, "log_stream.rotate_secret", "Rotated the secret of", func(tx *sql.Tx, _ *row) error {
		res, err := tx.ExecContext(ctx, m.Store.q(`UPDATE {streams} SET secret = $1, overlap_until = $2, updated_at = $3 WHERE id = $4`),
			wrapped, us(until), now.UnixMicro(), id)
		return affected(res, err)
	})
	if err != nil {
		return nil, err
	}
	s, err := m.Get(ctx, c, id)
	if err != nil {
		return nil, err
	}
	out := &Created{Stream: *s}
	if generated {
		out.Secret = req.Secret
	}
	return out, nil
}

// DeadLetters returns a stream's dead letters, oldest first.
func (m *Manager) DeadLetters(ctx context.Context, c Caller, id string) ([]DeadLetter, error) {
	if _, err := m.Get(ctx, c, id); err != nil {
		return nil, err
	}
	return m.Store.deadLetters(ctx, id)
}

// modify runs fn on stream id in a transaction with its audit event.
func (m *Manager) modify(ctx context.Context, c Caller, id, action, verb string, fn func(tx *sql.Tx, r *row) error) error {
	r, err := m.Store.get(ctx, m.Store.db, id)
	if err != nil {
		return err
	}
	if !c.may(r) {
		return ErrNotFound
	}
	ev := m.event(r, action, verb+" log stream "+r.Name)
	if err := m.prepare(ctx, &ev); err != nil {
		return err
	}
	return m.Store.change(ctx, ev, func(tx *sql.Tx) error { return fn(tx, r) })
}

// prepare fills ev from ctx and puts it in its stored form.
func (m *Manager) prepare(ctx context.Context, ev *trail.Event) error {
	ev.FromContext(ctx)
	if err := ev.Normalize(); err != nil {
		return err
	}
	if m.Transform != nil {
		if err := m.Transform.Transform(ctx, ev); err != nil {
			return fmt.Errorf("logstream: audit event: %w", err)
		}
	}
	return ev.Validate()
}

// DecodeCreate reads a CreateRequest, refusing unknown members.
func DecodeCreate(b []byte) (CreateRequest, error) {
	var req CreateRequest
	err := decodeStrict(b, &req)
	return req, err
}

// DecodeRotate reads a RotateRequest ("" is the empty request).
func DecodeRotate(b []byte) (RotateRequest, error) {
	var req RotateRequest
	if len(b) == 0 {
		return req, nil
	}
	err := decodeStrict(b, &req)
	return req, err
}

func decodeStrict(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return invalid("body", "%s", clip(err.Error()))
	}
	if d.More() {
		return invalid("body", "one JSON object")
	}
	return nil
}
