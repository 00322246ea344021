package trailui

import (
	"log/slog"
	"net/http/httptest"
	"slices"
	"testing"
)

// TestFacetWait: a page takes the pickers' values when they arrive, and does
// not wait for a read that has not answered (a cold scope's sample): it is
// rendered without them. No clock is read here: the second case only has to
// return while its read never answers.
func TestFacetWait(t *testing.T) {
	h := &Handler{log: slog.New(slog.DiscardHandler)}
	rq := &request{viewer: Viewer{Tenant: "acme"}}
	r := httptest.NewRequest("GET", "/", nil)

	ready := make(chan facetsRead, 1)
	ready <- facetsRead{fs: Facets{Actions: []string{"user.create"}}}
	d := h.withTenantsFrom(r, rq, &pageData{}, ready)
	if !slices.Equal(d.Facets.Actions, []string{"user.create"}) {
		t.Fatalf("facets that arrived: %+v", d.Facets)
	}

	never := make(chan facetsRead) // a read that does not answer
	d = h.withTenantsFrom(r, rq, &pageData{}, never)
	if len(d.Facets.Actions) != 0 {
		t.Fatalf("facets from nowhere: %+v", d.Facets)
	}
}
