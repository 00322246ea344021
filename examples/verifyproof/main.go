// Command verifyproof checks a Trail inclusion proof (or consistency proof)
// without Trail's code: only golang.org/x/mod/sumdb/tlog and note. It is the
// executable form of docs/verification.md: a tenant who holds Trail's public
// checkpoint key can run it on a proof exported by `trail prove` or the API.
//
// Usage (outside the workspace: GOWORK=off go run . …):
//
//	verifyproof -key trail.pub -origin trail.example -log acme -event-id ID -proof proof.json [-event event.canonical] [-checkpoint cp.note]
//	verifyproof -key trail.pub -origin trail.example -log acme -consistency consistency.json
//	verifyproof -key trail.pub -origin trail.example -log acme -export acme.stored.jsonl -checkpoints acme-checkpoints.json
//
// proof.json is the JSON inclusion proof: log, index, tree_size, root_hash,
// proof (base64 hashes), checkpoint (the signed note) and canonical (the
// event's canonical bytes, base64). -event and -checkpoint read those two
// from separate files instead.
//
// What was asked is given on the command line, never taken from the proof
// file: -origin (the deployment's checkpoint origin), -log (the tenant's log:
// the tenant, or _platform for platform events) and, for an inclusion
// proof, -event-id. The signed checkpoint must be for ORIGIN/LOG, and the
// canonical event bytes must hold that id and that tenant; a proof of
// another event or another tenant's log fails, however well it verifies.
// It exits 0 and prints OK only when every check passed; anything else
// exits 1 with the reason (2 for bad usage).
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type inclusion struct {
	Log        string      `json:"log"`
	Index      int64       `json:"index"`
	TreeSize   int64       `json:"tree_size"`
	Proof      []tlog.Hash `json:"proof"`
	Checkpoint string      `json:"checkpoint"`
	Canonical  []byte      `json:"canonical"`
}

type consistency struct {
	Log           string      `json:"log"`
	OldSize       int64       `json:"old_size"`
	NewSize       int64       `json:"new_size"`
	Proof         []tlog.Hash `json:"proof"`
	OldCheckpoint string      `json:"old_checkpoint"`
	NewCheckpoint string      `json:"new_checkpoint"`
}

func main() {
	keyFile := flag.String("key", "", "file holding the public checkpoint key (name+hash+base64)")
	proofFile := flag.String("proof", "", "JSON inclusion proof")
	consFile := flag.String("consistency", "", "JSON consistency proof")
	exportFile := flag.String("export", "", "a stored-form export of one log (GET /v1/export?form=stored, trail query --stored), checked against -checkpoints")
	cpsFile := flag.String("checkpoints", "", "with -export: the log's checkpoints (GET /v1/checkpoints)")
	eventFile := flag.String("event", "", "the event's canonical bytes (default: the proof's canonical field)")
	cpFile := flag.String("checkpoint", "", "signed checkpoint note (default: the proof's checkpoint field)")
	origin := flag.String("origin", "", "required: the deployment's checkpoint origin; the checkpoint must be for ORIGIN/LOG")
	log := flag.String("log", "", "required: the log asked about: the tenant, or _platform for platform events")
	eventID := flag.String("event-id", "", "required with -proof: the event asked about; the proven event must have this id")
	flag.Parse()
	w := want{origin: *origin, log: *log, eventID: strings.ToLower(*eventID)}
	if *exportFile != "" {
		msg, err := exportMode(*keyFile, *exportFile, *cpsFile, w)
		if err != nil {
			fmt.Fprintln(os.Stderr, "verifyproof: FAILED:", err)
			os.Exit(1)
		}
		fmt.Println("OK:", msg)
		return
	}
	if err := w.check(*keyFile, *proofFile, *consFile); err != nil {
		fmt.Fprintln(os.Stderr, "verifyproof:", err)
		os.Exit(2)
	}
	msg, err := run(*keyFile, *proofFile, *consFile, *eventFile, *cpFile, w)
	if err != nil {
		fmt.Fprintln(os.Stderr, "verifyproof: FAILED:", err)
		os.Exit(1)
	}
	fmt.Println("OK:", msg)
}

// want is what the caller asked about: the proof must be about exactly this.
type want struct {
	origin, log, eventID string
}

func (w want) check(keyFile, proofFile, consFile string) error {
	switch {
	case keyFile == "" || (proofFile == "") == (consFile == ""):
		return errors.New("usage: verifyproof -key FILE -origin ORIGIN -log LOG (-event-id ID -proof FILE | -consistency FILE)")
	case w.origin == "":
		return errors.New("-origin is required: the deployment's checkpoint origin (a proof's own origin is not evidence)")
	case w.log == "":
		return errors.New("-log is required: the tenant whose log (or _platform)")
	case proofFile != "" && !uuidRE.MatchString(w.eventID):
		return errors.New("-event-id is required with -proof: the event's ID (a UUID)")
	}
	return nil
}

// exportMode checks a whole stored-form export (export.go).
func exportMode(keyFile, exportFile, cpsFile string, w want) (string, error) {
	if keyFile == "" || cpsFile == "" || w.origin == "" || w.log == "" {
		return "", errors.New("usage: verifyproof -key FILE -origin ORIGIN -log LOG -export FILE -checkpoints FILE")
	}
	keys, err := readVerifier(keyFile)
	if err != nil {
		return "", err
	}
	return runExport(keys, w, exportFile, cpsFile)
}

// readVerifier reads the deployment's public key (a note verifier key) from keyFile.
func readVerifier(keyFile string) (note.Verifiers, error) {
	vkey, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(vkey)))
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	return note.VerifierList(v), nil
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func run(keyFile, proofFile, consFile, eventFile, cpFile string, w want) (string, error) {
	origin := w.origin
	keys, err := readVerifier(keyFile)
	if err != nil {
		return "", err
	}
	if consFile != "" {
		var p consistency
		if err := readJSON(consFile, &p); err != nil {
			return "", err
		}
		if p.Log != w.log {
			return "", fmt.Errorf("the proof is for log %q, not %q", p.Log, w.log)
		}
		oldRoot, err := openCheckpoint(p.OldCheckpoint, keys, origin, p.Log, p.OldSize)
		if err != nil {
			return "", fmt.Errorf("old checkpoint: %w", err)
		}
		newRoot, err := openCheckpoint(p.NewCheckpoint, keys, origin, p.Log, p.NewSize)
		if err != nil {
			return "", fmt.Errorf("new checkpoint: %w", err)
		}
		if err := tlog.CheckTree(p.Proof, p.NewSize, newRoot, p.OldSize, oldRoot); err != nil {
			return "", fmt.Errorf("consistency: %w", err)
		}
		return fmt.Sprintf("log %s of size %d extends its checkpoint of size %d", p.Log, p.NewSize, p.OldSize), nil
	}
	var p inclusion
	if err := readJSON(proofFile, &p); err != nil {
		return "", err
	}
	if eventFile != "" {
		if p.Canonical, err = os.ReadFile(eventFile); err != nil {
			return "", err
		}
	}
	if cpFile != "" {
		b, err := os.ReadFile(cpFile)
		if err != nil {
			return "", err
		}
		p.Checkpoint = string(b)
	}
	if len(p.Canonical) == 0 {
		return "", errors.New("no canonical event bytes (give -event or a proof with canonical)")
	}
	if p.Log != w.log {
		return "", fmt.Errorf("the proof is for log %q, not %q", p.Log, w.log)
	}
	// The event is the one asked about: its id and tenant are read from the
	// bytes the leaf hashes, not from the proof's own fields.
	var ev struct {
		ID     string  `json:"id"`
		Tenant *string `json:"tenant"`
	}
	if err := json.Unmarshal(p.Canonical, &ev); err != nil {
		return "", fmt.Errorf("canonical event: %w", err)
	}
	if ev.ID != w.eventID {
		return "", fmt.Errorf("the proven event is %q, not %q", ev.ID, w.eventID)
	}
	tenantLog := "_platform"
	if ev.Tenant != nil {
		tenantLog = *ev.Tenant
	}
	if tenantLog != w.log {
		return "", fmt.Errorf("the proven event belongs to log %q, not %q", tenantLog, w.log)
	}
	root, err := openCheckpoint(p.Checkpoint, keys, origin, p.Log, p.TreeSize)
	if err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	// The leaf is recomputed from the event's bytes: nothing in the proof
	// file is trusted except through the signed checkpoint.
	leaf := tlog.RecordHash(p.Canonical)
	if err := tlog.CheckRecord(p.Proof, p.TreeSize, root, p.Index, leaf); err != nil {
		return "", fmt.Errorf("inclusion: %w", err)
	}
	return fmt.Sprintf("event is record %d of log %s (checkpoint size %d, root %s)", p.Index, p.Log, p.TreeSize, root), nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// openCheckpoint verifies the signed note and parses its three lines:
// origin, tree size, base64 root hash. It returns the root when the origin
// is exactly ORIGIN/LOG and the size is the one the proof is about.
func openCheckpoint(signed string, keys note.Verifiers, origin, log string, size int64) (tlog.Hash, error) {
	n, err := note.Open([]byte(signed), keys)
	if err != nil {
		return tlog.Hash{}, err
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 {
		return tlog.Hash{}, errors.New("checkpoint text has fewer than three lines")
	}
	if wantOrigin := origin + "/" + log; lines[0] != wantOrigin {
		return tlog.Hash{}, fmt.Errorf("checkpoint is for %q, want %q", lines[0], wantOrigin)
	}
	got, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || got != size {
		return tlog.Hash{}, fmt.Errorf("checkpoint size %q, proof is for size %d", lines[1], size)
	}
	root, err := tlog.ParseHash(lines[2])
	if err != nil {
		return tlog.Hash{}, fmt.Errorf("checkpoint root: %w", err)
	}
	return root, nil
}
