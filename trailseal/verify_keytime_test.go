package trailseal_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/trailseal"
)

// cpCounter is a MemLog whose checkpoint reads are counted.
type cpCounter struct {
	*trailseal.MemLog
	reads atomic.Int64
}

func (c *cpCounter) Checkpoints(ctx context.Context, log string) ([]trailseal.Checkpoint, error) {
	c.reads.Add(1)
	return c.MemLog.Checkpoints(ctx, log)
}

func (c *cpCounter) CheckpointsOf(ctx context.Context, logs []string) (map[string][]trailseal.Checkpoint, error) {
	c.reads.Add(int64(len(logs)))
	return c.MemLog.CheckpointsOf(ctx, logs)
}

// TestVerifyKeyWindows: with a key history, a checkpoint signed by the
// retired key after its rotation is key_not_valid_at_time, found on the
// checkpoints verification reads (one read per log, none again); one
// signed in its key's window is not.
func TestVerifyKeyWindows(t *testing.T) {
	ctx := context.Background()
	sk1, vk1, _ := trailseal.GenerateSigningKey("trail.test")
	sk2, vk2, _ := trailseal.GenerateSigningKey("trail.test")
	s1, _, _ := trailseal.ParseSigningKey(sk1)
	s2, _, _ := trailseal.ParseSigningKey(sk2)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := trailseal.NewKeyHistory(vk1, time.Time{})
	if err := h.Rotate(s1, s2, vk2, t0); err != nil {
		t.Fatal(err)
	}
	windows, err := h.Trusted([]string{vk1})
	if err != nil {
		t.Fatal(err)
	}
	m := &cpCounter{MemLog: trailseal.NewMemLog()}
	now := t0.Add(-time.Hour)
	sealer, err := trailseal.NewSealer(m, &trailseal.Config{Signer: s1, Origin: "trail.test", Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	seal := func(tenant string) {
		ev := trail.Event{Tenant: tenant, Actor: trail.Actor{Type: trail.ActorUser, ID: "u1"}, Action: "user.update", Target: trail.Target{Type: "user", ID: "u1"}}
		if err := ev.Normalize(); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Append(ctx, []trail.Event{ev}); err != nil {
			t.Fatal(err)
		}
		if _, err := sealer.SealAll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	seal("acme") // the first key, in its window
	now = t0.Add(time.Hour)
	seal("globex") // the retired key after its rotation
	v := &trailseal.Verifier{Store: m, Verifiers: trailseal.Verifiers(windows), Origin: "trail.test", KeyWindows: windows}
	rep, err := v.Verify(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var bad []trailseal.Problem
	for _, p := range rep.Problems {
		if p.Kind == trailseal.KindKeyNotValid {
			bad = append(bad, p)
		} else {
			t.Errorf("unexpected problem: %+v", p)
		}
	}
	if len(bad) == 0 {
		t.Fatal("the retired key's checkpoint after the rotation was not reported")
	}
	for _, p := range bad {
		if p.Tenant != "globex" {
			t.Errorf("key_not_valid_at_time in %s, want globex only: %+v", p.Tenant, p)
		}
	}
	if n, logs := m.reads.Load(), int64(len(rep.Logs)); n != logs {
		t.Errorf("checkpoints read %d times for %d logs, want once each", n, logs)
	}
}
