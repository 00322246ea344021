package trailui_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailui"
)

func TestReconstruct(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ev := func(min int, action string, cs ...trail.Change) trail.Event {
		return trail.Event{ID: uuid.New(), OccurredAt: t0.Add(time.Duration(min) * time.Minute), Action: action, Changes: cs}
	}
	evs := []trail.Event{ // newest first, as history returns them
		ev(30, "subscription.update", trail.Changed("plan", "pro", "enterprise")),
		ev(20, "subscription.update", trail.Change{Field: "card", Redacted: true}, trail.Change{Field: "coupon", Old: json.RawMessage(`"X"`)}),
		ev(10, "subscription.update", trail.Changed("plan", "free", "pro"), trail.Changed("coupon", nil, "X")),
		ev(0, "subscription.create", trail.Change{Field: "plan", New: json.RawMessage(`"free"`)}, trail.Change{Field: "seats", New: json.RawMessage(`3`)}),
	}
	for _, tc := range []struct {
		at   int
		want map[string]string // field: value, or "removed"/"redacted"
		n    int
	}{
		{-1, map[string]string{}, 0},
		{0, map[string]string{"plan": `"free"`, "seats": "3"}, 1},
		{15, map[string]string{"plan": `"pro"`, "seats": "3", "coupon": `"X"`}, 2},
		{25, map[string]string{"plan": `"pro"`, "seats": "3", "coupon": "removed", "card": "redacted"}, 3},
		{60, map[string]string{"plan": `"enterprise"`, "seats": "3", "coupon": "removed", "card": "redacted"}, 4},
	} {
		st := trailui.Reconstruct(evs, t0.Add(time.Duration(tc.at)*time.Minute))
		got := map[string]string{}
		for _, f := range st.Fields {
			switch {
			case f.Removed:
				got[f.Field] = "removed"
			case f.Redacted:
				got[f.Field] = "redacted"
			default:
				got[f.Field] = string(f.Value)
			}
		}
		if st.Events != tc.n || len(got) != len(tc.want) {
			t.Fatalf("at %d: %d events %v, want %d %v", tc.at, st.Events, got, tc.n, tc.want)
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Fatalf("at %d: %s = %s, want %s", tc.at, k, got[k], v)
			}
		}
	}
}
