package trailcli

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/logstream"
	"github.com/trailhq/trail/server/trailsqlite"
	"github.com/trailhq/trail/trailpgx"
	"github.com/trailhq/trail/trailprivacy"
	"github.com/trailhq/trail/trailsql"
)

// StreamsCmd is `trail streams`: the log streams that deliver a tenant's
// events to its SIEM, webhook or bucket (docs/log-streams.md). Not the live
// tail (GET /v1/tail, --streams-per-key): these run on the server's leader.
type StreamsCmd struct {
	Create       StreamsCreateCmd `cmd:"" help:"Create a log stream; a test delivery is made first, and a failing destination is refused."`
	List         StreamsListCmd   `cmd:"" help:"List log streams with their health."`
	Show         StreamsShowCmd   `cmd:"" help:"Show a log stream, its health and dead letters (never its secret)."`
	Pause        StreamsPauseCmd  `cmd:"" help:"Pause a log stream; it keeps its position."`
	Resume       StreamsResumeCmd `cmd:"" help:"Resume a paused log stream from where it stopped."`
	Delete       StreamsDeleteCmd `cmd:"" help:"Delete a log stream and its dead letters."`
	RotateSecret StreamsRotateCmd `cmd:"" name:"rotate-secret" help:"Replace a stream's secret; a webhook signs with both during the overlap."`
}

// logStreams is the stream manager over the store of --db or --postgres.
type logStreams struct {
	m     *logstream.Manager
	close func()
}

// openLogStreams opens the streams of the store trail serve runs on: the
// SQLite file (table trail_log_streams) or the PostgreSQL schema
// (log_streams), the privacy layer (whose master key wraps the secrets) and
// the sealed log (lag, start position).
func (e *Env) openLogStreams(postgres string) (*logStreams, error) {
	if postgres != "" {
		st, db, err := e.openPostgres(postgres)
		if err != nil {
			return nil, err
		}
		m, _, err := e.logStreamManager(st, db, st.Schema(), "")
		if err != nil {
			db.Close()
			st.Close()
			return nil, err
		}
		return &logStreams{m: m, close: func() { db.Close(); st.Close() }}, nil
	}
	st, err := e.OpenStore(true)
	if err != nil {
		return nil, err
	}
	m, _, err := e.logStreamManager(st, st.DB(), "", st.Path())
	if err != nil {
		st.Close()
		return nil, err
	}
	return &logStreams{m: m, close: func() { st.Close() }}, nil
}

// logStreamManager builds the manager over store: on PostgreSQL, db is a
// database/sql handle of the same database and schema the store's; on
// SQLite db is the store's own and keyFile the database path.
func (e *Env) logStreamManager(store trail.Store, db *sql.DB, schema, keyFile string) (*logstream.Manager, *trailprivacy.Privacy, error) {
	priv, kms, err := e.openPrivacy(db, schema, keyFile, false)
	if err != nil {
		return nil, nil, err
	}
	m, err := e.newLogStreamManager(store, db, schema, priv, kms)
	return m, priv, err
}

// newLogStreamManager builds the manager over store with an open privacy
// layer (trail serve's own) and its master key, which wraps the secrets.
func (e *Env) newLogStreamManager(store trail.Store, db *sql.DB, schema string, priv *trailprivacy.Privacy, kms *trailprivacy.LocalKMS) (*logstream.Manager, error) {
	var (
		err error
		ls  *logstream.Store
		m   = &logstream.Manager{Transform: priv}
	)
	if kms != nil { // a nil *LocalKMS must stay a nil interface
		m.KMS = kms
	}
	switch st := store.(type) {
	case *trailsqlite.Store:
		ls, err = logstream.NewSQLiteStore(e.Ctx, db, st)
		m.Log = st
	case *trailpgx.Store:
		var ss *trailsql.Store
		if ss, err = trailsql.New(e.Ctx, db, &trailpgx.Config{Schema: schema}); err != nil {
			return nil, err
		}
		ls, err = logstream.NewPostgresStore(e.Ctx, db, schema, ss)
		m.Log = st
	default:
		return nil, fmt.Errorf("log streams: no stream table for a %T store", store)
	}
	if err != nil {
		return nil, err
	}
	m.Store = ls
	return m, nil
}

// StreamsCreateCmd is `trail streams create`.
type StreamsCreateCmd struct {
	PostgresFlag
	Tenant     string   `name:"tenant" placeholder:"T" help:"The tenant whose events the stream delivers."`
	All        bool     `name:"all" help:"Deliver every tenant's events and the platform's (operators)."`
	Name       string   `name:"name" help:"A label for people."`
	Type       string   `name:"type" required:"" enum:"webhook,syslog,s3,splunk_hec,datadog" help:"Destination: webhook, syslog, s3, splunk_hec or datadog."`
	URL        string   `name:"url" help:"webhook, splunk_hec, datadog: the https:// URL to POST to."`
	Encoding   string   `name:"encoding" enum:"json,ndjson," default:"" help:"webhook: json (an array, default) or ndjson."`
	Address    string   `name:"address" placeholder:"HOST:PORT" help:"syslog: the receiver's address."`
	TLS        bool     `name:"tls" help:"syslog: over TLS."`
	Transport  string   `name:"transport" placeholder:"relp|tcp" help:"syslog: relp (each message acknowledged; recommended), relp+tls, or tcp (the default; no acknowledgement)."`
	CAFile     string   `name:"ca-file" placeholder:"FILE" help:"A PEM CA certificate to trust beside the system's (a private CA)."`
	Endpoint   string   `name:"endpoint" help:"s3: the S3-compatible endpoint URL (default AWS)."`
	Bucket     string   `name:"bucket" help:"s3: the bucket."`
	Prefix     string   `name:"prefix" help:"s3: the key prefix of the objects."`
	Region     string   `name:"region" help:"s3: the region (default us-east-1)."`
	AccessKey  string   `name:"access-key-id" help:"s3: the access key ID (the secret key is the stream's secret)."`
	Index      string   `name:"index" help:"splunk_hec: the index."`
	SourceType string   `name:"sourcetype" help:"splunk_hec: the sourcetype (default trail:audit, trail:ocsf)."`
	Service    string   `name:"service" help:"datadog: the service (default trail)."`
	SecretEnv  string   `name:"secret-env" placeholder:"VAR" help:"The environment variable holding the destination's secret (HEC token, Datadog API key, S3 secret key; a webhook's is generated when not given). Never a flag: flags show in ps."`
	Format     string   `name:"format" enum:"trail,ocsf," default:"" help:"trail (default) or ocsf."`
	Actions    []string `name:"action" placeholder:"A" help:"Only these actions (repeat; prefixes like auth.*)."`
	Outcome    string   `name:"outcome" enum:"success,failure,denied," default:"" help:"Only this outcome."`
	MaxEvents  int      `name:"max-events" help:"Most events in one delivery (default 500)."`
	MaxWait    int      `name:"max-wait-ms" help:"How long a smaller batch waits for more, in ms (default 1000)."`
	DeadLetter string   `name:"dead-letter-after" placeholder:"24h" help:"A batch failing this long is set aside as a dead letter (default 24h)."`
	Paused     bool     `name:"paused" help:"Create the stream paused."`
	JSON       bool     `name:"json" help:"Print the stream as JSON."`
}

func (c *StreamsCreateCmd) Run(e *Env) error {
	req := logstream.CreateRequest{Tenant: c.Tenant, AllTenants: c.All, Name: c.Name, Format: c.Format, Paused: c.Paused,
		Destination: logstream.Destination{Type: c.Type, URL: c.URL, Encoding: c.Encoding, Address: c.Address, TLS: c.TLS, Transport: c.Transport,
			Endpoint: c.Endpoint, Bucket: c.Bucket, Prefix: c.Prefix, Region: c.Region, AccessKeyID: c.AccessKey,
			Index: c.Index, SourceType: c.SourceType, Service: c.Service},
		Filter: logstream.Filter{Actions: c.Actions, Outcome: c.Outcome}, Batching: logstream.Batching{MaxEvents: c.MaxEvents, MaxWaitMS: c.MaxWait}}
	if c.Tenant == "" && !c.All {
		return Usagef("name the --tenant, or --all")
	}
	if c.CAFile != "" {
		b, err := os.ReadFile(c.CAFile)
		if err != nil {
			return Usagef("--ca-file: %v", err)
		}
		req.Destination.CAPEM = string(b)
	}
	if c.SecretEnv != "" {
		req.Secret = os.Getenv(c.SecretEnv)
		if req.Secret == "" {
			return Usagef("--secret-env: $%s is empty", c.SecretEnv)
		}
	}
	if c.DeadLetter != "" {
		d, err := time.ParseDuration(c.DeadLetter)
		if err != nil || d < time.Second {
			return Usagef("--dead-letter-after: a duration of a second or more, like 24h")
		}
		req.DeadLetterAfterS = int(d / time.Second)
	}
	if err := req.Check(); err != nil {
		return streamsErr(err)
	}
	ls, err := e.openLogStreams(c.Postgres)
	if err != nil {
		return err
	}
	defer ls.close()
	s, err := ls.m.Create(cliStreamsCtx(e), logstream.Caller{All: true}, req)
	if err != nil {
		return streamsErr(err)
	}
	if c.JSON {
		return printJSON(e, s)
	}
	fmt.Fprintf(e.Stdout, "Created log stream %s (%s → %s), test delivery accepted.\n", s.ID, scopeOf(&s.Stream), where(&s.Stream))
	if s.Secret != "" {
		fmt.Fprintf(e.Stdout, "\nWebhook signing secret — shown once, give it to the receiver now:\n\n  %s\n", s.Secret)
	}
	for _, n := range s.Notes {
		fmt.Fprintf(e.Stdout, "Note: %s\n", n)
	}
	return nil
}

// StreamsListCmd is `trail streams list`.
type StreamsListCmd struct {
	PostgresFlag
	Tenant string `name:"tenant" placeholder:"T" help:"Only this tenant's streams."`
	JSON   bool   `name:"json" help:"Print JSON."`
}

func (c *StreamsListCmd) Run(e *Env) error {
	ls, err := e.openLogStreams(c.Postgres)
	if err != nil {
		return err
	}
	defer ls.close()
	caller := logstream.Caller{All: true}
	if c.Tenant != "" {
		caller = logstream.Caller{Tenant: c.Tenant}
	}
	ss, err := ls.m.List(e.Ctx, caller)
	if err != nil {
		return streamsErr(err)
	}
	if c.JSON {
		return printJSON(e, map[string]any{"streams": ss})
	}
	if len(ss) == 0 {
		fmt.Fprintln(e.Stdout, "No log streams.")
		return nil
	}
	tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSCOPE\tNAME\tDESTINATION\tFORMAT\tSTATE\tDELIVERED\tLAG\tLAST ERROR")
	for i := range ss {
		s := &ss[i]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d ev, %.1fs\t%s\n", s.ID, scopeOf(s), s.Name, where(s), s.Format, s.Health.State,
			s.Health.Delivered, s.Health.LagEvents, s.Health.LagSeconds, clipLine(s.Health.LastError, 60))
	}
	return tw.Flush()
}

// StreamsShowCmd is `trail streams show ID`.
type StreamsShowCmd struct {
	PostgresFlag
	ID   string `arg:"" help:"The stream's ID (ls_…)."`
	JSON bool   `name:"json" help:"Print JSON."`
}

func (c *StreamsShowCmd) Run(e *Env) error {
	ls, err := e.openLogStreams(c.Postgres)
	if err != nil {
		return err
	}
	defer ls.close()
	s, err := ls.m.Get(e.Ctx, logstream.Caller{All: true}, c.ID)
	if err != nil {
		return streamsErr(err)
	}
	dl, err := ls.m.DeadLetters(e.Ctx, logstream.Caller{All: true}, c.ID)
	if err != nil {
		return streamsErr(err)
	}
	if c.JSON {
		return printJSON(e, map[string]any{"stream": s, "dead_letters": dl})
	}
	b, _ := json.MarshalIndent(s, "", "  ")
	fmt.Fprintf(e.Stdout, "%s\n", b)
	for _, d := range dl {
		fmt.Fprintf(e.Stdout, "dead letter at %s: seq %d-%d (%d events): %s\n", d.At.In(e.Loc).Format(time.RFC3339), d.FirstSeq, d.LastSeq, len(d.EventIDs), d.Error)
	}
	return nil
}

// StreamsIDCmd is `trail streams pause|resume|delete ID`.
type StreamsIDCmd struct {
	PostgresFlag
	ID string `arg:"" help:"The stream's ID (ls_…)."`
}

// StreamsPauseCmd is `trail streams pause ID`.
type StreamsPauseCmd struct{ StreamsIDCmd }

// StreamsResumeCmd is `trail streams resume ID`.
type StreamsResumeCmd struct{ StreamsIDCmd }

// StreamsDeleteCmd is `trail streams delete ID`.
type StreamsDeleteCmd struct{ StreamsIDCmd }

func (c *StreamsPauseCmd) Run(e *Env) error  { return c.setEnabled(e, false) }
func (c *StreamsResumeCmd) Run(e *Env) error { return c.setEnabled(e, true) }

func (c *StreamsIDCmd) setEnabled(e *Env, on bool) error {
	ls, err := e.openLogStreams(c.Postgres)
	if err != nil {
		return err
	}
	defer ls.close()
	s, err := ls.m.SetEnabled(cliStreamsCtx(e), logstream.Caller{All: true}, c.ID, on)
	if err != nil {
		return streamsErr(err)
	}
	fmt.Fprintf(e.Stdout, "Log stream %s is %s.\n", s.ID, s.Health.State)
	return nil
}

func (c *StreamsDeleteCmd) Run(e *Env) error {
	ls, err := e.openLogStreams(c.Postgres)
	if err != nil {
		return err
	}
	defer ls.close()
	if err := ls.m.Delete(cliStreamsCtx(e), logstream.Caller{All: true}, c.ID); err != nil {
		return streamsErr(err)
	}
	fmt.Fprintf(e.Stdout, "Deleted log stream %s.\n", c.ID)
	return nil
}

// StreamsRotateCmd is `trail streams rotate-secret ID`.
type StreamsRotateCmd struct {
	PostgresFlag
	ID        string        `arg:"" help:"The stream's ID (ls_…)."`
	SecretEnv string        `name:"secret-env" placeholder:"VAR" help:"The environment variable holding the new secret (a webhook's is generated when not given)."`
	Overlap   time.Duration `name:"overlap" default:"24h" help:"webhook: how long the old secret is signed with too; 0 ends it now."`
}

func (c *StreamsRotateCmd) Run(e *Env) error {
	req := logstream.RotateRequest{OverlapS: int(c.Overlap / time.Second)}
	if c.Overlap <= 0 {
		req.OverlapS = -1
	} else if req.OverlapS == 0 {
		req.OverlapS = 1
	}
	if c.SecretEnv != "" {
		if req.Secret = os.Getenv(c.SecretEnv); req.Secret == "" {
			return Usagef("--secret-env: $%s is empty", c.SecretEnv)
		}
	}
	ls, err := e.openLogStreams(c.Postgres)
	if err != nil {
		return err
	}
	defer ls.close()
	s, err := ls.m.RotateSecret(cliStreamsCtx(e), logstream.Caller{All: true}, c.ID, req)
	if err != nil {
		return streamsErr(err)
	}
	fmt.Fprintf(e.Stdout, "Rotated the secret of %s.\n", s.ID)
	if s.SecretOverlapUntil != nil {
		fmt.Fprintf(e.Stdout, "The old secret is signed with too until %s.\n", s.SecretOverlapUntil.In(e.Loc).Format(time.RFC3339))
	}
	if s.Secret != "" {
		fmt.Fprintf(e.Stdout, "\nNew webhook signing secret — shown once:\n\n  %s\n", s.Secret)
	}
	return nil
}

// cliStreamsCtx is the context CLI changes are recorded in: actor
// system:cli, source cli.
func cliStreamsCtx(e *Env) context.Context {
	return trail.WithSource(trail.WithActor(e.Ctx, cliActor), "cli")
}

// streamsErr turns bad input into a usage error (exit 2) with one line.
func streamsErr(err error) error {
	var (
		ve *logstream.ValidationError
		de *logstream.DestinationError
	)
	switch {
	case errors.As(err, &ve):
		return Usagef("%s: %s", ve.Field, ve.Reason)
	case errors.As(err, &de):
		return fmt.Errorf("%s", oneLine(de.Error()))
	case errors.Is(err, logstream.ErrNotFound):
		return Usagef("no such log stream")
	}
	return err
}

func scopeOf(s *logstream.Stream) string {
	if s.AllTenants {
		return "all tenants"
	}
	return "tenant " + s.Tenant
}

func where(s *logstream.Stream) string {
	d := &s.Destination
	switch d.Type {
	case logstream.TypeSyslog:
		scheme := "syslog"
		if d.Transport == logstream.TransportRELP {
			scheme = "relp"
		}
		if d.TLS {
			scheme += "+tls"
		}
		return scheme + "://" + d.Address
	case logstream.TypeS3:
		return "s3://" + d.Bucket + "/" + d.Prefix
	}
	return d.Type + " " + d.URL
}

func clipLine(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func printJSON(e *Env, v any) error {
	enc := json.NewEncoder(e.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
