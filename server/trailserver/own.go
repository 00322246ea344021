package trailserver

import (
	"context"

	"github.com/trailhq/trail"
)

// prepareOwn puts an event the server writes about itself (audit.read,
// api_key.*, privacy.*) in its stored form: normalized, through
// Config.OwnTransform (the privacy layer: the calling key's IP is encrypted
// like any actor's), and validated. These events bypass ingest, so without
// this step they would reach the store in plaintext.
func (s *Server) prepareOwn(ctx context.Context, ev *trail.Event) error {
	if err := ev.Normalize(); err != nil {
		return err
	}
	if s.cfg.OwnTransform != nil {
		if err := s.cfg.OwnTransform.Transform(ctx, ev); err != nil {
			return err
		}
	}
	return ev.Validate()
}
