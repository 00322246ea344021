package logstream

import (
	"strings"
	"testing"
)

// TestAllTenantsStream: an operator's all-tenant stream delivers every
// tenant's events and the platform's, numbered without a gap, each
// tenant's in its log order; its changes are platform events.
func TestAllTenantsStream(t *testing.T) {
	eachStore(t, func(t *testing.T, f *fixture) {
		rcv := newWebhookReceiver(t, "whsec_x")
		f.dialer.RootCAs = rcv.pool()
		f.step(t)
		start := map[string]int64{"acme": f.size(t, "acme"), "globex": f.size(t, "globex"), "": f.size(t, "")}
		s, err := f.m.Create(adminCtx(), Caller{All: true}, CreateRequest{AllTenants: true, Destination: Destination{Type: TypeWebhook, URL: rcv.url()},
			Secret: "whsec_x", Batching: Batching{MaxEvents: 64, MaxWaitMS: 1}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.m.Create(adminCtx(), Caller{Tenant: "acme"}, CreateRequest{AllTenants: true, Destination: Destination{Type: TypeWebhook, URL: rcv.url()}, Secret: "whsec_x"}); err == nil {
			t.Fatal("a tenant admin created an all-tenant stream")
		}
		f.record(t, "acme", 150)
		f.record(t, "globex", 90)
		f.record(t, "acme", 30)
		f.step(t)
		total := int64(0)
		for tenant, from := range start {
			total += f.size(t, tenant) - from
		}
		f.until(t, "every tenant's events", func() bool { return rcv.count() >= total })
		rcv.check(t, idsFromReceiver(rcv)) // no gap, no bad signature
		// Each tenant's events arrive in its log order.
		rcv.mu.Lock()
		got := map[string]bool{}
		for _, id := range rcv.bySeq {
			got[id] = true
		}
		rcv.mu.Unlock()
		for tenant, from := range start {
			ls, err := f.log.Leaves(t.Context(), logName(tenant), from, f.size(t, tenant))
			if err != nil {
				t.Fatal(err)
			}
			last := int64(0)
			for _, l := range ls {
				seq := seqOfID(rcv, l.EventID.String())
				if seq == 0 || seq < last {
					t.Fatalf("tenant %q: event %s at seq %d after %d", tenant, l.EventID, seq, last)
				}
				last = seq
			}
		}
		if h := f.health(t, s.ID); h.State != StateHealthy || h.LagEvents != 0 || !strings.HasPrefix(s.ID, "ls_") {
			t.Fatalf("health %+v", h)
		}
	})
}

func idsFromReceiver(r *webhookReceiver) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, r.last)
	for i := range out {
		out[i] = r.bySeq[int64(i+1)]
	}
	return out
}

func seqOfID(r *webhookReceiver, id string) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	for s, v := range r.bySeq {
		if v == id {
			return s
		}
	}
	return 0
}
