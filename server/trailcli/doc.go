// Package trailcli is the `trail` command line: record, query, history,
// migrate, demo and version, on the embedded SQLite store (--db, env
// TRAIL_DB, default ./trail.db).
//
// It lives in a package rather than in main so that tests run every command
// in-process against a temporary database (Main takes the arguments, streams
// and exit code explicitly), and so that the server, keys, verify, archive and
// other commands join the same tree: CLI in cli.go has one field per command,
// and each command is a type with a Run(*Env) error method in its own file.
//
// The command line is a user interface for people and scripts at once: a
// table fitted to the terminal or JSON Lines (--json); one line on stderr per
// problem, naming the flag or input line; exit code 2 for bad input (nothing
// is written), 1 for failures. Actors and targets are written type:id
// (ParseRef), times as a duration ago or an absolute time (ParseTime).
package trailcli
