package trail

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Diff returns the field-level changes that turn before into after, ready for
// Event.Changes.
//
// before and after are structs, pointers to structs, or maps with string keys
// (map[string]any, map[string]T), of the same type. A nil before means the
// object was created: every non-zero field is reported with only New. A nil
// after means it was deleted: every non-zero field is reported with only Old.
// Equal inputs give a nil slice.
//
// Nested structs and maps are walked, and their fields reported as dotted
// paths ("address.city"), in a stable order: struct fields in declaration
// order, map keys sorted, nested fields in place of their parent. A field is
// named like encoding/json names it (the json tag's name, else the Go name),
// so that a diff reads like the API's JSON; embedded structs are flattened the
// way encoding/json flattens them; unexported fields and fields tagged
// `json:"-"` are skipped. Map keys containing dots make ambiguous paths.
//
// Everything else is a leaf compared by its JSON value: strings, numbers,
// bools, time.Time and other types with their own JSON or text marshaling,
// slices and arrays (compared whole), nil. Old and New hold canonical JSON
// (CanonicalJSON). A key added to or removed from a map is one change with a
// nil Old or New and the whole value on the other side, so that applying the
// changes to before rebuilds after exactly; a nil pointer or interface is the
// JSON value null. An integer that a double cannot hold exactly is not a
// canonical JSON number: a changed one is an error (send such IDs as strings).
//
// The struct tag `trail:"-"` leaves a field out of the diff, and
// `trail:"redact"` reports only that the field changed: the Change has
// Redacted set and no values. A leaf whose values contain tagged struct
// fields (a slice of such structs, say) is reported redacted as a whole when
// it changes, since its values cannot be shown without the tagged fields. An
// unknown trail tag is an error naming the field.
func Diff(before, after any) ([]Change, error) {
	bv, av := reflect.ValueOf(before), reflect.ValueOf(after)
	bt, err := diffRootType(bv)
	if err != nil {
		return nil, err
	}
	at, err := diffRootType(av)
	if err != nil {
		return nil, err
	}
	if bt != nil && at != nil && bt != at {
		return nil, fmt.Errorf("trail: Diff: before is %s but after is %s", bt, at)
	}
	var d differ
	b, bk := d.classify(bv)
	a, ak := d.classify(av)
	if d.err != nil {
		return nil, d.err
	}
	if bk == nodeAbsent && ak == nodeAbsent {
		return nil, nil
	}
	d.children("", b, bk, a, ak, 0)
	if d.err != nil {
		return nil, d.err
	}
	return d.out, nil
}

// diffRootType checks that v may be an argument of Diff and returns its type
// with pointers removed, or nil for an untyped nil.
func diffRootType(v reflect.Value) (reflect.Type, error) {
	if !v.IsValid() {
		return nil, nil
	}
	t := v.Type()
	for t.Kind() == reflect.Pointer && !isLeafType(t) {
		t = t.Elem()
	}
	if isLeafType(t) || !(t.Kind() == reflect.Struct || isObjectMap(t)) {
		return nil, fmt.Errorf("trail: Diff: %s is not a struct or a map with string keys", v.Type())
	}
	return t, nil
}

// fieldPolicy is what Diff does with a field, from its `trail` struct tag.
// The privacy layer adds policies here (hmac, pii) as it learns to apply them.
type fieldPolicy uint8

const (
	policyKeep   fieldPolicy = iota // no tag: record old and new values
	policyOmit                      // trail:"-": leave the field out
	policyRedact                    // trail:"redact": record that it changed, not the values
)

// parseTrailTag parses the value of a `trail` struct tag.
func parseTrailTag(tag string) (fieldPolicy, error) {
	switch tag {
	case "":
		return policyKeep, nil
	case "-":
		return policyOmit, nil
	case "redact":
		return policyRedact, nil
	}
	return 0, fmt.Errorf("unknown trail tag %q (want \"-\" or \"redact\")", clip(tag))
}

// nodeKind is how Diff treats a value.
type nodeKind uint8

const (
	nodeAbsent nodeKind = iota // missing map key, nil before/after, nil pointer to a struct or map
	nodeLeaf                   // compared by JSON value
	nodeStruct                 // walked field by field
	nodeMap                    // map with string keys, walked key by key
)

func (k nodeKind) object() bool { return k == nodeStruct || k == nodeMap }

// typeInfo is what Diff caches about a type.
type typeInfo struct {
	leaf   bool // compared by JSON value
	basic  bool // a bool, number or string kind without its own marshaling: compared directly
	fields []diffField
	// hasPolicy: values of this type contain fields with a trail tag (through
	// structs, pointers, slices, arrays and maps), so their JSON must not be
	// shown whole.
	hasPolicy bool
	// holdsAny: values of this type may hold interfaces, whose dynamic
	// values must be checked for trail-tagged fields at run time.
	holdsAny bool
	err      error // a bad trail tag
}

// diffField is one field of a struct as Diff sees it.
type diffField struct {
	name   string
	index  []int
	policy fieldPolicy
}

var typeInfos sync.Map // reflect.Type → *typeInfo

var (
	jsonMarshalerType = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
	jsonNumberType    = reflect.TypeFor[json.Number]()
)

func isLeafType(t reflect.Type) bool {
	if t.Implements(jsonMarshalerType) || t.Implements(textMarshalerType) {
		return true
	}
	if t.Kind() != reflect.Pointer {
		pt := reflect.PointerTo(t)
		return pt.Implements(jsonMarshalerType) || pt.Implements(textMarshalerType)
	}
	return false
}

func isObjectMap(t reflect.Type) bool {
	return t.Kind() == reflect.Map && t.Key().Kind() == reflect.String && !isLeafType(t)
}

func infoFor(t reflect.Type) *typeInfo {
	if ti, ok := typeInfos.Load(t); ok {
		return ti.(*typeInfo)
	}
	ti := buildTypeInfo(t)
	actual, _ := typeInfos.LoadOrStore(t, ti)
	return actual.(*typeInfo)
}

func buildTypeInfo(t reflect.Type) *typeInfo {
	ti := &typeInfo{}
	if isLeafType(t) {
		ti.leaf = true
		return ti
	}
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.String:
		ti.leaf = true
		ti.basic = t != jsonNumberType
	case reflect.Struct:
		ti.fields, ti.err = structFields(t)
	case reflect.Map:
		ti.leaf = t.Key().Kind() != reflect.String
	case reflect.Pointer, reflect.Interface:
		// Unwrapped by classify.
	default:
		ti.leaf = true
	}
	ti.hasPolicy = typeHasPolicy(t, map[reflect.Type]bool{})
	ti.holdsAny = typeHoldsAny(t, map[reflect.Type]bool{})
	return ti
}

// typeHasPolicy reports whether values of t may hold a field with a trail
// tag. Interfaces are checked at run time, on their dynamic values.
func typeHasPolicy(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] || isLeafType(t) {
		return false
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
		return typeHasPolicy(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			sf := t.Field(i)
			if sf.Tag.Get("trail") != "" {
				return true
			}
			if typeHasPolicy(sf.Type, seen) {
				return true
			}
		}
	}
	return false
}

// typeHoldsAny reports whether values of t may contain an interface value
// that is encoded as part of their JSON.
func typeHoldsAny(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] || isLeafType(t) {
		return false
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Interface:
		return true
	case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
		return typeHoldsAny(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			if typeHoldsAny(t.Field(i).Type, seen) {
				return true
			}
		}
	}
	return false
}

// structFields lists the fields of struct type t the way encoding/json does:
// exported fields in declaration order, fields of embedded structs promoted
// in place unless the embedding field has a json name, and among fields
// sharing a name the shallowest wins (a json-tagged one breaks a tie; an
// unbroken tie drops them all).
func structFields(t reflect.Type) ([]diffField, error) {
	type embedded struct {
		t      reflect.Type
		index  []int
		policy fieldPolicy
	}
	type candidate struct {
		diffField
		tagged bool
	}
	var cands []candidate
	next := []embedded{{t: t}}
	visited := map[reflect.Type]bool{}
	for len(next) > 0 {
		level := next
		next = nil
		levelTypes := make([]reflect.Type, 0, len(level))
		for _, e := range level {
			if visited[e.t] {
				continue
			}
			levelTypes = append(levelTypes, e.t)
			for i := range e.t.NumField() {
				sf := e.t.Field(i)
				ft := sf.Type
				if sf.Anonymous {
					if ft.Kind() == reflect.Pointer {
						ft = ft.Elem()
					}
					if !sf.IsExported() && (ft.Kind() != reflect.Struct || sf.Type.Kind() == reflect.Pointer) {
						continue
					}
				} else if !sf.IsExported() {
					continue
				}
				jsonTag := sf.Tag.Get("json")
				if jsonTag == "-" {
					continue
				}
				policy, err := parseTrailTag(sf.Tag.Get("trail"))
				if err != nil {
					return nil, fmt.Errorf("trail: Diff: field %s.%s: %w", e.t, sf.Name, err)
				}
				if policy == policyOmit {
					continue
				}
				if policy == policyKeep {
					policy = e.policy
				}
				name, _, _ := strings.Cut(jsonTag, ",")
				if !validJSONName(name) {
					name = ""
				}
				index := append(slices.Clip(e.index), i)
				if name == "" && sf.Anonymous && ft.Kind() == reflect.Struct && !isLeafType(ft) {
					next = append(next, embedded{t: ft, index: index, policy: policy})
					continue
				}
				tagged := name != ""
				if name == "" {
					name = sf.Name
				}
				cands = append(cands, candidate{diffField{name: name, index: index, policy: policy}, tagged})
			}
		}
		for _, lt := range levelTypes {
			visited[lt] = true
		}
	}
	// Resolve name conflicts: group by name, keep the dominant field.
	slices.SortStableFunc(cands, func(a, b candidate) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		if c := len(a.index) - len(b.index); c != 0 {
			return c
		}
		if a.tagged != b.tagged {
			if a.tagged {
				return -1
			}
			return 1
		}
		return 0
	})
	var fields []diffField
	for i := 0; i < len(cands); {
		j := i + 1
		for j < len(cands) && cands[j].name == cands[i].name {
			j++
		}
		group := cands[i:j]
		if len(group) == 1 || len(group[1].index) > len(group[0].index) || group[0].tagged != group[1].tagged {
			fields = append(fields, group[0].diffField)
		}
		i = j
	}
	slices.SortFunc(fields, func(a, b diffField) int { return slices.Compare(a.index, b.index) })
	return fields, nil
}

// validJSONName mirrors encoding/json's rule for usable tag names.
func validJSONName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		switch {
		case strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c):
		case !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c > 0x7f):
			return false
		}
	}
	return true
}

type differ struct {
	out []Change
	err error
}

func (d *differ) fail(path string, err error) {
	if d.err == nil {
		if path == "" {
			d.err = fmt.Errorf("trail: Diff: %w", err)
		} else {
			d.err = fmt.Errorf("trail: Diff: field %s: %w", path, err)
		}
	}
}

// classify unwraps pointers and interfaces and says how to treat v. An invalid
// v is absent; a nil interface or a nil pointer to a leaf is the leaf null.
func (d *differ) classify(v reflect.Value) (reflect.Value, nodeKind) {
	for v.IsValid() {
		switch v.Kind() {
		case reflect.Interface:
			if v.IsNil() {
				return v, nodeLeaf
			}
			v = v.Elem()
			continue
		case reflect.Pointer:
			ti := infoFor(v.Type())
			if ti.leaf {
				return v, nodeLeaf
			}
			if v.IsNil() {
				et := v.Type().Elem()
				for et.Kind() == reflect.Pointer && !isLeafType(et) {
					et = et.Elem()
				}
				if !isLeafType(et) && (et.Kind() == reflect.Struct || isObjectMap(et)) {
					return reflect.Value{}, nodeAbsent
				}
				return v, nodeLeaf
			}
			v = v.Elem()
			continue
		}
		ti := infoFor(v.Type())
		if ti.err != nil {
			if d.err == nil {
				d.err = ti.err
			}
			return reflect.Value{}, nodeAbsent
		}
		switch {
		case ti.leaf:
			return v, nodeLeaf
		case v.Kind() == reflect.Struct:
			return v, nodeStruct
		case v.Kind() == reflect.Map:
			if v.IsNil() {
				return reflect.Value{}, nodeAbsent
			}
			return v, nodeMap
		}
		return v, nodeLeaf
	}
	return v, nodeAbsent
}

// fieldPath is a path not yet joined: the join allocates, so it is done only
// for the paths that are reported or walked into.
type fieldPath struct{ parent, name string }

func (p fieldPath) String() string { return joinPath(p.parent, p.name) }

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// value compares one field or map entry. fromStruct is true for struct
// fields, whose zero values are not reported when the other side is absent.
func (d *differ) value(path fieldPath, b reflect.Value, bk nodeKind, a reflect.Value, ak nodeKind, policy fieldPolicy, fromStruct bool, depth int) {
	if d.err != nil || (bk == nodeAbsent && ak == nodeAbsent) {
		return
	}
	if policy == policyRedact {
		var changed bool
		switch {
		case bk == nodeAbsent:
			changed = !(fromStruct && isZeroValue(a))
		case ak == nodeAbsent:
			changed = !(fromStruct && isZeroValue(b))
		default:
			eq, err := jsonEqual(b, a)
			if err != nil {
				d.fail(path.String(), err)
				return
			}
			changed = !eq
		}
		if changed {
			d.out = append(d.out, Change{Field: path.String(), Redacted: true})
		}
		return
	}
	switch {
	case bk.object() && (ak.object() || ak == nodeAbsent), bk == nodeAbsent && ak.object():
		if bk == nodeAbsent || ak == nodeAbsent {
			// A map that appears or disappears empty has no entries to
			// report, but its presence changed.
			if bk == nodeAbsent && ak == nodeMap && a.Len() == 0 || ak == nodeAbsent && bk == nodeMap && b.Len() == 0 {
				c := Change{Field: path.String()}
				if bk == nodeAbsent {
					c.New = json.RawMessage("{}")
				} else {
					c.Old = json.RawMessage("{}")
				}
				d.out = append(d.out, c)
				return
			}
		}
		d.children(path.String(), b, bk, a, ak, depth+1)
	case bk == nodeLeaf && ak == nodeLeaf:
		if fast, eq := basicEqual(b, a); fast {
			if !eq {
				d.leafChange(path, b, a)
			}
			return
		}
		eq, err := jsonEqual(b, a)
		if err != nil {
			d.fail(path.String(), err)
			return
		}
		if !eq {
			d.leafChange(path, b, a)
		}
	case bk == nodeAbsent:
		if !(fromStruct && isZeroValue(a)) {
			d.leafChange(path, b, a)
		}
	case ak == nodeAbsent:
		if !(fromStruct && isZeroValue(b)) {
			d.leafChange(path, b, a)
		}
	default:
		// An object on one side, a leaf on the other (through an interface):
		// the value is replaced whole.
		d.leafChange(path, b, a)
	}
}

// children compares the fields or entries of two objects, either of which
// may be absent.
func (d *differ) children(path string, b reflect.Value, bk nodeKind, a reflect.Value, ak nodeKind, depth int) {
	if depth > MaxJSONDepth {
		d.fail(path, fmt.Errorf("nested deeper than %d levels", MaxJSONDepth))
		return
	}
	switch {
	case bk != nodeMap && ak != nodeMap && (bk == nodeAbsent || ak == nodeAbsent || b.Type() == a.Type()):
		// Structs of one type (or one side absent).
		t := b
		if bk == nodeAbsent {
			t = a
		}
		for _, f := range infoFor(t.Type()).fields {
			fb, fbk := d.field(b, bk, f.index)
			fa, fak := d.field(a, ak, f.index)
			d.value(fieldPath{path, f.name}, fb, fbk, fa, fak, f.policy, true, depth)
			if d.err != nil {
				return
			}
		}
	case bk != nodeStruct && ak != nodeStruct:
		// Maps (or one side absent): keys sorted.
		be, ae := d.entries(b, bk), d.entries(a, ak)
		i, j := 0, 0
		for (i < len(be) || j < len(ae)) && d.err == nil {
			switch {
			case j == len(ae) || i < len(be) && be[i].name < ae[j].name:
				v, k := d.classify(be[i].v)
				d.entry(fieldPath{path, be[i].name}, v, k, reflect.Value{}, nodeAbsent, depth)
				i++
			case i == len(be) || ae[j].name < be[i].name:
				v, k := d.classify(ae[j].v)
				d.entry(fieldPath{path, ae[j].name}, reflect.Value{}, nodeAbsent, v, k, depth)
				j++
			default:
				bv, bk := d.classify(be[i].v)
				av, ak := d.classify(ae[j].v)
				d.value(fieldPath{path, be[i].name}, bv, bk, av, ak, policyKeep, false, depth)
				i++
				j++
			}
		}
	default:
		// Different kinds of object behind interfaces: walk the names of
		// both, before's first.
		be, ae := d.entries(b, bk), d.entries(a, ak)
		seen := make(map[string]bool, len(be))
		for _, e := range be {
			seen[e.name] = true
			bv, bk := d.classify(e.v)
			av, ak := reflect.Value{}, nodeAbsent
			policy := e.policy
			if k := slices.IndexFunc(ae, func(x entry) bool { return x.name == e.name }); k >= 0 {
				av, ak = d.classify(ae[k].v)
				policy = max(policy, ae[k].policy)
			}
			d.value(fieldPath{path, e.name}, bv, bk, av, ak, policy, e.fromStruct, depth)
		}
		for _, e := range ae {
			if !seen[e.name] {
				av, ak := d.classify(e.v)
				d.value(fieldPath{path, e.name}, reflect.Value{}, nodeAbsent, av, ak, e.policy, e.fromStruct, depth)
			}
		}
	}
}

// entry reports a map entry present on one side only. An object is reported
// whole, so that applying the changes rebuilds the map exactly, unless it
// holds trail-tagged fields: then it is walked so that their policies apply.
func (d *differ) entry(path fieldPath, b reflect.Value, bk nodeKind, a reflect.Value, ak nodeKind, depth int) {
	if bk.object() && !valueHasPolicy(b) || ak.object() && !valueHasPolicy(a) {
		d.leafChange(path, b, a)
		return
	}
	d.value(path, b, bk, a, ak, policyKeep, false, depth)
}

// field returns the field at index of struct v, classified; a nil embedded
// pointer on the way makes it absent.
func (d *differ) field(v reflect.Value, k nodeKind, index []int) (reflect.Value, nodeKind) {
	if k == nodeAbsent {
		return reflect.Value{}, nodeAbsent
	}
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return reflect.Value{}, nodeAbsent
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return d.classify(v)
}

type entry struct {
	name       string
	v          reflect.Value
	policy     fieldPolicy
	fromStruct bool
}

// entries lists the members of an object: a map's entries sorted by key, a
// struct's fields in order.
func (d *differ) entries(v reflect.Value, k nodeKind) []entry {
	switch k {
	case nodeMap:
		es := make([]entry, 0, v.Len())
		it := v.MapRange()
		for it.Next() {
			es = append(es, entry{name: it.Key().String(), v: it.Value()})
		}
		slices.SortFunc(es, func(a, b entry) int { return strings.Compare(a.name, b.name) })
		return es
	case nodeStruct:
		fs := infoFor(v.Type()).fields
		es := make([]entry, 0, len(fs))
		for _, f := range fs {
			fv, fk := d.field(v, k, f.index)
			if fk == nodeAbsent {
				continue
			}
			es = append(es, entry{name: f.name, v: fv, policy: f.policy, fromStruct: true})
		}
		return es
	}
	return nil
}

// basicEqual compares two leaves of one basic type without encoding them;
// fast is false when it cannot.
func basicEqual(b, a reflect.Value) (fast, eq bool) {
	if !b.IsValid() || !a.IsValid() || b.Type() != a.Type() || !infoFor(b.Type()).basic {
		return false, false
	}
	switch b.Kind() {
	case reflect.String:
		return b.String() == a.String(), true
	case reflect.Bool:
		return true, b.Bool() == a.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return true, b.Int() == a.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return true, b.Uint() == a.Uint()
	case reflect.Float32, reflect.Float64:
		if b.Float() == a.Float() {
			return true, true
		}
		return false, false // NaN and the like: let encoding decide
	}
	return false, false
}

// jsonEqual reports whether two leaves have the same JSON value.
func jsonEqual(b, a reflect.Value) (bool, error) {
	if fast, eq := basicEqual(b, a); fast {
		return eq, nil
	}
	if b.IsValid() && a.IsValid() && b.Type() == a.Type() {
		// Equal Go values encode equally. Comparable types (time.Time) are
		// compared without boxing them in interfaces.
		if b.Type().Comparable() {
			if b.Equal(a) {
				return true, nil
			}
		} else if b.CanInterface() && a.CanInterface() && reflect.DeepEqual(b.Interface(), a.Interface()) {
			return true, nil
		}
	}
	bj, err := leafJSON(b)
	if err != nil {
		return false, err
	}
	aj, err := leafJSON(a)
	if err != nil {
		return false, err
	}
	return bytes.Equal(bj, aj), nil
}

// leafChange records a change of a leaf; an absent side stays nil. Values
// whose type holds trail-tagged fields are withheld.
func (d *differ) leafChange(path fieldPath, b, a reflect.Value) {
	if valueHasPolicy(b) || valueHasPolicy(a) {
		d.out = append(d.out, Change{Field: path.String(), Redacted: true})
		return
	}
	c := Change{Field: path.String()}
	var err error
	if b.IsValid() {
		if c.Old, err = leafJSON(b); err != nil {
			d.fail(path.String(), err)
			return
		}
	}
	if a.IsValid() {
		if c.New, err = leafJSON(a); err != nil {
			d.fail(path.String(), err)
			return
		}
	}
	if c.Old != nil && c.New != nil && bytes.Equal(c.Old, c.New) {
		return
	}
	d.out = append(d.out, c)
}

// valueHasPolicy reports whether v holds a trail-tagged field anywhere,
// looking through interfaces, so that its JSON is never shown whole.
func valueHasPolicy(v reflect.Value) bool {
	return valueHasPolicyDepth(v, 0)
}

func valueHasPolicyDepth(v reflect.Value, depth int) bool {
	if !v.IsValid() || depth > MaxJSONDepth {
		return false
	}
	if k := v.Kind(); k == reflect.Interface || k == reflect.Pointer {
		if v.IsNil() {
			return false
		}
		if k == reflect.Interface || !infoFor(v.Type()).leaf {
			return valueHasPolicyDepth(v.Elem(), depth+1)
		}
	}
	ti := infoFor(v.Type())
	if ti.hasPolicy {
		return true
	}
	if !ti.holdsAny {
		return false
	}
	switch v.Kind() {
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			if valueHasPolicyDepth(it.Value(), depth+1) {
				return true
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if valueHasPolicyDepth(v.Index(i), depth+1) {
				return true
			}
		}
	case reflect.Struct:
		for _, f := range ti.fields {
			if fv, err := v.FieldByIndexErr(f.index); err == nil && valueHasPolicyDepth(fv, depth+1) {
				return true
			}
		}
	}
	return false
}

// leafJSON encodes a leaf as canonical JSON; an invalid value is null.
func leafJSON(v reflect.Value) (json.RawMessage, error) {
	if !v.IsValid() {
		return json.RawMessage("null"), nil
	}
	if infoFor(v.Type()).basic {
		// Integers and bools print canonically without encoding/json.
		switch v.Kind() {
		case reflect.Bool:
			return strconv.AppendBool(nil, v.Bool()), nil
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			return CanonicalJSON(strconv.AppendInt(nil, v.Int(), 10))
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			return CanonicalJSON(strconv.AppendUint(nil, v.Uint(), 10))
		}
	}
	if !v.CanInterface() {
		return nil, errors.New("cannot read an unexported value")
	}
	raw, err := json.Marshal(v.Interface())
	if err != nil {
		return nil, err
	}
	return CanonicalJSON(raw)
}

func isZeroValue(v reflect.Value) bool {
	return !v.IsValid() || v.IsZero()
}
