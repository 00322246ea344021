package trailserver

import (
	"net/http"
	"strconv"

	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/tlog"
)

// WitnessedCheckpoint is one checkpoint as a witness keeps it.
type WitnessedCheckpoint struct {
	Size int64     `json:"size"`
	Root tlog.Hash `json:"root"`
	// Note is the signed note as the witness holds it: check it with
	// note.Open, as any checkpoint.
	Note string `json:"note"`
	Key  string `json:"key"`
}

// WitnessCheckpointList is the body of GET /v1/witness/checkpoints.
type WitnessCheckpointList struct {
	Tenant      string                `json:"tenant"`
	Log         string                `json:"log"`
	Witness     string                `json:"witness"`
	Checkpoints []WitnessedCheckpoint `json:"checkpoints"`
}

// witnessCheckpoints answers GET /v1/witness/checkpoints?tenant=T[&limit=N]:
// the newest N (default 100, at most 1000) of the tenant's checkpoints that
// the server's witness holds, oldest first. The witness is outside the
// database; its notes are signed, so a tenant checks them as any
// checkpoint and compares them with GET /v1/checkpoints.
func (s *Server) witnessCheckpoints(w http.ResponseWriter, r *http.Request, k *Key) {
	in := s.integrity(w, r)
	if in == nil {
		return
	}
	if in.Witness == nil {
		writeProblem(w, r, notFound("this server has no readable witness (trail serve --witness)"))
		return
	}
	q := r.URL.Query()
	if p := checkParams(q, []string{"tenant", "limit"}); p != nil {
		writeProblem(w, r, p)
		return
	}
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeProblem(w, r, badRequest("limit", "1 to 1000"))
			return
		}
		limit = n
	}
	log, p := logParam(k, r)
	if p != nil {
		writeProblem(w, r, p)
		return
	}
	ctx := r.Context()
	keys, err := in.Witness.List(ctx, trailseal.WitnessCheckpoints+log+"/")
	if err != nil {
		s.storeProblem(w, r, "listing the witness", err)
		return
	}
	if len(keys) > limit {
		keys = keys[len(keys)-limit:]
	}
	out := WitnessCheckpointList{Tenant: trailseal.TenantOf(log), Log: log, Witness: in.Witness.String(), Checkpoints: []WitnessedCheckpoint{}}
	for _, key := range keys {
		wc, err := trailseal.ParseWitnessCheckpointKey(key)
		if err != nil || wc.Log != log {
			continue
		}
		b, err := in.Witness.Get(ctx, key)
		if err != nil {
			s.storeProblem(w, r, "reading the witness", err)
			return
		}
		out.Checkpoints = append(out.Checkpoints, WitnessedCheckpoint{Size: wc.Size, Root: wc.Root, Note: string(b), Key: key})
	}
	writeJSON(w, http.StatusOK, out)
}
