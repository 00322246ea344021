package trailcli

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"

	"github.com/trailhq/trail/server/trailserver"
	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/tlog"
)

// TestQueryStored: trail query --stored prints events as stored (the
// ciphertext, not the revealed values) with their log and seq, and each
// line rebuilds the leaf that trail prove proves.
func TestQueryStored(t *testing.T) {
	t.Parallel()
	db := tempDB(t)
	mustRun(t, db, env{stdin: keyAttackEvents}, "record", "-")
	mustRun(t, db, env{}, "seal")
	r := mustRun(t, db, env{}, "query", "--stored", "--tenant", "acme")
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		var l trailserver.StoredLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("%v: %s", err, sc.Text())
		}
		n++
		if l.Log != "acme" || l.Seq == nil {
			t.Fatalf("line without log or seq: %s", sc.Text())
		}
		if !strings.HasPrefix(l.Event.Actor.Email, "enc:v1:") || strings.Contains(sc.Text(), "@example.com") {
			t.Fatalf("--stored revealed a value: %s", sc.Text())
		}
		p, err := trailseal.ParseInclusionProof([]byte(mustRun(t, db, env{}, "prove", l.Event.ID.String()).stdout))
		if err != nil {
			t.Fatal(err)
		}
		canon, err := l.Event.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		if p.Index != *l.Seq || tlog.RecordHash(canon) != p.LeafHash {
			t.Fatalf("seq %d / proof index %d, leaf rebuilt %s / proven %s", *l.Seq, p.Index, tlog.RecordHash(canon), p.LeafHash)
		}
	}
	if n != 3 {
		t.Fatalf("%d lines, want 3:\n%s", n, r.stdout)
	}
	if r := run(t, db, env{}, "query", "--stored", "--archive"); r.code != ExitUsage {
		t.Fatalf("--stored --archive: exit %d", r.code)
	}
}
