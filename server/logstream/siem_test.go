package logstream

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// The Splunk HEC and Datadog receivers below are test receivers written
// from the vendors' published intake specifications (the OpenTelemetry
// Collector's receivers are too heavy a dependency for this module):
//   - Splunk HTTP Event Collector, "Format events for HTTP Event Collector"
//     and "Troubleshoot HTTP Event Collector" (status codes): POST
//     /services/collector/event, Authorization: Splunk <token>, a body of
//     one or more concatenated JSON objects, each with a required "event"
//     and optional time (epoch seconds), host, source, sourcetype, index and
//     fields (a flat object: no nested objects or arrays of objects); 200
//     {"text":"Success","code":0}, 401 code 2 (no token), 403 code 4
//     (invalid token), 400 code 5 (no data) or 6 (invalid data format).
//   - Datadog Logs API v2, "Send logs": POST /api/v2/logs, DD-API-KEY, a
//     JSON array of logs with ddsource, ddtags, hostname, message, service;
//     at most 1,000 logs and 5 MB a request, 1 MB a log; 202 {} on
//     success, 400, 403 (bad key), 413 (payload too large).
// Their documented example payloads are TestSplunkHECExample's and
// TestDatadogExample's golden inputs.

type intake struct {
	mu      sync.Mutex
	records []map[string]any // decoded records, in arrival order
	bad     []string
}

func (in *intake) add(rec map[string]any) {
	in.records = append(in.records, rec)
}

func (in *intake) n() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.records)
}

func hecReceiver(t testing.TB, token string) (*httptest.Server, *intake) {
	in := &intake{}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in.mu.Lock()
		defer in.mu.Unlock()
		answer := func(status, code int, text string) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"text":%q,"code":%d}`, text, code)
		}
		if r.Method != http.MethodPost || r.URL.Path != "/services/collector/event" {
			answer(404, 404, "The requested URL was not found on this server.")
			return
		}
		auth := r.Header.Get("Authorization")
		if auth == "" {
			answer(401, 2, "Token is required")
			return
		}
		if auth != "Splunk "+token {
			answer(403, 4, "Invalid token")
			return
		}
		body, _ := io.ReadAll(r.Body)
		dec := json.NewDecoder(bytes.NewReader(body))
		var batch []map[string]any
		for dec.More() {
			var ev map[string]any
			if err := dec.Decode(&ev); err != nil {
				answer(400, 6, "Invalid data format")
				return
			}
			e, ok := ev["event"]
			if !ok || e == nil {
				answer(400, 12, "Event field is required")
				return
			}
			if tm, ok := ev["time"]; ok {
				if _, num := tm.(float64); !num {
					answer(400, 6, "Invalid data format")
					return
				}
			}
			if f, ok := ev["fields"]; ok {
				fm, isObj := f.(map[string]any)
				if !isObj {
					answer(400, 6, "Invalid data format")
					return
				}
				for _, v := range fm {
					if _, nested := v.(map[string]any); nested {
						answer(400, 15, "Error in handling indexed fields")
						return
					}
				}
			}
			rec, isObj := e.(map[string]any)
			if !isObj {
				in.bad = append(in.bad, "event is not an object")
				continue
			}
			batch = append(batch, rec)
		}
		if len(batch) == 0 {
			answer(400, 5, "No data")
			return
		}
		for _, rec := range batch {
			in.add(rec)
		}
		answer(200, 0, "Success")
	}))
	t.Cleanup(srv.Close)
	return srv, in
}

func datadogReceiver(t testing.TB, key string) (*httptest.Server, *intake) {
	in := &intake{}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in.mu.Lock()
		defer in.mu.Unlock()
		answer := func(status int, body string) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			io.WriteString(w, body)
		}
		if r.Method != http.MethodPost || r.URL.Path != "/api/v2/logs" {
			answer(404, `{"errors":[{"status":"404","title":"Not Found"}]}`)
			return
		}
		if r.Header.Get("DD-API-KEY") != key {
			answer(403, `{"errors":[{"status":"403","title":"Forbidden","detail":"Invalid API key"}]}`)
			return
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, 5<<20+1))
		if len(body) > 5<<20 {
			answer(413, `{"errors":[{"status":"413","title":"Payload Too Large"}]}`)
			return
		}
		var logs []map[string]any
		if err := json.Unmarshal(body, &logs); err != nil {
			answer(400, `{"errors":[{"status":"400","title":"Bad Request"}]}`)
			return
		}
		if len(logs) > 1000 {
			answer(413, `{"errors":[{"status":"413","title":"Payload Too Large","detail":"more than 1000 logs"}]}`)
			return
		}
		for _, l := range logs {
			msg, _ := l["message"].(string)
			if len(msg) > 1<<20 || l["ddsource"] == nil {
				answer(400, `{"errors":[{"status":"400","title":"Bad Request"}]}`)
				return
			}
			var rec map[string]any
			if err := json.Unmarshal([]byte(msg), &rec); err != nil {
				in.bad = append(in.bad, "message is not a JSON record")
				continue
			}
			if !strings.Contains(l["ddtags"].(string), "stream:") {
				in.bad = append(in.bad, "no stream tag")
			}
			in.add(rec)
		}
		answer(202, `{}`)
	}))
	t.Cleanup(srv.Close)
	return srv, in
}

// seqOf reads the stream's sequence number of a record in either format.
func seqOf(rec map[string]any) int64 {
	if md, ok := rec["metadata"].(map[string]any); ok {
		return int64(md["sequence"].(float64))
	}
	return int64(rec["seq"].(float64))
}

func uidOf(rec map[string]any) string {
	if md, ok := rec["metadata"].(map[string]any); ok {
		return md["uid"].(string)
	}
	return rec["event"].(map[string]any)["id"].(string)
}

// delivered checks the records' sequence (a re-sent record must be the
// same event) and returns the event IDs by sequence number.
func (in *intake) delivered(t testing.TB) []string {
	t.Helper()
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.bad) > 0 {
		t.Fatalf("receiver found bad records: %v", in.bad[:min(3, len(in.bad))])
	}
	var out []string
	for _, rec := range in.records {
		s := seqOf(rec)
		switch {
		case s == 0: // the test delivery
		case s == int64(len(out))+1:
			out = append(out, uidOf(rec))
		case s <= int64(len(out)):
			if out[s-1] != uidOf(rec) {
				t.Fatalf("seq %d re-sent with another event", s)
			}
		default:
			t.Fatalf("gap: seq %d after %d", s, len(out))
		}
	}
	return out
}

// TestSIEMIntakes: OCSF streams to a Splunk HEC and a Datadog receiver
// (batches of 2,500: Datadog's 1,000-log limit answers 413, the batch is
// split); every event arrives in order; wrong tokens are refused at creation.
func TestSIEMIntakes(t *testing.T) {
	for _, typ := range []string{TypeSplunk, TypeDatadog} {
		t.Run(typ, func(t *testing.T) {
			f := newFixture(t, onSQLite)
			var (
				srv *httptest.Server
				in  *intake
				url string
			)
			if typ == TypeSplunk {
				srv, in = hecReceiver(t, "hec-token")
				url = srv.URL + "/services/collector/event"
			} else {
				srv, in = datadogReceiver(t, "dd-key")
				url = srv.URL + "/api/v2/logs"
			}
			f.dialer.RootCAs = srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
			req := CreateRequest{Tenant: "acme", Name: typ, Format: FormatOCSF, Destination: Destination{Type: typ, URL: url, Index: "audit"},
				Secret: "wrong", Batching: Batching{MaxEvents: 2500, MaxWaitMS: 1}}
			if _, err := f.m.Create(adminCtx(), Caller{All: true}, req); err == nil || !strings.Contains(err.Error(), "403") {
				t.Fatalf("wrong token: %v", err)
			}
			req.Secret = map[string]string{TypeSplunk: "hec-token", TypeDatadog: "dd-key"}[typ]
			f.step(t)
			s, err := f.m.Create(adminCtx(), Caller{All: true}, req)
			if err != nil {
				t.Fatal(err)
			}
			f.start[s.ID] = f.size(t, "acme")
			rec := ids(f.record(t, "acme", 2400))
			want := f.want(t, s, rec)
			f.until(t, "all delivered", func() bool { return len(in.delivered(t)) >= len(want) })
			if got := in.delivered(t); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("receiver has %d events, want %d in log order", len(got), len(want))
			}
			in.mu.Lock()
			recs := in.records
			in.mu.Unlock()
			for _, r := range recs {
				validateOCSF(t, r)
			}
		})
	}
}
