package logstream

import (
	"encoding/json"

	"github.com/trailhq/trail"
)

// item is one event on its way: where it is in its log, the stream's
// sequence number it gets, and its formatted record.
type item struct {
	log     string
	leafSeq int64
	seq     int64
	ev      *trail.Event
	rec     []byte
}

// Envelope is a delivered event in the trail format: the stream's ID and
// sequence number (1, 2, 3 … with no gap unless a dead letter explains it),
// the event's index in its tenant's sealed log, and the event as the API
// shows it (personal fields revealed).
type Envelope struct {
	Stream string       `json:"stream"`
	Seq    int64        `json:"seq"`
	LogSeq int64        `json:"log_seq"`
	Test   bool         `json:"test,omitempty"`
	Event  *trail.Event `json:"event"`
}

// format renders it's record in s's format.
func format(s *Stream, it *item) ([]byte, error) {
	if s.Format == FormatOCSF {
		return json.Marshal(OCSF(it.ev, s.ID, it.seq, it.leafSeq))
	}
	return json.Marshal(Envelope{Stream: s.ID, Seq: it.seq, LogSeq: it.leafSeq, Event: it.ev, Test: it.seq == 0})
}
