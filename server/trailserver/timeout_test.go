package trailserver_test

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestStreamsOutliveServerTimeouts: a tail stream stays open and delivers
// after the server's read and write timeouts have passed.
func TestStreamsOutliveServerTimeouts(t *testing.T) {
	f := newFixture(t, backends[0], nil)
	hs := f.srv.HTTPServer("")
	hs.ReadTimeout, hs.WriteTimeout = 100*time.Millisecond, 100*time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go hs.Serve(ln)
	defer hs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+ln.Addr().String()+"/v1/tail", nil)
	req.Header.Set("Authorization", "Bearer "+f.secret["readerA"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && sc.Text() != ": streaming" {
	}
	time.Sleep(400 * time.Millisecond) // past both timeouts (not a timed assertion: it only has to be longer)
	want := newEvent("acme")
	f.json("POST", "/v1/events", "ingestA", want)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			if !strings.Contains(d, want["id"].(string)) {
				t.Fatalf("got %s", d)
			}
			return
		}
	}
	t.Fatalf("the stream ended: %v", sc.Err())
}
