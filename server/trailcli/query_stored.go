package trailcli

import (
	"encoding/json"
	"fmt"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailserver"
	"github.com/trailhq/trail/trailseal"
)

// runStoredQuery prints a page of events exactly as stored (nothing
// revealed) as JSON Lines of trailserver.StoredLine — {log, seq, event}, as
// GET /v1/export?form=stored writes them — so that leaves can be rebuilt
// from the output (docs/verification.md §12). The CLI reads the database
// directly, as its administrator.
func (e *Env) runStoredQuery(postgres string, q trail.Query) error {
	b, err := e.openEvents(postgres, false) // store.go
	if err != nil {
		return err
	}
	defer b.close()
	page, err := b.store.Query(e.Ctx, q)
	if err != nil {
		return err
	}
	seqs := map[uuid.UUID]int64{}
	if li, ok := b.store.(trailserver.LeafIndexer); ok && len(page.Events) > 0 {
		ids := make([]uuid.UUID, len(page.Events))
		for i := range page.Events {
			ids[i] = page.Events[i].ID
		}
		if seqs, err = li.LeafIndexes(e.Ctx, ids); err != nil {
			return err
		}
	}
	enc := json.NewEncoder(e.Stdout)
	enc.SetEscapeHTML(false)
	for i := range page.Events {
		line := trailserver.StoredLine{Log: trailseal.LogName(page.Events[i].Tenant), Event: page.Events[i]}
		if n, ok := seqs[page.Events[i].ID]; ok {
			line.Seq = &n
		}
		if err := enc.Encode(line); err != nil {
			return err
		}
	}
	if page.Next != "" {
		fmt.Fprintf(e.Stderr, "more events: repeat with --cursor %s\n", page.Next)
	}
	return nil
}
