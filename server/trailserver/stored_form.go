package trailserver

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailseal"
)

// StoredLine is one line of GET /v1/export?form=stored: an event exactly as
// stored — ciphertext, HMACs and "[redacted]" as written, nothing revealed —
// with the log and seq of its leaf, which is what an outsider needs to
// rebuild the leaf (SHA-256(0x00 || canonical(event)), docs/canonical-encoding.md)
// and check it against the log's signed checkpoints (docs/verification.md).
// Seq is absent while the event is not sealed yet.
type StoredLine struct {
	Log   string      `json:"log"`
	Seq   *int64      `json:"seq,omitempty"`
	Event trail.Event `json:"event"`
}

// storedForm reads the form parameter of an export: "" or "revealed" (the
// default: readable values), or "stored". The stored form is for admin keys
// only (a tenant admin gets its tenant's, an all-tenant admin any): it is the
// form auditors verify, and it shows HMAC pseudonyms that readers do not
// see. It returns false once it has answered with a problem.
func (s *Server) storedForm(w http.ResponseWriter, r *http.Request, k *Key, format string) (stored, ok bool) {
	switch r.URL.Query().Get("form") {
	case "", "revealed":
		return false, true
	case "stored":
	default:
		writeProblem(w, r, badRequest("form", "must be revealed or stored"))
		return false, false
	}
	if k.Role != RoleAdmin {
		writeProblem(w, r, problem(http.StatusForbidden, ProblemForbidden, "form", "the stored form (form=stored) is for admin keys"))
		return false, false
	}
	if format != "jsonl" {
		writeProblem(w, r, badRequest("form", "form=stored is written as jsonl only"))
		return false, false
	}
	return true, true
}

// encodeStored writes events as StoredLines, with the seq of each sealed
// one (one lookup per page).
func (s *Server) encodeStored(ctx context.Context, enc *json.Encoder, events []trail.Event) error {
	ids := make([]uuid.UUID, len(events))
	for i := range events {
		ids[i] = events[i].ID
	}
	seqs := s.leafIndexes(ctx, ids)
	for i := range events {
		line := StoredLine{Log: trailseal.LogName(events[i].Tenant), Event: events[i]}
		if n, ok := seqs[events[i].ID]; ok {
			line.Seq = &n
		}
		if err := enc.Encode(line); err != nil {
			return err
		}
	}
	return nil
}
