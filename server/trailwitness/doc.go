// Package trailwitness keeps Trail's signed checkpoints and deployment
// heads where the database's administrator cannot rewrite them
// (trailseal.Witness): an S3-compatible bucket with Object Lock (S3), an
// HTTP endpoint (HTTP, with Handler as a receiver that keeps what it is
// sent in a directory), and trailseal.DirWitness. Open parses the
// --witness forms `trail serve`, `trail seal`, `trail verify` and
// `trail monitor` take. docs/verification.md ("Witnesses") describes the
// keys and what a witness lets verify detect.
package trailwitness
