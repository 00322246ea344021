package trailserver_test

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/trailhq/trail/server/trailserver"
	"github.com/trailhq/trail/trailseal"
)

// servedRoutes returns the patterns the package registers with s.handle,
// read from its source, so that a new route cannot be forgotten in a list.
func servedRoutes(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) < 2 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "handle" {
				return true
			}
			if lit, ok := call.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				p, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				routes = append(routes, p)
			}
			return true
		})
	}
	if len(routes) < 20 {
		t.Fatalf("found %d s.handle routes in the source: is the parse broken?", len(routes))
	}
	return routes
}

// TestOpenAPIListsEveryRoute: every route the server registers is an
// operation of openapi.json, and every operation is registered.
func TestOpenAPIListsEveryRoute(t *testing.T) {
	if err := loadSpec(); err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, op := range spec.ops {
		documented[op.method+" "+op.path] = true
	}
	served := map[string]bool{}
	for _, r := range servedRoutes(t) {
		served[r] = true
		if !documented[r] {
			t.Errorf("route %s is served but not in openapi.json", r)
		}
	}
	for r := range documented {
		if !served[r] {
			t.Errorf("openapi.json documents %s, which no s.handle registers", r)
		}
	}
}

// specQueryParams returns the query parameters openapi.json documents for an
// operation (its own and its path item's).
func specQueryParams(method, path string) []string {
	item := spec.doc["paths"].(map[string]any)[path].(map[string]any)
	op := item[strings.ToLower(method)].(map[string]any)
	var names []string
	for _, list := range []any{item["parameters"], op["parameters"]} {
		ps, _ := list.([]any)
		for _, p := range ps {
			pm, _ := resolve(p.(map[string]any), "")
			if pm["in"] == "query" {
				names = append(names, pm["name"].(string))
			}
		}
	}
	slices.Sort(names)
	return names
}

// TestOpenAPIQueryParameters: the query parameters each endpoint accepts are
// the ones openapi.json documents. Endpoints refuse a parameter they do not
// know with a 400 that lists the ones they take; that list is compared with
// the document, both ways.
func TestOpenAPIQueryParameters(t *testing.T) {
	var in *trailserver.Integrity
	f := newFixture(t, backends[0], func(c *trailserver.Config) {
		withRetention(c)
		in = &trailserver.Integrity{Log: c.Store.(trailseal.Store), Origin: testOrigin, Witness: trailseal.DirWitness{Dir: t.TempDir()}}
		c.Integrity = in
	})
	if err := loadSpec(); err != nil {
		t.Fatal(err)
	}
	ignored := []string{}
	for _, op := range spec.ops {
		path := strings.NewReplacer("{id}", f.acmeEvent.String(), "{type}", "user", "{tenant}", "acme").Replace(op.path)
		r := f.do(op.method, path+"?zz_unknown=1", "admin", nil)
		want := specQueryParams(op.method, op.path)
		var p trailserver.Problem
		json.Unmarshal(r.body, &p)
		_, takes, refused := strings.Cut(p.Detail, "this endpoint takes ")
		if r.status != http.StatusBadRequest || p.Field != "zz_unknown" || !refused {
			if len(want) > 0 {
				t.Errorf("%s %s documents %v but answered an unknown parameter %d %s", op.method, op.path, want, r.status, clip(r.body))
			}
			ignored = append(ignored, op.method+" "+op.path)
			continue
		}
		var got []string
		if takes != "" {
			got = strings.Split(takes, ", ")
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s %s takes %v, openapi.json documents %v", op.method, op.path, got, want)
		}
	}
	t.Logf("endpoints that ignore query parameters (none documented): %v", ignored)
}

// docURL finds the API paths the docs write, with their query strings.
var docURL = regexp.MustCompile(`/v1/[A-Za-z0-9/{}._*-]*(?:\?[^\s` + "`" + `'"]*)?`)

// TestAPIDocsMatchOpenAPI: docs/api.md names every operation and every query
// parameter of openapi.json, and every query string the docs write uses only
// parameters its endpoint takes.
func TestAPIDocsMatchOpenAPI(t *testing.T) {
	if err := loadSpec(); err != nil {
		t.Fatal(err)
	}
	apiMD, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range apiDocProblems(string(apiMD)) {
		t.Error(p)
	}
	docs, _ := filepath.Glob("../../docs/*.md")
	for _, name := range append(docs, "../../README.md") {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range docQueryProblems(filepath.Base(name), string(b)) {
			t.Error(p)
		}
	}
	// Both checks can fail.
	if len(apiDocProblems("`GET /v1/events`")) == 0 || len(docQueryProblems("t.md", "`GET /v1/tail?tenant=acme&limit=5`")) != 1 {
		t.Error("a document missing operations, or one with a wrong parameter, passed")
	}
}

// apiDocProblems names each operation and query parameter of openapi.json
// that the API document md does not mention.
func apiDocProblems(md string) []string {
	var problems []string
	for _, op := range spec.ops {
		pat := regexp.QuoteMeta(op.method) + " " + regexp.MustCompile(`\\\{[^/]+\\\}`).ReplaceAllString(regexp.QuoteMeta(op.path), `[^/\s`+"`"+`]+`) + "[`?\\[ ]"
		if !regexp.MustCompile(pat).MatchString(md) {
			problems = append(problems, fmt.Sprintf("docs/api.md does not name %s %s", op.method, op.path))
		}
		for _, q := range specQueryParams(op.method, op.path) {
			if !strings.Contains(md, "`"+q+"`") && !strings.Contains(md, q+"=") {
				problems = append(problems, fmt.Sprintf("docs/api.md does not name the parameter %s of %s %s", q, op.method, op.path))
			}
		}
	}
	return problems
}

// docQueryProblems names each query parameter written in a document's API
// paths that no operation of that path takes.
func docQueryProblems(file, md string) []string {
	var problems []string
	for _, u := range docURL.FindAllString(md, -1) {
		path, query, ok := strings.Cut(u, "?")
		if !ok {
			continue
		}
		var takes []string
		matched := false
		for _, op := range spec.ops {
			if op.re.MatchString(path) {
				matched = true
				takes = append(takes, specQueryParams(op.method, op.path)...)
			}
		}
		if !matched {
			problems = append(problems, fmt.Sprintf("%s: %s: no operation has the path %s", file, u, path))
			continue
		}
		for _, kv := range strings.Split(strings.NewReplacer("[", "", "]", "").Replace(query), "&") {
			k, _, _ := strings.Cut(kv, "=")
			if !slices.Contains(takes, k) {
				problems = append(problems, fmt.Sprintf("%s: %s: %s takes no parameter %q", file, u, path, k))
			}
		}
	}
	return problems
}

// filterTableProblems reads docs/api.md's table of filters (the endpoints it
// names in its heading line; a row's "not on export/tail" leaves those out)
// and names each parameter an endpoint it claims does not take.
func filterTableProblems(md string) []string {
	_, rest, ok := strings.Cut(md, "Filters, as query parameters, on ")
	if !ok {
		return []string{"docs/api.md has no \"Filters, as query parameters, on\" table"}
	}
	head, rest, _ := strings.Cut(rest, "\n")
	endpoints := docURL.FindAllString(head, -1)
	table, _, _ := strings.Cut(strings.TrimLeft(rest, "\n"), "\n\n")
	var problems []string
	for _, row := range strings.Split(table, "\n")[2:] {
		cells := strings.Split(row, "|")
		if len(cells) < 3 {
			continue
		}
		_, not, _ := strings.Cut(cells[2], "(not on ")
		if i := strings.IndexAny(not, ":;,)"); i >= 0 {
			not = not[:i]
		}
		for i, name := range strings.Split(cells[1], "`") {
			if i%2 == 0 {
				continue
			}
			for _, ep := range endpoints {
				if not != "" && strings.Contains(not, strings.TrimPrefix(ep, "/v1/")) {
					continue
				}
				if !slices.Contains(specQueryParams("GET", ep), name) {
					problems = append(problems, fmt.Sprintf("docs/api.md's filter table offers %s on GET %s, which does not take it", name, ep))
				}
			}
		}
	}
	if len(endpoints) < 2 {
		problems = append(problems, fmt.Sprintf("the filter table names %v", endpoints))
	}
	return problems
}

// TestAPIDocsFilterTable: each filter docs/api.md's table offers is taken by
// every endpoint the table names, unless its row says otherwise.
func TestAPIDocsFilterTable(t *testing.T) {
	if err := loadSpec(); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range filterTableProblems(string(md)) {
		t.Error(p)
	}
	bad := "Filters, as query parameters, on `GET /v1/events` and `/v1/tail`:\n\n| parameter | meaning |\n|---|---|\n| `limit` | page size |\n| `cursor` | next (not on tail) |\n\n"
	if got := filterTableProblems(bad); len(got) != 1 || !strings.Contains(got[0], "limit on GET /v1/tail") {
		t.Errorf("a table offering limit on the tail gave %q", got)
	}
}
