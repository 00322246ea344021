package trailclient_test

import (
	"html/template"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/trailhq/trail/trailclient"
)

// A SaaS shows each customer its own audit log: its "Audit log" page asks
// Trail for a short-lived viewer link scoped to the customer's tenant and
// embeds it. The SaaS's origin must be in the tenant's frame_origins
// (SetViewerSettings), or the browser refuses the frame.
func ExampleClient_ViewerToken() {
	trail, err := trailclient.New(trailclient.Config{
		BaseURL: "https://trail.example",
		Key:     os.Getenv("TRAIL_ADMIN_KEY"), // an admin key (all tenants, or the tenant's own)
	})
	if err != nil {
		log.Fatal(err)
	}
	page := template.Must(template.New("audit").Parse(`<!doctype html>
<script src="https://trail.example/viewer/static/embed.js" defer></script>
<h1>Audit log</h1>
<trail-viewer src="{{.URL}}"></trail-viewer>`))

	http.HandleFunc("GET /settings/audit", func(w http.ResponseWriter, r *http.Request) {
		tenant, user := r.Header.Get("X-Tenant"), r.Header.Get("X-User") // from the SaaS's own session
		vt, err := trail.ViewerToken(r.Context(), trailclient.ViewerTokenRequest{
			Tenant:    tenant,
			ExpiresIn: 30 * time.Minute,
			Viewer:    &trailclient.ViewerPerson{ID: user},
			Export:    true,
		})
		if err != nil {
			http.Error(w, "the audit log is unavailable", http.StatusBadGateway)
			return
		}
		page.Execute(w, vt)
	})
}
