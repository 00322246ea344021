package trailserver

import (
	"errors"
	"net/http"
	"time"

	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/tlog"
)

// HeadView is the body of GET /v1/head: the deployment head (one signed
// note over every log's newest checkpoint, docs/verification.md). An
// all-tenant key gets every entry; a tenant's key gets its own entry and
// the proof that it is in the head, never the other tenants' names.
type HeadView struct {
	Origin string    `json:"origin"`
	Logs   int64     `json:"logs"`
	Root   tlog.Hash `json:"root"`
	Time   time.Time `json:"time"`
	// Note is the signed note, verbatim: check it with note.Open.
	Note      string `json:"note"`
	PublicKey string `json:"public_key,omitempty"`
	// Entries are every log's entry (all-tenant keys, no tenant asked).
	Entries []trailseal.HeadEntry `json:"entries,omitempty"`
	// Entry and Proof: one log's entry and its proof (tenant keys, or
	// ?tenant=). Entry is absent when the log had no checkpoint when the
	// head was signed.
	Entry *trailseal.HeadEntry `json:"entry,omitempty"`
	Proof *trailseal.HeadProof `json:"proof,omitempty"`
}

// head answers GET /v1/head[?tenant=T][&format=file].
func (s *Server) head(w http.ResponseWriter, r *http.Request, k *Key) {
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
	if format != "" && format != "json" && format != "file" {
		writeProblem(w, r, badRequest("format", "json (default) or file (all-tenant keys)"))
		return
	}
	tenant, p := scopeTenant(k, q.Get("tenant"))
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	hs, ok := in.Log.(trailseal.HeadStore)
	if !ok {
		writeProblem(w, r, notFound("this store keeps no deployment head"))
		return
	}
	h, err := hs.LatestHead(r.Context())
	if errors.Is(err, trailseal.ErrNoHead) {
		writeProblem(w, r, notFound("no deployment head yet: the sealer signs one with its first checkpoints"))
		return
	}
	if err != nil {
		s.storeProblem(w, r, "reading the deployment head", err)
		return
	}
	if format == "file" {
		if tenant != "" {
			writeProblem(w, r, badRequest("format", "file lists every tenant: all-tenant keys only, without tenant"))
			return
		}
		writeText(w, trailseal.MarshalHead(h))
		return
	}
	v := HeadView{Origin: trailseal.CheckpointOrigin(in.origin(), trailseal.HeadLog), Logs: int64(len(h.Entries)), Root: h.Root,
		Time: h.Time, Note: h.Note, PublicKey: in.PublicKey}
	if tenant == "" {
		v.Entries = h.Entries
		if v.Entries == nil {
			v.Entries = []trailseal.HeadEntry{}
		}
		writeJSON(w, http.StatusOK, v)
		return
	}
	log := trailseal.LogName(tenant)
	for i, e := range h.Entries {
		if e.Log != log {
			continue
		}
		pr, err := trailseal.ProveHeadEntry(h, i)
		if err != nil {
			s.storeProblem(w, r, "proving the head entry", err)
			return
		}
		v.Entry, v.Proof = &e, &pr
		break
	}
	writeJSON(w, http.StatusOK, v)
}
