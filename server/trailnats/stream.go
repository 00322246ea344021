package trailnats

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/trailhq/trail"
)

// Config names the stream and how it is cut. Publishers and sinks of one
// deployment must agree on every field (Setup stores them in the stream).
type Config struct {
	// Stream is the JetStream stream's name. Default "TRAIL_EVENTS".
	Stream string
	// Subject is the subjects' prefix: events go to Subject.<partition>.
	// Default "trail.events".
	Subject string
	// Partitions is how many subjects, and consumers, events are spread
	// over; a tenant's events are always in one. It bounds how many sinks
	// can work at once. Fixed for the stream's life. Default 16.
	Partitions int
	// Replicas is the stream's replication factor (1, 3 or 5). Default 1.
	Replicas int
	// DuplicateWindow is how long JetStream remembers message IDs to drop
	// retries. Default 2 minutes.
	DuplicateWindow time.Duration
}

// Defaults.
const (
	DefaultStream     = "TRAIL_EVENTS"
	DefaultSubject    = "trail.events"
	DefaultPartitions = 16
)

func (c Config) withDefaults() Config {
	if c.Stream == "" {
		c.Stream = DefaultStream
	}
	if c.Subject == "" {
		c.Subject = DefaultSubject
	}
	if c.Partitions <= 0 {
		c.Partitions = DefaultPartitions
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.DuplicateWindow <= 0 {
		c.DuplicateWindow = 2 * time.Minute
	}
	return c
}

// MinServer is the oldest nats-server Trail works with: pinned priority
// groups, which keep each partition with one sink at a time, came in 2.11,
// and atomic batch publish, which keeps a request's order through a
// failover, in 2.12.
const MinServer = "2.12.0"

// ErrServerTooOld: the server lacks pinned priority groups or atomic batches.
var ErrServerTooOld = errors.New("trailnats: nats-server " + MinServer + " or later is needed (pinned priority groups, atomic batch publish)")

// ErrUnavailable matches every error of publishing to or reading from
// JetStream: the stream did not take the events, retry later.
var ErrUnavailable = errors.New("trailnats: JetStream unavailable")

// CheckServer returns ErrServerTooOld (wrapped, with the version) when nc's
// server is older than MinServer.
func CheckServer(nc *nats.Conn) error {
	v := nc.ConnectedServerVersion()
	if !versionAtLeast(v, 2, 12) {
		return fmt.Errorf("%w: %s at %s is %s", ErrServerTooOld, "the server", nc.ConnectedUrlRedacted(), v)
	}
	return nil
}

func versionAtLeast(v string, major, minor int) bool {
	v = strings.TrimPrefix(v, "v")
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || (ma == major && mi >= minor)
}

// Setup creates the stream, or checks that the existing one has the same
// subjects; the replicas and duplicate window of an existing stream are
// updated to cfg's.
func Setup(ctx context.Context, js jetstream.JetStream, cfg Config) (jetstream.Stream, error) {
	cfg = cfg.withDefaults()
	sc := jetstream.StreamConfig{
		Name:       cfg.Stream,
		Subjects:   []string{cfg.Subject + ".>"},
		Storage:    jetstream.FileStorage,
		Retention:  jetstream.LimitsPolicy,
		Replicas:   cfg.Replicas,
		Duplicates: cfg.DuplicateWindow,
		// Publish sends each request's events of a partition as one atomic
		// batch, so that a failover never stores them out of order.
		AllowAtomicPublish: true,
		Metadata:           map[string]string{"trail_partitions": strconv.Itoa(cfg.Partitions)},
	}
	st, err := js.CreateOrUpdateStream(ctx, sc)
	if err != nil {
		return nil, fmt.Errorf("%w: creating stream %s: %w", ErrUnavailable, cfg.Stream, err)
	}
	if p := st.CachedInfo().Config.Metadata["trail_partitions"]; p != strconv.Itoa(cfg.Partitions) {
		return nil, fmt.Errorf("trailnats: stream %s has %s partitions, not %d: every publisher and sink must use the stream's count", cfg.Stream, p, cfg.Partitions)
	}
	return st, nil
}

// Partition is the partition of tenant's events: FNV-1a mod n.
func Partition(tenant string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(tenant))
	return int(h.Sum32() % uint32(n))
}

// MsgID is the Nats-Msg-Id of ev: its event ID, which is unique across
// tenants as in the stores. JetStream keeps the first message of an ID
// within its duplicate window and answers any later one with that
// message's sequence, where the publisher reads it to tell a retry (the
// same event, trail.SameEvent) from a reuse of the ID (IDConflictError).
func MsgID(ev *trail.Event) string { return ev.ID.String() }

func subject(cfg *Config, p int) string { return cfg.Subject + "." + strconv.Itoa(p) }
