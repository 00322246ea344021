// Package trailarchive is Trail's retention: per-tenant and per-action
// policies, legal holds, Parquet archives with signed manifests, and the
// purge that removes events from the hot store only once their archive has
// been written and read back.
//
// Why a package of its own: audit tables grow without bound, customers need
// different retention per tenant and per kind of event, holds that stop any
// deletion, and archives that stay provably complete and untampered years
// later. Retention is measured on RecordedAt (the store's clock), never on the
// client-supplied OccurredAt, so a client cannot backdate events into early
// deletion.
//
// The path of one run (Runner.Run): read the policies and holds, walk every
// tenant's sealed log (trailseal.Store.Leaves) and pick the events past their
// hot period that no hold covers; write each tenant's events of one recorded
// day as one batch, tenant=T/date=D/<first>-<last>-<digest>.parquet (zstd,
// typed columns any engine queries, from which each event's canonical bytes
// are rebuilt: docs/archive-format.md),
// then its manifest (files, rows, SHA-256, the seqs it holds, the checkpoint
// covering them), signed like a checkpoint; read both back; only then purge
// the events, in one transaction that re-checks the holds. Leaves and stored
// hashes stay, so every checkpoint still verifies; the purged seqs are
// recorded (trailseal.PurgeRecorder) so the verifier reports them as purged,
// and each archived event is checked against its leaf by Verify.
//
// Batch names are a digest of the seqs they hold, and a manifest is written
// last: a run that crashes anywhere is re-run to completion without a gap and
// without a duplicate.
package trailarchive
