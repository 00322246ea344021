package trail_test

import (
	"fmt"

	"github.com/trailhq/trail"
)

type BillingAddress struct {
	Street string `json:"street"`
	City   string `json:"city"`
}

type BillingAccount struct {
	ID           int            `json:"id"`
	Plan         string         `json:"plan"`
	Address      BillingAddress `json:"address"`
	PasswordHash string         `json:"-"`                        // not in the API's JSON: not diffed
	APIToken     string         `json:"api_token" trail:"redact"` // changed, values withheld
	CacheKey     string         `trail:"-"`                       // never recorded
}

// Diff turns two versions of an object into the changes of an event: nested
// fields as dotted paths, named like the JSON, in declaration order.
func ExampleDiff() {
	before := BillingAccount{ID: 7, Plan: "free", Address: BillingAddress{City: "Paris"}, APIToken: "t1", CacheKey: "a"}
	after := before
	after.Plan = "pro"
	after.Address.City = "Lyon"
	after.APIToken = "t2"
	after.CacheKey = "b"

	changes, err := trail.Diff(before, after)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range changes {
		if c.Redacted {
			fmt.Printf("%s: changed (redacted)\n", c.Field)
			continue
		}
		fmt.Printf("%s: %s → %s\n", c.Field, c.Old, c.New)
	}
	// Output:
	// plan: "free" → "pro"
	// address.city: "Paris" → "Lyon"
	// api_token: changed (redacted)
}

// A nil before records a creation: only the fields that are set, with no
// old value.
func ExampleDiff_creation() {
	changes, _ := trail.Diff(nil, &BillingAccount{ID: 8, Plan: "pro"})
	for _, c := range changes {
		fmt.Printf("%s: %s (old is nil: %t)\n", c.Field, c.New, c.Old == nil)
	}
	// Output:
	// id: 8 (old is nil: true)
	// plan: "pro" (old is nil: true)
}

// Maps work too, keys sorted; a key that appears has no old value.
func ExampleDiff_maps() {
	changes, _ := trail.Diff(
		map[string]any{"seats": 5, "features": map[string]any{"sso": false}},
		map[string]any{"seats": 10, "features": map[string]any{"sso": true, "audit": true}},
	)
	for _, c := range changes {
		old := string(c.Old)
		if c.Old == nil {
			old = "(absent)"
		}
		fmt.Printf("%s: %s → %s\n", c.Field, old, c.New)
	}
	// Output:
	// features.audit: (absent) → true
	// features.sso: false → true
	// seats: 5 → 10
}
