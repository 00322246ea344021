package trail

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
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
// changes to before rebuilds after exactly. A nil pointer to a struct or a nil
// map is walked as absent: its fields are reported as in a creation or a
// deletion. A nil interface or a nil pointer to a leaf is the JSON value null.
// An integer that a double cannot hold exactly is not a
// canonical JSON number: a changed one is an error (send such IDs as strings).
//
// The struct tag `trail:"-"` leaves a field out of the diff, and
// `trail:"redact"` reports only that the field changed: the Change has
// Redacted set and no values. `trail:"hmac"` and `trail:"pii"` report the
// field's whole values (an object as one value) with Change.Protect set, for
// the privacy layer (trailprivacy) to hash or encrypt; Validate rejects the
// change if no transformer did. A leaf whose values contain tagged struct
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
	b, a := d.classify(bv), d.classify(av)
	if d.err != nil {
		return nil, d.err
	}
	if b.k == nodeAbsent && a.k == nodeAbsent {
		return nil, nil
	}
	d.children("", b, a, 0)
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
	for t.Kind() == reflect.Pointer && !infoFor(t).leaf {
		t = t.Elem()
	}
	if infoFor(t).leaf || !(t.Kind() == reflect.Struct || t.Kind() == reflect.Map) {
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
	policyHMAC                      // trail:"hmac": values marked for a keyed hash (Change.Protect)
	policyPII                       // trail:"pii": values marked for encryption (Change.Protect)
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
	case ProtectHMAC:
		return policyHMAC, nil
	case ProtectPII:
		return policyPII, nil
	}
	return 0, fmt.Errorf("unknown trail tag %q (want \"-\", \"redact\", \"hmac\" or \"pii\")", clip(tag))
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
	leaf       bool // compared by JSON value
	basic      bool // a bool, number or string kind without its own marshaling: compared directly
	comparable bool // == on values implies equal JSON, and cannot panic
	nilAbsent  bool // a pointer type whose nil is an absent object, not null
	fields     []*diffField
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
	typ    reflect.Type
	// direct: typ is neither a pointer nor an interface, so its info, cached
	// in ti, describes the field's values.
	direct bool
	ti     atomic.Pointer[typeInfo]
}

// info returns the typeInfo of the field's type.
func (f *diffField) info() *typeInfo {
	if ti := f.ti.Load(); ti != nil {
		return ti
	}
	ti := infoFor(f.typ)
	f.ti.Store(ti)
	return ti
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
		ti.comparable = comparableWithoutPanic(t)
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
	case reflect.Pointer:
		// Unwrapped by classify. A nil pointer to an object is absent.
		et := t.Elem()
		for et.Kind() == reflect.Pointer && !isLeafType(et) {
			et = et.Elem()
		}
		ti.nilAbsent = !isLeafType(et) && (et.Kind() == reflect.Struct || isObjectMap(et))
	case reflect.Interface:
		// Unwrapped by classify.
	default:
		ti.leaf = true
	}
	ti.hasPolicy = typeHasPolicy(t, map[reflect.Type]bool{})
	ti.holdsAny = typeHoldsAny(t, map[reflect.Type]bool{})
	ti.comparable = comparableWithoutPanic(t)
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

// comparableWithoutPanic reports whether == on values of t is defined and
// cannot panic: t is comparable and holds no interface (whose dynamic value
// might not be).
func comparableWithoutPanic(t reflect.Type) bool {
	if !t.Comparable() {
		return false
	}
	var hasInterface func(t reflect.Type) bool
	hasInterface = func(t reflect.Type) bool {
		switch t.Kind() {
		case reflect.Interface:
			return true
		case reflect.Array:
			return hasInterface(t.Elem())
		case reflect.Struct:
			for i := range t.NumField() {
				if hasInterface(t.Field(i).Type) {
					return true
				}
			}
		}
		return false // pointers compare by address, channels by identity
	}
	return !hasInterface(t)
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
func structFields(t reflect.Type) ([]*diffField, error) {
	type embedded struct {
		t      reflect.Type
		index  []int
		policy fieldPolicy
	}
	type candidate struct {
		*diffField
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
				k := sf.Type.Kind()
				cands = append(cands, candidate{&diffField{name: name, index: index, policy: policy, typ: sf.Type,
					direct: k != reflect.Pointer && k != reflect.Interface}, tagged})
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
	var fields []*diffField
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
	slices.SortFunc(fields, func(a, b *diffField) int { return slices.Compare(a.index, b.index) })
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

// node is a value classified: how Diff treats it, and its type's info (nil
// when absent or null).
type node struct {
	v  reflect.Value
	k  nodeKind
	ti *typeInfo
}

var absent = node{}

// classify unwraps pointers and interfaces and says how to treat v. An invalid
// v is absent; a nil interface or a nil pointer to a leaf is the leaf null.
func (d *differ) classify(v reflect.Value) node {
	for v.IsValid() {
		switch v.Kind() {
		case reflect.Interface:
			if v.IsNil() {
				return node{v: v, k: nodeLeaf}
			}
			v = v.Elem()
			continue
		case reflect.Pointer:
			ti := infoFor(v.Type())
			if ti.leaf {
				return node{v: v, k: nodeLeaf, ti: ti}
			}
			if v.IsNil() {
				if ti.nilAbsent {
					return absent
				}
				return node{v: v, k: nodeLeaf, ti: ti}
			}
			v = v.Elem()
			continue
		}
		return d.classifyInfo(v, infoFor(v.Type()))
	}
	return absent
}

// classifyInfo classifies v, neither a pointer nor an interface, whose
// type's info is ti.
func (d *differ) classifyInfo(v reflect.Value, ti *typeInfo) node {
	if ti.err != nil {
		if d.err == nil {
			d.err = ti.err
		}
		return absent
	}
	switch {
	case ti.leaf:
		return node{v: v, k: nodeLeaf, ti: ti}
	case v.Kind() == reflect.Struct:
		return node{v: v, k: nodeStruct, ti: ti}
	case v.Kind() == reflect.Map:
		if v.IsNil() {
			return absent
		}
		return node{v: v, k: nodeMap, ti: ti}
	}
	return node{v: v, k: nodeLeaf, ti: ti}
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
func (d *differ) value(path fieldPath, b, a node, policy fieldPolicy, fromStruct bool, depth int) {
	if d.err != nil || (b.k == nodeAbsent && a.k == nodeAbsent) {
		return
	}
	if policy >= policyRedact {
		var changed bool
		switch {
		case b.k == nodeAbsent:
			changed = !(fromStruct && isZeroValue(a.v))
		case a.k == nodeAbsent:
			changed = !(fromStruct && isZeroValue(b.v))
		default:
			eq, err := jsonEqual(b, a)
			if err != nil {
				d.fail(path.String(), err)
				return
			}
			changed = !eq
		}
		if changed {
			d.protectedChange(path, b, a, policy)
		}
		return
	}
	switch {
	case b.k.object() && (a.k.object() || a.k == nodeAbsent), b.k == nodeAbsent && a.k.object():
		// A map that appears or disappears empty has no entries to report,
		// but its presence changed.
		if b.k == nodeAbsent && a.k == nodeMap && a.v.Len() == 0 {
			d.out = append(d.out, Change{Field: path.String(), New: json.RawMessage("{}")})
			return
		}
		if a.k == nodeAbsent && b.k == nodeMap && b.v.Len() == 0 {
			d.out = append(d.out, Change{Field: path.String(), Old: json.RawMessage("{}")})
			return
		}
		d.children(path.String(), b, a, depth+1)
	case b.k == nodeLeaf && a.k == nodeLeaf:
		eq, err := jsonEqual(b, a)
		if err != nil {
			d.fail(path.String(), err)
			return
		}
		if !eq {
			d.leafChange(path, b, a)
		}
	case b.k == nodeAbsent:
		if !(fromStruct && isZeroValue(a.v)) {
			d.leafChange(path, b, a)
		}
	case a.k == nodeAbsent:
		if !(fromStruct && isZeroValue(b.v)) {
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
func (d *differ) children(path string, b, a node, depth int) {
	if depth > MaxJSONDepth {
		d.fail(path, fmt.Errorf("nested deeper than %d levels", MaxJSONDepth))
		return
	}
	switch {
	case b.k != nodeMap && a.k != nodeMap && (b.k == nodeAbsent || a.k == nodeAbsent || b.ti == a.ti):
		// Structs of one type (or one side absent).
		ti := b.ti
		if b.k == nodeAbsent {
			ti = a.ti
		}
		for _, f := range ti.fields {
			d.value(fieldPath{path, f.name}, d.field(b, f), d.field(a, f), f.policy, true, depth)
			if d.err != nil {
				return
			}
		}
	case b.k != nodeStruct && a.k != nodeStruct:
		// Maps (or one side absent): keys sorted.
		be, ae := d.entries(b), d.entries(a)
		i, j := 0, 0
		for (i < len(be) || j < len(ae)) && d.err == nil {
			switch {
			case j == len(ae) || i < len(be) && be[i].name < ae[j].name:
				d.entry(fieldPath{path, be[i].name}, be[i].n, absent, depth)
				i++
			case i == len(be) || ae[j].name < be[i].name:
				d.entry(fieldPath{path, ae[j].name}, absent, ae[j].n, depth)
				j++
			default:
				d.value(fieldPath{path, be[i].name}, be[i].n, ae[j].n, policyKeep, false, depth)
				i++
				j++
			}
		}
	default:
		// Different kinds of object behind interfaces: walk the names of
		// both, before's first.
		be, ae := d.entries(b), d.entries(a)
		seen := make(map[string]bool, len(be))
		for _, e := range be {
			seen[e.name] = true
			other := absent
			policy := e.policy
			if k := slices.IndexFunc(ae, func(x entry) bool { return x.name == e.name }); k >= 0 {
				other = ae[k].n
				policy = max(policy, ae[k].policy)
			}
			d.value(fieldPath{path, e.name}, e.n, other, policy, e.fromStruct, depth)
		}
		for _, e := range ae {
			if !seen[e.name] {
				d.value(fieldPath{path, e.name}, absent, e.n, e.policy, e.fromStruct, depth)
			}
		}
	}
}

// entry reports a map entry present on one side only. An object is reported
// whole, so that applying the changes rebuilds the map exactly, unless it
// holds trail-tagged fields: then it is walked so that their policies apply.
func (d *differ) entry(path fieldPath, b, a node, depth int) {
	if b.k.object() && !valueHasPolicy(b.v) || a.k.object() && !valueHasPolicy(a.v) {
		d.leafChange(path, b, a)
		return
	}
	d.value(path, b, a, policyKeep, false, depth)
}

// field returns field f of struct n, classified; a nil embedded pointer on
// the way makes it absent.
func (d *differ) field(n node, f *diffField) node {
	if n.k == nodeAbsent {
		return absent
	}
	v := n.v
	for i, x := range f.index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return absent
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	if f.direct {
		return d.classifyInfo(v, f.info())
	}
	return d.classify(v)
}

type entry struct {
	name       string
	n          node
	policy     fieldPolicy
	fromStruct bool
}

// entries lists the members of an object, classified: a map's entries
// sorted by key, a struct's fields in order.
func (d *differ) entries(n node) []entry {
	switch n.k {
	case nodeMap:
		// One key variable and one slice for the values, instead of a copy
		// of each key and value.
		t := n.v.Type()
		es := make([]entry, 0, n.v.Len())
		key := reflect.New(t.Key()).Elem()
		vals := reflect.MakeSlice(reflect.SliceOf(t.Elem()), n.v.Len(), n.v.Len())
		it := n.v.MapRange()
		for i := 0; i < vals.Len() && it.Next(); i++ {
			key.SetIterKey(it)
			val := vals.Index(i)
			val.SetIterValue(it)
			es = append(es, entry{name: key.String(), n: d.classify(val)})
		}
		slices.SortFunc(es, func(a, b entry) int { return strings.Compare(a.name, b.name) })
		return es
	case nodeStruct:
		es := make([]entry, 0, len(n.ti.fields))
		for _, f := range n.ti.fields {
			if fn := d.field(n, f); fn.k != nodeAbsent {
				es = append(es, entry{name: f.name, n: fn, policy: f.policy, fromStruct: true})
			}
		}
		return es
	}
	return nil
}

// jsonEqual reports whether two leaves have the same JSON value.
func jsonEqual(b, a node) (bool, error) {
	bv, av := b.v, a.v
	if bv.IsValid() && av.IsValid() && b.ti != nil && b.ti == a.ti {
		if b.ti.basic {
			// One basic type without its own marshaling: compare directly.
			switch bv.Kind() {
			case reflect.String:
				return bv.String() == av.String(), nil
			case reflect.Bool:
				return bv.Bool() == av.Bool(), nil
			case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
				return bv.Int() == av.Int(), nil
			case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
				return bv.Uint() == av.Uint(), nil
			case reflect.Float32, reflect.Float64:
				if bv.Float() == av.Float() {
					return true, nil
				}
				// NaN and the like: let encoding decide.
			}
		} else if b.ti.comparable {
			// Equal Go values encode equally; comparable types (time.Time)
			// are compared without boxing them in interfaces.
			if bv.Equal(av) {
				return true, nil
			}
		} else if bv.CanInterface() && av.CanInterface() && reflect.DeepEqual(bv.Interface(), av.Interface()) {
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

// protectedChange records a change of a field tagged redact, hmac or pii:
// redacted, or its whole values (an object as one value) marked with
// Change.Protect for the privacy layer. Values that hold tagged fields
// themselves are redacted.
func (d *differ) protectedChange(path fieldPath, b, a node, policy fieldPolicy) {
	if policy == policyRedact || valueHasPolicy(b.v) || valueHasPolicy(a.v) {
		d.out = append(d.out, Change{Field: path.String(), Redacted: true})
		return
	}
	c := Change{Field: path.String(), Protect: ProtectHMAC}
	if policy == policyPII {
		c.Protect = ProtectPII
	}
	if !d.leafValues(&c, path, b, a) {
		return
	}
	d.out = append(d.out, c)
}

// leafChange records a change of a leaf; an absent side stays nil. Values
// whose type holds trail-tagged fields are withheld.
func (d *differ) leafChange(path fieldPath, b, a node) {
	if valueHasPolicy(b.v) || valueHasPolicy(a.v) {
		d.out = append(d.out, Change{Field: path.String(), Redacted: true})
		return
	}
	c := Change{Field: path.String()}
	if !d.leafValues(&c, path, b, a) {
		return
	}
	if c.Old != nil && c.New != nil && bytes.Equal(c.Old, c.New) {
		return
	}
	d.out = append(d.out, c)
}

// leafValues sets c.Old and c.New to the JSON of b and a, leaving an absent
// side nil. On an encoding error it records the failure and returns false.
func (d *differ) leafValues(c *Change, path fieldPath, b, a node) bool {
	var err error
	if b.k != nodeAbsent {
		if c.Old, err = leafJSON(b); err != nil {
			d.fail(path.String(), err)
			return false
		}
	}
	if a.k != nodeAbsent {
		if c.New, err = leafJSON(a); err != nil {
			d.fail(path.String(), err)
			return false
		}
	}
	return true
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
func leafJSON(n node) (json.RawMessage, error) {
	v := n.v
	if !v.IsValid() {
		return json.RawMessage("null"), nil
	}
	if n.ti != nil && n.ti.basic {
		// Integers and bools print canonically without encoding/json.
		switch v.Kind() {
		case reflect.Bool:
			return strconv.AppendBool(nil, v.Bool()), nil
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			return CanonicalJSON(strconv.AppendInt(nil, v.Int(), 10))
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			return CanonicalJSON(strconv.AppendUint(nil, v.Uint(), 10))
		case reflect.Float32, reflect.Float64:
			if f := v.Float(); !math.IsNaN(f) && !math.IsInf(f, 0) {
				return CanonicalJSON(strconv.AppendFloat(nil, f, 'g', -1, v.Type().Bits()))
			}
		case reflect.String:
			if str := v.String(); utf8.ValidString(str) {
				return CanonicalJSON(appendQuoted(make([]byte, 0, len(str)+2), str))
			}
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

// appendQuoted appends s, valid UTF-8, as a JSON string with the escapes
// JSON requires; CanonicalJSON then puts it in canonical form.
func appendQuoted(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

func isZeroValue(v reflect.Value) bool {
	return !v.IsValid() || v.IsZero()
}
