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
//     with many random parameters, p50/p95/p99; then the three target
//     questions (a page of 50) beside a seed-style table of the same rows
//     (one table, composite indexes with the tenant first), in warm
//     sessions and in cold ones (a new connection before each query).
//   - Storage: bytes per event including indexes, the id keys and the seal queue.
//   - UI: the admin UI's pages (list, filtered by tenant, action or actor,
//     an actor's page, event detail, object history) rendered by the real
//     trailserver handler through httptest for an all-tenant admin,
//     p50/p95/p99 of the server time, audit.read write included.
//
// Without W2, the table W3, storage and UI measure is filled by Store.Append
// (Config.Load "trail", W2's path: hours for 10 M events here) or by the sql
// loader (Config.Load "sql", `--load sql`): the same generated rows,
// streamed with one COPY into Trail's migrated schema with the events
// indexes and the partitions' id keys dropped, then the keys and the
// indexes recreated from their own definitions (about 90 000
// events/s, about 8–10 minutes for 10 M on the shared 2-CPU machine). The seal
// queue trigger is off during the load and no seal_pending rows are made:
// the load measures no ingest, W2 does. Its indexes, built in one pass, are
// denser than those Append grows, so storage under the sql load understates
// the ingest path's bytes per event. A generate_series INSERT … SELECT
// making the rows server-side was measured at about 1 300 events/s (the
// descriptions, word by word, dominate), 70 × slower than the COPY.
//
// Every workload writes one of two datasets, deterministic by seed
// (Config.Dataset, `--dataset`): the synthetic generator of issue 3
// (gen.go: 10 000 tenants of 10 users, 40 actions drawn evenly, random-word
// descriptions), or saas (gen_saas.go, `--dataset saas --tenants 2000
// --users 50000`), shaped like a real SaaS's audit log: Zipf-sized tenants
// (s = 1.1) with users in proportion, named people with e-mails at their
// tenant's domain, API keys and the platform's jobs as actors, a weighted
// mix of about thirty actions (sign-ins and views dominate; edits, sharing,
// membership, billing, security and API calls follow; some fail) with
// sentences for descriptions, diffs whose fields depend on the action,
// metadata, objects that recur within a tenant, tenants signing up during
// the 400 days.
//
// Every workload runs in fresh schemas that it drops afterwards (but for
// the one Config.Keep keeps, or Config.Schema reuses), and
// reports one Result per measured line; the CLI prints them as JSON Lines.
// Absolute numbers depend on the machine; the ratios are the point, which is
// why each comparison is measured side by side rather than against a number
// taken elsewhere.
package bench
