package trailcli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"unicode/utf8"

	"github.com/alecthomas/kong"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailpgx"
	"github.com/trailhq/trail/trailprivacy"
)

// PrivacyFlags configure the privacy layer (package trailprivacy) for every
// command that writes or reads events: what is redacted, hashed or
// encrypted before an event is stored, and the master key that protects
// the per-subject encryption keys. The master key itself is never a flag
// value (it would show in ps): TRAIL_MASTER_KEY or a file.
type PrivacyFlags struct {
	MasterKeyFile      string     `name:"master-key-file" env:"TRAIL_MASTER_KEY_FILE" placeholder:"FILE" help:"Master key file (32 bytes, base64 or raw). Default: env TRAIL_MASTER_KEY, else on the SQLite store <db>.master.key, created on first use."`
	Policy             PolicyFile `name:"policy" env:"TRAIL_POLICY" placeholder:"FILE" help:"Field policy file: rules PATTERN omit|redact|hmac|pii|keep (docs/privacy.md)."`
	NoDefaultRedaction bool       `name:"no-default-redaction" env:"TRAIL_NO_DEFAULT_REDACTION" help:"Turn the default deny-list (password, token, secret, cookie, card…) off."`
}

// maxPolicyBytes bounds a policy file.
const maxPolicyBytes = 1 << 20

// DemoPolicy is the field policy of `trail demo` and `trail serve --demo`
// when --policy is not given: the default deny-list (the demo's password and
// API token are redacted), and the e-mail addresses its careless
// integrations and admin tools put in changes and metadata encrypted,
// erasable with the person.
const DemoPolicy = `# trail demo: e-mail addresses are personal data
email       pii
created_by  pii
operator    pii
`

// PolicyFile is the --policy flag: the file is read and parsed when the
// command line is, so that a bad policy is bad usage before any database is
// opened or created.
type PolicyFile struct {
	Path   string
	Policy *trailprivacy.Policy
}

// Decode implements kong.MapperValue.
func (f *PolicyFile) Decode(ctx *kong.DecodeContext) error {
	var path string
	if err := ctx.Scan.PopValueInto("file", &path); err != nil {
		return err
	}
	pol, err := readPolicy(path)
	if err != nil {
		return err
	}
	*f = PolicyFile{Path: path, Policy: pol}
	return nil
}

func readPolicy(path string) (*trailprivacy.Policy, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxPolicyBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxPolicyBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxPolicyBytes)
	}
	pol, err := trailprivacy.ParsePolicy(string(b))
	if err != nil {
		return nil, policyError(path, err) // policy_error.go: no file content
	}
	return pol, nil
}

// privacyPolicy applies --no-default-redaction to the --policy. A nil
// policy is the default deny-list; demo selects DemoPolicy instead when no
// --policy is given.
func (e *Env) privacyPolicy(demo bool) (*trailprivacy.Policy, error) {
	f := e.Globals.PrivacyFlags
	pol := f.Policy.Policy
	if pol == nil && demo {
		var err error
		if pol, err = trailprivacy.ParsePolicy(DemoPolicy); err != nil {
			return nil, err
		}
	}
	if f.NoDefaultRedaction {
		pol = pol.WithoutDefaults()
	}
	return pol, nil
}

// masterKey opens the configured master key. keyFileBeside is the database
// file of the embedded store, beside which a key file is created when no
// key is configured; "" (PostgreSQL) requires a configured key.
func (e *Env) masterKey(keyFileBeside string) (*trailprivacy.LocalKMS, string, error) {
	c := trailprivacy.MasterKeyConfig{Env: os.Getenv("TRAIL_MASTER_KEY"), File: e.Globals.MasterKeyFile}
	if keyFileBeside != "" {
		c.CreateFile = keyFileBeside + ".master.key"
	}
	kms, notice, err := trailprivacy.OpenMasterKey(c)
	if err != nil {
		return nil, "", fmt.Errorf("master key: %w", err)
	}
	if notice != "" {
		fmt.Fprintf(e.Stderr, "trail: %s\n", notice)
	}
	return kms, c.CreateFile, nil
}

// openPrivacy opens the privacy layer over the key table in db: in schema
// (PostgreSQL) or the default one (schema ""). It fails, never falls back
// to plaintext, when the configured master key is not the one that wrapped
// the stored data keys.
func (e *Env) openPrivacy(db trailprivacy.DBTX, schema, keyFileBeside string, demo bool) (*trailprivacy.Privacy, *trailprivacy.LocalKMS, error) {
	pol, err := e.privacyPolicy(demo)
	if err != nil {
		return nil, nil, err
	}
	kms, _, err := e.masterKey(keyFileBeside)
	if err != nil {
		return nil, nil, err
	}
	// The key table in the store's schema, and the wrong-key check: the
	// same steps as the library's one-call setups.
	p, _, err := trailprivacy.Setup{Policy: pol, KMS: kms}.Open(e.Ctx, db, schema, "")
	if err != nil {
		if errors.Is(err, trailprivacy.ErrWrongMasterKey) {
			return nil, nil, fmt.Errorf("master key: %w", err)
		}
		return nil, nil, err
	}
	return p, kms, nil
}

// SQLitePrivacy opens the privacy layer of the embedded store s: its keys
// live in the same database file, its master key in TRAIL_MASTER_KEY,
// --master-key-file, or <db>.master.key (created with mode 0600 on first use).
func (e *Env) SQLitePrivacy(s *trailsqlite.Store) (*trailprivacy.Privacy, error) {
	p, _, err := e.openPrivacy(s.DB(), "", s.Path(), false)
	return p, err
}

// demoPrivacy is SQLitePrivacy with DemoPolicy as the default policy.
func (e *Env) demoPrivacy(s *trailsqlite.Store) (*trailprivacy.Privacy, error) {
	p, _, err := e.openPrivacy(s.DB(), "", s.Path(), true)
	return p, err
}

// revealEvents turns stored events into their readable form in place:
// encrypted fields decrypted, or "[erased]" for a forgotten subject. A
// value that does not authenticate is left as stored and reported on
// stderr; any other failure is an error.
func (e *Env) revealEvents(p *trailprivacy.Privacy, events []trail.Event) error {
	for i := range events {
		err := p.Reveal(e.Ctx, &events[i])
		switch {
		case errors.Is(err, trailprivacy.ErrTampered):
			fmt.Fprintf(e.Stderr, "trail: event %s: %s\n", events[i].ID, oneLine(err.Error()))
		case err != nil:
			return fmt.Errorf("event %s: %w", events[i].ID, err)
		}
	}
	return nil
}

// privacyBackend is the privacy layer of the deployment a privacy command
// administers, and the store its own events go to.
type privacyBackend struct {
	p       *trailprivacy.Privacy
	kms     *trailprivacy.LocalKMS
	store   trail.Store
	keyFile string // the key file beside the SQLite database, when that is the master key's source
	close   func()
}

// openPrivacyBackend opens PostgreSQL when postgres is set, else the SQLite
// file of --db (which must exist: these commands administer data).
func (e *Env) openPrivacyBackend(postgres string) (*privacyBackend, error) {
	if postgres != "" {
		st, db, err := e.openPostgresFor(postgres, false) // as the SQLite file must exist
		if err != nil {
			return nil, err
		}
		p, kms, err := e.openPrivacy(db, st.Schema(), "", false)
		if err != nil {
			db.Close()
			st.Close()
			return nil, err
		}
		return &privacyBackend{p: p, kms: kms, store: st, close: func() { db.Close(); st.Close() }}, nil
	}
	st, err := e.OpenStore(false)
	if err != nil {
		return nil, err
	}
	p, kms, err := e.openPrivacy(st.DB(), "", st.Path(), false)
	if err != nil {
		st.Close()
		return nil, err
	}
	b := &privacyBackend{p: p, kms: kms, store: st, close: func() { st.Close() }}
	if os.Getenv("TRAIL_MASTER_KEY") == "" && e.Globals.MasterKeyFile == "" {
		b.keyFile = st.Path() + ".master.key"
	}
	return b, nil
}

// cliActor is who the privacy commands' own events are recorded as.
var cliActor = trail.Actor{Type: trail.ActorSystem, ID: "cli"}

// recordOwn stores an event of the CLI itself, in its stored form.
func (e *Env) recordOwn(b *privacyBackend, ev trail.Event) (trail.Event, error) {
	ev.Source = "cli"
	ev.RecordedAt = e.Now()
	if err := ev.Normalize(); err != nil {
		return ev, err
	}
	if err := b.p.Transform(e.Ctx, &ev); err != nil {
		return ev, err
	}
	if err := ev.Validate(); err != nil {
		return ev, err
	}
	_, err := b.store.Append(e.Ctx, []trail.Event{ev})
	return ev, err
}

// maxHashValue bounds the value `trail hash` takes.
const maxHashValue = 4096

// HashCmd is `trail hash`.
type HashCmd struct {
	PostgresFlag
	Tenant string `name:"tenant" required:"" placeholder:"T" help:"The tenant whose HMAC key hashes the value (pseudonyms differ per tenant)."`
	Value  string `arg:"" help:"The value to look up, exactly as it was recorded (e.g. an e-mail address)."`
}

// Run prints the stored form of Value under the tenant's HMAC key: the
// string to search for in fields the policy hashes. Computing it is itself
// recorded (action privacy.hash, without the value): a pseudonym lookup is
// a privileged act.
func (c *HashCmd) Run(e *Env) error {
	if !trail.ValidTenant(c.Tenant) {
		return Usagef("--tenant: %q is not a valid tenant", clip(c.Tenant))
	}
	if c.Value == "" || len(c.Value) > maxHashValue || !utf8.ValidString(c.Value) {
		return Usagef("VALUE: give 1-%d bytes of UTF-8 text", maxHashValue)
	}
	b, err := e.openPrivacyBackend(c.Postgres)
	if err != nil {
		return err
	}
	defer b.close()
	if _, err := e.recordOwn(b, trail.Event{
		Tenant:      c.Tenant,
		Actor:       cliActor,
		Action:      "privacy.hash",
		Description: "Computed a pseudonym (HMAC) to search with",
	}); err != nil {
		return fmt.Errorf("recording the lookup: %w", err)
	}
	fmt.Fprintln(e.Stdout, b.p.HashFor(c.Tenant, c.Value))
	return nil
}

// ForgetCmd is `trail forget`.
type ForgetCmd struct {
	PostgresFlag
	Tenant  string `name:"tenant" placeholder:"T" help:"The subject's tenant (empty: the platform events)."`
	Subject string `name:"subject" required:"" placeholder:"TYPE:ID" help:"Who to forget: an actor or target, e.g. user:42 (or a bare type: anonymous)."`
}

// Run destroys the subject's data key, so that every encrypted field of the
// subject reads "[erased]" from now on, and records the erasure (action
// privacy.forget, actor system:cli, target the subject). The events stay.
func (c *ForgetCmd) Run(e *Env) error {
	if c.Tenant != "" && !trail.ValidTenant(c.Tenant) {
		return Usagef("--tenant: %q is not a valid tenant", clip(c.Tenant))
	}
	typ, id, err := ParseRef(c.Subject)
	if err != nil {
		return Usagef("--subject: %v", err)
	}
	subject := typ
	target := trail.Target{Type: typ, ID: id}
	if id != "" {
		subject += ":" + id
	} else {
		target = trail.Target{Type: "subject", ID: typ}
	}
	b, err := e.openPrivacyBackend(c.Postgres)
	if err != nil {
		return err
	}
	defer b.close()
	if err := b.p.Forget(e.Ctx, c.Tenant, subject); err != nil {
		switch {
		case errors.Is(err, trailprivacy.ErrUnknownSubject):
			return fmt.Errorf("no personal data of %s in tenant %q was ever encrypted: nothing to forget", subject, c.Tenant)
		case errors.Is(err, trailprivacy.ErrAlreadyForgotten):
			return fmt.Errorf("%s in tenant %q is already forgotten", subject, c.Tenant)
		}
		return err
	}
	ev, err := e.recordOwn(b, trail.Event{
		Tenant:      c.Tenant,
		Actor:       cliActor,
		Action:      "privacy.forget",
		Target:      target,
		Description: "Erased the personal data of " + subject,
		Metadata:    map[string]any{"subject": subject},
	})
	if err != nil {
		return fmt.Errorf("%s is forgotten, but recording the erasure failed: %w", subject, err)
	}
	fmt.Fprintf(e.Stdout, "Forgot %s in tenant %q: its encrypted fields now read %q (event %s).\n", subject, c.Tenant, trailprivacy.Erased, ev.ID)
	return nil
}

// KeysRotateMasterCmd is `trail keys rotate-master`.
type KeysRotateMasterCmd struct {
	PostgresFlag
	NewKeyFile string `name:"new-key-file" required:"" placeholder:"FILE" help:"The new master key (32 bytes, base64 or raw). Make one: openssl rand -base64 32 > FILE"`
}

// Run re-wraps every data key from the current master key to the new one,
// without touching a single event. It is resumable: run it again after a
// failure. When the current key is the key file beside the SQLite
// database, that file is replaced by the new key once every data key is
// re-wrapped.
func (c *KeysRotateMasterCmd) Run(e *Env) error {
	nk, err := trailprivacy.LoadKeyFile(c.NewKeyFile)
	if err != nil {
		return Usagef("--new-key-file: %v", err)
	}
	b, err := e.openPrivacyBackend(c.Postgres)
	if err != nil {
		return err
	}
	defer b.close()
	if nk.KeyID() == b.kms.KeyID() {
		return Usagef("--new-key-file: that is the current master key")
	}
	n, err := b.p.Rewrap(e.Ctx, b.kms, nk)
	if err != nil {
		return fmt.Errorf("rotation stopped after %d keys (run it again to resume): %w", n, err)
	}
	fmt.Fprintf(e.Stdout, "Re-wrapped %d data keys with master key %s.\n", n, nk.KeyID())
	if b.keyFile != "" {
		if err := replaceKeyFile(b.keyFile, c.NewKeyFile); err != nil {
			return fmt.Errorf("data keys re-wrapped, but %s still holds the old key (copy %s over it): %w", b.keyFile, c.NewKeyFile, err)
		}
		fmt.Fprintf(e.Stdout, "%s now holds the new key.\n", b.keyFile)
	} else {
		fmt.Fprintln(e.Stdout, "From now on start Trail with the new key (TRAIL_MASTER_KEY or --master-key-file).")
	}
	return nil
}

// replaceKeyFile copies the key file src over dst atomically, mode 0600.
func replaceKeyFile(dst, src string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

// servePrivacy opens the privacy layer of the backend `trail serve` runs
// on, over b's database handle: the key table beside the events (same
// SQLite file, or the events' PostgreSQL schema). The server and its log
// streams share it, so a Forget through the API drops the key from the one
// cache every reveal uses.
func (e *Env) servePrivacy(b *backend, demo bool) (*trailprivacy.Privacy, *trailprivacy.LocalKMS, error) {
	switch st := b.store.(type) {
	case *trailsqlite.Store:
		return e.openPrivacy(b.db, "", st.Path(), demo)
	case *trailpgx.Store:
		return e.openPrivacy(b.db, st.Schema(), "", demo)
	}
	return nil, nil, fmt.Errorf("trail serve: no privacy layer for a %T store", b.store)
}
