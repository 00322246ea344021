package storedjson

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/trailhq/trail"
)

// generalChanges is the path Changes stands in for: json.Unmarshal, then
// every value canonicalized on its own.
func generalChanges(b []byte) ([]trail.Change, error) {
	var out []trail.Change
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	for i := range out {
		for _, v := range []*json.RawMessage{&out[i].Old, &out[i].New} {
			if *v == nil {
				continue
			}
			c, err := trail.CanonicalJSON(*v)
			if err != nil {
				return nil, err
			}
			*v = c
		}
	}
	return out, nil
}

// generalMetadata is the path Metadata stands in for.
func generalMetadata(b []byte) (map[string]any, error) {
	c, err := trail.CanonicalJSON(b)
	if err != nil {
		return nil, err
	}
	return trail.DecodeMetadata(c)
}

var changeSeeds = []string{
	`[]`,
	`[{}]`,
	`[{"new": "pro-1", "old": "free", "field": "plan"}]`,
	`[{"field":"plan","new":"pro","old":"free"},{"field":"seats","new":10,"old":1.50}]`,
	`[{"new": {"b": [1, 2, {"x": null}], "a": "q\"uote"}, "field": "address.city"}]`,
	`[{"field": "ssn", "redacted": true}]`,
	`[{"field": "ssn", "redacted": false, "old": null}]`,
	`[{"field": "a\u00e9", "new": "\u00e9"}]`,
	`[{"Field": "case"}]`,
	`[{"field": "x", "protect": "pii"}]`,
	`[{"field": "x", "extra": 1}]`,
	`[{"field": 1}]`,
	`[1]`,
	`{"field": "x"}`,
	`[{"field": "x", "new": 1e400}]`,
	`[{"field": "x", "new": "a"}, ]`,
	`[{"field": "x", "new": "\ud800"}]`,
	`null`,
}

var metadataSeeds = []string{
	`{}`,
	`{"n": 12}`,
	`{"n": 1.0, "b": true, "f": false, "z": null, "s": "text"}`,
	`{"nested": {"a": 1}}`,
	`{"list": [1, "a"]}`,
	`{"esc": "tab\there"}`,
	`{"k\"ey": 1}`,
	`{"a": 1, "a": 2}`,
	`[1]`,
	`"s"`,
	`{"big": 123456789012345678901}`,
	`{"neg": -0.0, "e": 1e21}`,
	`null`,
}

func TestChanges(t *testing.T) {
	fast := 0
	for _, s := range changeSeeds {
		if checkChanges(t, []byte(s)) {
			fast++
		}
	}
	if fast < 7 { // the common shapes must take the fast path
		t.Errorf("only %d of %d seeds took the fast path", fast, len(changeSeeds))
	}
}

func TestMetadata(t *testing.T) {
	fast := 0
	for _, s := range metadataSeeds {
		if checkMetadata(t, []byte(s)) {
			fast++
		}
	}
	if fast < 4 {
		t.Errorf("only %d of %d seeds took the fast path", fast, len(metadataSeeds))
	}
}

// sqliteChanges and sqliteMetadata are the paths the Canonical variants
// stand in for: the stored text decoded as it is.
func sqliteChanges(b []byte) ([]trail.Change, error) {
	var out []trail.Change
	err := json.Unmarshal(b, &out)
	return out, err
}

func checkCanonical(t *testing.T, b []byte) {
	t.Helper()
	if got, ok := CanonicalChanges(b); ok {
		want, err := sqliteChanges(b)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("CanonicalChanges(%q) = %#v, json.Unmarshal: %#v, %v", b, got, want, err)
		}
	}
	if got, ok := CanonicalMetadata(b); ok {
		want, err := trail.DecodeMetadata(b)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("CanonicalMetadata(%q) = %#v, DecodeMetadata: %#v, %v", b, got, want, err)
		}
	}
}

func TestCanonical(t *testing.T) {
	for _, s := range append(append([]string{
		`[{"field":"plan","new":"pro","old":"free"}]`, `{"n":12,"s":"x"}`}, changeSeeds...), metadataSeeds...) {
		checkCanonical(t, []byte(s))
	}
	if _, ok := CanonicalChanges([]byte(`[{"field":"plan","new":"pro","old":"free"}]`)); !ok {
		t.Error("CanonicalChanges refused canonical changes")
	}
	if _, ok := CanonicalChanges([]byte(`[{"field": "plan"}]`)); ok {
		t.Error("CanonicalChanges took text that is not canonical")
	}
	if _, ok := CanonicalMetadata([]byte(`{"n":12,"s":"x"}`)); !ok {
		t.Error("CanonicalMetadata refused canonical metadata")
	}
}

// checkChanges fails when the fast path answers differently from the
// general one, and reports whether it answered.
func checkChanges(t *testing.T, b []byte) bool {
	t.Helper()
	got, ok := Changes(b)
	if !ok {
		return false
	}
	want, err := generalChanges(b)
	if err != nil {
		t.Fatalf("Changes(%q) answered %v; the general path fails: %v", b, got, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Changes(%q) = %#v, want %#v", b, got, want)
	}
	return true
}

func checkMetadata(t *testing.T, b []byte) bool {
	t.Helper()
	got, ok := Metadata(b)
	if !ok {
		return false
	}
	want, err := generalMetadata(b)
	if err != nil {
		t.Fatalf("Metadata(%q) answered %v; the general path fails: %v", b, got, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Metadata(%q) = %#v, want %#v", b, got, want)
	}
	return true
}

func FuzzChanges(f *testing.F) {
	for _, s := range changeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkChanges(t, b)
		checkCanonical(t, b)
	})
}

func FuzzMetadata(f *testing.F) {
	for _, s := range metadataSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkMetadata(t, b) })
}
