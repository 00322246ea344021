-- Event schema version 2 adds span_id, the span that recorded the event
-- within its trace (trail.Event.SpanID). Existing rows get '' (no span), which
-- is what version 1 meant.
ALTER TABLE trail_events ADD COLUMN span_id TEXT NOT NULL DEFAULT '';
