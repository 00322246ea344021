package trailclient_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trailhq/trail/trailclient"
	"github.com/trailhq/trail/trailseal"
)

// TestLatestCheckpointRetryAfter: the monitor's checkpoint fetch (a text
// answer) goes through the client's one request path, so a 503 or 429
// carries the server's Retry-After into the backoff, a problem's field and
// detail are kept, and a note is returned as sent.
func TestLatestCheckpointRetryAfter(t *testing.T) {
	const noteText = "trail.example/acme\n3\nq2YcOoB9xnC0T7yBSkLwlJjzKm4U4P3tKYfAjZuCAmQ=\n\n— trail.example abc=\n"
	var calls atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		if r.URL.Path != "/v1/checkpoints/latest" || r.URL.Query().Get("format") != "note" || r.Header.Get("Authorization") != "Bearer trail_test" {
			w.WriteHeader(400)
			return
		}
		switch r.URL.Query().Get("tenant") {
		case "busy":
			w.Header().Set("Retry-After", "7")
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(503)
			io.WriteString(w, `{"type":"urn:trail:problem:unavailable","title":"Service unavailable","status":503,"detail":"store down"}`)
		case "none":
			w.WriteHeader(404)
		default:
			if n%2 == 1 { // every other call is rate limited first
				w.Header().Set("Retry-After", "0")
				w.WriteHeader(429)
				return
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			io.WriteString(w, noteText)
		}
	}))
	t.Cleanup(ts.Close)
	ctx := context.Background()

	one := newClient(t, ts.URL, func(c *trailclient.Config) { c.MaxAttempts = 1; c.MaxBackoff = time.Minute })
	_, err := one.LatestCheckpoint(ctx, "busy")
	var ae *trailclient.APIError
	if !errors.As(err, &ae) || ae.Status != 503 || ae.RetryAfter != 7*time.Second || ae.Detail != "store down" {
		t.Fatalf("503: %#v (%v), want status 503, RetryAfter 7s, detail", ae, err)
	}
	if _, err := one.LatestCheckpoint(ctx, "none"); !errors.Is(err, trailseal.ErrNoCheckpoint) {
		t.Fatalf("404: %v, want ErrNoCheckpoint", err)
	}

	c := newClient(t, ts.URL, nil)
	got, err := c.LatestCheckpoint(ctx, "acme")
	if err != nil || string(got) != noteText {
		t.Fatalf("note: %q, %v", got, err)
	}
}
