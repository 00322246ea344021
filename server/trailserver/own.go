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

// recordOwn stores an event of the server's own (prepareOwn, then Append)
// and publishes it to this server's live tails, as ingest does with the
// events it stores: a tail shows the server's own events without waiting for
// (or, with polling off, without) the store feed.
func (s *Server) recordOwn(ctx context.Context, ev *trail.Event) error {
	if err := s.prepareOwn(ctx, ev); err != nil {
		return err
	}
	if _, err := s.cfg.Store.Append(ctx, []trail.Event{*ev}); err != nil {
		return err
	}
	s.hub.publish([]trail.Event{*ev})
	return nil
}
