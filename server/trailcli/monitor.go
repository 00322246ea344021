package trailcli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/trailhq/trail/trailclient"
	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// MonitorCmd is `trail monitor`: Go-sumdb-style watching of a deployment's
// checkpoints and head (trailclient.Monitor), through the API (--url) or
// straight from a store (--db / --postgres).
type MonitorCmd struct {
	PostgresFlag
	URL       string        `name:"url" env:"TRAIL_URL" placeholder:"URL" help:"Poll this Trail server's API (else read the store: --db or --postgres)."`
	APIKey    string        `name:"api-key" env:"TRAIL_API_KEY" placeholder:"KEY" help:"API key for --url (a tenant key watches its own tenant)."`
	Tenant    []string      `name:"tenant" placeholder:"T" help:"Tenant to watch (_platform: the platform events). Repeatable. Default: every log of the store; required with --url."`
	State     string        `name:"state" env:"TRAIL_MONITOR_STATE" default:"trail-monitor.json" placeholder:"FILE" help:"Where the last checkpoint and head seen per tenant are remembered (the first run trusts what it sees)."`
	PublicKey []string      `name:"public-key" env:"TRAIL_PUBLIC_KEY" placeholder:"KEY|FILE" help:"The deployment's checkpoint verifier key (pinned; required). Repeatable."`
	Origin    string        `name:"origin" env:"TRAIL_ORIGIN" default:"trail.example" help:"The deployment's checkpoint origin."`
	Interval  time.Duration `name:"interval" placeholder:"DURATION" help:"Check again every DURATION until stopped or a problem is found (default: once)."`
	JSON      bool          `name:"json" help:"Print each check's report as JSON."`
}

// Run checks once (or every --interval) and exits 1 on the first round
// that finds a problem: a log rolled back or forked, a checkpoint or head
// gone or older than one seen, a bad signature or proof.
func (c *MonitorCmd) Run(e *Env) error {
	if len(c.PublicKey) == 0 {
		return Usagef("--public-key (or $TRAIL_PUBLIC_KEY) is required: a monitor checks signatures with a key it was given, never one the source serves")
	}
	var vs []note.Verifier
	for _, k := range c.PublicKey {
		if b, err := os.ReadFile(k); err == nil {
			k = string(b)
		}
		v, err := trailseal.ParseVerifierKey(k)
		if err != nil {
			return Usagef("--public-key: %v", err)
		}
		vs = append(vs, v)
	}
	m := &trailclient.Monitor{State: trailclient.FileState{Path: c.State}, Verifiers: note.VerifierList(vs...), Origin: c.Origin, Tenants: c.Tenant}
	if c.URL != "" {
		if len(c.Tenant) == 0 {
			return Usagef("--tenant is required with --url")
		}
		cl, err := trailclient.New(trailclient.Config{BaseURL: c.URL, Key: c.APIKey})
		if err != nil {
			return Usagef("--url: %v", err)
		}
		defer cl.Close(context.WithoutCancel(e.Ctx))
		m.Source = cl
	} else {
		st, _, closeStore, err := e.openSealed(c.Postgres, false)
		if err != nil {
			return err
		}
		defer closeStore()
		m.Source = storeSource{st}
		if len(m.Tenants) == 0 {
			if m.Tenants, err = st.Logs(e.Ctx); err != nil {
				return err
			}
		}
	}
	for {
		rep, err := m.Check(e.Ctx)
		if err != nil {
			return err
		}
		if c.JSON {
			b, _ := json.Marshal(rep)
			fmt.Fprintf(e.Stdout, "%s\n", b)
		} else {
			for _, p := range rep.Problems {
				fmt.Fprintln(e.Stdout, oneLine(p.String()))
			}
			if rep.OK() {
				fmt.Fprintf(e.Stdout, "OK: %d tenants consistent with what %s remembers (%s).\n", len(rep.Seen), c.State, sizes(rep.Seen))
			}
		}
		if !rep.OK() {
			return fmt.Errorf("monitor FAILED: %d problem(s); %s keeps the last good checkpoints", len(rep.Problems), c.State)
		}
		if c.Interval <= 0 {
			return nil
		}
		t := time.NewTimer(c.Interval)
		select {
		case <-e.Ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

func sizes(seen map[string]trailclient.SeenCheckpoint) string {
	var parts []string
	for t, s := range seen {
		parts = append(parts, fmt.Sprintf("%s %d", t, s.Size))
	}
	if len(parts) > 8 {
		return fmt.Sprintf("%d logs", len(parts))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// storeSource reads a store as a trailclient.MonitorSource.
type storeSource struct{ st trailseal.Store }

func (s storeSource) LatestCheckpoint(ctx context.Context, tenant string) ([]byte, error) {
	cp, err := s.st.LatestCheckpoint(ctx, trailseal.LogName(tenant))
	if err != nil {
		return nil, err
	}
	return []byte(cp.Note), nil
}

func (s storeSource) ConsistencyProof(ctx context.Context, tenant string, oldSize, newSize int64) (tlog.TreeProof, error) {
	log := trailseal.LogName(tenant)
	oldCP, err := trailseal.FindCheckpoint(ctx, s.st, log, oldSize)
	if err != nil {
		return nil, err
	}
	newCP, err := trailseal.FindCheckpoint(ctx, s.st, log, newSize)
	if err != nil {
		return nil, err
	}
	p, err := trailseal.ProveConsistency(ctx, s.st, oldCP, newCP)
	if err != nil {
		return nil, err
	}
	return p.Proof, nil
}

func (s storeSource) Head(ctx context.Context, tenant string) (trailclient.MonitorHead, error) {
	hs, ok := s.st.(trailseal.HeadStore)
	if !ok {
		return trailclient.MonitorHead{}, trailseal.ErrNoHead
	}
	h, err := hs.LatestHead(ctx)
	if err != nil {
		return trailclient.MonitorHead{}, err
	}
	out := trailclient.MonitorHead{Note: h.Note}
	for i, en := range h.Entries {
		if en.Log == trailseal.LogName(tenant) {
			p, err := trailseal.ProveHeadEntry(h, i)
			if err != nil {
				return out, err
			}
			out.Entry, out.Proof = &en, &p
		}
	}
	return out, nil
}
