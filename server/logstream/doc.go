// Package logstream delivers each tenant's audit events continuously to a
// destination the tenant configures — an HTTPS webhook, syslog (RFC 5424
// over RELP, which acknowledges each message, or over plain TCP, which
// does not; either with TLS), an S3-compatible bucket, Splunk HEC or
// Datadog Logs — in Trail's JSON or in OCSF (docs/log-streams.md).
//
// A stream is a row in a table the server owns (trail_log_streams, beside
// the API keys: the SQLite file, or the PostgreSQL store's schema). Its
// destination secret (webhook signing secret, HEC token, Datadog API key, S3
// secret key) is wrapped by the privacy layer's master key (trailprivacy.KMS)
// and never leaves the server again. Every change to a stream is recorded
// as an audit event in the change's own transaction.
//
// Delivery reads the events from the tenants' sealed logs (trailseal.Store
// Leaves), so its order is the log's order, and the position reached — one
// next index per log, and the stream's own sequence number — is written to
// the stream's row only after the receiver accepted the batch: at least
// once, in order, nothing kept only in memory. Every delivered event carries
// the stream's sequence number (1, 2, 3 …), so that a receiver detects a gap
// or a duplicate. The Runner delivers on one replica only: the one whose
// sealer holds the lease.
package logstream
