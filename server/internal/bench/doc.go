// Package bench is `trail bench`: the PostgreSQL workloads that tell whether
// Trail is fast enough to sit in a service's write path and answer its
// questions, measured against the limit that matters in the same run.
//
//   - W1, audited write: a business transaction (one subscription-plan
//     UPDATE) unaudited, with RecordTx, with the audit insert queued in the
//     business statement's batch, and with trigger capture; 1 and 8
//     workers. Every worker runs the variants in turn, transaction by
//     transaction, so machine noise hits them alike; the ratio is the
//     variant's throughput over the unaudited one.
//   - W2, bulk ingest: synthetic events through Store.Append (COPY, claiming
//     IDs for idempotency) against a raw COPY of the same rows into an
//     identical indexed table, batch by batch in alternating order.
//   - W3, queries: the five questions the indexes exist for, each asked
//     with many random parameters, p50/p95/p99.
//   - Storage: bytes per event including indexes and event_ids.
//
// Every workload runs in fresh schemas that it drops afterwards, and
// reports one Result per measured line; the CLI prints them as JSON Lines.
// Absolute numbers depend on the machine; the ratios are the point, which is
// why each comparison is measured side by side rather than against a number
// taken elsewhere.
package bench
