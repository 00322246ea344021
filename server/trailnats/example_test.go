package trailnats_test

import (
	"context"
	"log"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailnats"
)

// A Go producer publishes to the stream directly, without HTTP: the events
// are durable once Publish returns, and `trail sink` stores them. The
// event must be normalized and valid (and transformed by the privacy layer
// when the deployment uses one), as trail serve would make it.
func ExamplePublisher() {
	nc, err := nats.Connect("nats://127.0.0.1:4222", nats.MaxReconnects(-1))
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	cfg := trailnats.Config{Partitions: 16, Replicas: 3} // as trail serve --nats-partitions 16 --nats-replicas 3
	ctx := context.Background()
	if _, err := trailnats.Setup(ctx, js, cfg); err != nil {
		log.Fatal(err)
	}
	pub := trailnats.NewPublisher(js, cfg)

	ev := trail.Event{Tenant: "acme", Action: "invoice.pay", Actor: trail.Actor{Type: trail.ActorService, ID: "billing"}}
	if err := ev.Normalize(); err != nil {
		log.Fatal(err)
	}
	if err := ev.Validate(); err != nil {
		log.Fatal(err)
	}
	if _, err := pub.Publish(ctx, []trail.Event{ev}); err != nil {
		log.Fatal(err) // matches trailnats.ErrUnavailable: retry the same event later (it stays one event)
	}
}
