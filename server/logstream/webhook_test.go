package logstream

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/trailhq/trail/trailseal"
)

func ids(us []uuid.UUID) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.String()
	}
	return out
}

func (f *fixture) webhook(t testing.TB, rcv *webhookReceiver, tenant string, mod func(*CreateRequest)) *Created {
	t.Helper()
	f.dialer.RootCAs = rcv.pool()
	req := CreateRequest{Tenant: tenant, Name: "siem", Destination: Destination{Type: TypeWebhook, URL: rcv.url()},
		Secret: rcv.secrets[0], Batching: Batching{MaxEvents: 50, MaxWaitMS: 1}}
	if mod != nil {
		mod(&req)
	}
	f.step(t) // seal what is pending: the stream starts at the logs' ends
	c, err := f.m.Create(adminCtx(), Caller{All: true}, req)
	if err != nil {
		t.Fatal(err)
	}
	f.start[c.ID] = f.size(t, tenant)
	return c
}

// want is what stream s must deliver: its tenant's log from where it
// started, in log order (its own log_stream.create event first). It also
// checks that every ID of recorded is in it.
func (f *fixture) want(t testing.TB, s *Created, recorded ...[]string) []string {
	t.Helper()
	f.step(t)
	ls, err := f.log.Leaves(context.Background(), trailseal.LogName(s.Tenant), f.start[s.ID], f.size(t, s.Tenant))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	in := map[string]bool{}
	for _, l := range ls {
		out = append(out, l.EventID.String())
		in[l.EventID.String()] = true
	}
	for _, r := range recorded {
		for _, id := range r {
			if !in[id] {
				t.Fatalf("recorded event %s is not in the log after the stream's start", id)
			}
		}
	}
	return out
}

// TestWebhookDelivery: every event of the tenant arrives once, in order,
// signed, numbered 1…n, and none of another tenant; health goes from
// pending to healthy with no lag.
func TestWebhookDelivery(t *testing.T) {
	eachStore(t, func(t *testing.T, f *fixture) {
		rcv := newWebhookReceiver(t, "whsec_test")
		s := f.webhook(t, rcv, "acme", nil)
		if s.Health.State != StatePending || rcv.tests != 1 {
			t.Fatalf("after create: state %s, test deliveries %d", s.Health.State, rcv.tests)
		}
		rec := f.record(t, "acme", 320)
		f.record(t, "globex", 100)
		want := f.want(t, s, ids(rec))
		if len(want) != 321 { // the stream's own creation, and the 320
			t.Fatalf("log holds %d events after the start", len(want))
		}
		f.until(t, "321 delivered", func() bool { return rcv.count() >= 321 })
		f.step(t)
		rcv.check(t, want)
		h := f.health(t, s.ID)
		if h.State != StateHealthy || h.LagEvents != 0 || h.Delivered != 321 || h.LastSuccess == nil {
			t.Fatalf("health %+v", h)
		}
		if rcv.dups != 0 {
			t.Fatalf("%d duplicates without a fault", rcv.dups)
		}
	})
}

// TestWebhookFaults: the receiver down during ingest, then 500s, then 413
// for batches over 7 events: every event arrives, in order, with no gap.
func TestWebhookFaults(t *testing.T) {
	eachStore(t, func(t *testing.T, f *fixture) {
		rcv := newWebhookReceiver(t, "whsec_test")
		s := f.webhook(t, rcv, "acme", func(r *CreateRequest) { r.Destination.Encoding = "ndjson" })
		rec := ids(f.record(t, "acme", 40))
		f.until(t, "first 41", func() bool { return rcv.count() >= 41 })

		rcv.stop()
		rec = append(rec, ids(f.record(t, "acme", 100))...)
		f.until(t, "error state while down", func() bool { return f.health(t, s.ID).State == StateError })
		rec = append(rec, ids(f.record(t, "acme", 100))...)
		f.step(t)
		h := f.health(t, s.ID)
		if h.LagEvents < 200 || !strings.Contains(h.LastError, "connect") {
			t.Fatalf("health while down: %+v", h)
		}
		rcv.restart()
		f.until(t, "caught up after restart", func() bool { return rcv.count() >= 241 })

		rcv.failNext(http.StatusInternalServerError, 5)
		rec = append(rec, ids(f.record(t, "acme", 60))...)
		f.until(t, "caught up after 500s", func() bool { return rcv.count() >= 301 })

		rcv.mu.Lock()
		rcv.maxBatch = 7
		rcv.mu.Unlock()
		rec = append(rec, ids(f.record(t, "acme", 150))...)
		f.until(t, "caught up with 413s", func() bool { return rcv.count() >= 451 })
		rcv.check(t, f.want(t, s, rec))
		if !rcv.ndjson {
			t.Fatal("ndjson not used")
		}
		if h := f.health(t, s.ID); h.State != StateHealthy || h.LagEvents != 0 {
			t.Fatalf("health after recovery %+v", h)
		}
	})
}

// TestSecretRotation: during the overlap both signatures are sent, so a
// receiver that knows either secret verifies; after rotation with no
// overlap only the new one.
func TestSecretRotation(t *testing.T) {
	f := newFixture(t, onSQLite)
	rcv := newWebhookReceiver(t, "whsec_old")
	s := f.webhook(t, rcv, "acme", nil)
	f.record(t, "acme", 10)
	f.until(t, "11", func() bool { return rcv.count() >= 11 })
	ctx := adminCtx()
	rot, err := f.m.RotateSecret(ctx, Caller{All: true}, s.ID, RotateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rot.Secret, "whsec_") || rot.SecretOverlapUntil == nil {
		t.Fatalf("rotation answer %+v", rot)
	}
	// The receiver still knows the old secret only: verifies by it.
	f.record(t, "acme", 10)
	f.until(t, "22 under the old secret", func() bool { return rcv.count() >= 22 }) // with the rotation's event
	// The receiver switches to the new secret: verifies by it.
	rcv.setSecrets(rot.Secret)
	f.record(t, "acme", 10)
	f.until(t, "32 under the new secret", func() bool { return rcv.count() >= 32 })
	rcv.check(t, f.want(t, s))
	// A rotation with no overlap is test-delivered under the new secret
	// alone; afterwards the retired one no longer verifies.
	rcv.setSecrets("whsec_third")
	if _, err := f.m.RotateSecret(ctx, Caller{All: true}, s.ID, RotateRequest{Secret: "whsec_third", OverlapS: -1}); err != nil {
		t.Fatal(err)
	}
	rcv.setSecrets(rot.Secret)
	f.record(t, "acme", 1)
	f.until(t, "refused under the retired secret", func() bool { return f.health(t, s.ID).State == StateError })
	rcv.mu.Lock()
	bad := rcv.badSigs
	rcv.mu.Unlock()
	if bad == 0 {
		t.Fatal("a retired secret still verified")
	}
}

// TestCreateRefusesBadDestination: an unreachable receiver, a bad TLS
// certificate and a receiver that refuses are refused at creation with the
// reason, and nothing is stored.
func TestCreateRefusesBadDestination(t *testing.T) {
	f := newFixture(t, onSQLite)
	rcv := newWebhookReceiver(t, "whsec_x")
	ctx := adminCtx()
	// Not trusting the receiver's certificate: refused (verification is never skipped).
	_, err := f.m.Create(ctx, Caller{All: true}, CreateRequest{Tenant: "acme", Destination: Destination{Type: TypeWebhook, URL: rcv.url()}, Secret: "whsec_x"})
	var de *DestinationError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted certificate: %v", err)
	}
	f.dialer.RootCAs = rcv.pool()
	// A wrong secret: the receiver answers 401.
	_, err = f.m.Create(ctx, Caller{All: true}, CreateRequest{Tenant: "acme", Destination: Destination{Type: TypeWebhook, URL: rcv.url()}, Secret: "whsec_wrong"})
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "401") {
		t.Fatalf("refusing receiver: %v", err)
	}
	rcv.stop()
	_, err = f.m.Create(ctx, Caller{All: true}, CreateRequest{Tenant: "acme", Destination: Destination{Type: TypeWebhook, URL: rcv.url()}, Secret: "whsec_x"})
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("unreachable: %v", err)
	}
	ss, err := f.m.List(ctx, Caller{All: true})
	if err != nil || len(ss) != 0 {
		t.Fatalf("stored after refusals: %v %v", ss, err)
	}
}

// TestTenantScope: a tenant admin creates for its tenant only, cannot see,
// change or delete another tenant's stream, and never reads a secret.
func TestTenantScope(t *testing.T) {
	f := newFixture(t, onSQLite)
	rcv := newWebhookReceiver(t, "whsec_x")
	other := f.webhook(t, rcv, "globex", nil)
	ctx := adminCtx()
	acme := Caller{Tenant: "acme"}
	_, err := f.m.Create(ctx, acme, CreateRequest{Tenant: "globex", Destination: Destination{Type: TypeWebhook, URL: rcv.url()}, Secret: "whsec_x"})
	var fe *ForbiddenError
	if !errors.As(err, &fe) {
		t.Fatalf("create for another tenant: %v", err)
	}
	if _, err := f.m.Create(ctx, acme, CreateRequest{AllTenants: true, Destination: Destination{Type: TypeWebhook, URL: rcv.url()}, Secret: "whsec_x"}); !errors.As(err, &fe) {
		t.Fatalf("all-tenant stream by a tenant admin: %v", err)
	}
	mine, err := f.m.Create(ctx, acme, CreateRequest{Destination: Destination{Type: TypeWebhook, URL: rcv.url()}, Secret: "whsec_x"})
	if err != nil || mine.Tenant != "acme" {
		t.Fatalf("own stream: %+v %v", mine, err)
	}
	if _, err := f.m.Get(ctx, acme, other.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get other: %v", err)
	}
	if _, err := f.m.SetEnabled(ctx, acme, other.ID, false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("pause other: %v", err)
	}
	if _, err := f.m.RotateSecret(ctx, acme, other.ID, RotateRequest{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("rotate other: %v", err)
	}
	if err := f.m.Delete(ctx, acme, other.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete other: %v", err)
	}
	ss, _ := f.m.List(ctx, acme)
	if len(ss) != 1 || ss[0].ID != mine.ID {
		t.Fatalf("tenant list: %+v", ss)
	}
	all, _ := f.m.List(ctx, Caller{All: true})
	if len(all) != 2 {
		t.Fatalf("all list: %d", len(all))
	}
}

// TestChangesAudited: create, pause, resume, rotate and delete each write
// one event in the stream's tenant, as the caller, naming the stream.
func TestChangesAudited(t *testing.T) {
	eachStore(t, func(t *testing.T, f *fixture) {
		rcv := newWebhookReceiver(t, "whsec_x")
		s := f.webhook(t, rcv, "acme", nil)
		ctx := adminCtx()
		c := Caller{All: true}
		if _, err := f.m.SetEnabled(ctx, c, s.ID, false); err != nil {
			t.Fatal(err)
		}
		if got, _ := f.m.Get(ctx, c, s.ID); got.Health.State != StatePaused || got.Enabled {
			t.Fatalf("paused: %+v", got)
		}
		if _, err := f.m.SetEnabled(ctx, c, s.ID, true); err != nil {
			t.Fatal(err)
		}
		if _, err := f.m.RotateSecret(ctx, c, s.ID, RotateRequest{}); err != nil {
			t.Fatal(err)
		}
		if err := f.m.Delete(ctx, c, s.ID); err != nil {
			t.Fatal(err)
		}
		if err := f.m.Delete(ctx, c, s.ID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
		page, err := f.events.Query(context.Background(), queryAction("acme", "log_stream.*"))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for i := len(page.Events) - 1; i >= 0; i-- {
			ev := page.Events[i]
			if ev.Target.ID != s.ID || ev.Actor.ID != "key-test" {
				t.Fatalf("event %+v", ev)
			}
			got = append(got, ev.Action)
		}
		if strings.Join(got, " ") != "log_stream.create log_stream.pause log_stream.resume log_stream.rotate_secret log_stream.delete" {
			t.Fatalf("audit events: %v", got)
		}
	})
}
