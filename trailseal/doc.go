// Package trailseal makes Trail's audit log tamper-evident.
//
// An audit log that its own database administrator can quietly edit proves
// nothing. trailseal gives every tenant a transparency log in the Certificate
// Transparency sense (RFC 6962, via golang.org/x/mod/sumdb/tlog): each event's
// canonical bytes, as stored, become a leaf of that tenant's Merkle tree; a
// Sealer appends leaves in the background and signs checkpoints (signed notes,
// golang.org/x/mod/sumdb/note, Ed25519); inclusion and consistency proofs let a
// tenant check an event or the log's history offline with the standard
// packages alone; and a Verifier recomputes everything from the stored events
// and names exactly what was changed.
//
// Writers never wait on the sealer: a store appends each event together with a
// row in a pending queue, in the same transaction, and the sealer drains that
// queue. Only one sealer leads at a time, elected by a lease row with a fencing
// epoch (no advisory locks, so SQLite and PostgreSQL behave alike): a sealer
// whose lease was taken over cannot write anything, because every sealing
// transaction checks the epoch it holds.
//
// Whoever can rewrite the database and holds the signing key can also re-sign
// a rewritten log. So the sealer also signs a deployment head (Head: one note
// over every log's newest checkpoint, so that a deleted tenant or a rolled-back
// log shows in one object) and hands every checkpoint and head to Witnesses
// kept outside the database (DirWitness here; S3 with Object Lock and HTTP in
// the server module's trailwitness). CheckWitness compares a store with a
// witness and names each tenant deleted, log rolled back or forked, and
// checkpoint deleted.
//
// Stores implement the small Store interface; MemLog is an in-memory one for
// tests and examples, and package sealtest is the conformance and tamper suite
// every implementation runs. docs/verification.md specifies the leaf, tree
// and checkpoint formats for third-party verifiers.
package trailseal
