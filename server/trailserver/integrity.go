package trailserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/tlog"
)

// Integrity serves a store's tamper evidence (package trailseal): signed
// checkpoints, their history, inclusion and consistency proofs, the leaf
// index of sealed events and the sealing lag. Set Config.Integrity to turn
// the endpoints on; without it they answer 404.
type Integrity struct {
	// Log is the store's sealed log (the SQLite and PostgreSQL stores
	// implement trailseal.Store). Required.
	Log trailseal.Store
	// Origin is the sealer's checkpoint origin (trailseal.Config.Origin).
	// Default: trailseal.DefaultOrigin.
	Origin string
	// PublicKey is the checkpoint verifier key, served beside checkpoints so
	// that a tenant knows which key to pin (it should also get it out of band).
	PublicKey string
	// KeyHistory is the deployment's signing-key history, served at GET
	// /v1/keys/signing/history (keyhistory.go); nil serves PublicKey alone.
	KeyHistory *trailseal.KeyHistory
	// Witness, when set, is read by GET /v1/witness/checkpoints: a tenant's
	// checkpoints as the witness outside the database keeps them
	// (witness_api.go).
	Witness trailseal.WitnessReader
	// WitnessBacklog, when set (trailseal.Sealer.WitnessBacklog), reports
	// the objects waiting for the witnesses and those a full queue dropped,
	// for /metrics.
	WitnessBacklog func() (waiting int, dropped int64)

	sealed      atomic.Uint64
	checkpoints atomic.Uint64
	stepLagNano atomic.Int64
}

// ObserveSeal records one sealer step for /metrics; pass it as
// trailseal.Config.OnStep.
func (in *Integrity) ObserveSeal(st trailseal.Stats) {
	in.sealed.Add(uint64(st.Sealed))
	in.checkpoints.Add(uint64(st.Checkpoints))
	if st.Sealed > 0 {
		in.stepLagNano.Store(int64(st.Lag))
	}
}

// OldestPender is implemented by stores that can tell when their oldest
// unsealed event was recorded (the sealing lag's other end).
type OldestPender interface {
	OldestPending(ctx context.Context) (time.Time, bool, error)
}

// LeafIndexer is implemented by stores that look up many events' leaf
// indexes in one query.
type LeafIndexer interface {
	LeafIndexes(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID]int64, error)
}

// ProblemNotSealed is the type of the 409 answered for a proof of an event
// that is stored but not sealed, or not yet covered by a checkpoint.
const ProblemNotSealed = "urn:trail:problem:not-sealed"

// CheckpointView is one checkpoint as the API returns it.
type CheckpointView struct {
	Tenant string    `json:"tenant"`
	Log    string    `json:"log"`
	Origin string    `json:"origin"`
	Size   int64     `json:"size"`
	Root   tlog.Hash `json:"root"`
	// Note is the signed note, verbatim: check it with note.Open.
	Note      string    `json:"note"`
	Time      time.Time `json:"time"`
	PublicKey string    `json:"public_key,omitempty"`
}

// CheckpointList is the body of GET /v1/checkpoints: a log's whole
// checkpoint history, oldest first.
type CheckpointList struct {
	Tenant      string           `json:"tenant"`
	Log         string           `json:"log"`
	PublicKey   string           `json:"public_key,omitempty"`
	Checkpoints []CheckpointView `json:"checkpoints"`
}

func (s *Server) integrityRoutes() {
	s.handle("GET /v1/checkpoints", canRead, s.checkpointList)
	s.handle("GET /v1/checkpoints/latest", canRead, s.checkpointLatest)
	s.handle("GET /v1/checkpoints/consistency", canRead, s.consistencyProof)
	s.handle("GET /v1/events/{id}/proof", canRead, s.inclusionProof)
	s.handle("GET /v1/head", canRead, s.head)                              // head.go
	s.handle("GET /v1/witness/checkpoints", canRead, s.witnessCheckpoints) // witness_api.go
	s.handle("GET /v1/keys/signing/history", canRead, s.keyHistory)        // keyhistory.go
}

func (s *Server) integrity(w http.ResponseWriter, r *http.Request) *Integrity {
	in := s.cfg.Integrity
	if in == nil || in.Log == nil {
		writeProblem(w, r, notFound("this server does not seal its log (no integrity configured)"))
		return nil
	}
	return in
}

func (in *Integrity) origin() string {
	if in.Origin == "" {
		return trailseal.DefaultOrigin
	}
	return in.Origin
}

func (in *Integrity) view(cp trailseal.Checkpoint) CheckpointView {
	return CheckpointView{Tenant: trailseal.TenantOf(cp.Log), Log: cp.Log, Origin: trailseal.CheckpointOrigin(in.origin(), cp.Log),
		Size: cp.Size, Root: cp.Root, Note: cp.Note, Time: cp.Time, PublicKey: in.PublicKey}
}

// logParam returns the log the request's tenant names, within the key's
// scope. An all-tenant key must name one (platform events: _platform).
func logParam(k *Key, r *http.Request) (string, *Problem) {
	tenant := r.URL.Query().Get("tenant")
	t, p := scopeTenant(k, tenant)
	if p != nil {
		return "", p
	}
	if t == "" {
		return "", badRequest("tenant", "required: each tenant has its own log (platform events: tenant="+trailseal.PlatformLog+")")
	}
	return trailseal.LogName(t), nil
}

func (s *Server) sealProblem(w http.ResponseWriter, r *http.Request, what string, err error) {
	switch {
	case errors.Is(err, trailseal.ErrUnknownEvent):
		writeProblem(w, r, notFound(what+": no such event"))
	case errors.Is(err, trailseal.ErrNotSealed):
		writeProblem(w, r, problem(http.StatusConflict, ProblemNotSealed, "", what+": the event is not sealed yet; retry in a moment"))
	case errors.Is(err, trailseal.ErrNotCheckpointed):
		writeProblem(w, r, problem(http.StatusConflict, ProblemNotSealed, "", what+": the event is sealed but no checkpoint covers it yet; retry after the next checkpoint"))
	case errors.Is(err, trailseal.ErrNoCheckpoint):
		writeProblem(w, r, notFound(what+": no checkpoint"))
	default:
		s.storeProblem(w, r, what, err)
	}
}

func (s *Server) checkpointList(w http.ResponseWriter, r *http.Request, k *Key) {
	in := s.integrity(w, r)
	if in == nil {
		return
	}
	if p := checkParams(r.URL.Query(), []string{"tenant"}); p != nil {
		writeProblem(w, r, p)
		return
	}
	log, p := logParam(k, r)
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	cps, err := in.Log.Checkpoints(r.Context(), log)
	if err != nil {
		s.sealProblem(w, r, "reading checkpoints", err)
		return
	}
	out := CheckpointList{Tenant: trailseal.TenantOf(log), Log: log, PublicKey: in.PublicKey, Checkpoints: make([]CheckpointView, len(cps))}
	for i, cp := range cps {
		out.Checkpoints[i] = in.view(cp)
		out.Checkpoints[i].PublicKey = ""
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) checkpointLatest(w http.ResponseWriter, r *http.Request, k *Key) {
	in := s.integrity(w, r)
	if in == nil {
		return
	}
	q := r.URL.Query()
	if p := checkParams(q, []string{"tenant", "format"}); p != nil {
		writeProblem(w, r, p)
		return
	}
	format := q.Get("format")
	if format != "" && format != "json" && format != "note" {
		writeProblem(w, r, badRequest("format", "json (default) or note"))
		return
	}
	log, p := logParam(k, r)
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	cp, err := in.Log.LatestCheckpoint(r.Context(), log)
	if err != nil {
		s.sealProblem(w, r, "latest checkpoint of "+log, err)
		return
	}
	if format == "note" {
		writeText(w, []byte(cp.Note))
		return
	}
	writeJSON(w, http.StatusOK, in.view(cp))
}

// writeText answers 200 with b as plain text: a signed note or a head's
// file form, which clients check byte for byte.
func writeText(w http.ResponseWriter, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.Write(b)
}

func intParam(r *http.Request, name string, required bool) (int64, *Problem) {
	v := r.URL.Query().Get(name)
	if v == "" {
		if required {
			return 0, badRequest(name, "required: a checkpoint's tree size")
		}
		return -1, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, badRequest(name, "must be a positive tree size (a checkpoint's size)")
	}
	return n, nil
}

func (s *Server) consistencyProof(w http.ResponseWriter, r *http.Request, k *Key) {
	in := s.integrity(w, r)
	if in == nil {
		return
	}
	if p := checkParams(r.URL.Query(), []string{"tenant", "old", "new"}); p != nil {
		writeProblem(w, r, p)
		return
	}
	log, p := logParam(k, r)
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	oldN, p := intParam(r, "old", true)
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	newN, p := intParam(r, "new", false)
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	ctx := r.Context()
	var newCP trailseal.Checkpoint
	var err error
	if newN < 0 {
		newCP, err = in.Log.LatestCheckpoint(ctx, log)
	} else {
		newCP, err = trailseal.FindCheckpoint(ctx, in.Log, log, newN)
	}
	if err != nil {
		s.sealProblem(w, r, "new checkpoint", err)
		return
	}
	if oldN > newCP.Size {
		writeProblem(w, r, badRequest("old", fmt.Sprintf("must not exceed new (%d)", newCP.Size)))
		return
	}
	oldCP, err := trailseal.FindCheckpoint(ctx, in.Log, log, oldN)
	if err != nil {
		s.sealProblem(w, r, "old checkpoint", err)
		return
	}
	proof, err := trailseal.ProveConsistency(ctx, in.Log, oldCP, newCP)
	if err != nil {
		s.sealProblem(w, r, "consistency proof", err)
		return
	}
	writeJSON(w, http.StatusOK, proof)
}

func (s *Server) inclusionProof(w http.ResponseWriter, r *http.Request, k *Key) {
	in := s.integrity(w, r)
	if in == nil {
		return
	}
	ctx := r.Context()
	// Scope first: another tenant's event is answered like a missing one,
	// whether or not it is sealed.
	ev, id, ok := s.eventOf(w, r, k)
	if !ok {
		return
	}
	proof, err := trailseal.ProveInclusion(ctx, in.Log, id, nil)
	if err != nil {
		s.sealProblem(w, r, "proof of event "+id.String(), err)
		return
	}
	// The proof carries the event's stored bytes: reading it is a read.
	if err := s.auditRead(ctx, k, r, ev.Tenant, trail.Target{Type: "event", ID: id.String()}, map[string]any{"proof": true}); err != nil {
		s.auditFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, proof)
}

// leafIndexes returns the leaf index of each sealed event of ids (none when
// integrity is off or on error: the index is informative, never required).
func (s *Server) leafIndexes(ctx context.Context, ids []uuid.UUID) map[uuid.UUID]int64 {
	in := s.cfg.Integrity
	if in == nil || in.Log == nil || len(ids) == 0 {
		return nil
	}
	if li, ok := in.Log.(LeafIndexer); ok {
		m, err := li.LeafIndexes(ctx, ids)
		if err != nil {
			s.log.Warn("leaf indexes", "err", err)
			return nil
		}
		return m
	}
	m := map[uuid.UUID]int64{}
	for _, id := range ids {
		if l, err := in.Log.LeafOf(ctx, id); err == nil {
			m[id] = l.Seq
		}
	}
	return m
}

// writeEvent writes ev as GET /v1/events/{id} answers it: the event with
// its leaf_index once sealed (absent while pending).
func (s *Server) writeEvent(w http.ResponseWriter, ctx context.Context, ev trail.Event) {
	idx, ok := s.leafIndexes(ctx, []uuid.UUID{ev.ID})[ev.ID]
	if !ok {
		writeJSON(w, http.StatusOK, ev)
		return
	}
	b, err := json.Marshal(ev)
	if err != nil || len(b) < 2 || b[len(b)-1] != '}' {
		writeJSON(w, http.StatusOK, ev)
		return
	}
	sep := ","
	if bytes.Equal(b, []byte("{}")) {
		sep = ""
	}
	b = append(b[:len(b)-1], sep+`"leaf_index":`+strconv.FormatInt(idx, 10)+"}"...)
	writeJSON(w, http.StatusOK, json.RawMessage(b))
}

// writeSealMetrics appends the sealer's metrics to /metrics.
func (s *Server) writeSealMetrics(w io.Writer) {
	in := s.cfg.Integrity
	if in == nil || in.Log == nil {
		return
	}
	lag := 0.0
	if op, ok := in.Log.(OldestPender); ok {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		at, pending, err := op.OldestPending(ctx)
		cancel()
		if err == nil && pending {
			lag = max(0, s.cfg.Now().Sub(at).Seconds())
		}
	}
	fmt.Fprintf(w, "# HELP trail_seal_lag_seconds Age of the oldest event not yet sealed (0 when none waits).\n# TYPE trail_seal_lag_seconds gauge\ntrail_seal_lag_seconds %s\n", formatFloat(lag))
	fmt.Fprintf(w, "# HELP trail_seal_step_lag_seconds How long the oldest event of the last sealing step had waited.\n# TYPE trail_seal_step_lag_seconds gauge\ntrail_seal_step_lag_seconds %s\n", formatFloat(time.Duration(in.stepLagNano.Load()).Seconds()))
	fmt.Fprintf(w, "# HELP trail_sealed_events_total Events sealed into their tenant's log by this process.\n# TYPE trail_sealed_events_total counter\ntrail_sealed_events_total %d\n", in.sealed.Load())
	fmt.Fprintf(w, "# HELP trail_checkpoints_signed_total Checkpoints signed by this process.\n# TYPE trail_checkpoints_signed_total counter\ntrail_checkpoints_signed_total %d\n", in.checkpoints.Load())
	if in.WitnessBacklog != nil {
		waiting, dropped := in.WitnessBacklog()
		fmt.Fprintf(w, "# HELP trail_witness_queue_objects Checkpoints and heads waiting for the witnesses.\n# TYPE trail_witness_queue_objects gauge\ntrail_witness_queue_objects %d\n", waiting)
		fmt.Fprintf(w, "# HELP trail_witness_dropped_total Checkpoints and heads a full witness queue dropped (the store keeps them; later ones supersede them).\n# TYPE trail_witness_dropped_total counter\ntrail_witness_dropped_total %d\n", dropped)
	}
}

func init() { problemTitles[ProblemNotSealed] = "Not sealed yet" }

// addLeafIndexes fills the leaf index of the duplicates k may see that are
// already sealed. New events are never sealed yet when their ingest commits.
func (s *Server) addLeafIndexes(ctx context.Context, k *Key, res []IngestResult) {
	var ids []uuid.UUID
	for _, r := range res {
		if r.Status == StatusDuplicate && r.RecordedAt != nil { // RecordedAt set: k may read it
			ids = append(ids, r.ID)
		}
	}
	idx := s.leafIndexes(ctx, ids)
	for i := range res {
		if n, ok := idx[res[i].ID]; ok && res[i].Status == StatusDuplicate && res[i].RecordedAt != nil {
			res[i].LeafIndex = &n
		}
	}
}
