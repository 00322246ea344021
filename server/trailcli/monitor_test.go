package trailcli

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailseal/sealtest"
)

// publicKeyOf returns the public key of a signing key file.
func publicKeyOf(t *testing.T, key string) string {
	t.Helper()
	r := mustRun(t, "", env{}, "keys", "signing", "show", "--signing-key-file", key)
	return strings.TrimSpace(r.stdout)
}

func TestMonitorStoreSQLite(t *testing.T)   { runMonitorAttacks(t, newSQLiteAttack) }
func TestMonitorStorePostgres(t *testing.T) { runMonitorAttacks(t, newPGAttack) }

// trail monitor on a store: it accepts growth (consistency proof), and
// fails, keeping the last good state, on a store rolled back to a backup
// and on a tail rewritten with re-signed checkpoints.
func runMonitorAttacks(t *testing.T, open func(t *testing.T) attackStore) {
	monitor := func(t *testing.T, s attackStore, args []string, state string) result {
		t.Helper()
		// args end in --signing-key-file KEY: the monitor takes the public key only.
		key := args[len(args)-1]
		return run(t, "", env{}, append([]string{"monitor", "--state", state, "--public-key", publicKeyOf(t, key)}, args[:len(args)-2]...)...)
	}
	t.Run("rolled back", func(t *testing.T) {
		s := open(t)
		state := filepath.Join(t.TempDir(), "monitor.json")
		s.append(t, sealtest.Events(t, "acme", 0, 6))
		mustRun(t, "", env{}, append([]string{"seal"}, s.args()...)...)
		if r := monitor(t, s, s.args(), state); r.code != 0 || !strings.Contains(r.stdout, "OK: 1 tenants") || !strings.Contains(r.stdout, "acme 6") {
			t.Fatalf("first run: %d %q %q", r.code, r.stdout, r.stderr)
		}
		old := s.backup(t)
		s.append(t, sealtest.Events(t, "acme", 6, 4))
		mustRun(t, "", env{}, append([]string{"seal"}, s.args()...)...)
		if r := monitor(t, s, s.args(), state); r.code != 0 || !strings.Contains(r.stdout, "acme 10") {
			t.Fatalf("after growth: %d %q %q", r.code, r.stdout, r.stderr)
		}
		r := monitor(t, s, old, state)
		if r.code != 1 || !strings.Contains(r.stdout, `PROBLEM tenant "acme": rolled_back`) {
			t.Fatalf("rolled back: %d %q %q", r.code, r.stdout, r.stderr)
		}
		// The state still holds size 10: the problem is reported again.
		if b, _ := os.ReadFile(state); !strings.Contains(string(b), `"size": 10`) {
			t.Fatalf("state after a refused rollback: %s", b)
		}
		if r := monitor(t, s, old, state); r.code != 1 {
			t.Fatalf("second run on the rolled-back store: %d", r.code)
		}
	})
	t.Run("tail rewritten and re-signed", func(t *testing.T) {
		s := open(t)
		state := filepath.Join(t.TempDir(), "monitor.json")
		s.append(t, sealtest.Events(t, "acme", 0, 10))
		mustRun(t, "", env{}, append([]string{"seal"}, s.args()...)...)
		if r := monitor(t, s, s.args(), state); r.code != 0 {
			t.Fatalf("first run: %d %q %q", r.code, r.stdout, r.stderr)
		}
		rewriteTail(t, s, "true")
		r := monitor(t, s, s.args(), state)
		if r.code != 1 || !strings.Contains(r.stdout, `PROBLEM tenant "acme": forked`) {
			t.Fatalf("rewritten tail: %d %q %q", r.code, r.stdout, r.stderr)
		}
	})
}

// trail serve --witness writes every checkpoint and head to the witness;
// trail monitor --url follows the server through the API (checkpoints,
// consistency proofs, the head and the tenant's proof in it); verify
// --witness passes afterwards.
func TestServeWitnessAndMonitorURL(t *testing.T) {
	db := tempDB(t)
	st, err := trailsqlite.Open(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Append(context.Background(), sealtest.Events(t, "acme", 0, 5)); err != nil {
		t.Fatal(err)
	}
	wdir := t.TempDir()
	base, key, stop := startServe(t, db, "--checkpoint-interval", "50ms", "--seal-interval", "20ms", "--witness", "dir:"+wdir)
	pub, _ := os.ReadFile(db + ".signing.pub")
	state := filepath.Join(t.TempDir(), "monitor.json")
	mon := func() result {
		return run(t, "", env{}, "monitor", "--url", base, "--api-key", key, "--tenant", "acme", "--state", state, "--public-key", strings.TrimSpace(string(pub)))
	}
	waitSize := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			r := mon()
			if r.code == 0 && strings.Contains(r.stdout, "acme "+strconv.FormatInt(n, 10)+")") {
				return
			}
			if r.code != 0 || time.Now().After(deadline) {
				t.Fatalf("monitor waiting for acme %d: %d %q %q", n, r.code, r.stdout, r.stderr)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitSize(5)
	if _, err := st.Append(context.Background(), sealtest.Events(t, "acme", 5, 3)); err != nil {
		t.Fatal(err)
	}
	st.Close()
	waitSize(8)
	if code, out := stop(); code != 0 {
		t.Fatalf("serve exit %d: %s", code, out)
	}
	keys, err := filepath.Glob(filepath.Join(wdir, "checkpoints", "acme", "*.note"))
	if err != nil || len(keys) < 2 {
		t.Fatalf("witnessed checkpoints: %v %v", keys, err)
	}
	heads, _ := filepath.Glob(filepath.Join(wdir, "heads", "*.head"))
	if len(heads) == 0 {
		t.Fatal("no head witnessed")
	}
	if r := mustRun(t, db, env{}, "verify", "--witness", "dir:"+wdir); !strings.Contains(r.stdout, "OK:") {
		t.Fatalf("verify --witness: %q", r.stdout)
	}
}
