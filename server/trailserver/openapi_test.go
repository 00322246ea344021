package trailserver_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"mime"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi/datamodel"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/trailhq/trail/server/trailserver"
)

const specURL = "https://trail.invalid/openapi.json"

type specOp struct {
	method, path string
	re           *regexp.Regexp
}

var spec struct {
	once     sync.Once
	err      error
	doc      map[string]any
	ops      []specOp
	compiler *jsonschema.Compiler
	mu       sync.Mutex
	schemas  map[string]*jsonschema.Schema
	seen     map[string]map[int]bool // "GET /v1/events" → statuses answered
}

func loadSpec() error {
	spec.once.Do(func() {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(trailserver.OpenAPI))
		if err != nil {
			spec.err = err
			return
		}
		spec.doc = doc.(map[string]any)
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft2020)
		c.AssertFormat()
		if err := c.AddResource(specURL, doc); err != nil {
			spec.err = err
			return
		}
		spec.compiler = c
		spec.schemas = map[string]*jsonschema.Schema{}
		spec.seen = map[string]map[int]bool{}
		for path, item := range spec.doc["paths"].(map[string]any) {
			re := regexp.MustCompile("^" + regexp.MustCompile(`\\\{[^/]+\\\}`).ReplaceAllString(regexp.QuoteMeta(path), `[^/]+`) + "$")
			for m := range item.(map[string]any) {
				spec.ops = append(spec.ops, specOp{strings.ToUpper(m), path, re})
			}
		}
	})
	return spec.err
}

func pointerEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// resolve follows a local $ref and returns the object and its JSON pointer.
func resolve(v map[string]any, ptr string) (map[string]any, string) {
	for {
		ref, ok := v["$ref"].(string)
		if !ok {
			return v, ptr
		}
		ptr = strings.TrimPrefix(ref, "#")
		cur := any(spec.doc)
		for _, part := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
			part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
			cur = cur.(map[string]any)[part]
		}
		v = cur.(map[string]any)
	}
}

// checkAgainstSpec fails t unless the response's status is documented for
// the operation and its JSON body matches the documented schema.
func checkAgainstSpec(t testing.TB, method, path string, r response) {
	t.Helper()
	if err := loadSpec(); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	var op *specOp
	for i := range spec.ops {
		if spec.ops[i].method == method && spec.ops[i].re.MatchString(path) {
			if op == nil || len(spec.ops[i].path) > len(op.path) || !strings.Contains(spec.ops[i].path, "{") {
				op = &spec.ops[i]
			}
		}
	}
	if op == nil {
		if r.status != http.StatusNotFound && r.status != http.StatusMethodNotAllowed {
			t.Errorf("%s %s: not in the OpenAPI document but answered %d", method, path, r.status)
		}
		return
	}
	spec.mu.Lock()
	key := op.method + " " + op.path
	if spec.seen[key] == nil {
		spec.seen[key] = map[int]bool{}
	}
	spec.seen[key][r.status] = true
	spec.mu.Unlock()

	opObj := spec.doc["paths"].(map[string]any)[op.path].(map[string]any)[strings.ToLower(method)].(map[string]any)
	responses := opObj["responses"].(map[string]any)
	code := strconv.Itoa(r.status)
	respObj, ok := responses[code].(map[string]any)
	if !ok {
		t.Errorf("%s: status %d is not documented (body %s)", key, r.status, clip(r.body))
		return
	}
	ptr := "/paths/" + pointerEscape(op.path) + "/" + strings.ToLower(method) + "/responses/" + code
	respObj, ptr = resolve(respObj, ptr)
	content, _ := respObj["content"].(map[string]any)
	if len(content) == 0 {
		if len(r.body) != 0 {
			t.Errorf("%s %d: documented without a body, got %s", key, r.status, clip(r.body))
		}
		return
	}
	mt, _, _ := mime.ParseMediaType(r.header.Get("Content-Type"))
	media, ok := content[mt].(map[string]any)
	if !ok {
		t.Errorf("%s %d: Content-Type %q is not documented", key, r.status, mt)
		return
	}
	if mt != "application/json" && mt != "application/problem+json" {
		return // streams: CSV, JSON Lines, SSE
	}
	loc := specURL + "#" + ptr + "/content/" + pointerEscape(mt) + "/schema"
	_ = media
	spec.mu.Lock()
	sch, ok := spec.schemas[loc]
	if !ok {
		var err error
		sch, err = spec.compiler.Compile(loc)
		if err != nil {
			spec.mu.Unlock()
			t.Fatalf("compile %s: %v", loc, err)
		}
		spec.schemas[loc] = sch
	}
	spec.mu.Unlock()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(r.body))
	if err != nil {
		t.Errorf("%s %d: body is not JSON: %v: %s", key, r.status, err, clip(r.body))
		return
	}
	if err := sch.Validate(inst); err != nil {
		t.Errorf("%s %d: body does not match the OpenAPI schema: %v\nbody: %s", key, r.status, err, clip(r.body))
	}
}

// TestOpenAPIDocument validates openapi.json against the OpenAPI 3.1 schema
// and every component schema against JSON Schema 2020-12.
func TestOpenAPIDocument(t *testing.T) {
	c := jsonschema.NewCompiler()
	meta, err := jsonschema.UnmarshalJSON(strings.NewReader(datamodel.OpenAPI31SchemaData))
	if err != nil {
		t.Fatal(err)
	}
	const metaURL = "https://spec.openapis.org/oas/3.1/schema/2022-10-07"
	if err := c.AddResource(metaURL, meta); err != nil {
		t.Fatal(err)
	}
	oas, err := c.Compile(metaURL)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(trailserver.OpenAPI))
	if err != nil {
		t.Fatal(err)
	}
	if err := oas.Validate(doc); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI 3.1 document: %v", err)
	}
	// A broken document must fail the same check (the test can fail).
	var broken map[string]any
	json.Unmarshal(trailserver.OpenAPI, &broken)
	broken["paths"].(map[string]any)["/v1/events"].(map[string]any)["get"].(map[string]any)["responses"] = "none"
	if oas.Validate(broken) == nil {
		t.Fatal("a document with responses: \"none\" validated")
	}
	if err := loadSpec(); err != nil {
		t.Fatal(err)
	}
	for name := range spec.doc["components"].(map[string]any)["schemas"].(map[string]any) {
		if _, err := spec.compiler.Compile(specURL + "#/components/schemas/" + name); err != nil {
			t.Errorf("schema %s: %v", name, err)
		}
	}
}

// TestOpenAPIMatchesRoutes checks that every documented operation is served.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	f := newFixture(t, backends[0], nil)
	if err := loadSpec(); err != nil {
		t.Fatal(err)
	}
	for _, op := range spec.ops {
		path := strings.NewReplacer("{id}", "x", "{type}", "user").Replace(op.path)
		r := f.do(op.method, path, "", nil)
		if r.status == http.StatusNotFound && r.header.Get("Content-Type") == "application/problem+json" && !strings.Contains(op.path, "{") {
			t.Errorf("%s %s is documented but not served", op.method, op.path)
		}
	}
	// The other way, every served route documented: TestOpenAPIListsEveryRoute.
}

// TestMain checks, after a full run of the package's tests, that every
// operation of the OpenAPI document answered 2xx at least once (each answer
// having been checked against the document by fixture.do).
func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if code == 0 && flag.Lookup("test.run").Value.String() == "" && flag.Lookup("test.skip").Value.String() == "" {
		if err := loadSpec(); err != nil {
			fmt.Fprintln(os.Stderr, "openapi.json:", err)
			os.Exit(1)
		}
		if missing := specCoverage(); len(missing) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: documented operations that no test saw answer 2xx: %v\n", missing)
			code = 1
		}
	}
	os.Exit(code)
}

// specCoverage reports operations that no test saw succeed.
func specCoverage() []string {
	spec.mu.Lock()
	defer spec.mu.Unlock()
	var missing []string
	for _, op := range spec.ops {
		key := op.method + " " + op.path
		ok := false
		for st := range spec.seen[key] {
			ok = ok || (st >= 200 && st < 300)
		}
		if !ok {
			missing = append(missing, key)
		}
	}
	sort.Strings(missing)
	return slices.Compact(missing)
}
