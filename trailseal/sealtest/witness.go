package sealtest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/note"
)

// WitnessReadWriter is a witness that can be read back.
type WitnessReadWriter interface {
	trailseal.Witness
	trailseal.WitnessReader
}

// RunWitness is the contract every witness passes (trailseal.DirWitness,
// and the S3 and HTTP witnesses of the server module): objects are kept
// byte for byte, never replaced (the same bytes again succeed, other bytes
// fail with ErrWitnessConflict), listed sorted by prefix; and a sealer
// writing to it leaves every checkpoint it signed there, so that
// CheckWitness passes on the untouched store and reports the log rolled
// back once it is truncated. w must be empty.
func RunWitness(t *testing.T, w WitnessReadWriter) {
	ctx := context.Background()
	put := func(key, body string) error { return w.Put(ctx, key, []byte(body)) }
	if err := put("checkpoints/acme/b", "two"); err != nil {
		t.Fatal(err)
	}
	if err := put("checkpoints/acme/a", "one"); err != nil {
		t.Fatal(err)
	}
	if err := put("heads/x", "head"); err != nil {
		t.Fatal(err)
	}
	if err := put("checkpoints/acme/a", "one"); err != nil {
		t.Fatalf("the same bytes again: %v", err)
	}
	if err := put("checkpoints/acme/a", "ONE"); !errors.Is(err, trailseal.ErrWitnessConflict) {
		t.Fatalf("other bytes under a kept key: %v, want ErrWitnessConflict", err)
	}
	if b, err := w.Get(ctx, "checkpoints/acme/a"); err != nil || string(b) != "one" {
		t.Fatalf("get after a refused replace: %q %v", b, err)
	}
	keys, err := w.List(ctx, "checkpoints/")
	if err != nil || !slices.Equal(keys, []string{"checkpoints/acme/a", "checkpoints/acme/b"}) {
		t.Fatalf("list checkpoints/: %q %v", keys, err)
	}
	if _, err := w.Get(ctx, "checkpoints/none"); err == nil {
		t.Fatal("get of a missing key succeeded")
	}

	// A sealer writing to it.
	m := trailseal.NewMemLog()
	if _, err := m.Append(ctx, append(Events(t, "acme", 0, 5), Events(t, "globex", 0, 3)...)); err != nil {
		t.Fatal(err)
	}
	signer, verifier := TestKey(t, "witness.example")
	cfg := &trailseal.Config{Signer: signer, Origin: "witness.example", Witnesses: []trailseal.Witness{w}, Now: func() time.Time { return Base }}
	sl, err := trailseal.NewSealer(m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sl.SealAll(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Append(ctx, Events(t, "acme", 5, 4)); err != nil {
		t.Fatal(err)
	}
	if _, err := sl.SealAll(ctx); err != nil {
		t.Fatal(err)
	}
	vs := note.VerifierList(verifier)
	rep, err := trailseal.CheckWitness(ctx, m, witnessOnly{w}, vs, "witness.example", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Checkpoints != 3 || rep.Logs != 2 {
		t.Fatalf("untouched store: %+v", rep)
	}
	if err := m.TamperTruncate(ctx, "acme", 5); err != nil {
		t.Fatal(err)
	}
	rep, err = trailseal.CheckWitness(ctx, m, witnessOnly{w}, vs, "witness.example", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(rep.Problems, func(p trailseal.Problem) bool {
		return p.Kind == trailseal.KindRolledBack && p.Tenant == "acme" && p.Checkpoint == 9
	}) {
		t.Fatalf("acme truncated to 5 of 9: %+v", rep.Problems)
	}
}

// witnessOnly hides the contract's own test objects outside checkpoints/
// and heads/ keys that do not parse (they are reported as witness_bad).
type witnessOnly struct{ WitnessReadWriter }

func (w witnessOnly) List(ctx context.Context, prefix string) ([]string, error) {
	keys, err := w.WitnessReadWriter.List(ctx, prefix)
	return slices.DeleteFunc(keys, func(k string) bool {
		return k == "checkpoints/acme/a" || k == "checkpoints/acme/b" || k == "heads/x"
	}), err
}
