package logstream

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/trailhq/trail"
)

// Destination types.
const (
	TypeWebhook = "webhook"
	TypeSyslog  = "syslog"
	TypeS3      = "s3"
	TypeSplunk  = "splunk_hec"
	TypeDatadog = "datadog"
)

// Formats of the delivered events.
const (
	FormatTrail = "trail" // Trail's event JSON inside an envelope with the stream's sequence number
	FormatOCSF  = "ocsf"  // OCSF 1.3.0 (ocsf.go)
)

// Health states.
const (
	StatePending = "pending" // nothing delivered or attempted yet
	StateHealthy = "healthy" // the last attempt succeeded
	StateError   = "error"   // the last attempt failed; retrying with backoff
	StatePaused  = "paused"  // disabled by an admin
)

// Defaults.
const (
	DefaultMaxEvents       = 500
	DefaultMaxWait         = time.Second
	DefaultDeadLetterAfter = 24 * time.Hour
	DefaultSecretOverlap   = 24 * time.Hour
	MaxMaxEvents           = 10000
)

// Destination says where a stream's events go. Only the fields of its Type
// are used; its secret (Secret) is never stored here, never returned.
type Destination struct {
	Type string `json:"type"`
	// URL of a webhook (https://…), a Splunk HEC endpoint
	// (https://host:8088/services/collector/event) or a Datadog Logs intake
	// (https://http-intake.logs.datadoghq.com/api/v2/logs).
	URL string `json:"url,omitempty"`
	// Encoding of a webhook body: "json" (an array, the default) or "ndjson".
	Encoding string `json:"encoding,omitempty"`
	// Address of a syslog receiver, host:port; TLS turns on TLS.
	Address string `json:"address,omitempty"`
	TLS     bool   `json:"tls,omitempty"`
	// Transport of syslog: "relp" (acknowledged: the recommended one) or
	// "tcp" (the default: RFC 5424 octet-counted, no acknowledgement);
	// "relp+tls" is stored as relp with TLS on.
	Transport string `json:"transport,omitempty"`
	// CAPEM is a PEM CA certificate trusted beside the system's (a private
	// CA for an internal receiver). Verification is never skipped.
	CAPEM string `json:"ca_pem,omitempty"`
	// S3: Endpoint ("" is AWS), Bucket, Prefix, Region, AccessKeyID; the
	// secret access key is the stream's secret.
	Endpoint    string `json:"endpoint,omitempty"`
	Bucket      string `json:"bucket,omitempty"`
	Prefix      string `json:"prefix,omitempty"`
	Region      string `json:"region,omitempty"`
	AccessKeyID string `json:"access_key_id,omitempty"`
	// Splunk: Index and SourceType of the events; Datadog: Service and Source.
	Index      string `json:"index,omitempty"`
	SourceType string `json:"sourcetype,omitempty"`
	Service    string `json:"service,omitempty"`
}

// Filter selects the events a stream delivers; empty fields match all.
type Filter struct {
	// Actions are exact actions or prefixes "auth.*".
	Actions []string `json:"actions,omitempty"`
	// Outcome is success, failure or denied.
	Outcome string `json:"outcome,omitempty"`
}

// Match reports whether ev passes f.
func (f *Filter) Match(ev *trail.Event) bool {
	if f.Outcome != "" && string(ev.Outcome) != f.Outcome {
		return false
	}
	if len(f.Actions) == 0 {
		return true
	}
	for _, a := range f.Actions {
		if p, ok := strings.CutSuffix(a, "*"); ok {
			if strings.HasPrefix(ev.Action, p) {
				return true
			}
		} else if ev.Action == a {
			return true
		}
	}
	return false
}

// Batching bounds one delivery: at most MaxEvents events; a batch smaller
// than that waits up to MaxWaitMS for more.
type Batching struct {
	MaxEvents int `json:"max_events"`
	MaxWaitMS int `json:"max_wait_ms"`
}

// Stream is one log stream as the API shows it.
type Stream struct {
	ID string `json:"id"`
	// Tenant whose events are delivered; "" with AllTenants for every
	// tenant and the platform (an all-tenant admin's stream).
	Tenant      string      `json:"tenant,omitempty"`
	AllTenants  bool        `json:"all_tenants,omitempty"`
	Name        string      `json:"name"`
	Destination Destination `json:"destination"`
	Format      string      `json:"format"`
	Filter      Filter      `json:"filter"`
	Batching    Batching    `json:"batching"`
	// DeadLetterAfterS is how long a batch may keep failing before it is
	// set aside as a dead letter and the stream moves on.
	DeadLetterAfterS int       `json:"dead_letter_after_s"`
	Enabled          bool      `json:"enabled"`
	CreatedAt        time.Time `json:"created_at"`
	UpdatedAt        time.Time `json:"updated_at"`
	// HasSecret says a secret is stored (never what it is); SecretOverlapUntil
	// is when a rotated webhook secret stops being signed with too.
	HasSecret          bool       `json:"has_secret"`
	SecretOverlapUntil *time.Time `json:"secret_overlap_until,omitempty"`
	Health             Health     `json:"health"`
}

// Health is a stream's delivery state.
type Health struct {
	State       string     `json:"state"`
	LastSuccess *time.Time `json:"last_success,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
	// Delivered is the last sequence number delivered (0: none).
	Delivered int64 `json:"delivered"`
	// LagEvents counts sealed events not yet looked at (those the filter
	// drops included); LagSeconds is the age of the oldest of them.
	LagEvents   int64   `json:"lag_events"`
	LagSeconds  float64 `json:"lag_seconds"`
	DeadLetters int64   `json:"dead_letters"`
	// Failures is how many attempts in a row failed.
	Failures int `json:"failures"`
}

// ValidationError is bad input, naming the field.
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Reason }

// Errors callers branch on.
var (
	ErrNotFound = errors.New("logstream: no such stream")
	// ErrNoKMS: a stream with a secret needs the privacy layer's master key.
	ErrNoKMS = errors.New("logstream: destination secrets need the privacy layer's master key (TRAIL_MASTER_KEY); the plaintext setup cannot store them")
)

// DestinationError is a destination refused at creation: the test delivery
// failed, with the reason.
type DestinationError struct{ Err error }

func (e *DestinationError) Error() string { return "destination refused: " + e.Err.Error() }
func (e *DestinationError) Unwrap() error { return e.Err }

func invalid(field, format string, a ...any) error {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, a...)}
}

// normalize fills defaults and checks s as created (secret is the given
// secret, "" if none).
func (s *Stream) normalize(secret string) error {
	if s.AllTenants && s.Tenant != "" {
		return invalid("tenant", "a stream is of one tenant or of all tenants, not both")
	}
	if !s.AllTenants && s.Tenant == "" {
		return invalid("tenant", "name the tenant, or set all_tenants (all-tenant admins only)")
	}
	if !utf8.ValidString(s.Name) || len(s.Name) > 200 || strings.ContainsFunc(s.Name, isControl) {
		return invalid("name", "at most 200 bytes of text on one line")
	}
	if s.Format == "" {
		s.Format = FormatTrail
	}
	if s.Format != FormatTrail && s.Format != FormatOCSF {
		return invalid("format", "%q must be trail or ocsf", clip(s.Format))
	}
	if s.Filter.Outcome != "" {
		switch trail.Outcome(s.Filter.Outcome) {
		case trail.OutcomeSuccess, trail.OutcomeFailure, trail.OutcomeDenied:
		default:
			return invalid("filter.outcome", "%q must be success, failure or denied", clip(s.Filter.Outcome))
		}
	}
	if len(s.Filter.Actions) > 100 {
		return invalid("filter.actions", "at most 100")
	}
	for _, a := range s.Filter.Actions {
		p := strings.TrimSuffix(a, "*")
		if a == "" || len(a) > 200 || strings.Contains(p, "*") || strings.ContainsFunc(a, isControl) || strings.ContainsRune(a, ' ') {
			return invalid("filter.actions", "%q must be an action or a prefix ending in *", clip(a))
		}
	}
	if s.Batching.MaxEvents == 0 {
		s.Batching.MaxEvents = DefaultMaxEvents
	}
	if s.Batching.MaxEvents < 1 || s.Batching.MaxEvents > MaxMaxEvents {
		return invalid("batching.max_events", "must be 1 to %d", MaxMaxEvents)
	}
	if s.Batching.MaxWaitMS == 0 {
		s.Batching.MaxWaitMS = int(DefaultMaxWait / time.Millisecond)
	}
	if s.Batching.MaxWaitMS < 1 || s.Batching.MaxWaitMS > 3_600_000 {
		return invalid("batching.max_wait_ms", "must be 1 to 3600000")
	}
	if s.DeadLetterAfterS == 0 {
		s.DeadLetterAfterS = int(DefaultDeadLetterAfter / time.Second)
	}
	if s.DeadLetterAfterS < 1 {
		return invalid("dead_letter_after_s", "must be positive")
	}
	return s.Destination.check(secret)
}

func (d *Destination) check(secret string) error {
	needSecret := func(what string) error {
		if secret == "" {
			return invalid("secret", "a %s destination needs its %s as secret", d.Type, what)
		}
		return nil
	}
	httpsURL := func() error {
		u, err := url.Parse(d.URL)
		if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil {
			return invalid("destination.url", "must be an https:// URL without user info")
		}
		return nil
	}
	if d.Transport != "" && d.Type != TypeSyslog {
		return invalid("destination.transport", "is a syslog setting (relp or tcp)")
	}
	if d.CAPEM != "" && !strings.Contains(d.CAPEM, "-----BEGIN CERTIFICATE-----") {
		return invalid("destination.ca_pem", "must be a PEM certificate")
	}
	switch d.Type {
	case TypeWebhook:
		if d.Encoding == "" {
			d.Encoding = "json"
		}
		if d.Encoding != "json" && d.Encoding != "ndjson" {
			return invalid("destination.encoding", "must be json or ndjson")
		}
		return httpsURL()
	case TypeSplunk:
		if err := httpsURL(); err != nil {
			return err
		}
		return needSecret("HEC token")
	case TypeDatadog:
		if err := httpsURL(); err != nil {
			return err
		}
		return needSecret("API key")
	case TypeSyslog:
		if _, port, err := net.SplitHostPort(d.Address); err != nil || port == "" {
			return invalid("destination.address", "must be host:port")
		}
		switch d.Transport {
		case "", TransportTCP, TransportRELP:
		case TransportRELPTLS:
			d.Transport, d.TLS = TransportRELP, true
		default:
			return invalid("destination.transport", "%q must be relp (acknowledged), relp+tls or tcp", clip(d.Transport))
		}
		return nil
	case TypeS3:
		if d.Bucket == "" {
			return invalid("destination.bucket", "is required")
		}
		if d.Endpoint != "" {
			if u, err := url.Parse(d.Endpoint); err != nil || u.Host == "" {
				return invalid("destination.endpoint", "must be a URL")
			}
		}
		if d.AccessKeyID == "" {
			return invalid("destination.access_key_id", "is required")
		}
		return needSecret("secret access key")
	case "":
		return invalid("destination.type", "is required: webhook, syslog, s3, splunk_hec or datadog")
	}
	return invalid("destination.type", "%q must be webhook, syslog, s3, splunk_hec or datadog", clip(d.Type))
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func clip(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
