package trailcli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/alecthomas/kong"
	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server/trailsqlite"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// CLI is the whole command tree of `trail`. Each command is a field whose
// type has a Run(*Env) error method, in a file of its own: to add a command,
// add one field here and write its file.
type CLI struct {
	Globals

	Record  RecordCmd  `cmd:"" help:"Record an event from flags, or JSON / JSON Lines events from stdin."`
	Query   QueryCmd   `cmd:"" help:"Find events, newest first: a table for people, JSON Lines with --json."`
	History HistoryCmd `cmd:"" help:"Show an object's timeline with its field changes (old → new)."`
	Migrate MigrateCmd `cmd:"" help:"Create the database or bring its schema up to date."`
	Demo    DemoCmd    `cmd:"" help:"Seed a realistic multi-tenant demo dataset and print what to try."`
	Serve   ServeCmd   `cmd:"" help:"Serve the HTTP API (ingest, query, export, live tail) with API keys."`
	Sink    SinkCmd    `cmd:"" help:"Move events from the NATS JetStream stream of trail serve --nats into the store (any number of sinks)."`
	Keys    KeysCmd    `cmd:"" help:"Create, list and revoke API keys of the HTTP API."`
	Hash    HashCmd    `cmd:"" help:"Print the pseudonym (HMAC) of a value to search for in hashed fields; recorded as an event."`
	Forget  ForgetCmd  `cmd:"" help:"Erase a person: destroy the subject's key, so that its encrypted fields read [erased]."`
	Bench   BenchCmd   `cmd:"" help:"Measure Trail on PostgreSQL: audited writes, bulk ingest, queries, storage (JSON with --json)."`
	Capture CaptureCmd `cmd:"" help:"Capture a PostgreSQL table's row changes with triggers: enable, disable, list."`
	Import  ImportCmd  `cmd:"" help:"Import a Django app's audit table: the seed's AuditLog, django-auditlog's LogEntry or a django-simple-history table (docs/integrations.md)."`
	Version VersionCmd `cmd:"" help:"Print the version."`

	// Tamper evidence (integrity.go).
	Seal        SealCmd        `cmd:"" help:"Seal every pending event into its tenant's Merkle log and sign checkpoints, once."`
	Verify      VerifyCmd      `cmd:"" help:"Recompute every leaf from the stored events, rebuild the trees and check every checkpoint."`
	Prove       ProveCmd       `cmd:"" help:"Print an event's inclusion proof (or, with --consistency, a consistency proof) as JSON."`
	Checkpoints CheckpointsCmd `cmd:"" help:"Export a tenant's signed checkpoint history."`
	Monitor     MonitorCmd     `cmd:"" help:"Watch checkpoints and the deployment head like Go's sumdb client: remember the last seen per tenant, check consistency on every fetch, exit 1 on a rollback or fork (docs/verification.md)."`
	Witness     WitnessCmd     `cmd:"" help:"Run an HTTP witness receiver for --witness https://… (docs/verification.md)."`
	Retention   RetentionCmd   `cmd:"" help:"Retention policies, legal holds, and the archive-then-purge run (docs/retention.md)."`
	Archive     ArchiveCmd     `cmd:"" help:"List, verify and restore archived events (docs/retention.md)."`
	Streams     StreamsCmd     `cmd:"" help:"Log streams: deliver a tenant's events to its webhook, syslog, S3, Splunk or Datadog (docs/log-streams.md)."`
	ViewerToken ViewerTokenCmd `cmd:"" name:"viewer-token" help:"Ask a running server (--url) for a short-lived link to the tenant-facing viewer of one tenant (docs/ui.md)."`
}

// Globals are the flags every command takes.
type Globals struct {
	DB string `name:"db" env:"TRAIL_DB" default:"./trail.db" placeholder:"PATH" help:"SQLite database file."`
	PrivacyFlags
}

// Env is what a command runs with: the parsed global flags and the process's
// streams and clock, injectable so that tests run commands in-process.
type Env struct {
	Ctx    context.Context
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Now is the clock for relative times (--since 30d) and the demo's
	// anchor. Default time.Now.
	Now func() time.Time
	// Loc is the zone times are shown in and dates without a zone are read
	// in. Default time.Local.
	Loc *time.Location
	// StdinIsTerminal tells `record` whether stdin may hold events. Default:
	// detected when Stdin is an *os.File, else false.
	StdinIsTerminal *bool
	// Width is the terminal width tables are fitted to; 0 means no limit.
	// Default: detected when Stdout is a terminal, else 0.
	Width *int

	// Globals holds the global flags once parsed.
	Globals Globals
}

// Main runs `trail` with args (without the program name) on the process's
// standard streams and returns the exit code: 0 success, 1 failure, 2 bad
// usage or input.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return (&Env{Ctx: ctx, Stdin: stdin, Stdout: stdout, Stderr: stderr}).Main(args)
}

// Exit codes.
const (
	ExitOK      = 0
	ExitFailure = 1 // the command could not do its job (I/O, database)
	ExitUsage   = 2 // bad flags or bad input: nothing was written
)

// UsageError marks an error caused by the command line or its input, as
// opposed to a failure of the system: `trail` exits 2 for it.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usagef returns a *UsageError with a formatted message.
func Usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// exitPanic carries kong's exit request (after --help) out of the parser.
type exitPanic struct{ code int }

// Main runs `trail` with args and returns the exit code.
func (e *Env) Main(args []string) (code int) {
	e.defaults()
	var cli CLI
	parser, err := kong.New(&cli,
		kong.Name("trail"),
		kong.Description("Trail records who did what, to which object, in which tenant — and finds it again.\nActors and targets are written type:id, e.g. user:42, subscription:sub_acme."),
		kong.Writers(e.Stdout, e.Stderr),
		kong.Exit(func(code int) { panic(exitPanic{code}) }),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
	)
	if err != nil {
		fmt.Fprintf(e.Stderr, "trail: internal error: %v\n", err)
		return ExitFailure
	}
	noArgs := len(args) == 0
	if noArgs {
		args = []string{"--help"} // and exit 2: a command was expected
	}
	defer func() {
		if r := recover(); r != nil {
			p, ok := r.(exitPanic)
			if !ok {
				panic(r)
			}
			code = p.code
			if noArgs {
				code = ExitUsage
			}
		}
	}()
	// kong would quietly turn invalid UTF-8 into U+FFFD: refuse it first.
	if err := checkArgsUTF8(args); err != nil {
		fmt.Fprintf(e.Stderr, "trail: %s\n", oneLine(err.Error()))
		return ExitUsage
	}
	kctx, err := parser.Parse(args)
	if err != nil {
		fmt.Fprintf(e.Stderr, "trail: %s (see trail --help)\n", oneLine(err.Error()))
		return ExitUsage
	}
	e.Globals = cli.Globals
	if err := kctx.Run(e); err != nil {
		fmt.Fprintf(e.Stderr, "trail: %s\n", oneLine(err.Error()))
		return exitCode(err)
	}
	return ExitOK
}

func (e *Env) defaults() {
	if e.Ctx == nil {
		e.Ctx = context.Background()
	}
	if e.Stdin == nil {
		e.Stdin = strings.NewReader("")
	}
	if e.Stdout == nil {
		e.Stdout = io.Discard
	}
	if e.Stderr == nil {
		e.Stderr = io.Discard
	}
	if e.Now == nil {
		e.Now = time.Now
	}
	if e.Loc == nil {
		e.Loc = time.Local
	}
	if e.StdinIsTerminal == nil {
		t := false
		if f, ok := e.Stdin.(*os.File); ok {
			t = isTerminal(f)
		}
		e.StdinIsTerminal = &t
	}
	if e.Width == nil {
		w := 0
		if f, ok := e.Stdout.(*os.File); ok && isTerminal(f) {
			w = terminalWidth(f)
		}
		e.Width = &w
	}
}

// checkArgsUTF8 reports the first argument that is not valid UTF-8, naming
// its flag.
func checkArgsUTF8(args []string) error {
	for i, a := range args {
		if utf8.ValidString(a) {
			continue
		}
		switch name, _, hasValue := strings.Cut(a, "="); {
		case strings.HasPrefix(a, "--") && hasValue && utf8.ValidString(name):
			return Usagef("%s: not valid UTF-8", name)
		case i > 0 && strings.HasPrefix(args[i-1], "--") && utf8.ValidString(args[i-1]):
			return Usagef("%s: not valid UTF-8", args[i-1])
		}
		return Usagef("argument %d: not valid UTF-8", i+1)
	}
	return nil
}

// exitCode maps an error to the process's exit code: bad input (a usage
// error, an invalid event or query, a --db file that is not a Trail database
// or is damaged) is 2, anything else 1.
func exitCode(err error) int {
	var ue *UsageError
	switch {
	case errors.As(err, &ue),
		errors.Is(err, trail.ErrInvalid),
		errors.Is(err, trail.ErrInvalidQuery),
		errors.Is(err, trail.ErrInvalidCursor),
		errors.Is(err, trail.ErrIDConflict),
		errors.Is(err, trailsqlite.ErrNotTrailDatabase),
		damagedSQLite(err):
		return ExitUsage
	}
	return ExitFailure
}

// damagedSQLite reports whether err is SQLite finding the database file
// damaged (SQLITE_CORRUPT) or not a database (SQLITE_NOTADB) after it was
// opened: a page read by a query, not the header Open checks.
func damagedSQLite(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff { // the primary code of an extended one
	case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
		return true
	}
	return false
}

// oneLine makes an error message a single clean line: the CLI's contract is
// one line on stderr per problem, and messages may quote hostile input.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	s = strings.ReplaceAll(s, "\r\n", "; ")
	s = strings.ReplaceAll(s, "\n", "; ")
	return strings.Map(func(r rune) rune {
		if r == '\t' {
			return ' ' // drivers indent continuation lines with tabs
		}
		if isControl(r) {
			return '\uFFFD'
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}
