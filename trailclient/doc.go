// Package trailclient records and reads audit events through Trail's HTTP
// API (`trail serve`), for services that do not share Trail's database.
//
// Why batching and retries live here: an audit event must not be lost when
// the server restarts or a network blip happens, and the service recording
// it must not pay a round trip per event. Client queues events, sends them
// in batches of up to Config.BatchSize, one request at a time, and re-sends
// a batch on network errors, 5xx and 429 with exponential backoff. Every
// event gets its ID before it is queued, so a re-send after a lost answer is
// recognized by the server as a duplicate: nothing is stored twice, whatever
// the retries.
//
// Record waits until its event is acknowledged (committed on the server).
// Its event is sent at once, never held for Config.FlushInterval, so a lone
// Record costs one round trip; concurrent Record calls share batches (those
// arriving while a request is in flight go together in the next), so
// throughput grows with concurrency. Enqueue returns at once, and its events
// wait up to FlushInterval for companions (or leave with the next Record's
// batch); Flush waits for everything queued, and Close flushes and stops.
// Client implements trail.Recorder, so code written against the library's
// recorder can switch to the HTTP API.
//
// Query, Get, History and Stats are thin helpers over the read endpoints.
// The package uses only the standard library and the trail package.
package trailclient
