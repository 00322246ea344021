package trailserver

import (
	"net/http"
	"time"

	"github.com/trailhq/trail/trailseal"
)

// keyHistory serves GET /v1/keys/signing/history: every checkpoint signing
// key of the deployment, when each signed, and the rotation statements that
// chain them (trailseal.KeyHistory). A verifier that pinned any earlier key
// accepts a later one only through these statements; without a configured
// history it is the one key of Integrity.PublicKey.
func (s *Server) keyHistory(w http.ResponseWriter, r *http.Request, _ *Key) {
	in := s.integrity(w, r)
	if in == nil {
		return
	}
	h := in.KeyHistory
	if h == nil {
		if in.PublicKey == "" {
			writeProblem(w, r, notFound("this server publishes no checkpoint key"))
			return
		}
		h = trailseal.NewKeyHistory(in.PublicKey, time.Time{})
	}
	writeJSON(w, http.StatusOK, h)
}
