package trailclient

import (
	"encoding/json"
	"errors"
	"os"
	"sync"
	"time"
)

// deadLetter appends the events a client gives up on to a JSON Lines file,
// one object per event: {"at", "error", "field", "event"}; "event" is the
// event as it would have been sent, so a fixed one can be re-sent
// (`trail record -` reads one event per line after jq '.event').
type deadLetter struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

type deadLine struct {
	At    time.Time       `json:"at"`
	Error string          `json:"error"`
	Field string          `json:"field,omitempty"`
	Event json.RawMessage `json:"event"`
}

// write appends one line per event and fsyncs the file.
func (d *deadLetter) write(events [][]byte, cause error) error {
	if d == nil || d.path == "" {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f == nil {
		f, err := os.OpenFile(d.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		d.f = f
	}
	var field string
	var ae *APIError
	if errors.As(cause, &ae) {
		field = ae.Field
	}
	var buf []byte
	now := time.Now().UTC()
	for _, ev := range events {
		line, err := json.Marshal(deadLine{At: now, Error: cause.Error(), Field: field, Event: ev})
		if err != nil {
			return err
		}
		buf = append(append(buf, line...), '\n')
	}
	if _, err := d.f.Write(buf); err != nil {
		return err
	}
	return d.f.Sync()
}

func (d *deadLetter) close() {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.f != nil {
		d.f.Close()
		d.f = nil
	}
}
