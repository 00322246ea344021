package trailcli

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/trailhq/trail/server/trailserver"
	"github.com/trailhq/trail/server/trailwitness"
	"github.com/trailhq/trail/trailseal"
	"golang.org/x/mod/sumdb/note"
)

// WitnessTokenEnv holds the bearer token sent to HTTP witnesses.
const WitnessTokenEnv = "TRAIL_WITNESS_TOKEN"

// WitnessFlags name the witnesses (places outside the database that keep
// every signed checkpoint and head): `trail serve` and `trail seal` write
// to them, `trail verify` checks the store against them.
type WitnessFlags struct {
	Witness          []string      `name:"witness" env:"TRAIL_WITNESS" placeholder:"dir:PATH|s3://BUCKET/PREFIX|https://URL" help:"A witness outside the database: every checkpoint and deployment head signed is also written there (serve, seal), and verify checks the store against it. dir:/path, s3://bucket/prefix (Object Lock required; endpoint $TRAIL_S3_ENDPOINT), or an HTTP witness https://host/path (token $TRAIL_WITNESS_TOKEN). Repeatable; env comma-separated."`
	WitnessRetention time.Duration `name:"witness-retention" env:"TRAIL_WITNESS_RETENTION" default:"8784h" help:"How long an S3 witness's objects stay locked (Object Lock, COMPLIANCE)."`

	opened []trailwitness.ReadWriter // by openWitnesses, once
}

// openWitnesses opens every --witness.
func (f *WitnessFlags) openWitnesses(e *Env) ([]trailwitness.ReadWriter, error) {
	if f.opened != nil {
		return f.opened, nil
	}
	var out []trailwitness.ReadWriter
	for _, spec := range f.Witness {
		w, err := trailwitness.Open(e.Ctx, spec, &trailwitness.Options{Retention: f.WitnessRetention, Token: os.Getenv(WitnessTokenEnv)})
		if err != nil {
			if strings.HasPrefix(spec, "s3://") { // unreachable or not locked: not a usage error
				return nil, fmt.Errorf("--witness: %w", err)
			}
			return nil, Usagef("--witness: %v", err)
		}
		out = append(out, w)
	}
	f.opened = out
	return out, nil
}

// serveWitness lets the server read the first --witness (GET
// /v1/witness/checkpoints).
func (f *WitnessFlags) serveWitness(e *Env, in *trailserver.Integrity) error {
	ws, err := f.openWitnesses(e)
	if err != nil || len(ws) == 0 {
		return err
	}
	in.Witness = ws[0]
	return nil
}

// sealWitnesses returns the witnesses a sealer writes to.
func (f *WitnessFlags) sealWitnesses(e *Env) ([]trailseal.Witness, error) {
	ws, err := f.openWitnesses(e)
	if err != nil {
		return nil, err
	}
	out := make([]trailseal.Witness, len(ws))
	for i, w := range ws {
		out[i] = w
	}
	return out, nil
}

// checkWitnesses adds to rep what comparing st with each --witness finds,
// and with its own newest head; without a witness it says (stderr with
// --json, else stdout) what the store alone cannot show.
func (f *WitnessFlags) checkWitnesses(e *Env, st trailseal.Store, verifiers note.Verifiers, origin string, logs []string, rep *trailseal.Report, jsonOut bool) error {
	out := e.Stdout
	if jsonOut {
		out = e.Stderr
	}
	own, err := trailseal.CheckStoreHead(e.Ctx, st, verifiers, origin, logs)
	if err != nil {
		return err
	}
	addWitnessProblems(rep, own.Problems)
	ws, err := f.openWitnesses(e)
	if err != nil {
		return err
	}
	if len(ws) == 0 {
		fmt.Fprintln(out, "note: "+trailseal.Undetectable+".")
		return nil
	}
	for _, w := range ws {
		wr, err := trailseal.CheckWitness(e.Ctx, st, w, verifiers, origin, logs)
		if err != nil {
			return err
		}
		if s3, ok := w.(*trailwitness.S3); ok {
			keys, err := s3.Versions(e.Ctx, "")
			if err != nil {
				return err
			}
			for _, k := range keys {
				wr.Problems = append(wr.Problems, trailseal.Problem{Tenant: "(witness)", Log: trailseal.HeadLog, Seq: -1, With: -1,
					Kind: trailseal.KindWitnessBad, Detail: fmt.Sprintf("%s: key %s has more than one version (replaced)", w, k)})
			}
		}
		addWitnessProblems(rep, wr.Problems)
		head := "no head yet"
		if !wr.Head.IsZero() {
			head = "newest head of " + wr.Head.Format(time.RFC3339)
		}
		fmt.Fprintf(out, "Witness %s: %d logs and %d witnessed checkpoints compared with the store (%s); %d logs' newest checkpoint not witnessed yet.\n",
			w, wr.Logs, wr.Checkpoints, head, wr.Unwitnessed)
	}
	return nil
}

// addWitnessProblems appends ps to rep; problems about the deployment
// head are named as such.
func addWitnessProblems(rep *trailseal.Report, ps []trailseal.Problem) {
	for _, p := range ps {
		if p.Log == trailseal.HeadLog {
			p.Tenant = "(deployment head)"
		}
		rep.Problems = append(rep.Problems, p)
	}
}
