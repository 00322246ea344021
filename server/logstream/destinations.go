package logstream

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/trailhq/trail"
)

// Dialer opens the senders of streams' destinations.
type Dialer struct {
	// RootCAs, when set, replaces the system's trusted CAs (tests with a
	// private CA). A destination's own ca_pem is trusted beside them.
	RootCAs *x509.CertPool
	// Timeout bounds one delivery. Default 30 s.
	Timeout time.Duration
	// Hostname is the HOSTNAME of syslog messages. Default "trail".
	Hostname string

	mu         sync.Mutex
	transports map[transportKey]*http.Transport // streams to one host share connections
}

// sender delivers batches to one destination.
type sender interface {
	send(ctx context.Context, s *Stream, items []item) error
	close()
}

// TooLargeError is a receiver refusing a batch as too large (HTTP 413):
// the Runner splits the batch and sends the halves.
type TooLargeError struct{ Status int }

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("the receiver refused the batch as too large (%d)", e.Status)
}

func (d *Dialer) timeout() time.Duration {
	if d.Timeout <= 0 {
		return 30 * time.Second
	}
	return d.Timeout
}

func (d *Dialer) tlsConfig(caPEM string) (*tls.Config, error) {
	pool := d.RootCAs
	if pool == nil {
		var err error
		if pool, err = x509.SystemCertPool(); err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
	}
	if caPEM != "" {
		pool = pool.Clone()
		if !pool.AppendCertsFromPEM([]byte(caPEM)) {
			return nil, errors.New("ca_pem holds no certificate")
		}
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

type transportKey struct {
	roots *x509.CertPool
	caPEM string
}

// transport returns the HTTP transport of streams trusting caPEM: one per
// CA set, so that streams to the same receiver share its connections (100
// streams to one SIEM make a handful of TLS handshakes, not 100).
func (d *Dialer) transport(caPEM string) (*http.Transport, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	key := transportKey{d.RootCAs, caPEM}
	if tr, ok := d.transports[key]; ok {
		return tr, nil
	}
	tc, err := d.tlsConfig(caPEM)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 16, IdleConnTimeout: 90 * time.Second}
	if d.transports == nil {
		d.transports = map[transportKey]*http.Transport{}
	}
	d.transports[key] = tr
	return tr, nil
}

// open returns the sender of s's destination with its secrets.
func (d *Dialer) open(s *Stream, sec secrets) (sender, error) {
	switch s.Destination.Type {
	case TypeWebhook, TypeSplunk, TypeDatadog:
		tr, err := d.transport(s.Destination.CAPEM)
		if err != nil {
			return nil, err
		}
		return &httpSender{client: &http.Client{Transport: tr, Timeout: d.timeout(),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, sec: sec}, nil
	case TypeSyslog:
		tc, err := d.tlsConfig(s.Destination.CAPEM)
		if err != nil {
			return nil, err
		}
		host := d.Hostname
		if host == "" {
			host = "trail"
		}
		if s.Destination.Transport == TransportRELP {
			return &relpSender{tls: tc, timeout: d.timeout(), hostname: host}, nil
		}
		return &syslogSender{tls: tc, timeout: d.timeout(), hostname: host}, nil
	case TypeS3:
		return newS3Sender(s, sec)
	}
	return nil, fmt.Errorf("unknown destination type %q", s.Destination.Type)
}

// Test makes a test delivery to s's destination: one event of action
// trail.log_stream.test with sequence number 0, which receivers skip (the
// envelope's test is true). It fails with the reason the destination gave.
func (d *Dialer) Test(ctx context.Context, s *Stream, sec secrets, now time.Time) error {
	snd, err := d.open(s, sec)
	if err != nil {
		return err
	}
	defer snd.close()
	ev := &trail.Event{ID: uuid.Must(uuid.NewV7()), OccurredAt: now, RecordedAt: now, Tenant: s.Tenant,
		Actor: trail.Actor{Type: trail.ActorSystem, ID: "trail"}, Action: "trail.log_stream.test",
		Target: trail.Target{Type: "log_stream", ID: s.ID, Name: s.Name}, Outcome: trail.OutcomeSuccess,
		Description: "Test delivery of a new Trail log stream", Source: "trail-server", SchemaVersion: 1}
	it := item{ev: ev}
	if it.rec, err = format(s, &it); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout())
	defer cancel()
	return snd.send(ctx, s, []item{it})
}

// httpSender posts to webhooks, Splunk HEC and Datadog.
type httpSender struct {
	client *http.Client
	sec    secrets
	now    func() time.Time
}

// close leaves the shared transport's connections to the other streams.
func (h *httpSender) close() {}

// Webhook headers.
const (
	HeaderTimestamp = "Trail-Timestamp" // unix seconds of the signature
	HeaderSignature = "Trail-Signature" // "v1=<hex>" per secret, comma-separated
	HeaderStream    = "Trail-Stream"    // the stream's ID
	HeaderSequence  = "Trail-Sequence"  // "first-last" sequence numbers of the batch
)

// Sign returns the webhook signature of body at timestamp ts under secret:
// hex HMAC-SHA256 of "<ts>.<body>".
func Sign(secret string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func (h *httpSender) send(ctx context.Context, s *Stream, items []item) error {
	var body bytes.Buffer
	hdr := http.Header{}
	d := &s.Destination
	switch d.Type {
	case TypeWebhook:
		if d.Encoding == "ndjson" {
			for _, it := range items {
				body.Write(it.rec)
				body.WriteByte('\n')
			}
			hdr.Set("Content-Type", "application/x-ndjson")
		} else {
			body.WriteByte('[')
			for i, it := range items {
				if i > 0 {
					body.WriteByte(',')
				}
				body.Write(it.rec)
			}
			body.WriteByte(']')
			hdr.Set("Content-Type", "application/json")
		}
		now := time.Now()
		ts := now.Unix()
		var sigs []string
		for _, sec := range h.sec.signingSecrets(now) {
			sigs = append(sigs, "v1="+Sign(sec, ts, body.Bytes()))
		}
		hdr.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
		hdr.Set(HeaderSignature, strings.Join(sigs, ","))
		hdr.Set(HeaderStream, s.ID)
		hdr.Set(HeaderSequence, fmt.Sprintf("%d-%d", items[0].seq, items[len(items)-1].seq))
	case TypeSplunk:
		// HEC's event endpoint takes concatenated JSON objects.
		for _, it := range items {
			o := map[string]any{"time": float64(it.ev.OccurredAt.UnixMicro()) / 1e6, "source": "trail", "event": rawJSON(it.rec)}
			o["sourcetype"] = firstNonEmpty(d.SourceType, "trail:audit")
			if s.Format == FormatOCSF && d.SourceType == "" {
				o["sourcetype"] = "trail:ocsf"
			}
			if d.Index != "" {
				o["index"] = d.Index
			}
			if it.ev.Tenant != "" {
				o["fields"] = map[string]any{"tenant": it.ev.Tenant}
			}
			b, _ := marshal(o)
			body.Write(b)
			body.WriteByte('\n')
		}
		hdr.Set("Content-Type", "application/json")
		hdr.Set("Authorization", "Splunk "+h.sec.Current)
	case TypeDatadog:
		// The v2 intake takes a JSON array of logs; message holds the record.
		body.WriteByte('[')
		for i, it := range items {
			if i > 0 {
				body.WriteByte(',')
			}
			tags := "stream:" + s.ID
			if it.ev.Tenant != "" {
				tags += ",tenant:" + it.ev.Tenant
			}
			b, _ := marshal(map[string]any{"ddsource": "trail", "service": firstNonEmpty(d.Service, "trail"), "hostname": "trail",
				"ddtags": tags, "message": string(it.rec)})
			body.Write(b)
		}
		body.WriteByte(']')
		hdr.Set("Content-Type", "application/json")
		hdr.Set("DD-API-KEY", h.sec.Current)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(body.Bytes()))
	if err != nil {
		return err
	}
	req.Header = hdr
	req.Header.Set("User-Agent", "trail-log-stream/1")
	resp, err := h.client.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", redactURL(d.URL), unwrapURLError(err))
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch {
	case resp.StatusCode == http.StatusRequestEntityTooLarge:
		return &TooLargeError{Status: resp.StatusCode}
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	}
	return fmt.Errorf("POST %s: %s: %s", redactURL(d.URL), resp.Status, clip(strings.TrimSpace(string(msg))))
}

func unwrapURLError(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) && strings.HasPrefix(err.Error(), "Post ") {
		return ue.Unwrap()
	}
	return err
}

func redactURL(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i] + "?…"
	}
	return u
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
