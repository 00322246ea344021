package trailcli

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail/trailseal"
)

// TestServeLogStreamForgetShared: trail serve's log streams reveal events
// through the server's own privacy layer. An event of a subject forgotten
// through the API after the stream revealed an earlier one (its key cached)
// is delivered erased, never in plaintext from a second layer's cache.
func TestServeLogStreamForgetShared(t *testing.T) { // not parallel: sets the environment
	t.Run("sqlite", func(t *testing.T) {
		t.Setenv("TRAIL_MASTER_KEY", "")
		testLogStreamForget(t)
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := freshPostgresDB(t)
		t.Setenv("TRAIL_MASTER_KEY", newMasterKey(t))
		skey, _, err := trailseal.GenerateSigningKey("trail.test")
		if err != nil {
			t.Fatal(err)
		}
		t.Setenv(trailseal.SigningKeyEnv, skey)
		testLogStreamForget(t, "--postgres", dsn)
	})
}

func testLogStreamForget(t *testing.T, serveArgs ...string) {
	a, b := uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
	const email = "nina@example.com"
	var (
		mu        sync.Mutex
		base, key string
		forgot    = make(chan error, 1)
		delivered = map[string]map[string]any{} // event ID -> actor
	)
	rcv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var recs []struct {
			Event struct {
				ID    string         `json:"id"`
				Actor map[string]any `json:"actor"`
			} `json:"event"`
		}
		json.Unmarshal(body, &recs)
		mu.Lock()
		for _, rec := range recs {
			delivered[rec.Event.ID] = rec.Event.Actor
		}
		first := len(recs) == 1 && recs[0].Event.ID == a.String()
		mu.Unlock()
		if first { // A revealed by the stream: forget its subject before B's batch
			req, _ := http.NewRequest("POST", base+"/v1/forget", strings.NewReader(`{"tenant":"acme","subject":"user:42"}`))
			req.Header.Set("Authorization", "Bearer "+key)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = &httpStatusError{resp.StatusCode}
				}
			}
			select {
			case forgot <- err:
			default:
			}
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer rcv.Close()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rcv.Certificate().Raw})

	db := tempDB(t)
	b0, k0, stop := startServe(t, db, append([]string{"--seal-interval", "20ms", "--checkpoint-events", "1"}, serveArgs...)...)
	mu.Lock()
	base, key = b0, k0
	mu.Unlock()
	post := func(path string, body any, want int) {
		t.Helper()
		js, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", base+path, bytes.NewReader(js))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("POST %s: %d %s", path, resp.StatusCode, out)
		}
	}
	post("/v1/log-streams", map[string]any{"tenant": "acme", "secret": "whsec_" + strings.Repeat("x", 32),
		"destination": map[string]any{"type": "webhook", "url": rcv.URL + "/hook", "ca_pem": string(ca)},
		"batching":    map[string]any{"max_events": 1, "max_wait_ms": 1}}, http.StatusCreated)
	ev := func(id uuid.UUID) map[string]any {
		return map[string]any{"id": id.String(), "tenant": "acme", "action": "user.update",
			"actor": map[string]any{"type": "user", "id": "42", "email": email}, "target": map[string]any{"type": "user", "id": "42"}}
	}
	post("/v1/events", map[string]any{"events": []any{ev(a), ev(b)}}, http.StatusCreated)

	deadline := time.Now().Add(60 * time.Second) // a bound for a broken delivery, never what the test waits for
	for {
		mu.Lock()
		actor, ok := delivered[b.String()]
		first := delivered[a.String()]
		mu.Unlock()
		if ok {
			if err := <-forgot; err != nil {
				t.Fatalf("forget: %v", err)
			}
			if first["email"] != email {
				t.Fatalf("A, before the forget, delivered with email %v, want %q", first["email"], email)
			}
			if actor["email"] == email {
				t.Fatalf("B, after user:42 was forgotten, delivered with its email in plaintext: %v", actor)
			}
			return
		}
		if time.Now().After(deadline) {
			_, out := stop()
			t.Fatalf("B was not delivered; got %v\n%s", delivered, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type httpStatusError struct{ code int }

func (e *httpStatusError) Error() string { return http.StatusText(e.code) }
