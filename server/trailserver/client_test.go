package trailserver_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailclient"
)

// TestClientEndToEnd drives the real server with trailclient: concurrent
// Records batched together, duplicates on re-send, the read helpers, and a
// tenant key's limits seen through the client.
func TestClientEndToEnd(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b, nil)
		ctx := context.Background()
		w, err := trailclient.New(trailclient.Config{BaseURL: f.ts.URL, Key: f.secret["ingestA"], FlushInterval: 20 * time.Millisecond, Source: "e2e"})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close(ctx)
		const n = 50
		var wg sync.WaitGroup
		results := make([]trail.Result, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var err error
				results[i], err = w.Record(trail.WithTenant(ctx, "acme"), trail.Event{
					Actor: trail.Actor{Type: trail.ActorUser, ID: "u7"}, Action: "project.create",
					Target: trail.Target{Type: "project", ID: "p" + itoa(i)},
				})
				if err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		for _, r := range results {
			if r.Duplicate || r.RecordedAt.IsZero() {
				t.Fatalf("result %+v", r)
			}
		}
		// Re-sending the same events (as a retry after a lost answer would)
		// stores nothing new.
		ev, err := f.store.Get(ctx, results[0].ID)
		if err != nil || ev.Source != "e2e" || ev.Tenant != "acme" {
			t.Fatalf("stored %+v %v", ev, err)
		}
		before := f.count()
		again, err := w.Send(ctx, []trail.Event{ev})
		if err != nil || !again[0].Duplicate || !again[0].RecordedAt.Equal(ev.RecordedAt) {
			t.Fatalf("re-send: %+v %v", again, err)
		}
		if f.count() != before {
			t.Fatal("a re-send stored a second copy")
		}
		// A globex event from an acme key fails alone with the server's 403.
		_, err = w.Record(ctx, trail.Event{Tenant: "globex", Actor: trail.Actor{Type: trail.ActorSystem}, Action: "user.update"})
		var ae *trailclient.APIError
		if !errors.As(err, &ae) || ae.Status != http.StatusForbidden || ae.Field != "tenant" {
			t.Fatalf("cross-tenant write: %v", err)
		}

		r, err := trailclient.New(trailclient.Config{BaseURL: f.ts.URL, Key: f.secret["readerA"]})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close(ctx)
		seen := 0
		q := trail.Query{Action: "project.*", ActorType: trail.ActorUser, ActorID: "u7", Limit: 20}
		for {
			page, err := r.Query(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			seen += len(page.Events)
			if page.Next == "" {
				break
			}
			q.Cursor = page.Next
		}
		if seen != n {
			t.Fatalf("queried %d, want %d", seen, n)
		}
		if got, err := r.Get(ctx, results[3].ID); err != nil || got.ID != results[3].ID {
			t.Fatalf("get: %v", err)
		}
		if _, err := r.Get(ctx, f.globexEvent); !errors.Is(err, trail.ErrNotFound) {
			t.Fatalf("get of globex's event: %v, want ErrNotFound", err)
		}
		h, err := r.History(ctx, "subscription", "sub_acme", trail.Query{})
		if err != nil || len(h.Events) != 1 {
			t.Fatalf("history: %v %d", err, len(h.Events))
		}
		counts, err := r.Stats(ctx, trail.CountQuery{Action: "project.create"})
		if err != nil || len(counts) == 0 || counts[0].N != n {
			t.Fatalf("stats: %v %+v", err, counts)
		}
		// In a zone: the days are midnights there (Kathmandu, +05:45).
		ktm, err := time.LoadLocation("Asia/Kathmandu")
		if err != nil {
			t.Fatal(err)
		}
		counts, err = r.Stats(ctx, trail.CountQuery{Action: "project.create", Zone: ktm})
		if err != nil || len(counts) == 0 {
			t.Fatalf("stats in Kathmandu: %v %+v", err, counts)
		}
		for _, c := range counts {
			if d := c.Day.In(ktm); d.Hour() != 0 || d.Minute() != 0 {
				t.Fatalf("stats in Kathmandu: day %s is not a Kathmandu midnight", c.Day)
			}
		}
		// Every filter of Query counts, and the actor is found by e-mail.
		counts, err = r.Stats(ctx, trail.CountQuery{Action: "project.create", ActorType: trail.ActorUser, ActorID: "nobody"})
		if err != nil || len(counts) != 0 {
			t.Fatalf("stats of another actor: %v %+v", err, counts)
		}
		if page, err := r.Query(ctx, trail.Query{ActorEmail: "ann@acme.test"}); err != nil || len(page.Events) != 1 || page.Events[0].ID != f.acmeEvent {
			t.Fatalf("actor by e-mail: %v %d", err, len(page.Events))
		}
		if _, err := r.Query(ctx, trail.Query{Tenant: "globex"}); !errors.As(err, &ae) || ae.Status != http.StatusForbidden {
			t.Fatalf("reading globex: %v", err)
		}
	})
}

func itoa(i int) string {
	const d = "0123456789"
	if i < 10 {
		return d[i : i+1]
	}
	return itoa(i/10) + d[i%10:i%10+1]
}
