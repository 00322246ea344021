package logstream

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/trailhq/trail"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var (
	ocsfOnce   sync.Once
	ocsfSchema *jsonschema.Schema
	ocsfErr    error
)

// schema compiles testdata/ocsf/ocsf-1.7.0.schema.json, generated from the
// OCSF schema's sources (testdata/ocsf/generate.py names the commit).
func schema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	ocsfOnce.Do(func() {
		f, err := os.Open(filepath.Join("testdata", "ocsf", "ocsf-1.7.0.schema.json"))
		if err != nil {
			ocsfErr = err
			return
		}
		defer f.Close()
		doc, err := jsonschema.UnmarshalJSON(f)
		if err != nil {
			ocsfErr = err
			return
		}
		c := jsonschema.NewCompiler()
		if err := c.AddResource("ocsf.json", doc); err != nil {
			ocsfErr = err
			return
		}
		ocsfSchema, ocsfErr = c.Compile("ocsf.json")
	})
	if ocsfErr != nil {
		t.Fatal(ocsfErr)
	}
	return ocsfSchema
}

// validateOCSF checks rec (decoded JSON) against the OCSF schema.
func validateOCSF(t testing.TB, rec any) {
	t.Helper()
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if err := schema(t).Validate(v); err != nil {
		t.Fatalf("not valid OCSF 1.7.0: %v\n%s", err, b)
	}
}

func sampleEvent(action string, mod func(*trail.Event)) *trail.Event {
	at := time.Date(2026, 12, 1, 9, 30, 0, 123456000, time.UTC)
	ev := &trail.Event{ID: uuid.MustParse("01938a5e-7c00-7000-8000-000000000001"), OccurredAt: at, RecordedAt: at.Add(time.Second),
		Tenant: "acme", Actor: trail.Actor{Type: trail.ActorUser, ID: "u42", Name: "Ada", Email: "ada@example.com", IP: "192.0.2.7", UserAgent: "curl/8"},
		Action: action, Target: trail.Target{Type: "project", ID: "p1", Name: "Apollo"}, Outcome: trail.OutcomeSuccess,
		Description: "did " + action, RequestID: "req-1", Source: "app", SchemaVersion: 1}
	if mod != nil {
		mod(ev)
	}
	return ev
}

// TestOCSFMapping: each kind of Trail event lands in its documented class
// and activity, and validates against the OCSF 1.7.0 schema; a golden file
// pins the whole output.
func TestOCSFMapping(t *testing.T) {
	cases := []struct {
		name     string
		ev       *trail.Event
		class    int
		activity int
	}{
		{"login", sampleEvent("auth.login", func(e *trail.Event) { e.Target = trail.Target{} }), OCSFAuthentication, 1},
		{"logout", sampleEvent("session.logout", nil), OCSFAuthentication, 2},
		{"login denied", sampleEvent("user.login", func(e *trail.Event) {
			e.Outcome = trail.OutcomeDenied
			e.Actor = trail.Actor{Type: trail.ActorAnonymous}
		}), OCSFAuthentication, 1},
		{"mfa", sampleEvent("auth.mfa.verify", nil), OCSFAuthentication, 99},
		{"user create", sampleEvent("user.create", func(e *trail.Event) { e.Target = trail.Target{Type: "user", ID: "u7", Name: "Bob"} }), OCSFAccountChange, 1},
		{"user delete", sampleEvent("member.remove", func(e *trail.Event) { e.Target = trail.Target{Type: "user", ID: "u7"} }), OCSFAccountChange, 6},
		{"password reset", sampleEvent("user.password.reset", func(e *trail.Event) { e.Target = trail.Target{Type: "user", ID: "u7"} }), OCSFAccountChange, 4},
		{"mfa enable", sampleEvent("account.mfa.enable", nil), OCSFAccountChange, 10},
		{"user suspend", sampleEvent("user.suspend", func(e *trail.Event) { e.Target = trail.Target{Type: "user", ID: "u7"} }), OCSFAccountChange, 5},
		{"entity update", sampleEvent("project.update", func(e *trail.Event) {
			e.Changes = []trail.Change{{Field: "plan", Old: json.RawMessage(`"free"`), New: json.RawMessage(`"pro"`)}, {Field: "secret", Redacted: true}}
		}), OCSFEntityManagement, 3},
		{"entity delete failed", sampleEvent("project.delete", func(e *trail.Event) { e.Outcome = trail.OutcomeFailure }), OCSFEntityManagement, 4},
		{"entity by service", sampleEvent("invoice.create", func(e *trail.Event) { e.Actor = trail.Actor{Type: trail.ActorService, ID: "billing"} }), OCSFEntityManagement, 1},
		{"api other", sampleEvent("export.run", func(e *trail.Event) { e.Target = trail.Target{}; e.Actor.IP = "" }), OCSFAPIActivity, 99},
		{"api read", sampleEvent("audit.read", func(e *trail.Event) { e.Target = trail.Target{} }), OCSFAPIActivity, 2},
		{"api with resource", sampleEvent("report.download", func(e *trail.Event) {
			e.Metadata = map[string]any{"format": "csv"}
			e.Actor.OnBehalfOf = &trail.Actor{Type: trail.ActorUser, ID: "u9"}
		}), OCSFAPIActivity, 99},
		{"platform system", sampleEvent("tenant.create", func(e *trail.Event) {
			e.Tenant = ""
			e.Actor = trail.Actor{Type: trail.ActorSystem}
			e.Target = trail.Target{Type: "tenant", ID: "acme"}
		}), OCSFEntityManagement, 1},
	}
	var golden bytes.Buffer
	for i, c := range cases {
		rec := OCSF(c.ev, "ls_test", int64(i+1), int64(100+i))
		b, err := marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		var back map[string]any
		json.Unmarshal(b, &back)
		validateOCSF(t, back)
		if int(back["class_uid"].(float64)) != c.class || int(back["activity_id"].(float64)) != c.activity {
			t.Errorf("%s: class %v activity %v, want %d %d", c.name, back["class_uid"], back["activity_id"], c.class, c.activity)
		}
		if md := back["metadata"].(map[string]any); md["sequence"].(float64) != float64(i+1) || md["version"] != OCSFVersion {
			t.Errorf("%s: metadata %v", c.name, md)
		}
		golden.Write(b)
		golden.WriteByte('\n')
	}
	path := filepath.Join("testdata", "ocsf", "golden.jsonl")
	if *update {
		os.WriteFile(path, golden.Bytes(), 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(want, golden.Bytes()) {
		t.Fatalf("OCSF output differs from %s (go test -run TestOCSFMapping -update to accept)", path)
	}
}

// TestOCSFSchemaCatches: the schema check can fail — records with a
// missing required member, a wrong class_uid, an unknown member or a
// type_uid that does not match fail it.
func TestOCSFSchemaCatches(t *testing.T) {
	for _, breakIt := range []func(m map[string]any){
		func(m map[string]any) { delete(m, "user") },
		func(m map[string]any) { m["class_uid"] = 3005 },
		func(m map[string]any) { m["trail_seq"] = 1 },
		func(m map[string]any) { m["type_uid"] = 300299 + 1 },
		func(m map[string]any) { m["metadata"].(map[string]any)["sequence"] = "1" },
		func(m map[string]any) { delete(m["metadata"].(map[string]any), "product") },
	} {
		rec := OCSF(sampleEvent("auth.login", nil), "ls_test", 1, 1)
		b, _ := json.Marshal(rec)
		var m map[string]any
		json.Unmarshal(b, &m)
		breakIt(m)
		b, _ = json.Marshal(m)
		v, _ := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if schema(t).Validate(v) == nil {
			t.Errorf("a broken record passed: %s", strings.TrimSpace(string(b))[:120])
		}
	}
}

// FuzzOCSF: any event that validates maps to a record the schema accepts.
func FuzzOCSF(f *testing.F) {
	f.Add("user.create", "user", "u1", "success", "user", "u2", "")
	f.Add("auth.logout", "", "", "denied", "anonymous", "", "")
	f.Add("x", "project", "", "failure", "service", "", "10.0.0.1")
	f.Fuzz(func(t *testing.T, action, ttype, tid, outcome, atype, aid, ip string) {
		ev := trail.Event{Tenant: "acme", Action: action, Target: trail.Target{Type: ttype, ID: tid}, Outcome: trail.Outcome(outcome),
			Actor: trail.Actor{Type: trail.ActorType(atype), ID: aid, IP: ip}}
		if ev.Normalize() != nil || ev.Validate() != nil {
			return
		}
		b, err := marshal(OCSF(&ev, "ls_f", 1, 0))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		validateOCSF(t, m)
	})
}
