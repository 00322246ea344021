package trailclient_test

import (
	"context"
	"fmt"
	"log"

	"github.com/trailhq/trail/trailclient"
	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/note"
)

// Watch a tenant's log from outside, as Go's checksum-database client
// does: the state file remembers the last checkpoint and head accepted, and
// every check proves the new ones extend them.
func ExampleMonitor() {
	ctx := context.Background()
	client, err := trailclient.New(trailclient.Config{BaseURL: "https://audit.example.com", Key: "trail_…"})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close(ctx)
	// The deployment's public key, obtained out of band and pinned.
	v, err := trailseal.ParseVerifierKey("audit.example.com+1a2b3c4d+AbCd…")
	if err != nil {
		log.Fatal(err)
	}
	m := &trailclient.Monitor{
		Source:    client,
		State:     trailclient.FileState{Path: "acme-monitor.json"},
		Verifiers: note.VerifierList(v),
		Origin:    "audit.example.com",
		Tenants:   []string{"acme"},
	}
	rep, err := m.Check(ctx)
	if err != nil {
		log.Fatal(err) // the server or the state file could not be read
	}
	for _, p := range rep.Problems {
		fmt.Println(p) // PROBLEM tenant "acme": rolled_back: …
	}
}
