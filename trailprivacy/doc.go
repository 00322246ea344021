// Package trailprivacy keeps secrets and personal data out of the audit log
// while keeping the log useful and its proofs valid.
//
// Audit logs collect exactly what must not leak: passwords in diffs, tokens
// in metadata, the e-mail and IP address of every actor. And the right to
// erasure collides with a log that must never be rewritten. This package
// answers both before an event is stored:
//
//   - a field Policy (ParsePolicy, DefaultPolicy) omits, redacts, hashes
//     (keyed HMAC-SHA256: searchable by equality with HashFor, not
//     reversible) or encrypts (pii) the changes and metadata an event
//     carries, with a default deny-list of sensitive names (password, token,
//     api_key, card, …) that is on unless turned off;
//   - the personal fields of the actor (name, email, IP, user agent) and the
//     target's name are encrypted with AES-256-GCM under a data key of their
//     subject ("user:42" in a tenant), so that Forget — destroying that key —
//     erases the person everywhere the events were copied, without touching
//     a single stored event: integrity proofs hash the stored ciphertext and
//     still verify (crypto-shredding).
//
// Data keys are random, wrapped by a master key behind the KMS interface
// (LocalKMS from TRAIL_MASTER_KEY or a key file; a cloud KMS can implement
// it), and kept in a KeyStore (MemoryKeyStore; SQLKeyStore over SQLite or
// PostgreSQL, table trail_subject_keys). Rewrap rotates the master key
// without touching events; a wrong master key is a startup error
// (CheckMasterKey), never silent plaintext.
//
// *Privacy is a trail.Transformer: set it as trail.Config.Transform so that
// events are transformed before they leave the process, and apply it again at
// ingest on the server — it leaves values already in a stored form alone.
// Reveal reads a stored event back, showing "[erased]" for forgotten
// subjects. docs/privacy.md describes the policy language, the stored forms
// and the key hierarchy.
package trailprivacy
