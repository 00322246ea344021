package trailnats

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/trailhq/trail"
)

// decodeEvent decodes an event as the API does (numbers keep their text).
func decodeEvent(data []byte) (trail.Event, error) {
	var ev trail.Event
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := d.Decode(&ev); err != nil {
		return trail.Event{}, fmt.Errorf("trailnats: decoding an event from the stream: %w", err)
	}
	return ev, nil
}

// TailStream calls fn with every event put on the stream after it returns,
// in stream order, until ctx ends — every replica of trail serve --nats
// feeds its live tail from here instead of polling the store. An ordered
// consumer is ephemeral and recreated by nats.go after a leader change; it
// holds no state on the server once ctx ends.
func (p *Publisher) TailStream(ctx context.Context, fn func(trail.Event)) error {
	cons, err := p.js.OrderedConsumer(ctx, p.cfg.Stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{p.cfg.Subject + ".*"},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return fmt.Errorf("%w: tail: %w", ErrUnavailable, err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if ev, err := decodeEvent(m.Data()); err == nil {
			ev.Lookup = lookupOf(m.Headers()) // for a tail by actor e-mail
			fn(ev)
		}
	})
	if err != nil {
		return fmt.Errorf("%w: tail: %w", ErrUnavailable, err)
	}
	go func() {
		<-ctx.Done()
		cc.Stop()
	}()
	return nil
}
