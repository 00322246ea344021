// Package trailnats puts NATS JetStream between Trail's edge and its stores,
// for deployments where one database cannot take every write (docs/scale.md).
//
// The path of an event: trail serve --nats validates it as always, then a
// [Publisher] puts it on the stream (subject trail.events.<partition>,
// partition = FNV-1a(tenant) mod Partitions) and answers the client once
// JetStream has acknowledged it — with R3 that is a quorum of three nodes.
// Nats-Msg-Id is the event ID: within its duplicate window JetStream keeps
// the first message of an ID and answers a later one with that message's
// sequence, where the publisher reads it and tells a retry (the same event,
// trail.SameEvent: a duplicate) from a reuse of the ID (an
// IDConflictError, the edge's 409, issue 13's rule); a reuse older than the
// window reaches the store, which refuses it, and the sink sets it aside.
// A [Sink] — any number of `trail sink`
// processes — reads each partition through one durable pull consumer and
// appends a batch to the store, acknowledging after the commit; the store
// drops what it already holds, so a redelivered batch stores nothing twice.
//
// Per-tenant order: a request's events (all its partitions, MaxAtomicBatch
// at a time) are published in one JetStream atomic batch (nats-server 2.12
// or later), stored whole or not at all, so a stream leader failing over
// mid-publish cannot put part of a request on the stream before the rest.
// Requests arriving while MaxFlushers batches are out share the next one,
// each request's events together and in order: nats-server's cost per
// batch (an R1 stream stages each in a file store of its own) is shared.
// A tenant's events share one partition, and each partition's consumer is
// pinned to one sink at a time (JetStream priority
// groups, PriorityPolicyPinned, nats-server 2.11 or later) with at most one
// batch unacknowledged (MaxAckPending = the batch size). While a sink
// stores a batch it sends progress signals and pulls that cannot deliver,
// so it keeps both the batch and the pin however long the store takes. A
// sink that dies stops both: its batch is redelivered after AckWait, and
// the partition moves after PinnedTTL (longer than AckWait), so the next
// sink gets that batch before anything newer. A sink started later gets
// its share: every sink keeps a pull waiting on every partition, so a
// partition's consumer info (its pinned client, its waiting pulls) tells a
// sink which partitions it holds and how many sinks there are, and a sink
// holding more than ceil(partitions / sinks) unpins the excess (JetStream's
// Unpin), each between two of its batches, and stays off it until another
// sink is pinned. There is no coordination of Trail's own: JetStream
// assigns partitions.
package trailnats
