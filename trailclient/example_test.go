package trailclient_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailclient"
)

// A service records through the HTTP API: events are batched, retried, and
// acknowledged once the server has committed them.
func Example() {
	ctx := context.Background()
	client, err := trailclient.New(trailclient.Config{
		BaseURL: "http://127.0.0.1:8080",
		Key:     os.Getenv("TRAIL_KEY"), // an ingest key of tenant acme
		Source:  "billing",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close(ctx) // flushes what is queued

	ctx = trail.WithActor(ctx, trail.Actor{Type: trail.ActorUser, ID: "42"})
	res, err := client.Record(ctx, trail.Event{
		Action:      "subscription.update",
		Target:      trail.Target{Type: "subscription", ID: "sub_acme"},
		Description: "Changed subscription plan to pro",
		Changes:     []trail.Change{trail.Changed("plan", "free", "pro")},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("recorded", res.ID, "at", res.RecordedAt)
}

// Fire-and-forget recording from a hot path: Enqueue returns at once, Flush
// (or Close) reports what could not be delivered.
func ExampleClient_Enqueue() {
	ctx := context.Background()
	client, err := trailclient.New(trailclient.Config{BaseURL: "http://127.0.0.1:8080", Key: os.Getenv("TRAIL_KEY")})
	if err != nil {
		log.Fatal(err)
	}
	for _, id := range []string{"17", "18", "19"} {
		if _, err := client.Enqueue(ctx, trail.Event{
			Actor:  trail.Actor{Type: trail.ActorSystem},
			Action: "user.deactivate",
			Target: trail.Target{Type: "user", ID: id},
		}); err != nil {
			log.Fatal(err)
		}
	}
	if err := client.Close(ctx); err != nil {
		log.Print("some events were not delivered: ", err)
	}
}

// Who changed that subscription? A reader key pages through the answer.
func ExampleClient_Query() {
	ctx := context.Background()
	client, err := trailclient.New(trailclient.Config{BaseURL: "http://127.0.0.1:8080", Key: os.Getenv("TRAIL_KEY")})
	if err != nil {
		log.Fatal(err)
	}
	q := trail.Query{Tenant: "acme", Action: "subscription.*", Limit: 50}
	for {
		page, err := client.Query(ctx, q)
		if err != nil {
			log.Fatal(err)
		}
		for _, ev := range page.Events {
			fmt.Println(ev.OccurredAt, ev.Actor, ev.Description)
		}
		if page.Next == "" {
			break
		}
		q.Cursor = page.Next
	}
}
