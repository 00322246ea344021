package trailsqlite

import (
	"encoding/json"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/trailhq/trail"
)

func TestAppendValue(t *testing.T) {
	for _, v := range []any{
		nil, "", "plain", "quote\" back\\ nl\n cr\r tab\t bell\x07 del\x7f", "<script>&</script>", "\u2028\u2029 日本 🚀",
		true, false, json.Number("1.5e300"), json.Number("-0"), 0.0, -7.0, 1.25, 1e21, 1e-7, 9007199254740993.0, 42, int64(-9),
		map[string]any{"b": 1, "a": []any{nil, "x", map[string]any{}}, "é": map[string]any{"z": true}},
		[]any{}, map[string]any{},
		[]string{"typed", "slice"}, // falls back to encoding/json
	} {
		b, err := appendValue(nil, v)
		if err != nil {
			t.Fatalf("%#v: %v", v, err)
		}
		want, _ := json.Marshal(v)
		var got, exp any
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%#v: invalid JSON %s: %v", v, b, err)
		}
		json.Unmarshal(want, &exp)
		if !reflect.DeepEqual(got, exp) {
			t.Errorf("%#v: encoded %s, decodes to %#v; encoding/json gives %#v", v, b, got, exp)
		}
	}
}

func TestAppendChanges(t *testing.T) {
	cs := []trail.Change{
		trail.Changed("plan", "free", "pro"),
		{Field: "a\"b", Old: json.RawMessage(`null`)},
		{Field: "new", New: json.RawMessage(`{"x":[1,2]}`)},
		{Field: "secret", Redacted: true},
	}
	b, err := appendChanges(nil, cs)
	if err != nil {
		t.Fatal(err)
	}
	var back []trail.Change
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if !reflect.DeepEqual(back, cs) {
		t.Errorf("round trip:\n got %#v\nwant %#v", back, cs)
	}
	if _, err := appendChanges(nil, []trail.Change{{Field: "x", Old: json.RawMessage(`{bad`)}}); err == nil {
		t.Error("invalid JSON value accepted")
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a", "\"\\\n\x00\x1f\x7f", "\xff\xfe", "日本\u2028", "</script>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q encoded as invalid JSON %s: %v", s, b, err)
		}
		want := s
		if !utf8.ValidString(s) { // each invalid byte becomes U+FFFD, as with encoding/json
			j, _ := json.Marshal(s)
			json.Unmarshal(j, &want)
		}
		if got != want {
			t.Fatalf("%q: decoded %q, want %q", s, got, want)
		}
	})
}
