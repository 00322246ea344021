package trailserver

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/google/uuid"
	"github.com/trailhq/trail/server/trailui"
	"github.com/trailhq/trail/trailseal"
)

// Evidence reads what the UI's detail page verifies an event with: its
// leaf, and its inclusion proof against its log's latest checkpoint, with
// the origin and key to check it, beside the event as stored that Event
// read (and scoped, and recorded as read). It checks nothing itself: the UI
// does, from these.
func (b uiBackend) Evidence(r *http.Request, v trailui.Viewer, d *trailui.Detail) (trailui.Evidence, error) {
	s, ctx, ev, id := b.s, r.Context(), d.Stored, d.Stored.ID
	in := s.cfg.Integrity
	if in == nil || in.Log == nil {
		return trailui.Evidence{}, nil
	}
	e := trailui.Evidence{Enabled: true, Stored: ev, Origin: in.origin(), PublicKey: in.PublicKey}
	leaf, err := in.Log.LeafOf(ctx, id)
	switch {
	case errors.Is(err, trailseal.ErrNotSealed):
		return e, nil
	case err != nil:
		e.Unreadable = "reading its leaf: " + err.Error()
		return e, nil
	}
	e.Leaf = &leaf
	cp, err := in.Log.LatestCheckpoint(ctx, leaf.Log)
	switch {
	case errors.Is(err, trailseal.ErrNoCheckpoint):
		return e, nil
	case err != nil:
		e.Unreadable = "reading the latest checkpoint of " + leaf.Log + ": " + err.Error()
		return e, nil
	case cp.Size <= leaf.Seq:
		return e, nil
	}
	p, err := trailseal.ProveInclusion(ctx, in.Log, id, &cp)
	if err != nil {
		e.Unreadable = err.Error()
		return e, nil
	}
	e.Proof, e.CheckpointTime = &p, cp.Time
	return e, nil
}

// Proof serves the API's inclusion proof (GET /v1/events/{id}/proof) to
// the UI's download link, as the viewer's key: the same JSON, scope,
// answers and audit.read record.
func (b uiBackend) Proof(w http.ResponseWriter, r *http.Request, v trailui.Viewer, id uuid.UUID) {
	b.asAPI(w, r, v, url.Values{}, func(w http.ResponseWriter, r *http.Request, k *Key) {
		r.SetPathValue("id", id.String())
		b.s.inclusionProof(w, r, k)
	})
}
