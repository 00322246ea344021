// Package trailclient records and reads audit events through Trail's HTTP
// API (`trail serve`), for services that do not share Trail's database.
//
// Why delivery lives here: an audit event must not be lost when the
// process crashes, the server restarts or the network fails, and the
// service recording it must not pay a round trip per event. Every event
// gets its ID before it is queued, so a re-send after a lost answer is
// recognized by the server as a duplicate: nothing is stored twice, however
// often it is retried.
//
// What Enqueue promises is the event's policy (Config.Policy, and
// Config.Policies per action):
//
//   - Strict: returns once the server committed the event, as Record does.
//   - Durable: returns once the event is fsynced in the local spool
//     (Config.Spool, a directory bounded by Config.SpoolBytes). It survives
//     SIGKILL and restarts: the next client opened on the directory sends
//     what is left. ErrSpoolFull when the spool is full.
//   - BestEffort: returns once the event is in memory; dropped and counted
//     when the memory queue is full.
//
// Events are sent in the background, one request at a time, in batches
// bounded by count (BatchSize) and bytes (MaxBatchBytes, under the server's
// body limit), and retried on network errors, 5xx and 429 until delivered,
// with capped exponential backoff. An event the server refuses fails alone
// (its batch-mates are stored); it and any event older than Config.MaxAge
// go to the dead-letter file and OnError, never silently away. Close
// delivers what is queued or says what it left (UndeliveredError);
// DeliveryStats counts queued, spooled, delivered, dropped and
// dead-lettered events. docs/client.md describes the spool's format and
// fsync policy.
//
// Record waits until its event is acknowledged. Its event is sent at once,
// never held for Config.FlushInterval, so a lone Record costs one round
// trip; concurrent Record calls share batches. Client implements
// trail.Recorder, so code written against the library's recorder can switch
// to the HTTP API.
//
// Query, Get, History and Stats are thin helpers over the read endpoints.
// The package uses only the standard library, uuid and the trail package.
package trailclient
