package trailserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailserver"
)

// gate is a Transform that holds ingest requests until released, so that
// the test can shut down with requests provably in flight.
type gate struct {
	entered chan struct{}
	release chan struct{}
	n       atomic.Int64
	want    int64 // requests to hold before entered closes
}

func (g *gate) Transform(ctx context.Context, ev *trail.Event) error {
	if g.n.Add(1) == g.want {
		close(g.entered)
	}
	<-g.release
	return nil
}

// identity is a Transform that changes nothing.
type identity struct{}

func (identity) Transform(context.Context, *trail.Event) error { return nil }

// TestGracefulShutdown starts the server, gets ingest requests in flight,
// cancels (as SIGTERM does in trail serve), and checks that the in-flight
// requests are acknowledged, that every acknowledged event is stored, that
// new connections are refused, and that open tail streams end.
func TestGracefulShutdown(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		const clients = 8
		g := &gate{entered: make(chan struct{}), release: make(chan struct{}), want: clients}
		// The gate holds ingest only: the server's own events (the tail's
		// audit.read) must not wait on it.
		f := newFixture(t, b, func(c *trailserver.Config) { c.Transform, c.OwnTransform = g, identity{} })
		f.ts.Close() // serve on our own listener through Serve instead
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := "http://" + ln.Addr().String()
		ctx, stop := context.WithCancel(context.Background())
		served := make(chan error, 1)
		go func() { served <- f.srv.Serve(ctx, ln, 30*time.Second) }()

		// A tail stream, open before the shutdown.
		treq, _ := http.NewRequest("GET", addr+"/v1/tail", nil)
		treq.Header.Set("Authorization", "Bearer "+f.secret["readerA"])
		tresp, err := http.DefaultClient.Do(treq)
		if err != nil || tresp.StatusCode != 200 {
			t.Fatalf("tail: %v %v", err, tresp)
		}
		defer tresp.Body.Close()

		// Ingest requests in flight, held by the gate.
		type ack struct {
			ids    []string
			status int
			err    error
		}
		acks := make(chan ack, clients)
		for range clients {
			go func() {
				evs := []any{newEvent("acme"), newEvent("acme"), newEvent("acme")}
				var ids []string
				for _, e := range evs {
					ids = append(ids, e.(map[string]any)["id"].(string))
				}
				body, _ := json.Marshal(evs)
				req, _ := http.NewRequest("POST", addr+"/v1/events", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+f.secret["ingestA"])
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					acks <- ack{ids: ids, err: err}
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				acks <- ack{ids: ids, status: resp.StatusCode}
			}()
		}
		<-g.entered
		t0 := time.Now()
		stop() // SIGTERM
		// The listener closes: new connections are refused.
		for {
			c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
			if err != nil {
				break
			}
			c.Close()
			runtime.Gosched()
		}
		t.Logf("listener closed after %v", time.Since(t0))
		// The tail stream ends with a shutdown message.
		rest, _ := io.ReadAll(tresp.Body)
		if !strings.Contains(string(rest), "event: shutdown") {
			t.Errorf("tail stream ended without the shutdown event: %q", rest)
		}
		t.Logf("tail closed after %v", time.Since(t0))
		close(g.release)
		var acked []string
		for range clients {
			a := <-acks
			switch {
			case a.err == nil && a.status == http.StatusCreated:
				acked = append(acked, a.ids...)
			case a.err == nil:
				t.Errorf("ingest answered %d during shutdown", a.status)
			default:
				// Not acknowledged: the client must retry; nothing is promised.
			}
		}
		if err := <-served; err != nil {
			t.Fatalf("Serve: %v", err)
		}
		if len(acked) != clients*3 {
			t.Fatalf("%d events acknowledged, want all %d in flight at shutdown", len(acked), clients*3)
		}
		for _, id := range acked {
			if _, err := f.store.Get(context.Background(), uuid.MustParse(id)); err != nil {
				t.Errorf("acknowledged event %s is not stored: %v", id, err)
			}
		}
		t.Logf("%d events acknowledged during shutdown, all stored", len(acked))
		if _, err := http.Get(addr + "/healthz"); err == nil || errors.Is(err, context.Canceled) {
			t.Error("the server still answers after shutdown")
		}
	})
}
