package trailnats

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
)

// FuzzStreamRoundTrip: an event that passes validation is stored by the
// sink exactly as the edge validated it — the stream's JSON keeps every
// byte of the stored canonical form (what its leaf hashes); and any bytes
// on the stream decode to an event or an error, never a panic.
func FuzzStreamRoundTrip(f *testing.F) {
	f.Add("acme", "doc.update", "u1", "doc", "d1", "Changed the plan", `{"seats":12,"plan":"pro"}`, int64(1_700_000_000_123_456))
	f.Add("", "auth.login", "", "", "", "", `{"n":1e400,"s":"\u00e9\ud83d\ude00"}`, int64(0))
	f.Add("t", "a.b", "x", "y", "z", "tab\there", `{"deep":{"list":[1,2.50,-0,"x",null,true]}}`, int64(-1))
	f.Fuzz(func(t *testing.T, tenant, action, actor, ttype, tid, desc, meta string, micros int64) {
		decodeEvent([]byte(meta)) // arbitrary bytes: no panic
		ev := trail.Event{ID: uuid.Must(uuid.NewV7()), Tenant: tenant, Action: action, Actor: trail.Actor{Type: trail.ActorUser, ID: actor},
			Target: trail.Target{Type: ttype, ID: tid}, Description: desc, OccurredAt: time.UnixMicro(micros % 4e15).UTC(), RecordedAt: time.Now()}
		d := json.NewDecoder(bytes.NewReader([]byte(meta)))
		d.UseNumber()
		var m map[string]any
		if d.Decode(&m) == nil {
			ev.Metadata = m
		}
		if ev.Normalize() != nil || ev.Validate() != nil {
			return
		}
		want, err := ev.AppendCanonicalStored(nil)
		if err != nil {
			return
		}
		data, err := json.Marshal(&ev) // as Publisher.Publish encodes it
		if err != nil {
			t.Fatalf("marshal a valid event: %v", err)
		}
		got, err := decodeEvent(data)
		if err != nil {
			t.Fatalf("decode %s: %v", data, err)
		}
		if !trail.SameEvent(&ev, &got) || MsgID(&ev) != MsgID(&got) {
			t.Fatalf("identity changed through the stream:\n%+v\n%+v", ev, got)
		}
		gotBytes, err := got.AppendCanonicalStored(nil)
		if err != nil {
			t.Fatalf("canonical after the stream: %v", err)
		}
		if !bytes.Equal(want, gotBytes) {
			t.Fatalf("stored form changed through the stream:\n%s\n%s", want, gotBytes)
		}
	})
}

// TestPartitionGolden pins Partition and MsgID: a stream's events stay in
// their partitions, and re-sends stay duplicates, across Trail versions.
func TestPartitionGolden(t *testing.T) {
	type vector struct {
		Tenant     string `json:"tenant"`
		Partitions int    `json:"partitions"`
		Partition  int    `json:"partition"`
		MsgID      string `json:"msg_id"`
	}
	raw, err := os.ReadFile("testdata/partition.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) == 0 {
		t.Fatal("no vectors")
	}
	for _, v := range vs {
		ev := trail.Event{ID: uuid.MustParse("0193e8c4-7a0f-7c3e-8a51-3f1b2c9d4e5f"), Tenant: v.Tenant, Action: "doc.update",
			Actor: trail.Actor{Type: trail.ActorUser, ID: "42"}, Target: trail.Target{Type: "doc", ID: "d1"}, Outcome: trail.OutcomeSuccess}
		if got := Partition(v.Tenant, v.Partitions); got != v.Partition {
			t.Errorf("Partition(%q, %d) = %d, want %d", v.Tenant, v.Partitions, got, v.Partition)
		}
		if got := MsgID(&ev); got != v.MsgID {
			t.Errorf("MsgID(tenant %q) = %s, want %s", v.Tenant, got, v.MsgID)
		}
	}
}
