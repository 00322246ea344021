package trailcli

import (
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailserver"
)

// KeysCmd is `trail keys`: API keys of the HTTP API, kept in the same
// database as the events (--db or --postgres).
type KeysCmd struct {
	Create KeysCreateCmd `cmd:"" help:"Create an API key; its secret is printed once."`
	List   KeysListCmd   `cmd:"" help:"List API keys (never their secrets)."`
	Revoke KeysRevokeCmd `cmd:"" help:"Revoke an API key by id."`

	Signing SigningKeysCmd `cmd:"" help:"The checkpoint signing key: generate it, show its public key."`

	RotateMaster KeysRotateMasterCmd `cmd:"" name:"rotate-master" help:"Re-wrap every data key of the privacy layer with a new master key (events untouched)."`
}

// PostgresFlag selects the PostgreSQL deployment instead of the SQLite file.
type PostgresFlag struct {
	Postgres string `name:"postgres" env:"TRAIL_POSTGRES" placeholder:"DSN" help:"The PostgreSQL deployment instead of the SQLite file (env TRAIL_POSTGRES)."`
}

// KeysCreateCmd is `trail keys create`.
type KeysCreateCmd struct {
	PostgresFlag
	Tenant  string `name:"tenant" placeholder:"T" help:"The one tenant the key may read and write."`
	All     bool   `name:"all" help:"The key may read and write every tenant and the platform events."`
	Role    string `name:"role" required:"" enum:"ingest,reader,admin" help:"ingest (write events), reader (read them) or admin (both, and manage keys)."`
	Name    string `name:"name" help:"A label for people, e.g. the service that uses the key."`
	Expires string `name:"expires" placeholder:"90d" help:"Lifetime: 90d, 12h, 2w. Default: never expires."`
	JSON    bool   `name:"json" help:"Print {\"id\": …, \"key\": …} for scripts."`
}

// Run creates the key.
func (c *KeysCreateCmd) Run(e *Env) error {
	if c.All == (c.Tenant != "") {
		return Usagef("give --tenant T or --all")
	}
	if c.Tenant != "" && !trail.ValidTenant(c.Tenant) {
		return Usagef("--tenant: %q is not a valid tenant", c.Tenant)
	}
	req := trailserver.NewKeyRequest{Tenant: c.Tenant, All: c.All, Role: trailserver.Role(c.Role), Name: c.Name}
	if c.Expires != "" {
		d, err := trailserver.ParseDuration(c.Expires)
		if err != nil {
			return Usagef("--expires: %v", err)
		}
		req.TTL = d
	}
	b, err := e.openBackend(c.Postgres, false)
	if err != nil {
		return err
	}
	defer b.close()
	key, secret, err := trailserver.CreateKey(e.Ctx, b.keys, req, e.Now())
	if errors.Is(err, trailserver.ErrInvalidKey) {
		return &UsageError{Err: err}
	}
	if err != nil {
		return err
	}
	if c.JSON {
		return json.NewEncoder(e.Stdout).Encode(map[string]string{"id": key.ID, "key": secret})
	}
	scope := "tenant " + key.Tenant
	if key.AllTenants() {
		scope = "all tenants"
	}
	fmt.Fprintf(e.Stdout, "Created %s key %s for %s", key.Role, key.ID, scope)
	if key.ExpiresAt != nil {
		fmt.Fprintf(e.Stdout, ", expires %s", key.ExpiresAt.In(e.Loc).Format(time.RFC3339))
	}
	fmt.Fprintf(e.Stdout, ".\nThe key is shown this once; store it now:\n\n  %s\n", secret)
	return nil
}

// KeysListCmd is `trail keys list`.
type KeysListCmd struct {
	PostgresFlag
	Tenant string `name:"tenant" placeholder:"T" help:"Only this tenant's keys."`
	JSON   bool   `name:"json" help:"JSON Lines, one key a line."`
}

// Run lists the keys.
func (c *KeysListCmd) Run(e *Env) error {
	if c.Tenant != "" && !trail.ValidTenant(c.Tenant) {
		return Usagef("--tenant: %q is not a valid tenant", c.Tenant)
	}
	b, err := e.openBackend(c.Postgres, false)
	if err != nil {
		return err
	}
	defer b.close()
	keys, err := b.keys.List(e.Ctx, c.Tenant)
	if err != nil {
		return err
	}
	if c.JSON {
		enc := json.NewEncoder(e.Stdout)
		for _, key := range keys {
			if err := enc.Encode(key); err != nil {
				return err
			}
		}
		return nil
	}
	if len(keys) == 0 {
		fmt.Fprintln(e.Stdout, "No API keys.")
		return nil
	}
	now := e.Now()
	tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tROLE\tTENANT\tNAME\tCREATED\tSTATE")
	for _, key := range keys {
		tenant := key.Tenant
		if key.AllTenants() {
			tenant = "(all)"
		}
		state := "active"
		switch {
		case key.RevokedAt != nil:
			state = "revoked " + key.RevokedAt.In(e.Loc).Format("2006-01-02")
		case key.ExpiresAt != nil && !now.Before(*key.ExpiresAt):
			state = "expired " + key.ExpiresAt.In(e.Loc).Format("2006-01-02")
		case key.ExpiresAt != nil:
			state = "expires " + key.ExpiresAt.In(e.Loc).Format("2006-01-02")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", key.ID, key.Role, tenant, oneLine(key.Name), key.CreatedAt.In(e.Loc).Format("2006-01-02 15:04"), state)
	}
	return tw.Flush()
}

// KeysRevokeCmd is `trail keys revoke ID`.
type KeysRevokeCmd struct {
	PostgresFlag
	ID string `arg:"" help:"The key's id (see trail keys list)."`
}

// Run revokes the key.
func (c *KeysRevokeCmd) Run(e *Env) error {
	b, err := e.openBackend(c.Postgres, false)
	if err != nil {
		return err
	}
	defer b.close()
	if err := b.keys.Revoke(e.Ctx, c.ID, e.Now()); err != nil {
		if errors.Is(err, trailserver.ErrKeyNotFound) {
			return &UsageError{Err: fmt.Errorf("no API key with id %q", c.ID)}
		}
		return err
	}
	fmt.Fprintf(e.Stdout, "Revoked key %s.\n", c.ID)
	return nil
}
