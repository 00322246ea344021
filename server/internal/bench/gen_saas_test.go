package bench

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/testenv"
)

// TestSaaSGenerator checks the saas dataset's shape: deterministic by seed
// (and another seed gives other events), every event valid, thousands of
// tenants with Zipf-like sizes, users within the configured number and
// never shared across tenants, a weighted mix of actions with failures,
// diffs and metadata, objects with histories, times after each tenant's
// sign-up within the 400 days.
func TestSaaSGenerator(t *testing.T) {
	t.Parallel()
	end := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	const tenantsN, usersN, n = 2000, 50_000, 60_000
	a, b := newSaaSGenerator(3, end, tenantsN, usersN), newSaaSGenerator(3, end, tenantsN, usersN)
	other := newSaaSGenerator(4, end, tenantsN, usersN)
	actions, tenants, targets := map[string]int{}, map[string]int{}, map[string]int{}
	userTenant := map[string]string{}
	var failures, withChanges, withMeta, services, systems int
	same := 0
	for range n {
		x, y, z := a.next(), b.next(), other.next()
		if x.ID != y.ID || x.Description != y.Description || x.Tenant != y.Tenant || x.OccurredAt != y.OccurredAt {
			t.Fatal("the same seed gave different events")
		}
		if x.Tenant == z.Tenant && x.Action == z.Action {
			same++
		}
		if err := x.Validate(); err != nil {
			t.Fatalf("invalid event: %v", err)
		}
		if err := trail.CheckStorable(&x); err != nil {
			t.Fatalf("unstorable event: %v", err)
		}
		if x.OccurredAt.After(end) || x.OccurredAt.Before(end.AddDate(0, 0, -genDays)) {
			t.Errorf("occurred_at %v outside the span", x.OccurredAt)
		}
		if x.Description == "" || len(x.Description) > 300 {
			t.Errorf("description %q", x.Description)
		}
		actions[x.Action]++
		tenants[x.Tenant]++
		targets[x.Target.ID]++
		switch x.Actor.Type {
		case trail.ActorUser:
			if prev, ok := userTenant[x.Actor.ID]; ok && prev != x.Tenant {
				t.Fatalf("user %s in tenants %s and %s", x.Actor.ID, prev, x.Tenant)
			}
			userTenant[x.Actor.ID] = x.Tenant
			if !strings.HasSuffix(x.Actor.Email, ".example") || x.Actor.Name == "" {
				t.Errorf("user without a name or e-mail: %+v", x.Actor)
			}
		case trail.ActorService:
			services++
		case trail.ActorSystem:
			systems++
		}
		if x.Outcome == trail.OutcomeFailure {
			failures++
		}
		if len(x.Changes) > 0 {
			withChanges++
		}
		if len(x.Metadata) > 0 {
			withMeta++
		}
	}
	if same > n/10 {
		t.Errorf("seed 4 repeats seed 3's tenant and action %d times in %d", same, n)
	}
	if len(actions) < 25 {
		t.Errorf("%d actions, want a mix of at least 25", len(actions))
	}
	if actions["user.login"] < actions["document.view"] || actions["document.view"] < 20*actions["subscription.cancel"] {
		t.Errorf("action mix not weighted: %v", actions)
	}
	sizes := make([]int, 0, len(tenants))
	for _, c := range tenants {
		sizes = append(sizes, c)
	}
	slices.Sort(sizes)
	slices.Reverse(sizes)
	// Zipf-like: a large head and a long tail of small tenants.
	if len(tenants) < 1000 || sizes[0] < n/30 || sizes[0] > n/3 || sizes[len(sizes)/2] > n/500 {
		t.Errorf("tenant sizes: %d tenants, largest %d, median %d of %d", len(tenants), sizes[0], sizes[len(sizes)/2], n)
	}
	if len(userTenant) < 5000 || len(userTenant) > usersN {
		t.Errorf("%d users acting, want thousands and at most %d", len(userTenant), usersN)
	}
	for name, share := range map[string]int{"failures": failures, "changes": withChanges, "metadata": withMeta, "service actors": services, "system actors": systems} {
		if share < n/200 || share > n*3/4 {
			t.Errorf("%s in %d of %d events", name, share, n)
		}
	}
	if len(targets) > n*9/10 {
		t.Errorf("%d distinct targets in %d events: objects have no history", len(targets), n)
	}
}

// TestSaaSConfig: the dataset flags are checked before anything runs.
func TestSaaSConfig(t *testing.T) {
	t.Parallel()
	for _, c := range []Config{
		{DSN: "x", Dataset: "real"},
		{DSN: "x", Dataset: DatasetSaaS, Tenants: 100, Users: 10},
		{DSN: "x", Dataset: DatasetSaaS, Tenants: -1},
		{DSN: "x", Tenants: 100},
	} {
		if _, err := Run(context.Background(), c); err == nil {
			t.Errorf("Run(%+v) succeeded", c)
		}
	}
	c, err := Config{DSN: "x", Dataset: DatasetSaaS}.withDefaults()
	if err != nil || c.Tenants != defaultSaaSTenants || c.Users != defaultSaaSUsers {
		t.Errorf("defaults: %+v, %v", c, err)
	}
}

// TestRunTinySaaS runs W2, W3 and storage on the saas dataset at a tiny
// size: every event ingested on both sides, W3's questions answered from
// the dataset's own samples. It asserts no speed.
func TestRunTinySaaS(t *testing.T) {
	pgAvailable(t)
	res, err := Run(context.Background(), Config{
		DSN: testenv.PostgresDSN(), Events: 3000, BatchSize: 500, Queries: 12, Workloads: []string{"w2", "w3", "storage"},
		Dataset: DatasetSaaS, Tenants: 300, Users: 2000,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Extra["dataset"] != DatasetSaaS || res[0].Extra["tenants"] != 300 {
		t.Errorf("machine line does not name the dataset: %v", res[0].Extra)
	}
	seen := map[string]Result{}
	for _, r := range res {
		seen[r.Workload+"/"+r.Name] = r
	}
	for _, k := range []string{"w2/trail", "w2/raw_copy", "storage/bytes_per_event", "w3/newest_of_tenant", "w3/object_history", "w3/text_in_tenant"} {
		if _, ok := seen[k]; !ok {
			t.Errorf("no %s result", k)
		}
	}
	if r := seen["w2/trail"]; r.Events != 3000 || r.Ratio == nil {
		t.Errorf("w2 trail: %+v", r)
	}
	if r := seen["storage/bytes_per_event"]; r.Events != 3000 {
		t.Errorf("storage counted %d events, want 3000", r.Events)
	}
	if r := seen["w3/newest_of_tenant"]; r.Extra["mean_rows"].(float64) == 0 {
		t.Error("W3 found no events of the sampled tenants")
	}
}
