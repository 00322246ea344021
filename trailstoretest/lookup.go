package trailstoretest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/trailhq/trail"
)

// digest makes a distinct trail.Digest for the suite (stores only compare
// them; trailprivacy computes the real ones).
func digest(s string) trail.Digest {
	var d trail.Digest
	copy(d[:], s)
	d[15] = 1 // never the zero Digest
	return d
}

// person sets the actor's name and e-mail, in plaintext, or (enc) as
// stand-ins for ciphertext with their digests in Lookup, as the privacy
// layer writes them.
func person(id, name, email string, enc bool) func(*trail.Event) {
	return func(ev *trail.Event) {
		ev.Actor = trail.Actor{Type: trail.ActorUser, ID: id, Name: name, Email: email}
		if enc {
			ev.Actor.Name, ev.Actor.Email = "enc:v1:k1:"+id+"-name", "enc:v1:k1:"+id+"-email"
			ev.Lookup = trail.Lookup{ActorName: digest(name), ActorEmail: digest(email)}
		}
	}
}

// testActorNameEmail: Query.ActorName and ActorEmail match the stored
// fields exactly; ActorNameDigest and ActorEmailDigest match Event.Lookup,
// written by every Append path (one event, a small batch, a large one) and
// never returned. Counts take the same filters.
func testActorNameEmail(t *testing.T, s trail.Store) {
	ctx := context.Background()
	nina := event(t, "acme", "user.update", 0, person("u1", "Nina Silva", "nina@acme.example", false))
	ninaEnc := event(t, "acme", "user.delete", hour, person("u1", "Nina Silva", "nina@acme.example", true))
	yara := event(t, "acme", "user.update", 2*hour, person("u2", "Yara Ito", "yara@acme.example", true))
	other := event(t, "globex", "user.update", 3*hour, person("u9", "Nina Silva", "nina@globex.example", false))
	mustAppend(t, s, ninaEnc)
	mustAppend(t, s, nina, yara, other)
	var big []trail.Event
	for i := range 300 {
		big = append(big, event(t, "acme", "doc.view", 4*hour+time.Duration(i)*time.Minute, person("u2", "Yara Ito", "yara@acme.example", i%2 == 0)))
	}
	mustAppend(t, s, big...)
	var bigEnc, bigPlain []trail.Event
	for i, ev := range big {
		if i%2 == 0 {
			bigEnc = append(bigEnc, ev)
		} else {
			bigPlain = append(bigPlain, ev)
		}
	}
	all := append([]trail.Event{nina, ninaEnc, yara, other}, big...)
	for _, c := range []struct {
		name string
		q    trail.Query
		want []trail.Event
	}{
		{"name", trail.Query{Tenant: "acme", ActorName: "Nina Silva"}, []trail.Event{nina}},
		{"email", trail.Query{Tenant: "acme", ActorEmail: "nina@acme.example"}, []trail.Event{nina}},
		{"name all tenants", trail.Query{AllTenants: true, ActorName: "Nina Silva"}, []trail.Event{other, nina}},
		{"email other case", trail.Query{Tenant: "acme", ActorEmail: "Nina@acme.example"}, nil},
		{"name digest", trail.Query{Tenant: "acme", ActorNameDigest: digest("Nina Silva")}, []trail.Event{ninaEnc}},
		{"email digest", trail.Query{Tenant: "acme", ActorEmailDigest: digest("nina@acme.example")}, []trail.Event{ninaEnc}},
		{"email digest and action", trail.Query{Tenant: "acme", ActorEmailDigest: digest("yara@acme.example"), Action: "doc.*"}, newestFirst(bigEnc)},
		{"plain email of the batch", trail.Query{Tenant: "acme", ActorEmail: "yara@acme.example"}, newestFirst(bigPlain)},
		{"digest of another tenant", trail.Query{Tenant: "globex", ActorEmailDigest: digest("nina@acme.example")}, nil},
		{"unknown", trail.Query{Tenant: "acme", ActorEmail: "nobody@acme.example"}, nil},
	} {
		if want := filter(c.q, all); len(want) != len(c.want) {
			t.Fatalf("suite bug: %s: reference finds %d, case says %d", c.name, len(want), len(c.want))
		}
		sameIDs(t, c.name, c.want, queryAll(t, s, c.q))
		cs, err := s.Counts(ctx, c.q.Counts())
		if err != nil {
			t.Fatalf("%s: Counts: %v", c.name, err)
		}
		if n := total(cs); n != int64(len(c.want)) {
			t.Errorf("%s: Counts total %d, want %d", c.name, n, len(c.want))
		}
	}
	got, err := s.Get(ctx, ninaEnc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Lookup != (trail.Lookup{}) {
		t.Errorf("Get returned the lookup digests %+v: stores keep them for search only", got.Lookup)
	}
	for _, bad := range []trail.Query{{Tenant: "acme", ActorEmail: "a\x00b"}, {Tenant: "acme", ActorName: string(make([]byte, 2*trail.MaxIDLen+1))}} {
		if _, err := s.Query(ctx, bad); err == nil {
			t.Errorf("Query(%q, %q) accepted", bad.ActorName[:min(len(bad.ActorName), 8)], bad.ActorEmail)
		}
	}
}

// testCountsEveryFilter: Counts takes every filter Query takes (the filter
// queries of testFilters) and counts exactly the events Query returns.
func testCountsEveryFilter(t *testing.T, s trail.Store) {
	evs := dataset(t)
	mustAppend(t, s, evs...)
	for _, q := range filterQueries() {
		cs, err := s.Counts(context.Background(), q.Counts())
		if err != nil {
			t.Fatalf("Counts%s: %v", showQuery(q), err)
		}
		want := filter(q, evs)
		byKey := map[string]int64{}
		for _, ev := range want {
			byKey[ev.OccurredAt.UTC().Format("2006-01-02")+" "+ev.Action]++
		}
		got := map[string]int64{}
		for _, c := range cs {
			got[c.Day.UTC().Format("2006-01-02")+" "+c.Action] += c.N
		}
		if len(got) != len(byKey) {
			t.Errorf("Counts%s: %v, want %v", showQuery(q), got, byKey)
			continue
		}
		for k, n := range byKey {
			if got[k] != n {
				t.Errorf("Counts%s: %s = %d, want %d", showQuery(q), k, got[k], n)
			}
		}
	}
}

// txLookup: AppendTx writes the lookup digests too (RecordTx's path).
func txLookup[TTx any](t *testing.T, h TxHarness[TTx], s trail.TxStore[TTx]) {
	ctx := context.Background()
	ev := event(t, "acme", "user.update", 0, person("u1", "Nina Silva", "nina@acme.example", true))
	tx, end := begin(t, h, s)
	if _, err := s.AppendTx(ctx, tx, []trail.Event{ev}); err != nil {
		t.Fatalf("AppendTx: %v", err)
	}
	end(true)
	sameIDs(t, "email digest after commit", []trail.Event{ev}, queryAll(t, s, trail.Query{Tenant: "acme", ActorEmailDigest: digest("nina@acme.example")}))
	sameIDs(t, "name digest after commit", []trail.Event{ev}, queryAll(t, s, trail.Query{Tenant: "acme", ActorNameDigest: digest("Nina Silva")}))
}

// testTenants: a store that lists tenants (trail.TenantLister, the tenant
// picker) lists each tenant with events once, in order, without the
// platform's "", paged by after and limit.
func testTenants(t *testing.T, s trail.Store) {
	tl, ok := s.(trail.TenantLister)
	if !ok {
		t.Skip("the store lists no tenants")
	}
	mustAppend(t, s, event(t, "zeta", "user.create", 0), event(t, "acme", "user.create", hour), event(t, "", "system.start", hour),
		event(t, "globex", "user.create", 2*hour), event(t, "acme", "user.delete", 3*hour))
	for _, c := range []struct {
		after string
		limit int
		want  []string
	}{{"", 10, []string{"acme", "globex", "zeta"}}, {"", 2, []string{"acme", "globex"}}, {"acme", 1, []string{"globex"}}, {"zeta", 5, nil}} {
		got, err := tl.Tenants(context.Background(), c.after, c.limit)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("Tenants(%q, %d) = %q, want %q", c.after, c.limit, got, c.want)
		}
	}
}
