package trail

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

type diffAddress struct {
	Street string `json:"street"`
	City   string `json:"city"`
}

type diffUser struct {
	ID       int               `json:"id"`
	Name     string            `json:"name"`
	Email    string            `json:"email,omitempty"`
	Password string            `json:"password" trail:"redact"`
	Internal string            `trail:"-"`
	Hidden   string            `json:"-"`
	secret   string            //nolint:unused // proves unexported fields are skipped
	Address  diffAddress       `json:"address"`
	Home     *diffAddress      `json:"home,omitempty"`
	Tags     []string          `json:"tags"`
	Labels   map[string]string `json:"labels"`
	Created  time.Time         `json:"created"`
	Plain    int               // no json tag: the Go name
	Nick     *string           `json:"nick"`
	Extra    any               `json:"extra"`
	Card     diffAddress       `json:"card" trail:"redact"`
	Items    []diffSecretItem  `json:"items"`
}

type diffSecretItem struct {
	Name  string `json:"name"`
	Token string `json:"token" trail:"redact"`
}

type DiffBase struct {
	ID      string `json:"id"`
	Version int    `json:"version"`
}

type diffEmbed struct {
	DiffBase
	Name    string `json:"name"`
	Version int    `json:"version"` // dominates DiffBase.Version
}

type diffPtrEmbed struct {
	*DiffBase
	Name string `json:"name"`
}

type diffNamedEmbed struct {
	DiffBase `json:"base"`
	Name     string `json:"name"`
}

type diffRedactEmbed struct {
	DiffBase `trail:"redact"`
	Name     string `json:"name"`
}

type diffBadTag struct {
	Secret string `trail:"hmacc"`
}

type diffCycle struct {
	Name string     `json:"name"`
	Next *diffCycle `json:"next"`
}

// diffCents marshals itself: Diff must treat it as a leaf.
type diffCents struct{ n int64 }

func (c diffCents) MarshalJSON() ([]byte, error) {
	return []byte(fmt.Sprintf(`"%d.%02d"`, c.n/100, c.n%100)), nil
}

// diffAnyLeaf marshals itself and holds an interface: comparing two with ==
// could panic, so Diff must not.
type diffAnyLeaf struct{ X any }

func (l diffAnyLeaf) MarshalJSON() ([]byte, error) { return json.Marshal(l.X) }

type diffHasAnyLeaf struct {
	L diffAnyLeaf `json:"l"`
}

type diffMoney struct {
	Amount diffCents `json:"amount"`
}

type diffKinds struct {
	B   bool         `json:"b"`
	I8  int8         `json:"i8"`
	U   uint64       `json:"u"`
	F32 float32      `json:"f32"`
	S   string       `json:"s"`
	Raw []byte       `json:"raw"`
	Arr [2]int       `json:"arr"`
	Num json.Number  `json:"num"`
	M   map[int]bool `json:"m"`
	T   *time.Time   `json:"t"`
}

type diffFloat struct {
	F float64 `json:"f"`
	N int64   `json:"n"`
}

// want is an expected change: "" for a nil Old or New.
type want struct {
	field, old, new string
	redacted        bool
}

func str(s string) *string { return &s }

func TestDiff(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)
	base := diffUser{
		ID: 17, Name: "Ada", Password: "hunter2", Internal: "x", Hidden: "h", secret: "s",
		Address: diffAddress{Street: "1 Main St", City: "Paris"},
		Tags:    []string{"a"}, Labels: map[string]string{"env": "prod"}, Created: t0,
	}
	mod := func(f func(u *diffUser)) diffUser {
		u := base
		u.Tags = append([]string(nil), base.Tags...)
		u.Labels = map[string]string{}
		for k, v := range base.Labels {
			u.Labels[k] = v
		}
		f(&u)
		return u
	}
	tests := []struct {
		name          string
		before, after any
		want          []want
	}{
		{"unchanged", base, mod(func(u *diffUser) {}), nil},
		{"unchanged pointers", &base, ptr(mod(func(u *diffUser) {})), nil},
		{"both nil", nil, nil, nil},
		{"fields in declaration order", base, mod(func(u *diffUser) { u.Plain = 3; u.Name = "Bob"; u.ID = 18 }),
			[]want{{field: "id", old: "17", new: "18"}, {field: "name", old: `"Ada"`, new: `"Bob"`}, {field: "Plain", old: "0", new: "3"}}},
		{"omitempty field still diffed", base, mod(func(u *diffUser) { u.Email = "a@b.c" }),
			[]want{{field: "email", old: `""`, new: `"a@b.c"`}}},
		{"pointer inputs", &base, ptr(mod(func(u *diffUser) { u.Name = "Bob" })),
			[]want{{field: "name", old: `"Ada"`, new: `"Bob"`}}},
		{"pointer and value", &base, mod(func(u *diffUser) { u.Name = "Bob" }),
			[]want{{field: "name", old: `"Ada"`, new: `"Bob"`}}},
		{"redact", base, mod(func(u *diffUser) { u.Password = "hunter3" }),
			[]want{{field: "password", redacted: true}}},
		{"omitted, json-hidden and unexported fields", base, mod(func(u *diffUser) { u.Internal = "y"; u.Hidden = "i"; u.secret = "t" }), nil},
		{"nested struct", base, mod(func(u *diffUser) { u.Address.City = "Lyon" }),
			[]want{{field: "address.city", old: `"Paris"`, new: `"Lyon"`}}},
		{"nested pointer appears", base, mod(func(u *diffUser) { u.Home = &diffAddress{City: "Nice"} }),
			[]want{{field: "home.city", new: `"Nice"`}}},
		{"nested pointer disappears", mod(func(u *diffUser) { u.Home = &diffAddress{Street: "2 Rue", City: "Nice"} }), base,
			[]want{{field: "home.street", old: `"2 Rue"`}, {field: "home.city", old: `"Nice"`}}},
		{"nested pointer changes", mod(func(u *diffUser) { u.Home = &diffAddress{City: "Nice"} }), mod(func(u *diffUser) { u.Home = &diffAddress{City: "Nîmes"} }),
			[]want{{field: "home.city", old: `"Nice"`, new: `"Nîmes"`}}},
		{"time", base, mod(func(u *diffUser) { u.Created = t0.Add(90 * time.Minute) }),
			[]want{{field: "created", old: `"2026-11-25T18:00:00Z"`, new: `"2026-11-25T19:30:00Z"`}}},
		{"same instant other zone is a JSON change", base, mod(func(u *diffUser) { u.Created = t0.In(time.FixedZone("X", 3600)) }),
			[]want{{field: "created", old: `"2026-11-25T18:00:00Z"`, new: `"2026-11-25T19:00:00+01:00"`}}},
		{"slice compared whole", base, mod(func(u *diffUser) { u.Tags = append(u.Tags, "b") }),
			[]want{{field: "tags", old: `["a"]`, new: `["a","b"]`}}},
		{"nil slice vs empty slice", base, mod(func(u *diffUser) { u.Tags = []string{} }),
			[]want{{field: "tags", old: `["a"]`, new: `[]`}}},
		{"map field keys sorted, added with nil old", base, mod(func(u *diffUser) { u.Labels["zone"] = "eu"; u.Labels["app"] = "x"; u.Labels["env"] = "dev" }),
			[]want{{field: "labels.app", new: `"x"`}, {field: "labels.env", old: `"prod"`, new: `"dev"`}, {field: "labels.zone", new: `"eu"`}}},
		{"map field key removed", base, mod(func(u *diffUser) { delete(u.Labels, "env") }),
			[]want{{field: "labels.env", old: `"prod"`}}},
		{"pointer leaf from nil is null", base, mod(func(u *diffUser) { u.Nick = str("ada") }),
			[]want{{field: "nick", old: `null`, new: `"ada"`}}},
		{"interface leaf changes type", mod(func(u *diffUser) { u.Extra = "1" }), mod(func(u *diffUser) { u.Extra = 1 }),
			[]want{{field: "extra", old: `"1"`, new: `1`}}},
		{"interface holding a struct is walked", mod(func(u *diffUser) { u.Extra = diffAddress{City: "A"} }), mod(func(u *diffUser) { u.Extra = diffAddress{City: "B"} }),
			[]want{{field: "extra.city", old: `"A"`, new: `"B"`}}},
		{"redacted struct field", base, mod(func(u *diffUser) { u.Card.City = "4111" }),
			[]want{{field: "card", redacted: true}}},
		{"slice of structs with tagged fields is withheld", base, mod(func(u *diffUser) { u.Items = []diffSecretItem{{Name: "k", Token: "tok"}} }),
			[]want{{field: "items", redacted: true}}},
		{"creation", nil, &diffUser{ID: 1, Name: "Ada", Password: "p", Internal: "i", Address: diffAddress{City: "Paris"}, Labels: map[string]string{"a": ""}},
			[]want{{field: "id", new: "1"}, {field: "name", new: `"Ada"`}, {field: "password", redacted: true}, {field: "address.city", new: `"Paris"`}, {field: "labels.a", new: `""`}}},
		{"creation from typed nil", (*diffUser)(nil), diffUser{ID: 1},
			[]want{{field: "id", new: "1"}}},
		{"deletion", diffUser{ID: 1, Name: "Ada", Tags: []string{}}, nil,
			[]want{{field: "id", old: "1"}, {field: "name", old: `"Ada"`}, {field: "tags", old: `[]`}}},
		{"embedded flattened, outer field dominates", diffEmbed{DiffBase: DiffBase{ID: "a", Version: 1}, Name: "n", Version: 5},
			diffEmbed{DiffBase: DiffBase{ID: "b", Version: 2}, Name: "m", Version: 6},
			[]want{{field: "id", old: `"a"`, new: `"b"`}, {field: "name", old: `"n"`, new: `"m"`}, {field: "version", old: "5", new: "6"}}},
		{"embedded nil pointer", diffPtrEmbed{Name: "n"}, diffPtrEmbed{DiffBase: &DiffBase{ID: "a"}, Name: "n"},
			[]want{{field: "id", new: `"a"`}}},
		{"embedded with a json name is nested", diffNamedEmbed{DiffBase: DiffBase{ID: "a"}}, diffNamedEmbed{DiffBase: DiffBase{ID: "b"}},
			[]want{{field: "base.id", old: `"a"`, new: `"b"`}}},
		{"redact on an embedded struct covers its fields", diffRedactEmbed{DiffBase: DiffBase{ID: "a"}, Name: "x"}, diffRedactEmbed{DiffBase: DiffBase{ID: "b"}, Name: "y"},
			[]want{{field: "id", redacted: true}, {field: "name", old: `"x"`, new: `"y"`}}},
		{"json.Marshaler is a leaf", diffMoney{diffCents{150}}, diffMoney{diffCents{275}},
			[]want{{field: "amount", old: `"1.50"`, new: `"2.75"`}}},
		{"kinds", diffKinds{}, diffKinds{B: true, I8: -8, U: 1 << 53, F32: 0.1, S: "<a href=\"x\">\n\u2028", Raw: []byte("hi"), Arr: [2]int{1, 2}, Num: "1.50", M: map[int]bool{2: true}, T: &t0},
			[]want{{field: "b", old: "false", new: "true"}, {field: "i8", old: "0", new: "-8"}, {field: "u", old: "0", new: "9007199254740992"},
				{field: "f32", old: "0", new: "0.1"}, {field: "s", old: `""`, new: `"<a href=\"x\">\n` + "\u2028" + `"`},
				{field: "raw", old: "null", new: `"aGk="`}, {field: "arr", old: "[0,0]", new: "[1,2]"}, {field: "num", old: "0", new: "1.5"},
				{field: "m", old: "null", new: `{"2":true}`}, {field: "t", old: "null", new: `"2026-11-25T18:00:00Z"`}}},
		{"kinds unchanged", diffKinds{B: true, Raw: []byte("x"), M: map[int]bool{1: true}, T: &t0}, diffKinds{B: true, Raw: []byte("x"), M: map[int]bool{1: true}, T: ptr(t0)}, nil},
		{"marshaler holding a slice, unchanged", diffHasAnyLeaf{diffAnyLeaf{[]int{1}}}, diffHasAnyLeaf{diffAnyLeaf{[]int{1}}}, nil},
		{"marshaler holding a slice, changed", diffHasAnyLeaf{diffAnyLeaf{[]int{1}}}, diffHasAnyLeaf{diffAnyLeaf{[]int{2}}},
			[]want{{field: "l", old: "[1]", new: "[2]"}}},
		{"numbers canonical", diffFloat{F: 1.5}, diffFloat{F: 2},
			[]want{{field: "f", old: "1.5", new: "2"}}},
		{"map[string]any nested", map[string]any{"a": 1, "b": map[string]any{"c": true}, "z": "gone"},
			map[string]any{"a": 2.0, "b": map[string]any{"c": false, "d": nil}},
			[]want{{field: "a", old: "1", new: "2"}, {field: "b.c", old: "true", new: "false"}, {field: "b.d", new: "null"}, {field: "z", old: `"gone"`}}},
		{"map[string]any equal numbers of other types", map[string]any{"a": 1}, map[string]any{"a": 1.0}, nil},
		{"map object replaced by leaf", map[string]any{"x": map[string]any{"y": 1}}, map[string]any{"x": 5},
			[]want{{field: "x", old: `{"y":1}`, new: "5"}}},
		{"map empty object appears", map[string]any{}, map[string]any{"a": map[string]any{}},
			[]want{{field: "a", new: "{}"}}},
		{"map[string]int", map[string]int{"a": 1, "b": 2}, map[string]int{"b": 3, "c": 0},
			[]want{{field: "a", old: "1"}, {field: "b", old: "2", new: "3"}, {field: "c", new: "0"}}},
		{"map of structs", map[string]diffAddress{"home": {City: "A"}}, map[string]diffAddress{"home": {City: "B"}, "work": {Street: "S"}},
			[]want{{field: "home.city", old: `"A"`, new: `"B"`}, {field: "work", new: `{"city":"","street":"S"}`}}},
		{"map entry with tagged fields is walked", map[string]diffSecretItem{}, map[string]diffSecretItem{"k": {Name: "n", Token: "t"}},
			[]want{{field: "k.name", new: `"n"`}, {field: "k.token", redacted: true}}},
		{"tagged struct behind an interface is walked", map[string]any{"a": 1}, map[string]any{"a": 1, "b": map[string]any{"c": []any{diffSecretItem{Token: "t"}}}},
			[]want{{field: "b.c", redacted: true}}},
		{"nested map entry removed whole", map[string]any{"a": map[string]any{"b": map[string]any{"c": 1}}}, map[string]any{"a": map[string]any{}},
			[]want{{field: "a.b", old: `{"c":1}`}}},
		{"map creation", nil, map[string]any{"b": 1, "a": nil},
			[]want{{field: "a", new: "null"}, {field: "b", new: "1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Diff(tt.before, tt.after)
			if err != nil {
				t.Fatalf("Diff: %v", err)
			}
			if tt.want == nil && got != nil {
				t.Fatalf("Diff = %s, want nil", fmtChanges(got))
			}
			if !changesEqual(got, tt.want) {
				t.Errorf("Diff =\n  %s\nwant\n  %s", fmtChanges(got), fmtWant(tt.want))
			}
			// Every change must pass the event's own validation.
			ev := Event{Action: "user.update", Actor: Actor{Type: ActorSystem}, Changes: got}
			if err := ev.Normalize(); err != nil {
				t.Fatalf("Normalize: %v", err)
			}
			if err := ev.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			for i, c := range ev.Changes {
				if !bytes.Equal(c.Old, got[i].Old) || !bytes.Equal(c.New, got[i].New) {
					t.Errorf("change %d not canonical: %s → %s", i, got[i].Old, c.Old)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestDiffErrors(t *testing.T) {
	t.Parallel()
	cyc := &diffCycle{Name: "a"}
	cyc.Next = cyc
	cyc2 := &diffCycle{Name: "b"}
	cyc2.Next = cyc2
	tests := []struct {
		name          string
		before, after any
		want          []string // substrings of the error
	}{
		{"mismatched structs", diffUser{}, diffAddress{}, []string{"diffUser", "diffAddress"}},
		{"mismatched maps", map[string]any{}, map[string]int{}, []string{"map[string]interface {}", "map[string]int"}},
		{"mismatched nil pointer", (*diffUser)(nil), &diffAddress{}, []string{"diffUser", "diffAddress"}},
		{"not an object", 1, 2, []string{"int", "not a struct"}},
		{"slice", []int{1}, []int{2}, []string{"[]int", "not a struct"}},
		{"int keys", map[int]string{}, map[int]string{1: "a"}, []string{"map[int]string"}},
		{"time is a leaf", time.Time{}, time.Now(), []string{"time.Time"}},
		{"unknown trail tag", diffBadTag{}, diffBadTag{Secret: "x"}, []string{"diffBadTag.Secret", `"hmacc"`}},
		{"unknown trail tag nested", map[string]any{"x": diffBadTag{}}, map[string]any{"x": diffBadTag{}}, []string{"Secret", "hmacc"}},
		{"NaN", diffFloat{}, diffFloat{F: math.NaN()}, []string{"field f", "NaN"}},
		{"integer beyond 2^53", diffFloat{}, diffFloat{N: 1<<60 + 1}, []string{"field n", "string"}},
		{"cycle", cyc, cyc2, []string{"nested deeper"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Diff(tt.before, tt.after)
			if err == nil {
				t.Fatalf("Diff = %s, want an error", fmtChanges(got))
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestParseTrailTag(t *testing.T) {
	t.Parallel()
	for tag, want := range map[string]fieldPolicy{"": policyKeep, "-": policyOmit, "redact": policyRedact} {
		got, err := parseTrailTag(tag)
		if err != nil || got != want {
			t.Errorf("parseTrailTag(%q) = %v, %v; want %v", tag, got, err, want)
		}
	}
	for _, tag := range []string{"Redact", "redact,", "hmac ", "omit", "x"} {
		if _, err := parseTrailTag(tag); err == nil {
			t.Errorf("parseTrailTag(%q) succeeded, want an error", tag)
		}
	}
}

func TestDiffConcurrentTypeCache(t *testing.T) {
	t.Parallel()
	type fresh struct {
		A int    `json:"a"`
		B string `json:"b"`
	}
	done := make(chan []Change)
	for range 8 {
		go func() {
			c, _ := Diff(fresh{A: 1}, fresh{A: 2, B: "x"})
			done <- c
		}()
	}
	for range 8 {
		if c := <-done; len(c) != 2 || c[0].Field != "a" || c[1].Field != "b" {
			t.Errorf("got %s", fmtChanges(c))
		}
	}
}

func changesEqual(got []Change, want []want) bool {
	if len(got) != len(want) {
		return false
	}
	for i, g := range got {
		w := want[i]
		if g.Field != w.field || g.Redacted != w.redacted || !rawIs(g.Old, w.old) || !rawIs(g.New, w.new) {
			return false
		}
	}
	return true
}

func rawIs(raw json.RawMessage, s string) bool {
	if s == "" {
		return raw == nil
	}
	return raw != nil && string(raw) == s
}

func fmtChanges(cs []Change) string {
	var parts []string
	for _, c := range cs {
		parts = append(parts, fmtOne(c.Field, nilOr(c.Old), nilOr(c.New), c.Redacted))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func fmtWant(ws []want) string {
	var parts []string
	for _, w := range ws {
		o, n := w.old, w.new
		if o == "" {
			o = "<nil>"
		}
		if n == "" {
			n = "<nil>"
		}
		parts = append(parts, fmtOne(w.field, o, n, w.redacted))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func nilOr(raw json.RawMessage) string {
	if raw == nil {
		return "<nil>"
	}
	return string(raw)
}

func fmtOne(field, old, new string, redacted bool) string {
	if redacted {
		return field + " (redacted)"
	}
	return field + ": " + old + " → " + new
}

// FuzzDiffMaps checks, on random JSON objects, that applying Diff(before,
// after) to before gives after, and that Diff(x, x) is empty.
func FuzzDiffMaps(f *testing.F) {
	f.Add([]byte(`{"a":1,"b":{"c":"x"}}`), []byte(`{"a":2,"b":{"d":null}}`))
	f.Add([]byte(`{}`), []byte(`{"a":{"b":{}}}`))
	f.Add([]byte(`{"a":[1,2],"b":true}`), []byte(`{"a":{"x":[1]},"b":"true"}`))
	f.Add([]byte(`{"x":{"y":{"z":1}}}`), []byte(`{"x":5}`))
	f.Add([]byte(`{"k":1.5e3}`), []byte(`{"k":1500}`))
	f.Fuzz(func(t *testing.T, before, after []byte) {
		var b, a map[string]any
		if json.Unmarshal(before, &b) != nil || json.Unmarshal(after, &a) != nil || b == nil || a == nil {
			return
		}
		if !fuzzUsable(b, 0) || !fuzzUsable(a, 0) {
			return
		}
		for _, x := range []map[string]any{b, a} {
			same, err := Diff(x, x)
			if err != nil {
				t.Fatalf("Diff(x, x): %v", err)
			}
			if same != nil {
				t.Fatalf("Diff(x, x) = %s, want nil", fmtChanges(same))
			}
		}
		changes, err := Diff(b, a)
		if err != nil {
			t.Fatalf("Diff: %v", err)
		}
		seen := map[string]bool{}
		for _, c := range changes {
			if seen[c.Field] {
				t.Fatalf("field %q twice in %s", c.Field, fmtChanges(changes))
			}
			seen[c.Field] = true
			if c.Old == nil && c.New == nil {
				t.Fatalf("change %q has neither old nor new", c.Field)
			}
		}
		got := applyChanges(t, b, changes)
		if !reflect.DeepEqual(got, a) {
			t.Fatalf("applying %s\nto %s\ngives %s\nwant %s", fmtChanges(changes), before, mustMarshal(got), after)
		}
		// Creation from nothing rebuilds after too.
		created, err := Diff(nil, a)
		if err != nil {
			t.Fatalf("Diff(nil, after): %v", err)
		}
		if got := applyChanges(t, map[string]any{}, created); !reflect.DeepEqual(got, a) {
			t.Fatalf("creation %s gives %s, want %s", fmtChanges(created), mustMarshal(got), after)
		}
	})
}

// fuzzUsable rejects what Diff documents it cannot do on maps: keys with dots
// (ambiguous paths), nesting beyond MaxJSONDepth, and integers a double cannot
// hold exactly.
func fuzzUsable(v any, depth int) bool {
	if depth >= MaxJSONDepth-1 {
		return false
	}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if k == "" || strings.Contains(k, ".") || !fuzzUsable(e, depth+1) {
				return false
			}
		}
	case []any:
		for _, e := range x {
			if !fuzzUsable(e, depth+1) {
				return false
			}
		}
	case float64:
		return math.Abs(x) < 1<<53
	}
	return true
}

func applyChanges(t *testing.T, m map[string]any, changes []Change) map[string]any {
	t.Helper()
	out := deepCopyJSON(m).(map[string]any)
	for _, c := range changes {
		parts := strings.Split(c.Field, ".")
		cur := out
		for _, p := range parts[:len(parts)-1] {
			next, ok := cur[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				cur[p] = next
			}
			cur = next
		}
		last := parts[len(parts)-1]
		if c.New == nil {
			delete(cur, last)
			continue
		}
		var v any
		if err := json.Unmarshal(c.New, &v); err != nil {
			t.Fatalf("change %q: new %s: %v", c.Field, c.New, err)
		}
		cur[last] = v
	}
	return out
}

func deepCopyJSON(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopyJSON(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = deepCopyJSON(e)
		}
		return s
	}
	return v
}

func mustMarshal(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// The direct encodings of strings and numbers must give exactly what
// encoding/json followed by CanonicalJSON gives.
func TestLeafJSONMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	values := []any{
		"", "plain", `quote " and \ backslash`, "ctl \x00\x01\x1f\t\n\r\b\f", "<html> & \u2028\u2029", "é 日本 🙂",
		"\x7f", "bad \xff utf-8",
		0.0, math.Copysign(0, -1), 0.1, 1e21, 1e-7, 123456789.125, math.MaxFloat64, math.SmallestNonzeroFloat64, -2.5,
		float32(0.1), float32(3.4e38), float32(-1e-10),
		0, -1, int8(-128), uint8(255), int64(1 << 53), uint64(1 << 53), true, false,
	}
	for _, v := range values {
		want, werr := json.Marshal(v)
		if werr == nil {
			want, werr = CanonicalJSON(want)
		}
		var d differ
		got, gerr := leafJSON(d.classify(reflect.ValueOf(v)))
		if (werr != nil) != (gerr != nil) || string(got) != string(want) {
			t.Errorf("%T %#v: leafJSON = %s, %v; encoding/json + CanonicalJSON = %s, %v", v, v, got, gerr, want, werr)
		}
	}
}
