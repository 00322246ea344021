package trailui_test

import (
	"bytes"
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailprivacy"
)

// TestBrowserActorByEmailAndPickers is issue 15 item 3 in Chromium, on a
// store whose names and e-mails are encrypted: a tenant's reader types a
// person's e-mail, then name, into the actor box and gets exactly that
// person's events with their count (an actor filter, which the count did
// not cover before); the form's pickers offer the data's actions, actor
// types and target types.
func TestBrowserActorByEmailAndPickers(t *testing.T) {
	ctx, _ := browser(t)
	s := newSiteOpts(t, nil, 1500, nil, func(st *trailsqlite.Store) *trailprivacy.Privacy {
		c := context.Background()
		ks := trailprivacy.NewSQLKeyStore(st.DB())
		if err := ks.Init(c); err != nil {
			t.Fatal(err)
		}
		kms, err := trailprivacy.NewLocalKMS(bytes.Repeat([]byte{9}, 32))
		if err != nil {
			t.Fatal(err)
		}
		p, err := trailprivacy.New(c, trailprivacy.Config{KMS: kms, Keys: ks})
		if err != nil {
			t.Fatal(err)
		}
		return p
	})
	// The acme person with the most events of the last 30 days, at most a
	// page (50) of them.
	since := time.Now().Add(-30 * 24 * time.Hour)
	n := map[string]int{}
	names := map[string]string{}
	for _, ev := range s.data.Events {
		if ev.Tenant == "acme" && ev.Actor.Email != "" && ev.OccurredAt.After(since.Add(time.Hour)) {
			n[ev.Actor.Email]++
			names[ev.Actor.Email] = ev.Actor.Name
		}
	}
	var email string
	for e, c := range n {
		if c <= 50 && (c > n[email] || c == n[email] && e > email) {
			email = e
		}
	}
	if n[email] < 2 {
		t.Fatal("the demo data has no acme person with events this month")
	}
	var want []trail.Event
	for _, ev := range s.data.Events {
		if ev.Tenant == "acme" && ev.Actor.Email == email && !ev.OccurredAt.Before(since.Add(time.Hour)) {
			want = append(want, ev)
		}
	}
	slices.SortFunc(want, func(a, b trail.Event) int {
		if c := b.OccurredAt.Compare(a.OccurredAt); c != 0 {
			return c
		}
		return bytes.Compare(b.ID[:], a.ID[:])
	})
	// Nothing of it is stored in the clear.
	if page, err := s.store.Query(context.Background(), trail.Query{Tenant: "acme", ActorEmail: email}); err != nil || len(page.Events) != 0 {
		t.Fatalf("the e-mail is stored in plaintext (%d events, %v)", len(page.Events), err)
	}

	signIn(t, ctx, s, "acme")
	for _, typed := range []string{email, names[email]} {
		do(t, ctx, chromedp.Navigate(s.url("/ui/")))
		waitFor(t, ctx, settled+` && !!document.getElementById("filters")`)
		setValue(t, ctx, "f-actor", typed)
		click(t, ctx, `button[name="range"][value="30d"]`) // keeps the typed actor
		waitFor(t, ctx, `location.search.includes("range=30d") && !!document.getElementById("events") && !!document.getElementById("total")`)
		got := run(t, ctx, chromedp.Evaluate[[]string](rowIDs))
		if !slices.Equal(got, ids(want)) {
			t.Fatalf("actor %q: rows %v\nwant %v", typed, got, ids(want))
		}
		if got := textOf(t, ctx, "#total"); got != strconv.Itoa(len(want)) {
			t.Fatalf("actor %q: count %q, want %d", typed, got, len(want))
		}
		shown := run(t, ctx, chromedp.Evaluate[bool](`document.getElementById("events").textContent.includes(`+js(names[email])+`)`))
		if !shown {
			t.Fatalf("actor %q: the revealed name is not shown", typed)
		}
	}

	// The pickers come from acme's data.
	actions := run(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#action-list option")].map(o => o.value)`))
	actors := run(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#actor-list option")].map(o => o.value)`))
	targets := run(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#target-list option")].map(o => o.value)`))
	if !slices.Contains(actions, want[0].Action) || !slices.Contains(actors, "user:") || len(targets) == 0 {
		t.Fatalf("pickers: actions %v, actors %v, targets %v", actions, actors, targets)
	}
	for _, a := range actions {
		for _, ev := range s.data.Events {
			if ev.Action == a && ev.Tenant != "acme" && !slices.ContainsFunc(s.data.Events, func(e trail.Event) bool { return e.Tenant == "acme" && e.Action == a }) {
				t.Fatalf("picker offers %q, which only another tenant has", a)
			}
		}
	}
}
