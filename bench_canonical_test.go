package trail

import (
	"crypto/sha256"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
)

// benchEvents are a typical event (actor, target, description, one change,
// a few metadata keys) and a large one (many changes and nested metadata).
func benchEvents(b *testing.B) map[string]Event {
	b.Helper()
	typical := Event{
		ID:          uuid.MustParse("01936c8e-7a00-7000-8000-000000000001"),
		OccurredAt:  time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC),
		RecordedAt:  time.Date(2026, 3, 1, 12, 0, 0, 200000000, time.UTC),
		Tenant:      "tenant-0042",
		Actor:       Actor{Type: ActorUser, ID: "user-1234", Email: "ada@acme.example", IP: "203.0.113.7"},
		Action:      "subscription.update",
		Target:      Target{Type: "subscription", ID: "0b7e4c2a-5c1e-4f3e-9a53-0d9b8f1c2e77"},
		Description: "Changed subscription plan to pro for tenant tenant-0042",
		Changes:     []Change{Changed("plan", "free", "pro")},
		Metadata:    map[string]any{"reason": "upgrade", "seats": 10, "trial": false},
		RequestID:   "req-7f3a9c",
		Source:      "billing",
	}
	large := typical
	large.Changes = nil
	for i := range 20 {
		large.Changes = append(large.Changes, Changed("field_"+string(rune('a'+i)), map[string]any{"v": i, "s": "old value"}, []any{i, 1.5, "new"}))
	}
	large.Metadata = map[string]any{}
	for i := range 30 {
		large.Metadata["key_"+string(rune('a'+i))] = map[string]any{"n": float64(i) / 3, "tags": []any{"x", "y", i}, "ok": true}
	}
	out := map[string]Event{"typical": typical, "large": large}
	for k, ev := range out {
		if err := ev.Normalize(); err != nil {
			b.Fatal(err)
		}
		if err := ev.Validate(); err != nil {
			b.Fatal(err)
		}
		out[k] = ev
	}
	return out
}

func BenchmarkCanonical(b *testing.B) {
	for _, name := range []string{"typical", "large"} {
		ev := benchEvents(b)[name]
		c, err := ev.Canonical()
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(c)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ev.Canonical(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/append", func(b *testing.B) {
			b.SetBytes(int64(len(c)))
			b.ReportAllocs()
			buf := make([]byte, 0, 2*len(c))
			for b.Loop() {
				var err error
				if buf, err = ev.AppendCanonical(buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
		// encoding/json of the same event, for comparison.
		b.Run(name+"/encoding-json", func(b *testing.B) {
			b.SetBytes(int64(len(c)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := json.Marshal(&ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSHA256 hashes the canonical bytes of the same events: the cost a
// Merkle leaf adds on top of Canonical.
func BenchmarkSHA256(b *testing.B) {
	for _, name := range []string{"typical", "large"} {
		ev := benchEvents(b)[name]
		c, err := ev.Canonical()
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(c)))
			b.ReportAllocs()
			for b.Loop() {
				sha256.Sum256(c)
			}
		})
	}
}

func BenchmarkNormalizeValidate(b *testing.B) {
	for _, name := range []string{"typical", "large"} {
		ev := benchEvents(b)[name]
		// Start from what a caller hands Record: Go values in metadata,
		// times with nanoseconds.
		raw := ev
		raw.OccurredAt = raw.OccurredAt.Add(789)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				e := raw
				if err := e.Normalize(); err != nil {
					b.Fatal(err)
				}
				if err := e.Validate(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkCanonicalJSON(b *testing.B) {
	in := []byte(`{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],"string":"\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/","literals":[null,true,false],"nested":{"b":[1,2,3],"a":"text"}}`)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CanonicalJSON(in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCanonicalVsSHA256 interleaves batches of Canonical and of SHA-256
// over the same bytes and reports their time ratio, which stays meaningful
// on a busy machine where absolute ns/op do not.
func BenchmarkCanonicalVsSHA256(b *testing.B) {
	for _, name := range []string{"typical", "large"} {
		ev := benchEvents(b)[name]
		c, err := ev.Canonical()
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			const batch = 32
			var canon, hash time.Duration
			buf := make([]byte, 0, 2*len(c))
			for b.Loop() {
				t0 := time.Now()
				for range batch {
					buf, _ = ev.AppendCanonical(buf[:0])
				}
				t1 := time.Now()
				for range batch {
					sha256.Sum256(c)
				}
				canon += t1.Sub(t0)
				hash += time.Since(t1)
			}
			b.ReportMetric(float64(canon)/float64(hash), "canonical/sha256")
			b.ReportMetric(float64(canon.Nanoseconds())/float64(b.N*batch), "canonical-ns/event")
			b.ReportMetric(float64(hash.Nanoseconds())/float64(b.N*batch), "sha256-ns/event")
		})
	}
}
