package trailprivacy

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// Setup is the privacy part of the one-call store setups
// (trailpgx.NewClient, trailsql.NewClient, trailsqlite.NewClient). Its zero
// value is the safe default: the default deny-list redacts secrets, and
// personal fields are encrypted under the master key from TRAIL_MASTER_KEY
// (or, for the embedded store only, a key file created beside the database);
// with no master key to be had, the setup fails and says how to set one.
type Setup struct {
	// Policy adds rules to the deny-list (ParsePolicy). Default:
	// DefaultPolicy().
	Policy *Policy
	// KMS holds the master key, e.g. a cloud KMS. Default: the key in the
	// environment variable TRAIL_MASTER_KEY (base64 of 32 bytes), else the
	// one in MasterKeyFile.
	KMS KMS
	// MasterKeyFile is a file holding the master key (as `trail` writes
	// them), used when neither KMS nor TRAIL_MASTER_KEY is set.
	MasterKeyFile string
	// Plaintext stores personal fields (actor name, e-mail, IP, user
	// agent, target name) as given, in plaintext, with no key: the explicit
	// opt-out of encryption. Secrets are still redacted.
	Plaintext bool
	// NoDefaultRedaction turns the default deny-list off (Policy's own
	// rules still apply).
	NoDefaultRedaction bool
}

// Open opens the privacy layer a Setup describes over the key table in db:
// in the PostgreSQL schema (the store's own), or in the SQLite database when
// schema is "". createKeyFile, for the embedded store, is the path of a key
// file to load or create when no key is configured; "" makes a missing key
// an error. notice is non-empty when a key file was created, for the caller
// to log. A wrong master key is an error (ErrWrongMasterKey), never a
// fallback to plaintext.
func (s Setup) Open(ctx context.Context, db DBTX, schema, createKeyFile string) (p *Privacy, notice string, err error) {
	pol := s.Policy
	if s.NoDefaultRedaction {
		if pol == nil {
			pol = DefaultPolicy()
		}
		pol = pol.WithoutDefaults()
	}
	if s.Plaintext {
		if s.KMS != nil || s.MasterKeyFile != "" {
			return nil, "", errors.New("trailprivacy: Setup: Plaintext and a master key (KMS, MasterKeyFile) exclude each other")
		}
		p, err := New(ctx, Config{Policy: pol, Plaintext: true})
		return p, "", err
	}
	kms := s.KMS
	if kms == nil {
		var lk *LocalKMS
		lk, notice, err = OpenMasterKey(MasterKeyConfig{Env: os.Getenv("TRAIL_MASTER_KEY"), File: s.MasterKeyFile, CreateFile: createKeyFile})
		if err != nil {
			if createKeyFile == "" && os.Getenv("TRAIL_MASTER_KEY") == "" && s.MasterKeyFile == "" {
				return nil, "", fmt.Errorf("%w: set TRAIL_MASTER_KEY to a new key (openssl rand -base64 32) and keep it safe, "+
					"give a key file (Setup.MasterKeyFile) or a KMS (Setup.KMS); or, to store personal data in plaintext, set Setup.Plaintext", ErrNoMasterKey)
			}
			return nil, "", err
		}
		kms = lk
	}
	ks := NewSQLKeyStore(db)
	if schema != "" {
		if ks, err = NewSQLKeyStoreIn(db, schema); err != nil {
			return nil, "", err
		}
	}
	if err := ks.Init(ctx); err != nil {
		return nil, "", err
	}
	p, err = New(ctx, Config{Policy: pol, KMS: kms, Keys: ks})
	if err != nil {
		if errors.Is(err, ErrWrongMasterKey) {
			return nil, "", fmt.Errorf("%w (give the key the data was written with: TRAIL_MASTER_KEY, the key file, or the KMS)", err)
		}
		return nil, "", err
	}
	return p, notice, nil
}
