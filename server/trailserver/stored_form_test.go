package trailserver_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/trailhq/trail/server/trailserver"
	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/tlog"
)

// TestExportStoredForm: an admin key exports events as stored with the log
// and seq of their leaves, and an outsider rebuilds each leaf from a line
// alone; readers cannot ask for it.
func TestExportStoredForm(t *testing.T) {
	f, sl, _ := integrityFixture(t, backends[0])
	ctx := context.Background()
	if _, err := sl.SealAll(ctx); err != nil {
		t.Fatal(err)
	}
	r := f.do("GET", "/v1/export?form=stored", "admin", nil)
	if r.status != http.StatusOK {
		t.Fatalf("export form=stored: %d %s", r.status, r.body)
	}
	lines := 0
	sc := bufio.NewScanner(bytes.NewReader(r.body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l trailserver.StoredLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines++
		if l.Log != trailseal.LogName(l.Event.Tenant) {
			t.Errorf("log %q for tenant %q", l.Log, l.Event.Tenant)
		}
		if l.Event.ID != f.acmeEvent {
			continue
		}
		// Byte for byte the stored event (ciphertext stays ciphertext).
		st, err := f.store.Get(ctx, l.Event.ID)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := st.Canonical()
		if got, _ := l.Event.Canonical(); !bytes.Equal(got, want) {
			t.Errorf("line differs from the stored event:\n%s\n%s", got, want)
		}
		// The leaf rebuilt from the line is the one the log proves.
		pr := f.do("GET", "/v1/events/"+f.acmeEvent.String()+"/proof", "readerA", nil)
		p, err := trailseal.ParseInclusionProof(pr.body)
		if err != nil {
			t.Fatal(err)
		}
		canon, err := l.Event.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		if l.Seq == nil || *l.Seq != p.Index || tlog.RecordHash(canon) != p.LeafHash {
			t.Fatalf("line seq %v, proof index %d; leaf rebuilt %s, proven %s", l.Seq, p.Index, tlog.RecordHash(canon), p.LeafHash)
		}
	}
	if lines == 0 {
		t.Fatal("empty export")
	}
	// Tenant admins get their tenant's; readers and CSV are refused.
	if r := f.do("GET", "/v1/export?form=stored", "adminA", nil); r.status != http.StatusOK || strings.Contains(string(r.body), `"globex"`) {
		t.Fatalf("tenant admin: %d %.300s", r.status, r.body)
	}
	for _, c := range []struct {
		path, key string
		status    int
	}{
		{"/v1/export?form=stored", "readerA", http.StatusForbidden},
		{"/v1/export?form=stored", "readerAll", http.StatusForbidden},
		{"/v1/export?form=stored&format=csv", "admin", http.StatusBadRequest},
		{"/v1/export?form=raw", "admin", http.StatusBadRequest},
	} {
		if r := f.do("GET", c.path, c.key, nil); r.status != c.status {
			t.Errorf("%s as %s: %d, want %d: %s", c.path, c.key, r.status, c.status, r.body)
		}
	}
}
