package trailserver_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/trailhq/trail/trailclient"
)

// TestViewerClient: trailclient asks for viewer tokens and sets a tenant's
// viewer settings, through the real server.
func TestViewerClient(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b, nil)
		ctx := context.Background()
		c, err := trailclient.New(trailclient.Config{BaseURL: f.ts.URL, Key: f.secret["adminA"]})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		vs, err := c.SetViewerSettings(ctx, "acme", trailclient.ViewerSettings{FrameOrigins: []string{"https://app.example.com"}, Name: "Acme Cloud"})
		if err != nil || vs.Name != "Acme Cloud" {
			t.Fatalf("SetViewerSettings: %+v %v", vs, err)
		}
		if got, err := c.ViewerSettings(ctx, "acme"); err != nil || len(got.FrameOrigins) != 1 || got.FrameOrigins[0] != "https://app.example.com" {
			t.Fatalf("ViewerSettings: %+v %v", got, err)
		}
		vt, err := c.ViewerToken(ctx, trailclient.ViewerTokenRequest{Tenant: "acme", ExpiresIn: 10 * time.Minute,
			Viewer: &trailclient.ViewerPerson{ID: "cust_9", Email: "it@customer.test"}, Actions: []string{"user.*"}})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(vt.URL, f.ts.URL+"/viewer/?token=") || vt.Tenant != "acme" {
			t.Fatalf("token %+v", vt)
		}
		if d := time.Until(vt.ExpiresAt); d < 9*time.Minute || d > 11*time.Minute {
			t.Fatalf("expires in %s, want 10m", d)
		}
		resp, err := http.Get(vt.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors https://app.example.com") {
			t.Fatalf("viewer: %d %s", resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
		}
		_, err = c.ViewerToken(ctx, trailclient.ViewerTokenRequest{Tenant: "globex"})
		var ae *trailclient.APIError
		if !errors.As(err, &ae) || ae.Status != http.StatusForbidden {
			t.Fatalf("a token for another tenant: %v", err)
		}
	})
}
