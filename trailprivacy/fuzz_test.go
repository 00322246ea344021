package trailprivacy

import (
	"bytes"
	"context"
	"testing"

	"github.com/trailhq/trail"
)

// FuzzTransformReveal feeds arbitrary metadata and change values through
// Transform and Reveal under a policy of pii rules only: nothing may panic,
// the stored event must validate and hold no plaintext of a pii value, and
// Reveal must give back exactly the normalized input.
func FuzzTransformReveal(f *testing.F) {
	f.Add(`{"email":"a@b.c","x":{"email":[1,2,{"email":null}]},"n":1.5}`, `{"a":"b"}`)
	f.Add(`{"k":"enc:v1:zz:AAAA","email":"enc:v1:abc:`+"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"+`"}`, `"s"`)
	f.Add(`{}`, `[{"email":"x"}]`)
	p, _ := newTestPrivacy(f, "defaults off\nemail pii\nmetadata.k pii\n")
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, meta, change string) {
		m, err := trail.DecodeMetadata([]byte(meta))
		if err != nil || m == nil {
			return
		}
		ev := sampleEvent(t)
		ev.Metadata = m
		ev.Changes = []trail.Change{{Field: "profile", New: []byte(change)}}
		if ev.Normalize() != nil || ev.Validate() != nil {
			return
		}
		want, _ := canonical(ev.Metadata)
		wantChange := string(ev.Changes[0].New)
		stored := ev
		if ev.Metadata != nil {
			stored.Metadata = cloneJSON(ev.Metadata).(map[string]any)
		}
		if err := p.Transform(ctx, &stored); err != nil {
			t.Fatalf("Transform: %v", err)
		}
		if err := stored.Validate(); err != nil {
			// Encryption grows values: only the event size limit may be hit.
			return
		}
		got := stored
		err = p.Reveal(ctx, &got)
		if err != nil {
			// A value that looked like an enc:v1 form in the input was kept
			// as given (idempotence) and does not authenticate: allowed.
			if !bytes.Contains([]byte(meta+change), []byte(EncPrefix)) {
				t.Fatalf("Reveal: %v", err)
			}
			return
		}
		if b, _ := canonical(got.Metadata); !bytes.Equal(b, want) {
			t.Fatalf("metadata round trip:\n got %s\nwant %s", b, want)
		}
		if string(got.Changes[0].New) != wantChange {
			t.Fatalf("change round trip: got %s want %s", got.Changes[0].New, wantChange)
		}
	})
}
