package trailclient_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

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

// Delivery that survives crashes: durable events are fsynced in a spool
// directory before Enqueue returns and sent from there, also by the next
// process after a crash; logins are strict (refuse the login if it cannot
// be audited); page views are best-effort.
func ExampleConfig_spool() {
	ctx := context.Background()
	client, err := trailclient.New(trailclient.Config{
		BaseURL: "http://127.0.0.1:8080",
		Key:     os.Getenv("TRAIL_KEY"),
		Spool:   "/var/lib/billing/trail-spool", // default policy: durable
		Policies: map[string]trailclient.Policy{
			"auth.*":    trailclient.Strict,
			"page.view": trailclient.BestEffort,
		},
		MaxAge: 72 * time.Hour, // then to spool/dead-letter.jsonl and OnError, never dropped
	})
	if err != nil {
		log.Fatal(err) // e.g. ErrSpoolLocked: another process has the directory
	}
	if _, err := client.Enqueue(ctx, trail.Event{
		Actor:  trail.Actor{Type: trail.ActorUser, ID: "42"},
		Action: "invoice.void",
		Target: trail.Target{Type: "invoice", ID: "in_981"},
	}); errors.Is(err, trailclient.ErrSpoolFull) {
		log.Print("audit spool full: refusing the operation")
	}
	// Close delivers; if its context ends first, what is left stays in the
	// spool and UndeliveredError says how much.
	shutdown, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var ue *trailclient.UndeliveredError
	if err := client.Close(shutdown); errors.As(err, &ue) {
		log.Printf("%d events wait in the spool for the next start", ue.Spooled)
	}
	st := client.DeliveryStats()
	fmt.Println(st.Delivered, st.Dropped, st.DeadLettered)
}
